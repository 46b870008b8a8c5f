"""Per-library fast paths behind the generic array-API versions.

``kernels(xp)`` gives an object with the same functions for every
namespace; a library gets its own version of a function only where a
benchmark shows it pays, and the generic one is the tested fallback.
"""

from __future__ import annotations

import array_api_compat

__all__ = ["kernels", "Kernels"]


class Kernels:
    """The generic versions, written in the array API standard alone."""

    def __init__(self, xp):
        self.xp = xp

    def matmul(self, a, b):
        return a @ b


class NumpyKernels(Kernels):
    def __init__(self, xp):
        super().__init__(xp)
        import numpy

        self._np = numpy

    def matmul(self, a, b):
        # numpy.matmul is several times slower than numpy.dot when the shared
        # dimension is 1 (the weight gradient x.T @ g at batch size 1).
        if a.ndim == 2 and b.ndim == 2 and a.shape[1] == 1:
            return self._np.dot(a, b)
        return a @ b


_cache: dict = {}


def kernels(xp) -> Kernels:
    """The fast paths for namespace xp (a generic fallback for unknown ones)."""
    k = _cache.get(xp)
    if k is None:
        k = NumpyKernels(xp) if array_api_compat.is_numpy_namespace(xp) else Kernels(xp)
        _cache[xp] = k
    return k
