"""Learning-rate schedules: set ``optimizer.lr`` as training goes on.

Call ``schedule.step()`` once per epoch (or per step, as you choose) after
``optimizer.step()``; :class:`ReduceLROnPlateau` takes the monitored metric,
``schedule.step(val_cost)``. Each schedule matches its namesake in
``torch.optim.lr_scheduler`` (``LinearWarmup`` is ``LinearLR``).

The time-based schedules compute the learning rate in closed form from the
base learning rate (the optimizer's ``lr`` when the schedule is made) and
the step count, so a schedule restored from :meth:`Schedule.state_dict`
continues exactly where it stopped.
"""

from __future__ import annotations

import math

from .validate import nonnegative, number

__all__ = [
    "Schedule",
    "ConstantLR",
    "StepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "LinearWarmup",
    "ReduceLROnPlateau",
]


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"invalid {name}={value!r}: it must be a positive integer")
    return value


def _factor(name: str, value, low_open: bool = False) -> float:
    x = number(name, value)
    ok = (0.0 < x <= 1.0) if low_open else (0.0 <= x <= 1.0)
    if not ok:
        raise ValueError(f"invalid {name}={x!r}: it must lie in {'(0, 1]' if low_open else '[0, 1]'}")
    return x


class _Stateful:
    """state_dict / load_state_dict over a list of attribute names."""

    _saved: tuple = ()

    def state_dict(self) -> dict:
        """The schedule's settings and progress (Python numbers only)."""
        return {"schedule": type(self).__name__, **{k: getattr(self, k) for k in self._saved}}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned. The optimizer's lr is restored by its own state_dict."""
        name = type(self).__name__
        if state_dict.get("schedule", name) != name:
            raise ValueError(f"load_state_dict: the state was saved by {state_dict['schedule']}, this schedule is {name}")
        missing = set(self._saved) - set(state_dict)
        if missing:
            raise ValueError(f"load_state_dict: the state has no {sorted(missing)}; pass what state_dict() returned")
        for k in self._saved:
            setattr(self, k, state_dict[k])


class Schedule(_Stateful):
    """Base class of the time-based schedules: ``lr = lr_at(t)`` after t calls of :meth:`step`.

    Making a schedule sets ``optimizer.lr = lr_at(0)``.

    Parameters
    ----------
    optimizer : Optimizer
        Anything with an ``lr`` attribute.

    Attributes
    ----------
    base_lr : float
        The optimizer's lr when the schedule was made.
    last_step : int
        How many times :meth:`step` has run.
    """

    hyperparameter_names: tuple = ()

    def __init__(self, optimizer):
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"a schedule drives an optimizer's lr, got a {type(optimizer).__name__} without one")
        self.optimizer = optimizer
        self.base_lr = nonnegative("lr", optimizer.lr, what="learning rate")
        self.last_step = 0
        self._saved = ("base_lr", "last_step") + self.hyperparameter_names
        optimizer.lr = self.lr_at(0)

    def lr_at(self, t: int) -> float:
        """The learning rate after t steps of the schedule."""
        raise NotImplementedError

    def step(self, metric=None) -> None:
        """Advance one step and set ``optimizer.lr``. ``metric`` is ignored (time-based schedule)."""
        self.last_step += 1
        self.optimizer.lr = self.lr_at(self.last_step)

    @property
    def lr(self) -> float:
        """The learning rate the schedule set last."""
        return self.lr_at(self.last_step)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.hyperparameter_names)
        return f"{type(self).__name__}({args}, last_step={self.last_step})"


class ConstantLR(Schedule):
    """``lr = base_lr * factor`` for the first ``total_iters`` steps, then ``base_lr``.

    Parameters
    ----------
    optimizer : Optimizer
    factor : float
        In [0, 1] (default 1/3, as PyTorch's ConstantLR). ``factor=1`` keeps
        the learning rate constant throughout.
    total_iters : int
        How many steps the factor applies (default 5).
    """

    hyperparameter_names = ("factor", "total_iters")

    def __init__(self, optimizer, factor: float = 1.0 / 3, total_iters: int = 5):
        self.factor = _factor("factor", factor)
        if isinstance(total_iters, bool) or not isinstance(total_iters, int) or total_iters < 0:
            raise ValueError(f"invalid total_iters={total_iters!r}: it must be an integer >= 0")
        self.total_iters = total_iters
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        return self.base_lr * (self.factor if t < self.total_iters else 1.0)


class StepLR(Schedule):
    """``lr = base_lr * gamma ** floor(t / step_size)``: decay by gamma every step_size steps.

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        Steps between decays (> 0).
    gamma : float
        The decay factor (default 0.1).
    """

    hyperparameter_names = ("step_size", "gamma")

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = _positive_int("step_size", step_size)
        self.gamma = nonnegative("gamma", gamma)
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** (t // self.step_size)


class ExponentialLR(Schedule):
    """``lr = base_lr * gamma ** t``.

    Parameters
    ----------
    optimizer : Optimizer
    gamma : float
        The decay factor per step.
    """

    hyperparameter_names = ("gamma",)

    def __init__(self, optimizer, gamma: float):
        self.gamma = nonnegative("gamma", gamma)
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma**t


class CosineAnnealingLR(Schedule):
    r"""``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2`` (Loshchilov & Hutter, 2017).

    The learning rate falls from base_lr to eta_min over T_max steps along
    half a cosine (and climbs back after, as PyTorch's does).

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int
        Steps from base_lr down to eta_min (> 0).
    eta_min : float
        The lowest learning rate (default 0).
    """

    hyperparameter_names = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        self.T_max = _positive_int("T_max", T_max)
        self.eta_min = nonnegative("eta_min", eta_min)
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1.0 + math.cos(math.pi * t / self.T_max)) / 2.0


