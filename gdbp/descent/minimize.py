"""minimize: gradient descent on a plain cost function of arrays.

The cost function is written against the array API standard and
differentiated by :func:`gdbp.value_and_grad`; the steps are taken by the
same optimizers that train networks. The loop stops at a point where the
gradient (nearly) vanishes, or after ``max_steps``; a cost that becomes NaN
or infinite stops it with :class:`DivergenceError`. With ``record=True`` the
loop keeps its path (a :class:`DescentPath`): every point visited, its cost
and gradient norm, and why it stopped; a diverging run attaches its path to
the DivergenceError, so that the steps that led there can still be drawn.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import backends
from ..backprop import Tensor, tree, value_and_grad
from .adagrad import Adagrad
from .adam import Adam
from .errors import DivergenceError
from .rmsprop import RMSprop
from .sgd import SGD
from .transforms import global_norm
from .validate import nonnegative

__all__ = ["minimize", "MinimizeResult", "DescentPath", "METHODS"]

#: method name -> (optimizer class, its default options)
METHODS = {
    "gd": (SGD, {}),
    "momentum": (SGD, {"momentum": 0.9}),
    "nesterov": (SGD, {"momentum": 0.9, "nesterov": True}),
    "adam": (Adam, {}),
    "rmsprop": (RMSprop, {}),
    "adagrad": (Adagrad, {}),
}

LINE_SEARCH_OPTIONS = {"sufficient_decrease": 1e-4, "shrink": 0.5}


@dataclass
class MinimizeResult:
    """What :func:`minimize` found.

    Attributes
    ----------
    w : array or list/tuple/dict of arrays
        The last point, shaped like w0, in w0's library, device and dtype.
    cost : float
        The cost at w.
    history : list of float
        The cost at each point visited: ``history[k]`` at the point after k
        steps, from ``history[0] = cost(w0)`` to ``history[-1] = cost``.
    steps : int
        How many steps were taken.
    grad_norm : float
        The gradient's (global, Euclidean) norm at w.
    converged : bool
        Whether the gradient norm fell to ``tol`` or below.
    reason : str
        Why the loop stopped, in a sentence.
    path : DescentPath or None
        Every point visited, with ``record=True``; None otherwise.
    """

    w: Any = field(repr=False)
    cost: float
    history: list = field(repr=False)
    steps: int
    grad_norm: float
    converged: bool
    reason: str
    path: "DescentPath | None" = field(default=None, repr=False)


@dataclass
class DescentPath:
    """The path of one :func:`minimize` run, kept with ``record=True``.

    Attributes
    ----------
    w : list
        The points visited, each shaped like w0 and in its library:
        ``w[k]`` after k steps, from ``w[0] = w0``. A diverged run ends
        with the point where the cost (or gradient) stopped being finite.
    cost : list of float
        ``cost[k]`` is the cost at ``w[k]`` (inf or nan last when the run diverged).
    grad_norm : list of float
        ``grad_norm[k]`` is the gradient's global Euclidean norm at ``w[k]``.
    stop : {"tol", "max_steps", "line_search", "diverged"}
        Why it stopped: the gradient norm fell to tol, the step budget ran
        out, the line search found no step that decreases the cost, or the
        cost or gradient became NaN or infinite (:class:`DivergenceError`).
    reason : str
        The same, in a sentence (for "diverged", the DivergenceError's message).
    lr : float
        The learning rate.
    method : str
        The update rule (``"gd"``, ``"adam"``...).
    tol : float
        The gradient-norm tolerance the run used.
    """

    w: list = field(repr=False)
    cost: list = field(repr=False)
    grad_norm: list = field(repr=False)
    stop: str
    reason: str
    lr: float
    method: str
    tol: float

    @property
    def steps(self) -> int:
        """How many steps were taken (``len(w) - 1``)."""
        return len(self.w) - 1

    @property
    def converged(self) -> bool:
        """Whether the run stopped because the gradient norm fell to tol."""
        return self.stop == "tol"

    @property
    def diverged(self) -> bool:
        """Whether the run stopped because the cost or gradient became NaN or infinite."""
        return self.stop == "diverged"


def minimize(cost: Callable, w0, method: str = "gd", lr: float = 0.1, tol: float = 1e-6,
             max_steps: int = 1000, line_search: str | None = None, record: bool = False,
             **method_options) -> MinimizeResult:
    r"""Minimize ``cost(w)`` by gradient descent from ``w0``.

    Each step computes the cost and its gradient g at w, then moves by the
    chosen method's rule; plain gradient descent (``method="gd"``) is
    ``w <- w - lr * g``. The loop stops when ``||g|| <= tol`` (a minimum, or
    another point where the gradient vanishes, is reached) or after
    ``max_steps`` steps.

    Parameters
    ----------
    cost : callable
        ``cost(w) -> scalar array``, written against the array API standard
        (``xp = array_api_compat.array_namespace(w)``) or with gdbp Tensors.
    w0 : array, or list/tuple/dict of arrays
        The starting point (real floating arrays of one backend). It is never
        modified: the optimization works on a copy.
    method : {"gd", "momentum", "nesterov", "adam", "rmsprop", "adagrad"}
        The update rule: :class:`SGD` (plain, with momentum 0.9, or Nesterov
        momentum 0.9), :class:`Adam`, :class:`RMSprop` or :class:`Adagrad`.
    lr : float
        The learning rate (default 0.1); with a line search, the first step
        size tried at each step.
    tol : float
        Stop when the gradient norm falls to tol or below (default 1e-6).
    max_steps : int
        The most steps taken (default 1000).
    line_search : {None, "backtracking"}
        ``"backtracking"`` (Armijo; only with ``method="gd"``): at each step
        try ``t = lr`` and multiply t by ``shrink`` until
        ``cost(w - t g) <= cost(w) - sufficient_decrease * t * ||g||^2``,
        then take ``w <- w - t g``. The step size so adapts to the cost's
        curvature where it is: a fixed lr that suits a flat region diverges
        in a steep one, and one that suits a steep region crawls in a flat one.
    **method_options
        Passed to the method's optimizer (e.g. ``momentum=0.5``, ``betas=(0.9, 0.99)``);
        with ``line_search="backtracking"``, ``sufficient_decrease`` (default
        1e-4) and ``shrink`` (default 0.5) instead.
    record : bool
        Keep the path (default False): ``result.path`` is a
        :class:`DescentPath` holding a copy of every point visited, with its
        cost and gradient norm, and why the run stopped. It costs one copy
        of the weights per step.

    Returns
    -------
    MinimizeResult
        ``w``, ``cost``, ``history``, ``steps``, ``grad_norm``, ``converged``,
        ``reason``, and ``path`` (with ``record=True``).

    Raises
    ------
    DivergenceError
        The cost or its gradient became NaN or infinite: the message names
        the step and suggests a smaller learning rate. With ``record=True``
        its ``path`` attribute holds the :class:`DescentPath` up to and
        including the point where it happened (``stop == "diverged"``).
    ValueError
        A hyperparameter is invalid (e.g. a negative or NaN learning rate),
        the method is unknown, or the cost is not finite at w0.
    TypeError
        w0 holds something other than real floating arrays, or an option is
        not one the method takes.

    Notes
    -----
    The cost and the gradient norm are read back to the host once per step
    (to record the history and to decide whether to stop); the steps
    themselves run on w0's device.

    Examples
    --------
    >>> A = np.array([[3.0, 1.0], [1.0, 2.0]]); b = np.array([1.0, 1.0])
    >>> res = gdbp.descent.minimize(lambda w: 0.5 * w @ A @ w - b @ w, np.zeros(2), lr=0.3)
    >>> res.converged, res.w            # close to np.linalg.solve(A, b)
    >>> res = gdbp.descent.minimize(lambda w: (w - 1.0) ** 2, np.asarray(-2.0), lr=0.3, record=True)
    >>> res.path.stop, res.path.steps, res.path.w[:3]
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {sorted(METHODS)}")
    if line_search not in (None, "backtracking"):
        raise ValueError(f"unknown line_search {line_search!r}: use None or 'backtracking'")
    tol = nonnegative("tol", tol)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0:
        raise ValueError(f"invalid max_steps={max_steps!r}: it must be an integer >= 0")
    if not isinstance(record, bool):
        raise TypeError(f"invalid record={record!r}: pass True to keep the path, False (the default) not to")
    lr = nonnegative("lr", lr, what="learning rate")

    leaves, rebuild = tree.flatten(w0)
    xp = _check_start(leaves)
    params = [Tensor(xp.asarray(w, copy=True), requires_grad=True) for w in leaves]  # w0 stays untouched
    evaluate = value_and_grad(cost)

    if line_search == "backtracking":
        if method != "gd":
            raise ValueError(
                f"line_search='backtracking' needs method='gd' (it searches along -grad), got method={method!r}"
            )
        search = _line_search_options(method_options)
        take_step = _backtracking(cost, rebuild, params, lr, **search)
    else:
        optimizer = _make_optimizer(method, params, lr, method_options)
        take_step = _optimizer_step(optimizer)

    path = DescentPath([], [], [], "max_steps", "", lr, method, tol) if record else None
    history = []
    for k in range(max_steps + 1):
        value, g = evaluate(rebuild([p.data for p in params]))
        grads = tree.flatten(g)[0]
        c = _host_float(value)
        gnorm = _host_float(global_norm(grads))
        if path is not None:
            # A copy: the optimizers step the weights in place.
            path.w.append(rebuild([xp.asarray(p.data, copy=True) for p in params]))
            path.cost.append(c)
            path.grad_norm.append(gnorm)
        try:
            _check_finite(c, gnorm, k, lr, history)
        except DivergenceError as err:
            if path is not None:
                path.stop, path.reason = "diverged", str(err)
                err.path = path
            raise
        history.append(c)
        if gnorm <= tol:
            reason = (f"the gradient norm {gnorm:.3g} fell to tol={tol:g} or below after {k} steps: "
                      "a point where the gradient vanishes (a minimum) was reached")
            return _result(params, rebuild, history, k, gnorm, True, reason, path, "tol")
        if k == max_steps:
            break
        failure = take_step(grads, c, gnorm)
        if failure:
            return _result(params, rebuild, history, k, gnorm, False, failure, path, "line_search")
    reason = f"stopped after max_steps={max_steps} steps with the gradient norm {gnorm:.3g} still above tol={tol:g}"
    if len(history) > 1 and history[-1] > history[0]:
        reason += (f"; the cost grew from {history[0]:.4g} to {history[-1]:.4g}: the learning rate "
                   f"lr={lr:g} may be too large")
    elif line_search is None:
        reason += "; raise max_steps or lr, or try line_search='backtracking' or another method"
    else:
        reason += "; raise max_steps"
    return _result(params, rebuild, history, max_steps, gnorm, False, reason, path, "max_steps")


# --- the two ways of stepping -------------------------------------------------------------


def _optimizer_step(optimizer):
    def take_step(grads, c, gnorm):
        for p, g in zip(optimizer.params, grads):
            p.grad = g
        optimizer.step()
        return None

    return take_step


def _backtracking(cost, rebuild, params, lr, sufficient_decrease, shrink):
    # Stop shrinking once the step is 1e-15 of lr: it no longer changes w measurably.
    min_t = lr * 1e-15

    def take_step(grads, c, gnorm):
        t = lr
        while t >= min_t and t > 0.0:
            trial = [p.data - t * g for p, g in zip(params, grads)]
            c_trial = _host_float(cost(rebuild(trial)))
            # Armijo's sufficient decrease (False for NaN: shrink again). The strict
            # c_trial < c matters only where the decrease asked for is below the cost's
            # rounding: there, a step that leaves the cost unchanged is no progress.
            if c_trial <= c - sufficient_decrease * t * gnorm * gnorm and c_trial < c:
                for p, w in zip(params, trial):
                    p.data = w
                return None
            t *= shrink
        return (f"the backtracking line search found no step size down to t={t / shrink:.3g} that decreases "
                f"the cost enough (gradient norm {gnorm:.3g}): the cost is flat to machine precision here "
                "(loosen tol), or the gradient does not match the cost")

    return take_step


def _make_optimizer(method, params, lr, options):
    cls, defaults = METHODS[method]
    accepted = set(inspect.signature(cls).parameters) - {"params", "lr"}
    unknown = set(options) - accepted
    if unknown:
        raise TypeError(
            f"minimize(method={method!r}) got unknown option(s) {sorted(unknown)}: {cls.__name__} takes "
            f"{sorted(accepted)}"
        )
    return cls(params, lr=lr, **{**defaults, **options})


def _line_search_options(options):
    unknown = set(options) - set(LINE_SEARCH_OPTIONS)
    if unknown:
        raise TypeError(
            f"minimize(line_search='backtracking') got unknown option(s) {sorted(unknown)}: it takes "
            f"{sorted(LINE_SEARCH_OPTIONS)}"
        )
    search = {**LINE_SEARCH_OPTIONS, **options}
    for name, value in search.items():
        x = nonnegative(name, value)
        if not 0.0 < x < 1.0:
            raise ValueError(f"invalid {name}={x!r}: it must lie in (0, 1)")
        search[name] = x
    return search


# --- checks and results -------------------------------------------------------------------


def _check_start(leaves):
    for i, w in enumerate(leaves):
        if isinstance(w, Tensor) or not backends.is_array(w):
            raise TypeError(
                f"minimize: w0 must be an array or a list/tuple/dict of arrays, found a {type(w).__name__} "
                f"(leaf {i}); make it an array, e.g. np.asarray(w0, dtype=np.float64)"
            )
    xp = backends.namespace(*leaves)  # raises if two backends meet
    for i, w in enumerate(leaves):
        if not xp.isdtype(w.dtype, "real floating"):
            raise TypeError(f"minimize: w0 must hold real floating arrays, leaf {i} has dtype {w.dtype}")
    return xp


def _host_float(x) -> float:
    return float(backends.to_numpy(x))


def _check_finite(c, gnorm, k, lr, history):
    if math.isfinite(c) and math.isfinite(gnorm):
        return
    if k == 0:
        what = f"cost(w0) = {c}" if not math.isfinite(c) else f"the gradient norm at w0 is {gnorm}"
        raise ValueError(f"minimize: {what}: start from a point where the cost and its gradient are finite")
    if math.isfinite(c):
        raise DivergenceError(gnorm, step=k, lr=lr, quantity="gradient norm")
    raise DivergenceError(c, step=k, lr=lr)


def _result(params, rebuild, history, steps, gnorm, converged, reason, path=None, stop=None):
    if path is not None:
        path.stop, path.reason = stop, reason
    return MinimizeResult(
        w=rebuild([p.data for p in params]),
        cost=history[-1],
        history=history,
        steps=steps,
        grad_norm=gnorm,
        converged=converged,
        reason=reason,
        path=path,
    )
