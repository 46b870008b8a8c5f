"""Callbacks: code that :func:`gdbp.train.fit` runs at fixed points of training.

Order: ``on_train_begin``; then, for each epoch, ``on_epoch_begin``,
``on_step_end`` after every optimizer step, ``on_epoch_end`` once the epoch's
logs (training and validation) are known, and ``on_checkpoint`` once every
callback's ``on_epoch_end`` has run (every state of the run is then final for
the epoch: :class:`ModelCheckpoint` writes there, whatever its place in the
list); ``on_train_end`` when training finishes (all epochs, or a callback set
``run.stop_training``). At each point the callbacks run in the order given to
``fit``, after the schedule passed as ``fit(schedule=...)`` (so a checkpoint
saved at the end of an epoch holds the learning rate of the next one).

A callback with state to keep across an interruption defines
``state_dict()`` and ``load_state_dict(state)`` (and, to be checked before
anything is restored, ``check_state_dict(state)``): :class:`ModelCheckpoint`
saves the states of the run's stateful callbacks, and ``fit(...,
resume=path)`` restores them after ``on_train_begin``, so that a resumed run
makes the decisions an uninterrupted one makes. EarlyStopping,
ModelCheckpoint, BestCheckpoint and LRSchedule have state.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from .. import backends
from .._validate import integer

__all__ = ["Callback", "Run", "EarlyStopping", "ModelCheckpoint", "BestCheckpoint", "LRSchedule", "stateful",
           "run_state"]


@dataclass
class Run:
    """What a callback can see and change during :func:`gdbp.train.fit`.

    Attributes
    ----------
    model, optimizer, cost : the objects given to fit
    schedule : the learning-rate schedule, or None
    history : History
        The epochs logged so far.
    epochs : int
        The index one past the last epoch to train.
    initial_epoch : int
    seed : int
        The shuffling seed.
    steps_per_epoch : int
    step : int
        Optimizer steps taken in this call of fit.
    stop_training : bool
        Set it to end training after the current epoch.
    callbacks : list
        Every callback of the run, in the order they run.
    distributed : gdbp.distributed.Communicator or None
        The communicator of a data-parallel run (``fit(distributed=...)``):
        ``run.distributed.rank`` tells a callback which rank it runs on
        (checkpoints are written by rank 0 only). The logs callbacks see are
        reduced over the ranks, the same on every rank.
    """

    model: Any
    optimizer: Any
    cost: Any
    history: Any
    epochs: int
    initial_epoch: int
    seed: int
    steps_per_epoch: int
    schedule: Any = None
    step: int = 0
    stop_training: bool = False
    extra: dict = field(default_factory=dict)
    callbacks: list = field(default_factory=list)
    distributed: Any = None

    @property
    def writes_files(self) -> bool:
        """Whether this process writes the run's files: always alone, rank 0 only in a data-parallel run."""
        return self.distributed is None or self.distributed.rank == 0


class Callback:
    """Base class: override the hooks you need (each does nothing here)."""

    def on_train_begin(self, run: Run) -> None:
        pass

    def on_epoch_begin(self, run: Run, epoch: int) -> None:
        pass

    def on_step_end(self, run: Run, step: int) -> None:
        """After each optimizer step (``step`` counts from 0 in the epoch). No value is on the host here."""

    def on_epoch_end(self, run: Run, epoch: int, logs: dict) -> None:
        pass

    def on_checkpoint(self, run: Run, epoch: int, logs: dict) -> None:
        """After every callback's ``on_epoch_end``: the run's state is final for the epoch (write files here)."""

    def on_train_end(self, run: Run) -> None:
        pass


def stateful(callbacks) -> dict:
    """The callbacks that have state to save, by key: ``"<class name>:<n>"``, n counting that class from 0.

    A callback has state when it defines ``state_dict`` and ``load_state_dict``
    and its ``state_dict()`` is not None (a ModelCheckpoint without a monitor,
    an LRSchedule of a schedule without ``state_dict``, keep nothing). Keys
    depend on the classes and their order only, so the same callbacks built
    afresh for a resumed run get the same keys.
    """
    counts: dict = {}
    out = {}
    for cb in callbacks:
        if not (callable(getattr(cb, "state_dict", None)) and callable(getattr(cb, "load_state_dict", None))):
            continue
        if cb.state_dict() is None:
            continue
        name = type(cb).__name__
        out[f"{name}:{counts.get(name, 0)}"] = cb
        counts[name] = counts.get(name, 0) + 1
    return out


