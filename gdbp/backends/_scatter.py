"""Scatter-add, the one operation the array API standard lacks and backprop needs.

The gradient of ``x[key]`` is ``zeros(x.shape)`` with ``g`` added at ``key``,
where an index that repeats must add up. Each library has its own way; the
generic version, written in the standard alone, is the tested fallback.
"""

from __future__ import annotations

import math

import array_api_compat

__all__ = ["scatter_add"]


def _has_int_array(key: tuple, xp) -> bool:
    for k in key:
        if hasattr(k, "dtype") and not xp.isdtype(k.dtype, "bool"):
            return True
    return False


def scatter_add(xp, g, key, shape):
    """``z = zeros(shape); z[key] += g``, with repeated indices adding up."""
    if not isinstance(key, tuple):
        key = (key,)
    device = array_api_compat.device(g)
    z = xp.zeros(shape, dtype=g.dtype, device=device)
    if not _has_int_array(key, xp):
        # Slices, integers, None, Ellipsis and masks select each element at most once.
        z[key] = g
        return z
    if array_api_compat.is_numpy_namespace(xp):
        import numpy as np

        np.add.at(z, key, g)
        return z
    if array_api_compat.is_cupy_namespace(xp):
        import cupyx

        cupyx.scatter_add(z, key, g)
        return z
    # The flat position of every selected element: index an arange with the same key.
    size = math.prod(shape)
    where = xp.reshape(xp.arange(size, device=device), shape)[key]
    g_flat = xp.reshape(xp.broadcast_to(g, where.shape), (-1,))
    where = xp.reshape(where, (-1,))
    if array_api_compat.is_torch_namespace(xp):
        xp.reshape(z, (-1,)).index_add_(0, where, g_flat)
        return z
    # Generic: a one-hot matrix product (memory n_selected x size; fine for a reference backend).
    columns = xp.reshape(xp.arange(size, device=device), (1, -1))
    onehot = xp.astype(xp.reshape(where, (-1, 1)) == columns, g.dtype)
    return xp.reshape(xp.reshape(g_flat, (1, -1)) @ onehot, shape)
