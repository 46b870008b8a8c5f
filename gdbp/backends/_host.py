"""Host-side helpers for the training loop, checkpoint files and input checks.

The training loop shuffles with a permutation drawn once per epoch on the
host and handed to the data's backend in one transfer; checkpoint files
need C-ordered host copies of arrays (a file stores raw memory in C order);
checks of labels and data find the first bad element on the host, after one
small device-side reduction where the array lives on a GPU.
"""

from __future__ import annotations

from typing import Any

import math

from ._arrays import backend_of, to_numpy, transfer

__all__ = ["permutation", "to_numpy_contiguous", "out_of_range", "first_not_finite"]


def permutation(n: int, seed, backend):
    """A random permutation of ``0 .. n-1`` (int64), drawn on the host, as an array of ``backend``.

    Parameters
    ----------
    n : int
        The number of items.
    seed : int or sequence of int
        Seeds NumPy's PCG64 (through a ``SeedSequence``): ``(seed, epoch)``
        gives every epoch its own stream, reproducible without saving a
        generator's state.
    backend : str or Backend
        Where the permutation goes (one transfer).

    Returns
    -------
    array
        Of ``backend``, dtype int64, shape ``(n,)``.
    """
    import numpy as np

    order = np.random.default_rng(seed).permutation(n).astype(np.int64)
    return transfer(order, backend)


def to_numpy_contiguous(x: Any):
    """A C-contiguous host NumPy array with x's values and shape (a copy only where x is not one already).

    A 0-d array stays 0-d (``np.ascontiguousarray`` would make it 1-d).
    """
    import numpy as np

    return np.asarray(to_numpy(x), order="C")


def _first(bad, h):
    """(position, value) of the first True of ``bad`` in C order, values as Python numbers."""
    import numpy as np

    position = tuple(int(i) for i in np.argwhere(bad)[0])
    return position, h[position].item()


def out_of_range(x: Any, low: int, high: int):
    """The first element of an integer array outside ``[low, high)``, or None.

    Parameters
    ----------
    x : array
        Of any backend.
    low, high : int

    Returns
    -------
    tuple or None
        ``(position, value)``: the index tuple of the first bad element in C
        order and its value (a Python int); None when every element lies in
        range.

    Notes
    -----
    On a CPU backend the values are read where they are. On a GPU the
    minimum and maximum are taken on the device and copied to the host
    together (the device is waited for once); only if they fall outside the
    range are all the values copied, to find the position.
    """
    backend = backend_of(x)
    if backend is not None and backend.is_gpu and math.prod(x.shape) > 0:
        xp = backend.xp
        lo, hi = to_numpy(xp.stack([xp.min(x), xp.max(x)])).tolist()
        if low <= lo and hi < high:
            return None
    h = to_numpy(x)
    bad = (h < low) | (h >= high)
    return _first(bad, h) if bad.any() else None


def first_not_finite(x: Any):
    """The first NaN or infinity of a floating array, as ``(position, value)``, or None.

    On a GPU, whether every value is finite is decided on the device and
    one boolean is copied to the host; the values are copied only if one is
    not finite.
    """
    backend = backend_of(x)
    if backend is not None and backend.is_gpu:
        xp = backend.xp
        if bool(to_numpy(xp.all(xp.isfinite(x)))):
            return None
    import numpy as np

    h = to_numpy(x)
    bad = ~np.isfinite(h)
    return _first(bad, h) if bad.any() else None
