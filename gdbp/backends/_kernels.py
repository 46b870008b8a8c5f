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

    def matmul_into(self, a, b, out):
        """``a @ b``, written into ``out`` where the library can (the generic version allocates)."""
        return a @ b

    def sum_into(self, a, axis, out):
        """``sum(a, axis)``, written into ``out`` where the library can."""
        return self.xp.sum(a, axis=axis)

    def sub_scaled_(self, w, alpha, g):
        """``w -= alpha * g`` in place (w must be writable)."""
        w -= alpha * g
        return w

    def relu_grad(self, g, ans):
        """g where ans > 0, else 0 (relu's VJP, from its output)."""
        return g * self.xp.astype(ans > 0, g.dtype)

    def pick(self, a, labels):
        """``a[..., labels]`` along the last axis: out[i] = a[i, labels[i]]."""
        xp = self.xp
        return xp.take_along_axis(a, xp.expand_dims(labels, axis=-1), axis=-1)[..., 0]

    def minus_onehot(self, p, labels, weight=1.0):
        """A new array ``p - weight * onehot(labels)``, the one-hot along the last axis."""
        xp = self.xp
        classes = xp.arange(p.shape[-1], device=p.device)
        onehot = xp.astype(xp.expand_dims(labels, axis=-1) == classes, p.dtype)
        return p - weight * onehot


class NumpyKernels(Kernels):
    def __init__(self, xp):
        super().__init__(xp)
        import threading

        import numpy

        self._np = numpy
        self._local = threading.local()

    @property
    def _scratch(self) -> dict:
        # One scratch buffer per shape and dtype, per thread.
        cache = getattr(self._local, "scratch", None)
        if cache is None:
            cache = self._local.scratch = {}
        return cache

    def matmul(self, a, b):
        # numpy.matmul is several times slower than numpy.dot when the shared
        # dimension is 1 (the weight gradient x.T @ g at batch size 1).
        if a.ndim == 2 and b.ndim == 2 and a.shape[1] == 1:
            return self._np.dot(a, b)
        return a @ b

    def matmul_into(self, a, b, out):
        if a.ndim == 2 and b.ndim == 2 and a.shape[1] == 1:
            return self._np.dot(a, b, out=out) if out.flags.c_contiguous else self._np.dot(a, b)
        return self._np.matmul(a, b, out=out)

    def sum_into(self, a, axis, out):
        return self._np.sum(a, axis=axis, out=out)

    def sub_scaled_(self, w, alpha, g):
        # alpha * g goes into a scratch buffer kept per shape and dtype: no allocation per step.
        key = (g.shape, g.dtype)
        scratch = self._scratch.get(key)
        if scratch is None:
            scratch = self._scratch[key] = self._np.empty_like(g)
        self._np.multiply(g, alpha, out=scratch)
        w -= scratch
        return w

    def relu_grad(self, g, ans):
        # NumPy multiplies by a boolean mask inside the ufunc loop: no float copy of the mask.
        return self._np.multiply(g, ans > 0)

    def pick(self, a, labels):
        if a.ndim != 2:
            return super().pick(a, labels)
        return a[self._np.arange(a.shape[0]), labels]

    def minus_onehot(self, p, labels, weight=1.0):
        if p.ndim != 2:
            return super().minus_onehot(p, labels, weight)
        out = p.copy()
        out[self._np.arange(p.shape[0]), labels] -= weight  # each row once: no repeated index
        return out


_cache: dict = {}


def kernels(xp) -> Kernels:
    """The fast paths for namespace xp (a generic fallback for unknown ones)."""
    k = _cache.get(xp)
    if k is None:
        k = NumpyKernels(xp) if array_api_compat.is_numpy_namespace(xp) else Kernels(xp)
        _cache[xp] = k
    return k
