"""Indexing: x[key], x[key] = v, take, take_along_axis, where; and sort, composed from them.

The adjoint of selecting elements is adding the gradient back at the
selected places (a scatter-add), where an index that repeats adds up. The
backend layer owns the scatter-add; it is itself a primitive here so that
second derivatives flow through indexing too.
"""

from __future__ import annotations

from ... import backends
from ..engine import Primitive

# --- scatter-add: the adjoint of indexing ------------------------------------------

index_add = Primitive(
    "index_add",
    lambda xp, g, key, shape: backends.scatter_add(xp, g, key, shape),
    vjps=(lambda xp, g2, ans, g, key, shape: g2[key],),
    linear=True,
)


def _scatter(xp, g, key, shape):
    """index_add in a VJP: recorded on Tensors (create_graph), a plain array otherwise."""
    if hasattr(g, "_gdbp_tensor"):
        return index_add(g, key=key, shape=shape)
    return backends.scatter_add(xp, g, key, shape)


# --- x[key] ---------------------------------------------------------------------------

getitem = Primitive(
    "getitem",
    lambda xp, x, key: x[key],
    vjps=(lambda xp, g, ans, x, key: _scatter(xp, g, key, tuple(x.shape)),),
    linear=True,
    view=True,
)

# --- x[key] = value, recorded out of place ----------------------------------------------


def _setitem_forward(xp, x, value, key):
    out = xp.asarray(x, copy=True)
    out[key] = value
    return out


def _setitem_x(xp, g, ans, x, value, key):
    # The overwritten elements no longer depend on x.
    keep = xp.ones(x.shape, dtype=g.dtype, device=x.device)
    if hasattr(keep, "_gdbp_tensor"):
        keep = keep.data
    keep[key] = 0
    return g * keep


def _setitem_value(xp, g, ans, x, value, key):
    return g[key]


setitem = Primitive("setitem", _setitem_forward, vjps=(_setitem_x, _setitem_value), broadcasts=True, linear=True)

# --- take and take_along_axis -------------------------------------------------------------


def _take_key(ndim, indices, axis):
    return (slice(None),) * axis + (indices,) + (slice(None),) * (ndim - axis - 1)


def _take_forward(xp, x, indices, axis):
    return xp.take(x, indices, axis=axis)


def _take_vjp(xp, g, ans, x, indices, axis):
    return _scatter(xp, g, _take_key(x.ndim, indices, axis), tuple(x.shape))


take_ = Primitive("take", _take_forward, vjps=(_take_vjp,), linear=True)


def take(x, indices, /, *, axis=None):
    """Elements of x at integer indices along an axis."""
    if hasattr(indices, "_gdbp_tensor"):
        indices = indices.data
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"take: axis is needed for a {x.ndim}-D array")
        axis = 0
    return take_(x, indices=indices, axis=axis % x.ndim)


def _along_key(xp, x_ndim, indices, axis):
    # Index every other axis with a broadcast arange, so that x[key] == take_along_axis(x, indices).
    device = backends.device_of(indices)
    key = []
    for i in range(x_ndim):
        if i == axis:
            key.append(indices)
        else:
            shape = [1] * x_ndim
            shape[i] = indices.shape[i]
            key.append(xp.reshape(xp.arange(indices.shape[i], device=device), tuple(shape)))
    return tuple(key)


def _take_along_forward(xp, x, indices, axis):
    return xp.take_along_axis(x, indices, axis=axis)


def _take_along_vjp(xp, g, ans, x, indices, axis):
    raw = backends.namespace(indices)
    return _scatter(xp, g, _along_key(raw, x.ndim, indices, axis), tuple(x.shape))


take_along_axis_ = Primitive("take_along_axis", _take_along_forward, vjps=(_take_along_vjp,), linear=True)


def take_along_axis(x, indices, /, *, axis=-1):
    """Elements of x picked along one axis by an index array of x's rank."""
    if hasattr(indices, "_gdbp_tensor"):
        indices = indices.data
    return take_along_axis_(x, indices=indices, axis=axis % x.ndim)


# --- where ----------------------------------------------------------------------------------


def _where_x(xp, g, ans, condition, x, y):
    return xp.where(condition, g, xp.zeros_like(g))


def _where_y(xp, g, ans, condition, x, y):
    return xp.where(condition, xp.zeros_like(g), g)


where_ = Primitive("where", lambda xp, c, x, y: xp.where(c, x, y), vjps=(None, _where_x, _where_y),
                   broadcasts=True, linear=True)


def where(condition, x1, x2, /):
    """x1 where condition holds, else x2; the gradient goes to the side that was chosen."""
    return where_(condition, x1, x2)


# --- sorting, composed ------------------------------------------------------------------------


def sort(x, /, *, axis=-1, descending=False, stable=True):
    """Sorted copy of x along an axis: take_along_axis(x, argsort(x))."""
    raw = x.data if hasattr(x, "_gdbp_tensor") else x
    xp = backends.namespace(raw)
    order = xp.argsort(raw, axis=axis, descending=descending, stable=stable)
    return take_along_axis(x, order, axis=axis)


__all__ = ["getitem", "setitem", "index_add", "take", "take_along_axis", "where", "sort"]
