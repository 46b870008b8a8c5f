"""Shape and layout: reshape, permute, broadcast, concatenate, flip, roll, repeat; the rest composed."""

from __future__ import annotations

import math

from ..errors import ShapeError
from ..primitive import axes, defn, defprim
from ..tensor import unwrap

# --- primitives -------------------------------------------------------------------


def _reshape_forward(xp, x, shape, copy=None):
    return xp.reshape(x, shape) if copy is None else xp.reshape(x, shape, copy=copy)


reshape_p = defprim("reshape", _reshape_forward, lambda xp, g, ans, x, shape, copy=None: xp.reshape(g, x.shape),
                    linear=True, view=True, public=False)


@defn
def reshape(x, /, shape, *, copy=None):
    """The same elements in a new shape (one dimension may be -1)."""
    return reshape_p(x, shape=tuple(shape), copy=copy)


def _inverse_permutation(axes):
    inverse = [0] * len(axes)
    for i, a in enumerate(axes):
        inverse[a] = i
    return tuple(inverse)


permute_dims_p = defprim(
    "permute_dims", lambda xp, x, order: xp.permute_dims(x, order),
    lambda xp, g, ans, x, order: xp.permute_dims(g, _inverse_permutation(order)),
    linear=True, view=True, public=False,
)


@defn
def permute_dims(x, /, axes):
    """Reorder the axes: output axis i is input axis axes[i]."""
    n = x.ndim
    order = tuple(a % n for a in axes)
    if sorted(order) != list(range(n)):
        raise ValueError(f"permute_dims: axes {order} are not a permutation of the {n} axes")
    return permute_dims_p(x, order=order)


# broadcast_to's gradient is g summed back to x's shape: the engine's unbroadcast does it.
broadcast_to_p = defprim("broadcast_to", lambda xp, x, shape: xp.broadcast_to(x, shape),
                         lambda xp, g, ans, x, shape: g, linear=True, view=True, public=False)


@defn
def broadcast_to(x, /, shape):
    """x repeated (without copying) to a larger shape, by the broadcasting rules."""
    return broadcast_to_p(x, shape=tuple(shape))


def _concat_forward(xp, *arrays, axis=0):
    return xp.concat(arrays, axis=axis)


def _concat_vjp(xp, g, ans, *arrays, axis=0):
    # Cut g back into the pieces the inputs contributed.
    flat = axis is None
    if flat:
        g = xp.reshape(g, (-1,))
        axis = 0
    pieces = []
    start = 0
    for a in arrays:
        n = math.prod(a.shape) if flat else a.shape[axis]
        # The trailing Ellipsis: the standard leaves keys shorter than ndim unspecified.
        index = (slice(None),) * (axis % g.ndim) + (slice(start, start + n), Ellipsis)
        piece = g[index]
        pieces.append(xp.reshape(piece, a.shape) if piece.shape != a.shape else piece)
        start += n
    return tuple(pieces)


concat_p = defprim("concat", _concat_forward, vjp_all=_concat_vjp, linear=True, public=False)


@defn
def concat(arrays, /, *, axis=0):
    """Join arrays along an existing axis (axis=None: flatten them first)."""
    return concat_p(*arrays, axis=axis)


def _flip(xp, x, /, *, axis=None):
    """Reverse the order of elements along the given axes (all by default)."""
    return xp.flip(x, axis=axis)


flip_p = defprim("flip", _flip, lambda xp, g, ans, x, axis=None: xp.flip(g, axis=axis), linear=True)


def _negate(shift):
    return tuple(-s for s in shift) if isinstance(shift, tuple) else -shift


roll_p = defprim("roll", lambda xp, x, shift, axis=None: xp.roll(x, shift, axis=axis),
                 lambda xp, g, ans, x, shift, axis=None: xp.roll(g, _negate(shift), axis=axis),
                 linear=True, public=False)


@defn
def roll(x, /, shift, *, axis=None):
    """Shift elements cyclically along the given axes."""
    if isinstance(shift, list):
        shift = tuple(shift)
    if isinstance(axis, list):
        axis = tuple(axis)
    return roll_p(x, shift=shift, axis=axis)


def _repeat_vjp(xp, g, ans, x, repeats, axis=None):
    # Each input element is copied `repeats` times: its gradient sums those copies.
    if axis is None:
        x_shape, axis = (math.prod(x.shape),), 0
    else:
        x_shape = x.shape
        axis %= x.ndim
    if isinstance(repeats, int):
        n = x_shape[axis]
        split = tuple(x_shape[:axis]) + (n, repeats) + tuple(x_shape[axis + 1:])
        out = xp.sum(xp.reshape(g, split), axis=axis + 1)
    else:
        # Uneven repeats: segment sums, as differences of a running sum at the segment ends.
        running = xp.cumulative_sum(g, axis=axis, include_initial=True)
        ends = xp.cumulative_sum(repeats)
        out = xp.take(running, ends, axis=axis) - xp.take(running, ends - repeats, axis=axis)
    return xp.reshape(out, x.shape)


