"""Per-library fast paths behind the generic array-API versions.

``kernels(xp)`` gives an object with the same functions for every
namespace; a library gets its own version of a function only where a
benchmark shows it pays, and the generic one is the tested fallback.
"""

from __future__ import annotations

import math

import array_api_compat

__all__ = ["kernels", "Kernels", "isdtype"]


class Kernels:
    """The generic versions, written in the array API standard alone."""

    def __init__(self, xp):
        self.xp = xp

    def matmul(self, a, b):
        return a @ b

    def reusable(self, a) -> bool:
        """Whether a can serve as an output buffer: it owns its memory (a view could alias
        another array) and ``matmul_into`` / ``sum_into`` write into it. Generic: never."""
        return False

    def matmul_into(self, a, b, out):
        """``a @ b``, written into ``out`` where the library can (the generic version allocates)."""
        return a @ b

    def sum_into(self, a, axis, out):
        """``sum(a, axis)``, written into ``out`` where the library can."""
        return self.xp.sum(a, axis=axis)

    def sub_scaled_(self, w, alpha, g):
        """``w -= alpha * g`` in place (w writable, g of w's shape)."""
        w -= alpha * g
        return w

    def softmax_xent(self, logits, labels, smoothing=0.0):
        """Per-row cross-entropy of softmax(logits) against integer labels, and the softmax.

        cost = log(sum(exp(z))) - z[label] with z = logits - max(logits)
        (shifted so that exp cannot overflow); with label smoothing e,
        (1 - e) cost + e (log(sum(exp(z))) - mean(z)).
        """
        xp = self.xp
        z = logits - xp.max(logits, axis=-1, keepdims=True)
        e = xp.exp(z)
        s = xp.sum(e, axis=-1, keepdims=True)
        log_s = xp.log(s)[..., 0]
        cost = log_s - self.pick(z, labels)
        if smoothing:
            cost = (1 - smoothing) * cost + smoothing * (log_s - xp.mean(z, axis=-1))
        e /= s
        return cost, e

    def sum(self, a, axis=None, dtype=None, keepdims=False):
        """``xp.sum``, always an array (some libraries give scalars for full reductions)."""
        return self.xp.sum(a, axis=axis, dtype=dtype, keepdims=keepdims)

    def mean_all(self, a):
        """The mean of every element, as a 0-d array."""
        return self.xp.sum(a) / math.prod(a.shape)

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
        import numpy

        self._np = numpy

    def matmul(self, a, b):
        # numpy.matmul is several times slower than numpy.dot when the shared
        # dimension is 1 (the weight gradient x.T @ g at batch size 1).
        if a.ndim == 2 and b.ndim == 2 and a.shape[1] == 1:
            return self._np.dot(a, b)
        return a @ b

    def reusable(self, a) -> bool:
        return a.base is None and a.flags.c_contiguous and a.flags.writeable

    def matmul_into(self, a, b, out):
        if a.ndim == 2 and b.ndim == 2 and a.shape[1] == 1:
            return self._np.dot(a, b, out=out) if out.flags.c_contiguous else self._np.dot(a, b)
        return self._np.matmul(a, b, out=out)

    def sum_into(self, a, axis, out):
        return self._np.sum(a, axis=axis, out=out)

    def sum(self, a, axis=None, dtype=None, keepdims=False):
        if axis is None and not keepdims:
            # keepdims and a reshape give a 0-d array where numpy.sum would give a scalar.
            return a.sum(dtype=dtype, keepdims=True).reshape(())
        return a.sum(axis=axis, dtype=dtype, keepdims=keepdims)

    def mean_all(self, a):
        # NumPy's full reductions give scalars; keepdims and a reshape keep a 0-d array, cheaply.
        total = a.sum(keepdims=True).reshape(())
        total /= a.size
        return total

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


_BLOCK = 65536  # elements per block of an in-place update (256 KiB of float32)
_cache: dict = {}
_kinds: dict = {}
def isdtype(xp, dtype, kind) -> bool:
    """``xp.isdtype(dtype, kind)``, remembered: some libraries take microseconds to answer."""
    key = (xp, dtype, kind)
    try:
        return _kinds[key]
    except KeyError:
        answer = _kinds[key] = bool(xp.isdtype(dtype, kind))
        return answer
    except TypeError:  # an unhashable dtype object
        return bool(xp.isdtype(dtype, kind))


def kernels(xp) -> Kernels:
    """The fast paths for namespace xp (a generic fallback for unknown ones)."""
    k = _cache.get(xp)
    if k is None:
        k = NumpyKernels(xp) if array_api_compat.is_numpy_namespace(xp) else Kernels(xp)
        _cache[xp] = k
    return k
