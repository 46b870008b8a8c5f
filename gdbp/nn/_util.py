"""Small helpers shared by the layers."""

from __future__ import annotations

from ..backprop import Tensor


def as_tensor(x):
    """x as a Tensor (a raw array is wrapped, not copied).

    Composed layers write ``x - mu``; with x a raw array of a strict library
    (array-api-strict) the array's own operator would refuse the Tensor on
    its right instead of deferring to it, so inputs are wrapped first.
    """
    return x if isinstance(x, Tensor) else Tensor(x)