def run_state(run: Run) -> dict:
    """What a checkpoint keeps of a run beyond the model and optimizer: whether it stops, and callback states."""
    return {"stop_training": bool(run.stop_training),
            "callbacks": {key: cb.state_dict() for key, cb in stateful(run.callbacks).items()}}


def _count(state: dict, key: str, who: str, optional: bool = False):
    """state[key] as an int >= 0 (None allowed where optional), or a ValueError naming it."""
    value = state[key]
    if value is None and optional:
        return None
    try:
        return integer(f"state {key!r}", value, who)
    except TypeError as exc:  # a malformed saved state is a bad value, whatever its type
        raise ValueError(str(exc)) from None


def _real(value, key: str, who: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{who}: state {key!r} must be a number, got {value!r}")
    return float(value)


def _keys(state, expected: tuple, who: str) -> None:
    if not isinstance(state, dict) or set(state) != set(expected):
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{who}: a state holds {list(expected)}, got {got}; pass what state_dict() returned")


def monitored(logs: dict, monitor: str, who: str) -> float:
    """The monitored value from an epoch's logs, or a clear error listing what exists."""
    try:
        return logs[monitor]
    except KeyError:
        hint = " (validation values need fit(..., val_data=(x, y)))" if monitor.startswith("val_") else ""
        raise KeyError(f"{who}: monitor={monitor!r} is not logged; the logs hold {sorted(logs)}{hint}") from None


class _Best:
    """The best value of a monitored quantity so far ('min' or 'max', with a margin)."""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        if mode == "auto":
            mode = "max" if monitor.endswith("accuracy") or monitor.endswith("acc") else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
        self.monitor, self.mode, self.min_delta = monitor, mode, float(min_delta)
        self.value = math.inf if mode == "min" else -math.inf

    def improves(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.value - self.min_delta
        return value > self.value + self.min_delta  # NaN never improves


class EarlyStopping(Callback):
    """Stop when a monitored value has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : str
        A name of the epoch logs: ``"val_cost"`` (default), ``"cost"``,
        ``"val_accuracy"``...
    patience : int
        Epochs without improvement tolerated before stopping.
    min_delta : float
        The smallest change that counts as an improvement.
    mode : {"auto", "min", "max"}
        ``"auto"``: maximise names ending in "accuracy", minimise the rest.
    restore_best : bool
        At the end of training (stopped early or not), put back the weights
        of the best epoch. The snapshot is a copy on the model's device.

    Attributes
    ----------
    best_epoch : int or None
    wait : int
        Epochs since the last improvement.
    stopped_epoch : int or None
        The epoch after which training stopped, None if it ran to the end.

    Its state (best value and epoch, wait, stopped epoch, the best weights)
    is saved by :class:`ModelCheckpoint` and restored by ``fit(..., resume=)``.
    """

    def __init__(self, monitor: str = "val_cost", patience: int = 5, min_delta: float = 0.0, mode: str = "auto",
                 restore_best: bool = True):
        patience = integer("patience", patience, "EarlyStopping")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.restore_best = restore_best
        self.on_train_begin(None)

    def on_train_begin(self, run: Run) -> None:
        self._best = _Best(self.monitor, self.mode, self.min_delta)
        self.wait = 0
        self.best_epoch = None
        self.stopped_epoch = None
        self._weights = None

    @property
    def best(self) -> float:
        return self._best.value

    def on_epoch_end(self, run: Run, epoch: int, logs: dict) -> None:
        value = monitored(logs, self.monitor, "EarlyStopping")
        if self._best.improves(value):
            self._best.value = float(value)
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best:
                self._weights = run.model.state_dict(copy=True)
        else:
            self.wait += 1
            if self.wait > self.patience:
                self.stopped_epoch = epoch
                run.stop_training = True

    def on_train_end(self, run: Run) -> None:
        if self.restore_best and self._weights is not None:
            run.model.load_state_dict(self._weights)

    _STATE = ("best", "best_epoch", "wait", "stopped_epoch", "weights")

    def state_dict(self) -> dict:
        """The best value and epoch, the epochs waited, the stopping epoch and the best weights (or None)."""
        return {"best": self._best.value, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped_epoch": self.stopped_epoch, "weights": self._weights}

    def check_state_dict(self, state: dict) -> dict:
        """The state, checked as :meth:`load_state_dict` checks it; nothing changes.

        Raises
        ------
        ValueError
            A name is missing or a value has the wrong type; the weights are
            missing although this EarlyStopping restores them, or present
            although it does not.
        """
        who = "EarlyStopping"
        _keys(state, self._STATE, who)
        checked = {"best": _real(state["best"], "best", who), "best_epoch": _count(state, "best_epoch", who, True),
                   "wait": _count(state, "wait", who), "stopped_epoch": _count(state, "stopped_epoch", who, True)}
        weights = state["weights"]
        if weights is not None and not (
                isinstance(weights, dict) and all(isinstance(k, str) and backends.is_array(v)
                                                  for k, v in weights.items())):
            raise ValueError(f"{who}: state 'weights' must be None or a state dict of arrays")
        if (weights is not None) != (self.restore_best and checked["best_epoch"] is not None):
            raise ValueError(
                f"{who}: the state {'holds' if weights is not None else 'lacks'} the best weights, but this "
                f"EarlyStopping has restore_best={self.restore_best}; build it as the interrupted run did"
            )
        checked["weights"] = weights
        return checked

    def load_state_dict(self, state: dict) -> None:
        """Continue from a state taken by :meth:`state_dict` (checked first; nothing changes if it does not fit)."""
        checked = self.check_state_dict(state)
        self._best.value = checked["best"]
        self.best_epoch, self.wait = checked["best_epoch"], checked["wait"]
        self.stopped_epoch, self._weights = checked["stopped_epoch"], checked["weights"]


class ModelCheckpoint(Callback):
    """Save a checkpoint (:func:`gdbp.save`) at the end of epochs.

    Parameters
    ----------
    path : str or os.PathLike
        The file; ``{epoch}`` in it is replaced by the number of epochs
        completed (e.g. ``"runs/ckpt-{epoch}.safetensors"``).
    monitor : str, optional
        Save only when this logged value improves (the best model so far);
        None saves after every epoch (the latest state, to resume from).
    mode : {"auto", "min", "max"}
    min_delta : float
    save_optimizer : bool
        Include the optimizer (and schedule) state, needed to resume training.

    The checkpoint records the epochs completed, the shuffling seed and (with
    ``save_optimizer``) the state of every stateful callback of the run, so
    ``fit(..., resume=path)`` continues exactly where it stopped. The file is
    written in ``on_checkpoint``, once every callback's ``on_epoch_end`` has
    run, so its place among the callbacks does not matter. In a data-parallel
    run (``fit(distributed=comm)``) rank 0 writes it, and the other ranks
    take the same decisions (their ``saved`` stays empty).
    """

    def __init__(self, path, monitor: str | None = None, mode: str = "auto", min_delta: float = 0.0,
                 save_optimizer: bool = True):
        self.path, self.monitor, self.mode, self.min_delta = path, monitor, mode, min_delta
        self.save_optimizer = save_optimizer
        self.saved: list = []
        self.on_train_begin(None)

    def on_train_begin(self, run: Run) -> None:
        self._best = None if self.monitor is None else _Best(self.monitor, self.mode, self.min_delta)
        self._due = None

    def on_epoch_end(self, run: Run, epoch: int, logs: dict) -> None:
        # Decide here, write in on_checkpoint: by then every callback has taken its decision for the epoch.
        self._due = None
        if self._best is not None:
            value = monitored(logs, self.monitor, type(self).__name__)
            if not self._best.improves(value):
                return
            self._best.value = float(value)
        self._due = str(self.path).replace("{epoch}", str(epoch + 1))

    def on_checkpoint(self, run: Run, epoch: int, logs: dict) -> None:
        from .checkpoint import save

        path, self._due = self._due, None
        if path is None or not run.writes_files:  # in a data-parallel run, rank 0 writes for all
            return
        save(
            path,
            run.model,
            run.optimizer if self.save_optimizer else None,
            extra={"logs": dict(logs)},
            epoch=epoch + 1,
            schedule=run.schedule if self.save_optimizer else None,
            shuffle_seed=run.seed,
            run_state=run_state(run) if self.save_optimizer else None,
        )
        self.saved.append(path)

    def state_dict(self) -> dict | None:
        """The best monitored value so far; None without a monitor (nothing to keep)."""
        return None if self._best is None else {"best": self._best.value}

    def check_state_dict(self, state: dict) -> dict:
        """The state, checked as :meth:`load_state_dict` checks it; nothing changes."""
        who = type(self).__name__
        if self._best is None:
            raise ValueError(f"{who}: without a monitor there is no state to load")
        _keys(state, ("best",), who)
        return {"best": _real(state["best"], "best", who)}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a state taken by :meth:`state_dict`."""
        self._best.value = self.check_state_dict(state)["best"]


class BestCheckpoint(ModelCheckpoint):
    """Save the best model so far by a monitored value (``ModelCheckpoint`` with a monitor).

    Parameters
    ----------
    path : str or os.PathLike
    monitor : str
        Default ``"val_cost"``.
    mode : {"auto", "min", "max"}
    min_delta : float
    save_optimizer : bool
    """

    def __init__(self, path, monitor: str = "val_cost", mode: str = "auto", min_delta: float = 0.0,
                 save_optimizer: bool = True):
        super().__init__(path, monitor, mode, min_delta, save_optimizer)

    @property
    def best(self) -> float:
        return self._best.value


class LRSchedule(Callback):
    """Step a learning-rate schedule of :mod:`gdbp.descent` during training.

    Parameters
    ----------
    schedule : schedule
        Its ``step(metric=None)`` sets ``optimizer.lr``.
    per : {"epoch", "step"}
        Step it after every epoch (default) or after every optimizer step.
    monitor : str, optional
        The logged value passed to ``schedule.step``; for ReduceLROnPlateau
        it defaults to ``"val_cost"`` when there is validation data, else
        ``"cost"``.
    """

    def __init__(self, schedule, per: str = "epoch", monitor: str | None = None):
        if per not in ("epoch", "step"):
            raise ValueError(f"LRSchedule: per must be 'epoch' or 'step', got {per!r}")
        if per == "step" and (monitor is not None or _wants_metric(schedule)):
            raise ValueError("LRSchedule: a schedule that monitors a value steps per epoch (per='epoch')")
        self.schedule, self.per, self.monitor = schedule, per, monitor

    def on_step_end(self, run: Run, step: int) -> None:
        if self.per == "step":
            self.schedule.step()

    def state_dict(self) -> dict | None:
        """The schedule's ``state_dict()`` (None for a schedule that has none)."""
        if not callable(getattr(self.schedule, "state_dict", None)):
            return None
        return {"schedule": self.schedule.state_dict()}

    def check_state_dict(self, state: dict) -> dict:
        """The state, tried on a shallow copy of the schedule; nothing changes."""
        _keys(state, ("schedule",), "LRSchedule")
        copy.copy(self.schedule).load_state_dict(state["schedule"])
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore the schedule's progress (the optimizer's lr is restored by the optimizer's state)."""
        self.check_state_dict(state)
        self.schedule.load_state_dict(state["schedule"])

    def on_epoch_end(self, run: Run, epoch: int, logs: dict) -> None:
        if self.per != "epoch":
            return
        monitor = self.monitor
        if monitor is None and _wants_metric(self.schedule):
            monitor = "val_cost" if "val_cost" in logs else "cost"
        if monitor is None:
            self.schedule.step()
        else:
            self.schedule.step(monitored(logs, monitor, "LRSchedule"))


def _wants_metric(schedule) -> bool:
    from ..descent import ReduceLROnPlateau

    return isinstance(schedule, ReduceLROnPlateau)
