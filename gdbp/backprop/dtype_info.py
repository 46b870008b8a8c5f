"""``finfo`` as the standard describes it: the limits of a floating dtype, as Python numbers.

NumPy's ``finfo(float32)`` gives its limits as NumPy float32 scalars; the
standard (and code that does ``eps * 10.0`` and expects a Python float back)
wants ``bits`` an int and ``eps``, ``max``, ``min``, ``smallest_normal``
Python floats. The values are the backend's own, converted exactly
(every float32 is a float64).
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["FInfo", "finfo"]


class FInfo(NamedTuple):
    """Machine limits of a real or complex floating dtype (for a complex one, of its real part)."""

    bits: int
    eps: float
    max: float
    min: float
    smallest_normal: float
    dtype: Any  # the real floating dtype these limits are of


def finfo(xp, type, /) -> FInfo:
    """The limits of ``type`` (a floating dtype or an array of one), from ``xp.finfo``, as Python numbers."""
    fi = xp.finfo(type)
    # torch's finfo names its dtype ("float32"); the standard's is the dtype object itself.
    dtype = getattr(xp, fi.dtype) if isinstance(fi.dtype, str) else fi.dtype
    return FInfo(int(fi.bits), float(fi.eps), float(fi.max), float(fi.min), float(fi.smallest_normal), dtype)
