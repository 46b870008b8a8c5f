"""Reductions and scans: sum, prod, max, min, cumulative sums; mean, var, std composed from them."""

from __future__ import annotations

import math

from ... import backends
from ..engine import Primitive


def _axes(axis, ndim):
    """The reduced axes as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim if ndim else a for a in axis))


def _keepdims_shape(shape, axis):
    axes = _axes(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _expand_back(xp, g, x, axis, keepdims):
    """g (the gradient of a reduction) reshaped so that it broadcasts against x."""
    if not keepdims:
        g = xp.reshape(g, _keepdims_shape(x.shape, axis))
    return g


# --- sum ------------------------------------------------------------------------


def _sum_forward(xp, x, axis=None, dtype=None, keepdims=False):
    return backends.kernels(xp).sum(x, axis=axis, dtype=dtype, keepdims=keepdims)


def _sum_vjp(xp, g, ans, x, axis=None, dtype=None, keepdims=False):
    if axis is not None:
        g = _expand_back(xp, g, x, axis, keepdims)
    return xp.broadcast_to(g, x.shape)


sum_ = Primitive("sum", _sum_forward, vjps=(_sum_vjp,), linear=True)


def sum(x, /, *, axis=None, dtype=None, keepdims=False):
    """Sum of elements over the given axes (all by default)."""
    return sum_(x, axis=axis, dtype=dtype, keepdims=keepdims)


# --- prod -----------------------------------------------------------------------


def _prod_forward(xp, x, axis=None, dtype=None, keepdims=False):
    return xp.prod(x, axis=axis, dtype=dtype, keepdims=keepdims)


def _prod_vjp(xp, g, ans, x, axis=None, dtype=None, keepdims=False):
    # d prod / d x_i = the product of all the other elements: the product of the
    # elements before i times those after i, which stays right when some x_j is 0.
    axes = _axes(axis, x.ndim)
    rest = tuple(i for i in range(x.ndim) if i not in axes)
    moved = xp.permute_dims(x, rest + axes)
    kept_shape = tuple(moved.shape[: len(rest)])
    flat = xp.reshape(moved, kept_shape + (-1,))
    before = xp.cumulative_prod(flat, axis=-1, include_initial=True)[..., :-1]
    after = xp.flip(xp.cumulative_prod(xp.flip(flat, axis=-1), axis=-1, include_initial=True)[..., :-1], axis=-1)
    others = xp.reshape(before * after, tuple(moved.shape))
    inverse = tuple(sorted(range(x.ndim), key=(rest + axes).index))
    others = xp.permute_dims(others, inverse)
    return _expand_back(xp, g, x, axis, keepdims) * others


prod_ = Primitive("prod", _prod_forward, vjps=(_prod_vjp,))


def prod(x, /, *, axis=None, dtype=None, keepdims=False):
    """Product of elements over the given axes; its gradient is right even where x has zeros."""
    return prod_(x, axis=axis, dtype=dtype, keepdims=keepdims)


# --- max and min ------------------------------------------------------------------


def _extremum_vjp(xp, g, ans, x, axis=None, keepdims=False):
    # Where several elements share the extreme value, they share the gradient
    # evenly (as torch.amax does).
    ans = _expand_back(xp, ans, x, axis, keepdims)
    hit = xp.astype(x == ans, g.dtype)
    count = xp.sum(hit, axis=axis, keepdims=True)
    return _expand_back(xp, g, x, axis, keepdims) * hit / count


max_ = Primitive("max", lambda xp, x, axis=None, keepdims=False: xp.max(x, axis=axis, keepdims=keepdims),
                 vjps=(_extremum_vjp,), needs_ans=True)
min_ = Primitive("min", lambda xp, x, axis=None, keepdims=False: xp.min(x, axis=axis, keepdims=keepdims),
                 vjps=(_extremum_vjp,), needs_ans=True)


def max(x, /, *, axis=None, keepdims=False):
    """Largest element over the given axes; ties share the gradient evenly."""
    return max_(x, axis=axis, keepdims=keepdims)


def min(x, /, *, axis=None, keepdims=False):
    """Smallest element over the given axes; ties share the gradient evenly."""
    return min_(x, axis=axis, keepdims=keepdims)


# --- cumulative sums and products -------------------------------------------------


def _scan_axis(x, axis):
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"cumulative functions need axis= for a {x.ndim}-D array")
        return 0
    return axis % x.ndim


def _cumsum_forward(xp, x, axis=None, dtype=None, include_initial=False):
    return xp.cumulative_sum(x, axis=axis, dtype=dtype, include_initial=include_initial)


def _cumsum_vjp(xp, g, ans, x, axis=None, dtype=None, include_initial=False):
    # x_i feeds every output at or after i: the gradient is a reversed cumulative sum.
    axis = _scan_axis(x, axis)
    if include_initial:
        g = xp.take(g, xp.arange(1, g.shape[axis], device=_device(g)), axis=axis)
    return xp.flip(xp.cumulative_sum(xp.flip(g, axis=axis), axis=axis), axis=axis)


cumulative_sum_ = Primitive("cumulative_sum", _cumsum_forward, vjps=(_cumsum_vjp,), linear=True)


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    """Running sum along an axis."""
    return cumulative_sum_(x, axis=axis, dtype=dtype, include_initial=include_initial)


def _cumprod_forward(xp, x, axis=None, dtype=None, include_initial=False):
    return xp.cumulative_prod(x, axis=axis, dtype=dtype, include_initial=include_initial)


def _cumprod_vjp(xp, g, ans, x, axis=None, dtype=None, include_initial=False):
    # d ans_k / d x_i = ans_k / x_i for k >= i (assumes x has no zeros).
    axis = _scan_axis(x, axis)
    if include_initial:
        idx = xp.arange(1, g.shape[axis], device=_device(g))
        g = xp.take(g, idx, axis=axis)
        ans = xp.take(ans, idx, axis=axis)
    return xp.flip(xp.cumulative_sum(xp.flip(g * ans, axis=axis), axis=axis), axis=axis) / x


cumulative_prod_ = Primitive("cumulative_prod", _cumprod_forward, vjps=(_cumprod_vjp,), needs_ans=True)


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    """Running product along an axis (its gradient assumes x has no zeros)."""
    return cumulative_prod_(x, axis=axis, dtype=dtype, include_initial=include_initial)


def _device(x):
    from ...backends import device_of

    return device_of(x.data if hasattr(x, "_gdbp_tensor") else x)


# --- composed from the primitives above -------------------------------------------


def _count(x, axis):
    return math.prod(x.shape[i] for i in _axes(axis, x.ndim))


def mean(x, /, *, axis=None, keepdims=False):
    """Arithmetic mean over the given axes: sum / n."""
    return sum(x, axis=axis, keepdims=keepdims) / _count(x, axis)


def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    """Variance: sum((x - mean)^2) / (n - correction)."""
    centred = x - mean(x, axis=axis, keepdims=True)
    return sum(centred * centred, axis=axis, keepdims=keepdims) / (_count(x, axis) - correction)


def std(x, /, *, axis=None, correction=0.0, keepdims=False):
    """Standard deviation: sqrt(var)."""
    from .elementwise import sqrt

    return sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


__all__ = ["sum", "prod", "max", "min", "cumulative_sum", "cumulative_prod", "mean", "var", "std"]