class LinearWarmup(Schedule):
    r"""Linear warm-up: ``lr = base_lr * (start + (end - start) * min(t, total_iters) / total_iters)``.

    The learning rate climbs linearly from ``start_factor * base_lr`` to
    ``end_factor * base_lr`` over ``total_iters`` steps, then stays (PyTorch's
    LinearLR). Small first steps keep the early, large gradients of a fresh
    network (and Adam's noisy first moments) from throwing the weights far.

    Parameters
    ----------
    optimizer : Optimizer
    start_factor : float
        In (0, 1] (default 1/3).
    end_factor : float
        In [0, 1] (default 1).
    total_iters : int
        Length of the warm-up (> 0, default 5).
    """

    hyperparameter_names = ("start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5):
        self.start_factor = _factor("start_factor", start_factor, low_open=True)
        self.end_factor = _factor("end_factor", end_factor)
        self.total_iters = _positive_int("total_iters", total_iters)
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        progress = min(t, self.total_iters) / self.total_iters
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class ReduceLROnPlateau(_Stateful):
    """Divide the learning rate when a metric stops improving, as PyTorch's ReduceLROnPlateau.

    At each ``step(metric)``: the metric improves on the best so far when
    (mode "min") ``metric < best * (1 - threshold)`` (threshold_mode "rel")
    or ``metric < best - threshold`` ("abs"); mode "max" mirrors it. After
    more than ``patience`` steps without improvement::

        lr <- max(lr * factor, min_lr)

    (a change smaller than eps is skipped), then ``cooldown`` steps pass
    before bad steps count again.

    Parameters
    ----------
    optimizer : Optimizer
    mode : {"min", "max"}
        Whether the metric should fall (a cost) or rise (an accuracy).
    factor : float
        In [0, 1) (default 0.1).
    patience : int
        Steps without improvement tolerated (default 10).
    threshold : float
        Smallest improvement that counts (default 1e-4).
    threshold_mode : {"rel", "abs"}
    cooldown : int
        Steps to wait after a reduction (default 0).
    min_lr : float
        The learning rate never falls below it (default 0).
    eps : float
        Reductions smaller than eps are skipped (default 1e-8).

    Notes
    -----
    ``step`` reads the metric as a Python float: one host read per call, by
    design (it decides whether to change the learning rate).
    """

    _saved = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps",
              "best", "num_bad_steps", "cooldown_counter", "last_step")

    def __init__(self, optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0.0, eps: float = 1e-8):
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"a schedule drives an optimizer's lr, got a {type(optimizer).__name__} without one")
        if mode not in ("min", "max"):
            raise ValueError(f"invalid mode={mode!r}: use 'min' (the metric should fall) or 'max' (rise)")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"invalid threshold_mode={threshold_mode!r}: use 'rel' or 'abs'")
        factor = number("factor", factor)
        if not 0.0 <= factor < 1.0:
            raise ValueError(f"invalid factor={factor!r}: it must lie in [0, 1) (the learning rate is multiplied by it)")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"invalid {name}={value!r}: it must be an integer >= 0")
        self.optimizer = optimizer
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.threshold = nonnegative("threshold", threshold)
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.min_lr = nonnegative("min_lr", min_lr)
        self.eps = nonnegative("eps", eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_steps = 0
        self.cooldown_counter = 0
        self.last_step = 0

    def is_better(self, metric: float, best: float) -> bool:
        """Whether metric improves on best by more than the threshold."""
        if self.mode == "min":
            bar = best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold
            return metric < bar
        bar = best * (1.0 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold
        return metric > bar

    def step(self, metric=None) -> None:
        """Record one value of the monitored metric; reduce the learning rate after a plateau.

        Raises
        ------
        TypeError
            No metric was given.
        """
        if metric is None:
            raise TypeError("ReduceLROnPlateau.step(metric) needs the monitored value, e.g. step(val_cost)")
        current = float(metric)  # a host read, once per call, by design
        self.last_step += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_steps = 0
        else:
            self.num_bad_steps += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_steps = 0  # bad steps during the cooldown do not count
        if self.num_bad_steps > self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter = self.cooldown
            self.num_bad_steps = 0

    @property
    def lr(self) -> float:
        """The optimizer's current learning rate."""
        return self.optimizer.lr

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(mode={self.mode!r}, factor={self.factor!r}, patience={self.patience}, "
                f"best={self.best!r}, num_bad_steps={self.num_bad_steps})")
