"""Small helpers shared by the layers."""

from __future__ import annotations

from .. import backends
from .._validate import integer
from ..backprop import Tensor


def size(who: str, name: str, value) -> int:
    """A layer's size argument as an int >= 0 (any integer: ``operator.index``), or an error naming it."""
    return integer(name, value, who)


def as_tensor(x):
    """x as a Tensor (a raw array is wrapped, not copied).

    Composed layers write ``x - mu``; with x a raw array of a strict library
    (array-api-strict) the array's own operator would refuse the Tensor on
    its right instead of deferring to it, so inputs are wrapped first.
    """
    return x if isinstance(x, Tensor) else Tensor(x)


def refuse_out_of_range(name: str, what: str, raw, high: int, detail: str, backend=None) -> None:
    """An IndexError naming the first integer of ``raw`` outside [0, high), on CPU backends.

    On a GPU backend nothing is checked: reading the values would make the
    host wait for the device at every call, which a training step must not
    do. :func:`gdbp.train.fit` checks its labels once, before the first step.
    """
    backend = backends.backend_of(raw) if backend is None else backend
    if backend is None or backend.is_gpu:
        return
    bad = backends.out_of_range(raw, 0, high)
    if bad is not None:
        position, value = bad
        raise IndexError(f"{name}: {what} {value} at position {position} is outside [0, {high}) ({detail})")
