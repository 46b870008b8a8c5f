"""Checkpoints: a model's weights, an optimizer's state and training metadata in one file.

The file is `safetensors <https://github.com/huggingface/safetensors>`_: a
length-prefixed JSON header, then the raw bytes of every array (no pickle,
so loading a file cannot run code). Layout:

- arrays: ``model/<dotted name>`` for ``model.state_dict()``, and
  ``optimizer/...``, ``schedule/...``, ``extra/...``, ``rng/...`` for arrays
  found inside the optimizer's or schedule's state, the user's ``extra`` or a
  module's generator state;
- header metadata (strings): ``format`` (``"gdbp.checkpoint"``),
  ``format_version``, ``gdbp`` (a JSON document: gdbp version, epoch,
  shuffle seed, module generator states, optimizer and schedule state with
  their arrays replaced by ``{"__tensor__": name}``, the user's ``extra``),
  and ``sha256``, a checksum over the rest of the header and every array's
  bytes, so that a truncated or edited file is refused, not half-loaded.

Files are written atomically: to a temporary file in the same directory,
flushed and fsync'ed, then renamed over the target (``os.replace``), and the
directory is fsync'ed; a crash at any point leaves either the old file or the
new one, never a torn one.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import backends
from .._version import __version__
from ..backprop import Tensor

__all__ = ["CheckpointError", "Checkpoint", "save", "load"]

FORMAT = "gdbp.checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupted, edited or not a gdbp checkpoint."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"checkpoint {self.path!r}: {problem}")


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
    gdbp_version: str = ""
    format_version: int = FORMAT_VERSION


def _safetensors_numpy():
    try:
        import safetensors.numpy
    except ImportError as exc:
        raise ImportError(
            f"gdbp checkpoints need safetensors ({exc}): pip install 'gdbp[train]'"
        ) from None
    return safetensors.numpy


# -- nested state <-> JSON plus named arrays -------------------------------------------


def _encode(value, name: str, arrays: dict):
    """value as JSON, its arrays moved into ``arrays`` under names that start with ``name``."""
    if isinstance(value, Tensor):
        value = value.data
    if backends.is_array(value):
        if name in arrays:
            raise ValueError(f"two arrays would be saved under the name {name!r}")
        arrays[name] = backends.to_numpy_contiguous(value)
        return {"__tensor__": name}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        for k in value:
            if not (k is None or isinstance(k, (bool, int, float, str))):
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
    if isinstance(value, list):
        return [_decode(v, arrays, backend) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return _to_backend(arrays[value["__tensor__"]], backend)
        if "__tuple__" in value:
            return tuple(_decode(v, arrays, backend) for v in value["__tuple__"])
        return {k: _decode(v, arrays, backend) for k, v in value["__dict__"]}
    return value


def _to_backend(host, backend):
    # Arrays fresh from the file are ours: on NumPy they are used as they are.
    return host if backend.name == "numpy" else backends.transfer(host, backend)


# -- the file: header, checksum, atomic write --------------------------------------------


def _checksum(header: dict, payload) -> str:
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    h = hashlib.sha256(canonical)
    h.update(payload)
    return h.hexdigest()


def _write_atomic(path: Path, pieces) -> None:
    # os.open with mode 0o666 lets the umask decide the permissions, as a plain open() would
    # (tempfile.mkstemp would leave the checkpoint readable by its owner only).
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            for piece in pieces:
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    # Make the rename itself durable (POSIX; Windows cannot open a directory).
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save(path, model, optimizer=None, extra=None, *, epoch=None, schedule=None, shuffle_seed=None) -> Path:
    """Write a checkpoint: the model's weights, and optionally optimizer and schedule state.

    Parameters
    ----------
    path : str or os.PathLike
        The file (conventionally ``*.safetensors``); missing parent
        directories are created. An existing file is replaced atomically.
    model : gdbp.nn.Module
        Its ``state_dict()`` (parameters and buffers) is saved, and the
        generator state of every sub-module that has one (``rng_state()``,
        e.g. Dropout), so that training can resume bit for bit.
    optimizer : gdbp.descent.Optimizer, optional
        Its ``state_dict()``: arrays as tensors, step count and
        hyperparameters as JSON.
    extra : object, optional
        Anything made of JSON values, lists, tuples, dicts and arrays.
    epoch : int, optional
        The number of epochs completed (:func:`gdbp.train.fit` resumes there).
    schedule : learning-rate schedule, optional
        Its ``state_dict()``.
    shuffle_seed : int, optional
        The seed :func:`gdbp.train.fit` shuffles with.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    TypeError
        Something in the state is neither an array nor a JSON value.
    ImportError
        safetensors is not installed (``pip install 'gdbp[train]'``).
    """
    st = _safetensors_numpy()
    path = Path(path)
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
        "extra": _encode(extra, "extra", arrays),
    }
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "gdbp": json.dumps(doc)}
    blob = memoryview(st.save(arrays, metadata=metadata))
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(bytes(blob[8 : 8 + n]))
    payload = blob[8 + n :]
    header["__metadata__"]["sha256"] = _checksum(header, payload)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors aligns the data to 8 bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, [len(text).to_bytes(8, "little"), text, payload])
    return path


def _rng_states(model) -> dict:
    """The generator state of every sub-module that exposes ``rng_state()``, by dotted name."""
    return {name: m.rng_state() for name, m in model.named_modules() if callable(getattr(m, "rng_state", None))}


def _read(path: Path) -> tuple[dict, memoryview, bytes]:
    """The header (checked against its checksum), the array bytes and the whole file."""
    data = path.read_bytes()
    if len(data) < 8:
        raise CheckpointError(path, f"truncated: {len(data)} bytes, too short to hold a header")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise CheckpointError(
            path, f"truncated: the header says it is {n} bytes long but the file has {len(data) - 8} after the length"
        )
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(path, f"corrupted header (not valid JSON: {exc}); not a safetensors file?") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(path, "not a gdbp checkpoint (its header has no gdbp metadata); write one with gdbp.save")
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise CheckpointError(path, f"corrupted metadata: format_version={meta.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise CheckpointError(
            path, f"written in checkpoint format {version}, this gdbp reads up to {FORMAT_VERSION}: upgrade gdbp"
        )
    payload = memoryview(data)[8 + n :]
    try:
        needed = max((int(e["data_offsets"][1]) for k, e in header.items() if k != "__metadata__"), default=0)
    except (KeyError, TypeError, IndexError, ValueError):
        raise CheckpointError(path, "corrupted header: an array entry has no valid data_offsets") from None
    if len(payload) < needed:
        raise CheckpointError(path, f"truncated: the arrays need {needed} bytes of data, the file holds {len(payload)}")
    stored = meta.pop("sha256", None)
    if stored is None:
        raise CheckpointError(path, "no sha256 checksum in the metadata; the header was edited")
    actual = _checksum(header, payload)
    if actual != stored:
        raise CheckpointError(
            path,
            f"checksum mismatch (stored sha256 {stored[:12]}..., computed {actual[:12]}...): "
            "the file was modified or corrupted after it was written",
        )
    return meta, payload, data


def load(path, model=None, optimizer=None, backend=None, *, schedule=None, strict=True) -> Checkpoint:
    """Read a checkpoint written by :func:`save`, onto any backend.

    Parameters
    ----------
    path : str or os.PathLike
    model : gdbp.nn.Module, optional
        Load the weights into it (``model.load_state_dict(..., strict)``) and
        restore its sub-modules' generator states.
    optimizer : gdbp.descent.Optimizer, optional
        Load the optimizer state into it.
    backend : str or Backend, optional
        Where the returned arrays go. Default: the model's backend if a
        model is given, else the current default backend. Arrays are read on
        the host and transferred once.
    schedule : learning-rate schedule, optional
        Load the schedule state into it.
    strict : bool
        Passed to ``model.load_state_dict``.

    Returns
    -------
    Checkpoint

    Raises
    ------
    CheckpointError
        The file is truncated, corrupted or edited (checksum mismatch), is
        not a gdbp checkpoint, or lacks the optimizer/schedule state asked for.
    FileNotFoundError
        There is no such file.
    """
    st = _safetensors_numpy()
    path = Path(path)
    meta, _, data = _read(path)
    try:
        host = st.load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise CheckpointError(path, f"safetensors could not read the arrays: {exc}") from None
    try:
        doc = json.loads(meta["gdbp"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(path, f"corrupted gdbp metadata: {exc}") from None
    if backend is not None:
        target = backends.resolve(backend)
    elif model is not None and model.backend is not None:
        target = model.backend
    else:
        target = backends.current()
    prefix = "model/"
    state = {k[len(prefix):]: _to_backend(v, target) for k, v in host.items() if k.startswith(prefix)}
    ckpt = Checkpoint(
        path=str(path),
        state_dict=state,
        optimizer_state=_decode(doc.get("optimizer"), host, target),
        schedule_state=_decode(doc.get("schedule"), host, target),
        epoch=doc.get("epoch"),
        shuffle_seed=doc.get("shuffle_seed"),
        rng_states=_decode(doc.get("rng"), host, target) or {},
        extra=_decode(doc.get("extra"), host, target),
        gdbp_version=doc.get("gdbp_version", ""),
        format_version=int(meta["format_version"]),
    )
    if optimizer is not None and ckpt.optimizer_state is None:
        raise CheckpointError(path, "holds no optimizer state (it was saved without an optimizer)")
    if schedule is not None and ckpt.schedule_state is None:
        raise CheckpointError(path, "holds no schedule state (it was saved without a schedule)")
    if model is not None:
        model.load_state_dict(state, strict=strict)
        modules = dict(model.named_modules())
        for name, rng in ckpt.rng_states.items():
            if name not in modules or not callable(getattr(modules[name], "set_rng_state", None)):
                raise CheckpointError(path, f"holds a generator state for module {name!r}, which this model lacks")
            modules[name].set_rng_state(rng)
    if optimizer is not None:
        optimizer.load_state_dict(ckpt.optimizer_state)
    if schedule is not None:
        schedule.load_state_dict(ckpt.schedule_state)
    return ckpt
