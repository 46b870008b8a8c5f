"""Scatter-add, the one operation the array API standard lacks and backprop needs.

The gradient of ``x[key]`` is ``zeros(x.shape)`` with ``g`` added at ``key``,
where an index that repeats must add up. Each library's kernels have their
own way (``numpy.add.at``, ``cupy.add.at``, ``torch.index_add_``); the generic
version here, written in the standard alone, is the tested fallback.
"""

from __future__ import annotations

import math

import array_api_compat

__all__ = ["generic_scatter_add", "assign_selected", "has_int_array", "as_key", "flat_positions"]


def _arrays_only(xp, key, shape, device):
    """An equivalent key of integer arrays only: each slice becomes a broadcast arange.

    The result keeps NumPy's axis order: sliced axes before a block of
    adjacent advanced indices (arrays and integers) stay before it, the rest
    follow it; non-adjacent advanced indices go first, as NumPy puts them.
    """
    if len(key) < len(shape):
        key = key + (slice(None),) * (len(shape) - len(key))
    if len(key) != len(shape) or any(k is None or k is Ellipsis for k in key):
        raise IndexError(
            "scatter_add: the generic path takes keys of integer arrays, integers and slices, "
            f"one per axis; got {key!r}"
        )
    advanced = [i for i, k in enumerate(key) if not isinstance(k, slice)]
    adjacent = advanced == list(range(advanced[0], advanced[-1] + 1))
    before = [i for i in range(advanced[0]) if adjacent]
    after = [i for i, k in enumerate(key) if isinstance(k, slice) and i not in before]
    ndim_adv = max((k.ndim for k in key if hasattr(k, "ndim")), default=0)
    out = list(key)
    for j, i in enumerate(before):
        r = range(shape[i])[key[i]]
        trailing = len(before) - 1 - j + ndim_adv + len(after)
        out[i] = xp.reshape(xp.arange(r.start, r.stop, r.step, device=device), (len(r),) + (1,) * trailing)
    for j, i in enumerate(after):
        r = range(shape[i])[key[i]]
        out[i] = xp.reshape(xp.arange(r.start, r.stop, r.step, device=device), (len(r),) + (1,) * (len(after) - 1 - j))
    for i in advanced:
        if hasattr(key[i], "ndim"):
            out[i] = xp.reshape(key[i], tuple(key[i].shape) + (1,) * len(after))
    return tuple(out)


def as_key(key) -> tuple:
    """An index as a tuple of per-axis entries."""
    return key if isinstance(key, tuple) else (key,)


def has_int_array(key: tuple, xp) -> bool:
    """Whether the key holds an integer array (where a repeated index must add up)."""
    for k in key:
        if hasattr(k, "dtype") and not xp.isdtype(k.dtype, "bool"):
            return True
    return False


def assign_selected(xp, g, key, shape):
    """``z = zeros(shape); z[key] = g`` for keys that select each element at most once.

    Slices, integers, None, Ellipsis and boolean masks never select an element
    twice, so an assignment is the scatter-add.
    """
    z = xp.zeros(shape, dtype=g.dtype, device=array_api_compat.device(g))
    if any(k is None for k in key):
        # None only adds size-1 axes, and the standard does not allow it in an assignment.
        key = tuple(k for k in key if k is not None)
        g = xp.reshape(g, z[key].shape)
    z[key] = g
    return z


def flat_positions(xp, key, shape, device):
    """The flat position of every element ``zeros(shape)[key]`` selects, in the selection's shape."""
    positions = xp.reshape(xp.arange(math.prod(shape), device=device), shape)
    # The standard allows integer arrays beside integers only, not beside slices.
    return positions[_arrays_only(xp, key, shape, device)]


def generic_scatter_add(xp, g, key, shape):
    """``z = zeros(shape); z[key] += g``, with repeated indices adding up, in the standard alone."""
    key = as_key(key)
    if not has_int_array(key, xp):
        return assign_selected(xp, g, key, shape)
    device = array_api_compat.device(g)
    where = flat_positions(xp, key, shape, device)
    g_flat = xp.reshape(xp.broadcast_to(g, where.shape), (-1,))
    where = xp.reshape(where, (-1,))
    # A one-hot matrix product (memory n_selected x size; fine for a reference backend).
    size = math.prod(shape)
    columns = xp.reshape(xp.arange(size, device=device), (1, -1))
    onehot = xp.astype(xp.reshape(where, (-1, 1)) == columns, g.dtype)
    return xp.reshape(xp.reshape(g_flat, (1, -1)) @ onehot, shape)
