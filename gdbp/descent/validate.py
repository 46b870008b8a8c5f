"""Checking what an optimizer is given: hyperparameters, parameter lists, gradients."""

from __future__ import annotations

import math

from .. import backends
from ..backprop import Tensor, unwrap

__all__ = ["number", "nonnegative", "fraction", "param_list", "grad_array", "set_grad_array", "check_grad"]


def number(name: str, value) -> float:
    """value as a Python float, or a TypeError naming it."""
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        return float(unwrap(value))
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}") from None


def nonnegative(name: str, value, what: str | None = None) -> float:
    """value as a Python float, or a ValueError naming it when it is negative, NaN or infinite."""
    x = number(name, value)
    if not (math.isfinite(x) and x >= 0.0):
        label = f"{what} {name}" if what else name
        raise ValueError(f"invalid {label}={x!r}: it must be a finite number >= 0")
    return x


def fraction(name: str, value) -> float:
    """value as a Python float in [0, 1), or a ValueError naming it."""
    x = number(name, value)
    if not 0.0 <= x < 1.0:  # also False for NaN
        raise ValueError(f"invalid {name}={x!r}: it must lie in [0, 1)")
    return x


def param_list(params, owner: str) -> list:
    """The parameters as a list of distinct, real floating leaf Tensors of one backend, or a clear error."""
    if isinstance(params, Tensor) or backends.is_array(params):
        raise TypeError(
            f"{owner} takes an iterable of parameters, got a single {type(params).__name__}; "
            "wrap it in a list: [w]"
        )
    if isinstance(params, dict):
        raise TypeError(f"{owner} takes an iterable of parameters, got a dict; pass model.parameters() or list(d.values())")
    params = list(params)
    if not params:
        raise ValueError(
            f"{owner} got an empty parameter list: pass model.parameters() or a list of Tensors "
            "made with requires_grad=True (a generator can be used only once)"
        )
    seen = set()
    first = None
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(
                f"{owner}: parameter {i} is a {type(p).__name__}, not a Tensor; wrap arrays with "
                "gdbp.nn.Parameter(x) or gdbp.tensor(x, requires_grad=True)"
            )
        if not p.is_leaf:
            raise ValueError(
                f"{owner}: parameter {i} is computed from other Tensors, not a leaf; optimize the leaves it comes from"
            )
        if not backends.isdtype(p.backend.xp, p.dtype, "real floating"):
            raise TypeError(f"{owner}: parameter {i} has dtype {p.dtype}; only real floating parameters can be trained")
        if id(p) in seen:
            raise ValueError(f"{owner}: parameter {i} appears twice in the parameter list; pass each parameter once")
        seen.add(id(p))
        if first is None:
            first = p
        elif p.backend is not first.backend:
            raise backends.BackendMismatchError(
                f"{owner}: parameter 0 lives on {first.backend.spec} and parameter {i} on {p.backend.spec}; "
                "one optimizer updates parameters of one backend: move them with model.to(backend)"
            )
    return params


def grad_array(p: Tensor):
    """The raw gradient array of p, or None (``p.grad`` may be an array or a Tensor)."""
    return unwrap(p.grad)


def set_grad_array(p: Tensor, g) -> None:
    """Give p a new gradient array, keeping the kind of ``p.grad`` (array or Tensor)."""
    p.grad = Tensor(g) if isinstance(p.grad, Tensor) else g


def check_grad(i: int, p: Tensor, g) -> None:
    """A gradient must live where its parameter does, in its shape and dtype.

    A gradient of another dtype would be cast (or promote) silently by the
    in-place update, one of another backend would fail obscurely.
    """
    backends.check_fits(g, p.backend, p.shape, p.dtype, f"the gradient of parameter {i}", "the parameter")