repeat_p = defprim("repeat", lambda xp, x, repeats, axis=None: xp.repeat(x, repeats, axis=axis), _repeat_vjp,
                   linear=True, public=False)


@defn
def repeat(x, repeats, /, *, axis=None):
    """Repeat each element `repeats` times along an axis (flattened when axis is None)."""
    return repeat_p(x, repeats=unwrap(repeats), axis=axis)


def _tril(xp, x, /, *, k=0):
    """The lower triangle (on and below diagonal k); zeros above."""
    return xp.tril(x, k=k)


def _triu(xp, x, /, *, k=0):
    """The upper triangle (on and above diagonal k); zeros below."""
    return xp.triu(x, k=k)


tril_p = defprim("tril", _tril, lambda xp, g, ans, x, k=0: xp.tril(g, k=k), linear=True)
triu_p = defprim("triu", _triu, lambda xp, g, ans, x, k=0: xp.triu(g, k=k), linear=True)


# --- composed from the primitives ------------------------------------------------------


@defn
def expand_dims(x, /, axis=0):
    """Insert size-1 axes at the given positions of the result."""
    ndim = x.ndim + (1 if isinstance(axis, int) else len(axis))
    inserted = axes(axis, ndim)
    shape = iter(x.shape)
    return reshape(x, tuple(1 if i in inserted else next(shape) for i in range(ndim)))


@defn
def squeeze(x, /, axis):
    """Remove size-1 axes."""
    removed = axes(axis, x.ndim)
    for a in removed:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} has size {x.shape[a]}, not 1")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in removed))


@defn
def stack(arrays, /, *, axis=0):
    """Join arrays along a new axis."""
    arrays = list(arrays)
    ndim = arrays[0].ndim + 1
    return concat([expand_dims(a, axis=axis % ndim) for a in arrays], axis=axis % ndim)


@defn
def moveaxis(x, source, destination, /):
    """Move axes to new positions, keeping the order of the others."""
    src = axes(source, x.ndim)
    dst = axes(destination, x.ndim)
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination need the same number of axes")
    order = [a for a in range(x.ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute_dims(x, tuple(order))


@defn
def matrix_transpose(x, /):
    """Swap the last two axes."""
    if x.ndim < 2:
        raise ValueError(f"matrix_transpose needs at least 2 dimensions, got {x.ndim}")
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return permute_dims(x, axes)


@defn
def tile(x, repetitions, /):
    """x repeated along each axis: an interleaved broadcast, then a reshape."""
    reps = tuple(repetitions)
    d = max(len(reps), x.ndim)
    reps = (1,) * (d - len(reps)) + reps
    shape = (1,) * (d - x.ndim) + tuple(x.shape)
    spread = reshape(x, tuple(v for n in shape for v in (1, n)))
    spread = broadcast_to(spread, tuple(v for r, n in zip(reps, shape) for v in (r, n)))
    return reshape(spread, tuple(r * n for r, n in zip(reps, shape)))


@defn
def unstack(x, /, *, axis=0):
    """Split an array into a tuple of arrays along an axis."""
    axis %= x.ndim
    lead = (slice(None),) * axis
    return tuple(x[lead + (i, Ellipsis)] for i in range(x.shape[axis]))


@defn
def broadcast_arrays(*arrays):
    """The arrays broadcast against each other."""
    shape = ()
    for a in arrays:
        shape = _broadcast_shapes(shape, tuple(a.shape))
    return [broadcast_to(a, shape) for a in arrays]


def _broadcast_shapes(a, b):
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + a
    b = (1,) * (n - len(b)) + b
    out = []
    for p, q in zip(a, b):
        if p != q and 1 not in (p, q):
            raise ShapeError(f"broadcast_arrays: shapes {a} and {b} do not broadcast")
        out.append(q if p == 1 else p)
    return tuple(out)


@defn
def diff(x, /, *, axis=-1, n=1, prepend=None, append=None):
    """n-th discrete difference along an axis: x[1:] - x[:-1], n times."""
    axis %= x.ndim
    if prepend is not None or append is not None:
        parts = ([prepend] if prepend is not None else []) + [x] + ([append] if append is not None else [])
        x = concat(parts, axis=axis)
    lead = (slice(None),) * axis
    for _ in range(n):
        x = x[lead + (slice(1, None), Ellipsis)] - x[lead + (slice(None, -1), Ellipsis)]
    return x
