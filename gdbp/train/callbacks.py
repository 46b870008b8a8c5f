"""Callbacks: code that :func:`gdbp.train.fit` runs at fixed points of training.

Order: ``on_train_begin``; then, for each epoch, ``on_epoch_begin``,
``on_step_end`` after every optimizer step, ``on_epoch_end`` once the epoch's
logs (training and validation) are known; ``on_train_end`` when training
finishes (all epochs, or a callback set ``run.stop_training``). At each point
the callbacks run in the order given to ``fit``, after the schedule passed as
``fit(schedule=...)`` (so a checkpoint saved at the end of an epoch holds the
learning rate of the next one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Callback", "Run", "EarlyStopping", "ModelCheckpoint", "BestCheckpoint", "LRSchedule"]


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

    def on_train_end(self, run: Run) -> None:
        pass


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
    stopped_epoch : int or None
        The epoch after which training stopped, None if it ran to the end.
    """

    def __init__(self, monitor: str = "val_cost", patience: int = 5, min_delta: float = 0.0, mode: str = "auto",
                 restore_best: bool = True):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0, got {patience!r}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.restore_best = restore_best
        self._best = _Best(monitor, mode, min_delta)

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
            self._best.value = value
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

    The checkpoint records the epochs completed and the shuffling seed, so
    ``fit(..., resume=path)`` continues exactly where it stopped.
    """

    def __init__(self, path, monitor: str | None = None, mode: str = "auto", min_delta: float = 0.0,
                 save_optimizer: bool = True):
        self.path, self.monitor, self.mode, self.min_delta = path, monitor, mode, min_delta
        self.save_optimizer = save_optimizer
        self.saved: list = []
        self.on_train_begin(None)

    def on_train_begin(self, run: Run) -> None:
        self._best = None if self.monitor is None else _Best(self.monitor, self.mode, self.min_delta)

    def on_epoch_end(self, run: Run, epoch: int, logs: dict) -> None:
        from .checkpoint import save

        if self._best is not None:
            value = monitored(logs, self.monitor, type(self).__name__)
            if not self._best.improves(value):
                return
            self._best.value = value
        path = str(self.path).replace("{epoch}", str(epoch + 1))
        save(
            path,
            run.model,
            run.optimizer if self.save_optimizer else None,
            extra={"logs": dict(logs)},
            epoch=epoch + 1,
            schedule=run.schedule if self.save_optimizer else None,
            shuffle_seed=run.seed,
        )
        self.saved.append(path)


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
