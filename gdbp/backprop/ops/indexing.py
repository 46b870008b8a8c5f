"""Indexing: x[key], x[key] = v, take, take_along_axis, where; and sort, composed from them.

The adjoint of selecting elements is adding the gradient back at the
selected places (a scatter-add), where an index that repeats adds up. The
backend's kernels own the scatter-add; it is itself a primitive here so that
second derivatives flow through indexing too.
"""

from __future__ import annotations

import numbers

from ... import backends
from ..primitive import axes, defn, defprim
from ..tensor import unwrap

# --- scatter-add: the adjoint of indexing ------------------------------------------

index_add_p = defprim(
    "index_add",
    lambda xp, g, key, shape: backends.kernels(xp).scatter_add(g, key, shape),
    lambda xp, g2, ans, g, key, shape: g2[key],
    linear=True,
    namespace=False,
)


def _scatter(xp, g, key, shape):
    # kernels(xp) is the backend's scatter-add on a plain backward pass, index_add_p on a recorded one.
    return backends.kernels(xp).scatter_add(g, key, shape)


# --- x[key] ---------------------------------------------------------------------------

def _getitem_vjp(xp, g, ans, x, key):
    if _every_element_in_order(key, x.shape):  # x[:, 0] of an (n, 1) x, x[None], x[...]: only the shape changes
        return xp.reshape(g, tuple(x.shape))
    return _scatter(xp, g, key, tuple(x.shape))


def _every_element_in_order(key, shape) -> bool:
    """Whether x[key] is every element of x, in x's order: full slices, None, ..., and 0 or -1 on axes of length 1."""
    key = key if isinstance(key, tuple) else (key,)
    if sum(k is Ellipsis for k in key) > 1:
        return False
    axis = 0
    for k in key:
        if k is None:
            continue
        if k is Ellipsis:
            axis += len(shape) - sum(1 for j in key if j is not None and j is not Ellipsis)
            continue
        if axis >= len(shape):
            return False
        n = shape[axis]
        if isinstance(k, slice):
            whole = k.stop is None or _is_int(k.stop) and k.stop >= n
            if k.step not in (None, 1) or k.start not in (None, 0) or not whole:
                return False
        elif not (_is_int(k) and n == 1 and k in (0, -1)):
            return False
        axis += 1
    return True


def _is_int(k) -> bool:
    return isinstance(k, numbers.Integral) and not isinstance(k, bool)


getitem_p = defprim(
    "getitem",
    lambda xp, x, key: x[key],
    _getitem_vjp,
    linear=True,
    view=True,
    namespace=False,
)

# --- x[key] = value, recorded out of place ----------------------------------------------


def _setitem_forward(xp, x, value, key):
    out = xp.asarray(x, copy=True)
    out[key] = value
    return out


def _setitem_x(xp, g, ans, x, value, key):
    # The overwritten elements no longer depend on x: g with zeros written over them.
    kept = xp.asarray(g, copy=True)
    kept[key] = 0
    return kept


def _setitem_value(xp, g, ans, x, value, key):
    return g[key]


setitem_p = defprim("setitem", _setitem_forward, _setitem_x, _setitem_value, broadcasts=True, linear=True,
                    namespace=False)

# --- take and take_along_axis -------------------------------------------------------------


def _take_key(ndim, indices, axis):
    return (slice(None),) * axis + (indices,) + (slice(None),) * (ndim - axis - 1)


def _take_vjp(xp, g, ans, x, indices, axis):
    return _scatter(xp, g, _take_key(x.ndim, indices, axis), tuple(x.shape))


take_p = defprim("take", lambda xp, x, indices, axis: xp.take(x, indices, axis=axis), _take_vjp, linear=True,
                 public=False)


@defn
def take(x, indices, /, *, axis=None):
    """Elements of x at integer indices along an axis."""
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"take: axis is needed for a {x.ndim}-D array")
        axis = 0
    return take_p(x, indices=unwrap(indices), axis=axes(axis, x.ndim)[0])


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


def _take_along_vjp(xp, g, ans, x, indices, axis):
    # The key is made of raw index arrays, in the indices' own namespace, on either kind of pass.
    return _scatter(xp, g, _along_key(backends.namespace(indices), x.ndim, indices, axis), tuple(x.shape))


take_along_axis_p = defprim("take_along_axis", lambda xp, x, indices, axis: xp.take_along_axis(x, indices, axis=axis),
                            _take_along_vjp, linear=True, public=False)


@defn
def take_along_axis(x, indices, /, *, axis=-1):
    """Elements of x picked along one axis by an index array of x's rank."""
    return take_along_axis_p(x, indices=unwrap(indices), axis=axes(axis, x.ndim)[0])


# --- where ----------------------------------------------------------------------------------


def _where_x(xp, g, ans, condition, x, y):
    return xp.where(condition, g, xp.zeros_like(g))


def _where_y(xp, g, ans, condition, x, y):
    return xp.where(condition, xp.zeros_like(g), g)


def _where(xp, condition, x1, x2, /):
    """x1 where condition holds, else x2; the gradient goes to the side that was chosen."""
    return xp.where(condition, x1, x2)


where_p = defprim("where", _where, None, _where_x, _where_y, broadcasts=True, linear=True)


# --- sorting, composed ------------------------------------------------------------------------


@defn
def sort(x, /, *, axis=-1, descending=False, stable=True):
    """Sorted copy of x along an axis: take_along_axis(x, argsort(x))."""
    raw = unwrap(x)
    order = backends.namespace(raw).argsort(raw, axis=axis, descending=descending, stable=stable)
    return take_along_axis(x, order, axis=axis)
