"""Checkpoints: a model's weights, an optimizer's state and training metadata in one file.

The file is `safetensors <https://github.com/huggingface/safetensors>`_: a
length-prefixed JSON header, then the raw bytes of every array (no pickle,
so loading a file cannot run code). Layout:

- arrays: ``model/<dotted name>`` for ``model.state_dict()``, and
  ``optimizer/...``, ``schedule/...``, ``extra/...``, ``rng/...``,
  ``callbacks/...`` for arrays found inside the optimizer's or schedule's
  state, the user's ``extra``, a module's generator state or a callback's
  state; 0-d arrays stay 0-d;
- header metadata (strings): ``format`` (``"gdbp.checkpoint"``),
  ``format_version``, ``gdbp`` (a JSON document: gdbp version, epoch,
  shuffle seed, module generator states, optimizer and schedule state with
  their arrays replaced by ``{"__tensor__": name}``, the run's state for
  ``fit(..., resume=)``, the user's ``extra``), and ``sha256``, a
  checksum over the rest of the header and every array's bytes, so that a
  truncated or edited file is refused, not half-loaded.

Files are written atomically (see :mod:`gdbp.train._checkpoint_file`): a
crash leaves the old file or the new one, temporary files of killed saves
are removed by the next save of the same target, a replaced file keeps its
permissions, and a symbolic link is written through to its target.
:func:`load` checks the whole file, and everything it is asked to load into,
before it changes anything.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import backends
from .._version import __version__
from ..backprop import Tensor
from ._checkpoint_file import FORMAT, FORMAT_VERSION, CheckpointError, read_file, safetensors_numpy, write_file
from ._data import whole

__all__ = ["CheckpointError", "Checkpoint", "save", "load"]


@dataclass
class Checkpoint:
    """What :func:`load` read from a file.

    Attributes
    ----------
    path : str
    state_dict : dict
        Dotted name -> array of the target backend (the model's weights and buffers).
    optimizer_state : dict or None
        What ``optimizer.state_dict()`` returned, arrays on the target backend.
    schedule_state : dict or None
        What ``schedule.state_dict()`` returned.
    epoch : int or None
        The number of epochs completed when the file was written.
    shuffle_seed : int or None
        The seed :func:`gdbp.train.fit` shuffled with.
    rng_states : dict
        Module name -> the module's ``rng_state()``.
    extra : object
        The user's ``extra``.
    run_state : dict or None
        What :func:`gdbp.train.fit` needs to resume beyond the model and
        optimizer: ``{"stop_training": bool, "callbacks": {key: state}}``
        (keys as :func:`gdbp.train.callbacks.stateful` gives them), as
        :class:`ModelCheckpoint` saves it; None when the file records none.
    gdbp_version : str
    format_version : int
    """

    path: str
    state_dict: dict
    optimizer_state: dict | None = None
    schedule_state: dict | None = None
    epoch: int | None = None
    shuffle_seed: int | None = None
    rng_states: dict = field(default_factory=dict)
    extra: Any = None
    run_state: dict | None = None
    gdbp_version: str = ""
    format_version: int = FORMAT_VERSION


# -- nested state <-> JSON plus named arrays -------------------------------------------

_KEYS = (type(None), bool, int, float, str)


def _encode(value, name: str, arrays: dict):
    """value as JSON, its arrays moved into ``arrays`` under names that start with ``name``."""
    if isinstance(value, Tensor):
        value = value.data
    if backends.is_array(value):
        if name in arrays:
            raise ValueError(f"two arrays would be saved under the name {name!r}")
        arrays[name] = backends.to_numpy_contiguous(value)
        return {"__tensor__": name}
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, _KEYS):
                raise TypeError(f"cannot save {name}: dict key {k!r} is not a str, int, float or bool")
        return {"__dict__": [[k, _encode(v, f"{name}/{k}", arrays)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, f"{name}/{i}", arrays) for i, v in enumerate(value)]
        return items if isinstance(value, list) else {"__tuple__": items}
    raise TypeError(
        f"cannot save {name}: a {type(value).__name__} is neither an array nor a JSON value "
        "(str, int, float, bool, None, list, tuple, dict)"
    )


def _decode(value, arrays: dict, backend):
    """The inverse of :func:`_encode`; ValueError for anything :func:`_encode` cannot have written."""
    if isinstance(value, list):
        return [_decode(v, arrays, backend) for v in value]
    if not isinstance(value, dict):
        return value
    tag, body = next(iter(value.items())) if len(value) == 1 else (None, None)
    if tag == "__tensor__":
        if not isinstance(body, str) or body not in arrays:
            raise ValueError(f"a reference to an array that the file does not hold: {body!r}")
        return _to_backend(arrays[body], backend)
    if tag == "__tuple__" and isinstance(body, list):
        return tuple(_decode(v, arrays, backend) for v in body)
    if tag == "__dict__" and isinstance(body, list):
        out = {}
        for item in body:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], _KEYS)):
                raise ValueError(f"a dict entry that is not a [key, value] pair: {item!r}"[:200])
            out[item[0]] = _decode(item[1], arrays, backend)
        return out
    raise ValueError(f"an object that gdbp does not write: {sorted(value)!r}"[:200])


def _to_backend(host, backend):
    # Arrays fresh from the file are ours: on NumPy they are used as they are.
    return host if backend.name == "numpy" else backends.transfer(host, backend)


# -- saving --------------------------------------------------------------------------------


def save(path, model, optimizer=None, extra=None, *, epoch=None, schedule=None, shuffle_seed=None,
         run_state=None) -> Path:
    """Write a checkpoint: the model's weights, and optionally optimizer and schedule state.

    Parameters
    ----------
    path : str or os.PathLike
        The file (conventionally ``*.safetensors``); missing parent
        directories are created. An existing file is replaced atomically and
        keeps its permission bits; a symbolic link is written through to
        the file it points to (the link stays).
    model : gdbp.nn.Module
        Its ``state_dict()`` (parameters and buffers) is saved, and the
        generator state of every sub-module that has one (``rng_state()``,
        e.g. Dropout), so that training can resume bit for bit.
    optimizer : gdbp.descent.Optimizer, optional
        Its ``state_dict()``: arrays as tensors, step count and
        hyperparameters as JSON.
    extra : object, optional
        Anything made of JSON values, lists, tuples, dicts and arrays
        (0-d arrays included).
    epoch : int, optional
        The number of epochs completed (:func:`gdbp.train.fit` resumes there).
        Any integer (a NumPy integer too), >= 0.
    schedule : learning-rate schedule, optional
        Its ``state_dict()``.
    shuffle_seed : int, optional
        The seed :func:`gdbp.train.fit` shuffles with (an integer >= 0).
    run_state : dict, optional
        ``{"stop_training": bool, "callbacks": {key: state}}``, what
        ``fit(..., resume=path)`` restores beyond the model and optimizer
        (:class:`ModelCheckpoint` fills it in).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    TypeError
        Something in the state is neither an array nor a JSON value; epoch
        or shuffle_seed is not an integer.
    ValueError
        epoch or shuffle_seed is negative.
    ImportError
        safetensors is not installed (``pip install 'gdbp[train]'``).
    """
    safetensors_numpy()  # the clear ImportError before any work
    if epoch is not None:
        epoch = whole("epoch", epoch, "save")
    if shuffle_seed is not None:
        shuffle_seed = whole("shuffle_seed", shuffle_seed, "save")
    arrays: dict = {}
    for name, value in model.state_dict().items():
        _encode(value, f"model/{name}", arrays)
    doc = {
        "gdbp_version": __version__,
        "model": type(model).__name__,
        "epoch": epoch,
        "shuffle_seed": shuffle_seed,
        "rng": _encode(_rng_states(model), "rng", arrays),
        "optimizer": None if optimizer is None else _encode(optimizer.state_dict(), "optimizer", arrays),
        "schedule": None if schedule is None else _encode(schedule.state_dict(), "schedule", arrays),
        "run": None if run_state is None else _encode(run_state, "run", arrays),
        "extra": _encode(extra, "extra", arrays),
    }
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "gdbp": json.dumps(doc)}
    return write_file(path, arrays, metadata)


def _rng_states(model) -> dict:
    """The generator state of every sub-module that exposes ``rng_state()``, by dotted name."""
    return {name: m.rng_state() for name, m in model.named_modules() if callable(getattr(m, "rng_state", None))}


# -- reading -------------------------------------------------------------------------------


def _count(doc: dict, key: str):
    value = doc.get(key)
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise ValueError(f"{key}={value!r} is not an int >= 0")


def _typed(value, kinds, what: str):
    if not isinstance(value, kinds):
        raise ValueError(f"the {what} is a {type(value).__name__}")
    return value


def _run_state(run):
    if run is None:
        return None
    _typed(run, dict, "run state")
    if set(run) != {"stop_training", "callbacks"} or not isinstance(run["stop_training"], bool):
        raise ValueError(f"the run state is {{'stop_training': bool, 'callbacks': dict}}, got keys {sorted(run)}")
    callbacks = _typed(run["callbacks"], dict, "callback state record")
    if not all(isinstance(k, str) for k in callbacks):
        raise ValueError("a callback state is not under a callback key")
    return run


def _read(path: Path, target) -> Checkpoint:
    """The checkpoint in a file, its arrays on ``target``; CheckpointError for whatever is malformed."""
    meta, host = read_file(path)
    try:
        text = _typed(meta.get("gdbp"), str, "gdbp metadata")
        doc = _typed(json.loads(text), dict, "gdbp metadata")
        prefix = "model/"
        rng = _decode(doc.get("rng"), host, target)
        rng = {} if rng is None else _typed(rng, dict, "generator state record")
        run = _run_state(_decode(doc.get("run"), host, target))
        ckpt = Checkpoint(
            path=str(path),
            state_dict={k[len(prefix):]: _to_backend(v, target) for k, v in host.items() if k.startswith(prefix)},
            optimizer_state=_typed(_decode(doc.get("optimizer"), host, target), (dict, type(None)), "optimizer state"),
            schedule_state=_typed(_decode(doc.get("schedule"), host, target), (dict, type(None)), "schedule state"),
            epoch=_count(doc, "epoch"),
            shuffle_seed=_count(doc, "shuffle_seed"),
            rng_states=rng,
            extra=_decode(doc.get("extra"), host, target),
            run_state=run,
            gdbp_version=_typed(doc.get("gdbp_version", ""), str, "gdbp version"),
            format_version=int(meta["format_version"]),
        )
    except RecursionError:
        raise CheckpointError(path, "corrupted gdbp metadata: nested too deeply") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise CheckpointError(path, f"corrupted gdbp metadata: {exc}") from None
    if not all(isinstance(k, str) for k in ckpt.rng_states):
        raise CheckpointError(path, "corrupted gdbp metadata: a generator state is not under a module name")
    return ckpt


# -- loading: check everything, then change anything ---------------------------------------------


def load(path, model=None, optimizer=None, backend=None, *, schedule=None, strict=True) -> Checkpoint:
    """Read a checkpoint written by :func:`save`, onto any backend, and load it into the objects given.

    Everything is checked before anything changes: the file (its checksum
    and structure), the model's state dict, the generator states, the
    optimizer and the schedule state. If any part does not fit, the model,
    the optimizer and the schedule are left exactly as they were.

    Parameters
    ----------
    path : str, os.PathLike or Checkpoint
        The file, or a Checkpoint read before (it is not read again).
    model : gdbp.nn.Module, optional
        Load the weights into it (``model.load_state_dict(..., strict)``) and
        restore its sub-modules' generator states.
    optimizer : gdbp.descent.Optimizer, optional
        Load the optimizer state into it.
    backend : str or Backend, optional
        Where the returned arrays go. Default: the model's backend if a
        model is given, else the current default backend. Arrays are read on
        the host and transferred once. (A Checkpoint given as ``path`` keeps
        its arrays where they are; loading copies them to each object's
        backend.)
    schedule : learning-rate schedule, optional
        Load the schedule state into it.
    strict : bool
        Require the names to match exactly: the state dict's (as
        ``model.load_state_dict``) and the generator states' (every module
        with a generator has a state in the file, and every state in the
        file has a module). False loads the matching ones and skips the rest.

    Returns
    -------
    Checkpoint

    Raises
    ------
    CheckpointError
        The file is truncated, corrupted or edited (checksum mismatch), is
        not a gdbp checkpoint, or is malformed; it lacks the optimizer or
        schedule state asked for; its optimizer, schedule or generator
        states do not fit the objects given.
    gdbp.nn.StateDictError, gdbp.ShapeError, TypeError
        The weights do not fit the model (names, shapes, dtypes).
    FileNotFoundError
        There is no such file.
    """
    if backend is not None:
        target = backends.resolve(backend)
    elif model is not None and model.backend is not None:
        target = model.backend
    else:
        target = backends.current()
    ckpt = path if isinstance(path, Checkpoint) else _read(Path(path), target)
    generators = check(ckpt, model, optimizer, schedule=schedule, strict=strict)
    if model is not None:
        model.load_state_dict(ckpt.state_dict, strict=strict)
        for module, state in generators:
            module.set_rng_state(state)
    if optimizer is not None:
        optimizer.load_state_dict(ckpt.optimizer_state)
    if schedule is not None:
        schedule.load_state_dict(ckpt.schedule_state)
    return ckpt


def check(ckpt: Checkpoint, model=None, optimizer=None, *, schedule=None, strict=True) -> list:
    """Check that :func:`load` can load ``ckpt`` into the objects given, changing nothing.

    The optimizer and schedule states are tried on throwaway copies: a new
    optimizer of the same class over the same parameters (what
    ``Optimizer.load_state_dict`` itself builds to check hyperparameters), and
    a shallow copy of the schedule. Generator states are checked by each
    module's ``check_rng_state(state)`` where it defines one.

    Returns
    -------
    list of (module, state)
        The generator states to restore.

    Raises
    ------
    As :func:`load`.
    """
    path = ckpt.path
    if optimizer is not None and ckpt.optimizer_state is None:
        raise CheckpointError(path, "holds no optimizer state (it was saved without an optimizer)")
    if schedule is not None and ckpt.schedule_state is None:
        raise CheckpointError(path, "holds no schedule state (it was saved without a schedule)")
    generators = []
    if model is not None:
        model.check_state_dict(ckpt.state_dict, strict=strict)
        generators = _generators(ckpt, model, strict)
    if optimizer is not None:
        probe = type(optimizer)(optimizer.params, **optimizer.hyperparameters())
        _attempt(path, "optimizer state", optimizer, lambda: probe.load_state_dict(ckpt.optimizer_state))
    if schedule is not None:
        probe = copy.copy(schedule)
        _attempt(path, "schedule state", schedule, lambda: probe.load_state_dict(ckpt.schedule_state))
    return generators


def _attempt(path, what: str, owner, trial) -> None:
    try:
        trial()
    except Exception as exc:  # whatever a malformed state makes the owner raise, refused as the file's fault
        raise CheckpointError(path, f"its {what} does not fit this {type(owner).__name__}: {exc}") from exc


def _generators(ckpt: Checkpoint, model, strict: bool) -> list:
    owners = {name: m for name, m in model.named_modules() if callable(getattr(m, "set_rng_state", None))}
    unexpected = [name for name in ckpt.rng_states if name not in owners]
    missing = [name for name in owners if name not in ckpt.rng_states]
    if strict and unexpected:
        raise CheckpointError(
            ckpt.path, f"holds a generator state for module {unexpected[0]!r}, which this model lacks (or which "
            f"has no generator); pass strict=False to skip it"
        )
    if strict and missing:
        raise CheckpointError(
            ckpt.path, f"holds no generator state for module {missing[0]!r} "
            f"({type(owners[missing[0]]).__name__}); pass strict=False to keep the module's own"
        )
    pairs = [(owners[name], name, state) for name, state in ckpt.rng_states.items() if name in owners]
    for module, name, state in pairs:
        trial = getattr(module, "check_rng_state", None)
        if callable(trial):
            try:
                trial(state)
            except Exception as exc:  # the module names what is wrong; the file is at fault
                raise CheckpointError(
                    ckpt.path, f"the generator state of module {name!r} does not fit its {type(module).__name__}: {exc}"
                ) from exc
    return [(module, state) for module, _, state in pairs]
