"""Reductions and scans: sum, prod, max, min, cumulative sums; mean, var, std composed from them."""

from __future__ import annotations

import math

from ... import backends
from ..primitive import axes, conj, defn, defprim
from .elementwise import sqrt_p


def _keepdims_shape(shape, axis):
    reduced = axes(axis, len(shape))
    return tuple(1 if i in reduced else n for i, n in enumerate(shape))


def _expand_back(xp, g, x, axis, keepdims):
    """g (the gradient of a reduction) reshaped so that it broadcasts against x."""
    if not keepdims:
        g = xp.reshape(g, _keepdims_shape(x.shape, axis))
    return g


# --- sum ------------------------------------------------------------------------


def _sum(xp, x, /, *, axis=None, dtype=None, keepdims=False):
    """Sum of elements over the given axes (all by default)."""
    return backends.kernels(xp).sum(x, axis=axis, dtype=dtype, keepdims=keepdims)


def _sum_vjp(xp, g, ans, x, *, axis=None, dtype=None, keepdims=False):
    if axis is not None:
        g = _expand_back(xp, g, x, axis, keepdims)
    return xp.broadcast_to(g, x.shape)


sum_p = defprim("sum", _sum, _sum_vjp, linear=True)

# --- prod -----------------------------------------------------------------------


def _prod(xp, x, /, *, axis=None, dtype=None, keepdims=False):
    """Product of elements over the given axes; its gradient is right even where x has zeros."""
    return xp.prod(x, axis=axis, dtype=dtype, keepdims=keepdims)


def _prod_vjp(xp, g, ans, x, *, axis=None, dtype=None, keepdims=False):
    # d prod / d x_i = the product of all the other elements: the product of the
    # elements before i times those after i, which stays right when some x_j is 0.
    reduced = axes(axis, x.ndim)
    rest = tuple(i for i in range(x.ndim) if i not in reduced)
    moved = xp.permute_dims(x, rest + reduced)
    kept_shape = tuple(moved.shape[: len(rest)])
    flat = xp.reshape(moved, kept_shape + (-1,))
    before = xp.cumulative_prod(flat, axis=-1, include_initial=True)[..., :-1]
    after = xp.flip(xp.cumulative_prod(xp.flip(flat, axis=-1), axis=-1, include_initial=True)[..., :-1], axis=-1)
    others = xp.reshape(before * after, tuple(moved.shape))
    inverse = tuple(sorted(range(x.ndim), key=(rest + reduced).index))
    others = xp.permute_dims(others, inverse)
    return _expand_back(xp, g, x, axis, keepdims) * conj(xp, others)


prod_p = defprim("prod", _prod, _prod_vjp)

# --- max and min ------------------------------------------------------------------


def _max(xp, x, /, *, axis=None, keepdims=False):
    """Largest element over the given axes; ties share the gradient evenly."""
    return xp.max(x, axis=axis, keepdims=keepdims)


def _min(xp, x, /, *, axis=None, keepdims=False):
    """Smallest element over the given axes; ties share the gradient evenly."""
    return xp.min(x, axis=axis, keepdims=keepdims)


def _extremum_vjp(xp, g, ans, x, *, axis=None, keepdims=False):
    # Where several elements share the extreme value, they share the gradient
    # evenly (as torch.amax does).
    ans = _expand_back(xp, ans, x, axis, keepdims)
    hit = xp.astype(x == ans, g.dtype)
    count = xp.sum(hit, axis=axis, keepdims=True)
    return _expand_back(xp, g, x, axis, keepdims) * hit / count


max_p = defprim("max", _max, _extremum_vjp, needs_ans=True)
min_p = defprim("min", _min, _extremum_vjp, needs_ans=True)

# --- cumulative sums and products -------------------------------------------------


def _scan_axis(x, axis):
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"cumulative functions need axis= for a {x.ndim}-D array")
        return 0
    return axes(axis, x.ndim)[0]


def _skip_initial(xp, a, axis):
    # The gradient of an include_initial scan's first entry (the constant) goes nowhere.
    return xp.take(a, xp.arange(1, a.shape[axis], device=a.device), axis=axis)


def _cumulative_sum(xp, x, /, *, axis=None, dtype=None, include_initial=False):
    """Running sum along an axis."""
    return xp.cumulative_sum(x, axis=axis, dtype=dtype, include_initial=include_initial)


def _cumsum_vjp(xp, g, ans, x, *, axis=None, dtype=None, include_initial=False):
    # x_i feeds every output at or after i: the gradient is a reversed cumulative sum.
    axis = _scan_axis(x, axis)
    if include_initial:
        g = _skip_initial(xp, g, axis)
    return xp.flip(xp.cumulative_sum(xp.flip(g, axis=axis), axis=axis), axis=axis)


cumulative_sum_p = defprim("cumulative_sum", _cumulative_sum, _cumsum_vjp, linear=True)


def _cumulative_prod(xp, x, /, *, axis=None, dtype=None, include_initial=False):
    """Running product along an axis (its gradient assumes x has no zeros)."""
    return xp.cumulative_prod(x, axis=axis, dtype=dtype, include_initial=include_initial)


def _cumprod_vjp(xp, g, ans, x, *, axis=None, dtype=None, include_initial=False):
    # d ans_k / d x_i = ans_k / x_i for k >= i (assumes x has no zeros).
    axis = _scan_axis(x, axis)
    if include_initial:
        g, ans = _skip_initial(xp, g, axis), _skip_initial(xp, ans, axis)
    return xp.flip(xp.cumulative_sum(xp.flip(g * conj(xp, ans), axis=axis), axis=axis), axis=axis) / conj(xp, x)


cumulative_prod_p = defprim("cumulative_prod", _cumulative_prod, _cumprod_vjp, needs_ans=True)

# --- composed from the primitives above -------------------------------------------


def _count(x, axis):
    return math.prod(x.shape[i] for i in axes(axis, x.ndim))


@defn
def mean(x, /, *, axis=None, keepdims=False):
    """Arithmetic mean over the given axes: sum / n."""
    return sum_p(x, axis=axis, keepdims=keepdims) / _count(x, axis)


@defn
def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    """Variance: sum((x - mean)^2) / (n - correction)."""
    centred = x - mean(x, axis=axis, keepdims=True)
    return sum_p(centred * centred, axis=axis, keepdims=keepdims) / (_count(x, axis) - correction)


@defn
def std(x, /, *, axis=None, correction=0.0, keepdims=False):
    """Standard deviation: sqrt(var)."""
    return sqrt_p(var(x, axis=axis, correction=correction, keepdims=keepdims))

