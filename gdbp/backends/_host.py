"""Host-side helpers for the training loop and checkpoint files.

The training loop shuffles with a permutation drawn once per epoch on the
host and handed to the data's backend in one transfer; checkpoint files
need C-ordered host copies of arrays (a file stores raw memory in C order).
"""

from __future__ import annotations

from typing import Any

from ._arrays import to_numpy, transfer

__all__ = ["permutation", "to_numpy_contiguous"]


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
