"""NumPy: the CPU backend, and its fast paths.

Each override below is kept because a benchmark showed it pays; the generic
version beneath it (:class:`gdbp.backends._kernels.Kernels`) is the tested
fallback.
"""

from __future__ import annotations

import numpy as np

from ._backend import Backend, import_library, intern
from ._kernels import Kernels, library_kernels
from ._scatter import as_key, assign_selected, has_int_array
from ._special import scipy_special

__all__ = ["NumpyKernels", "numpy_backend"]


class NumpyKernels(Kernels):
    def matmul(self, a, b):
        # numpy.matmul is several times slower than numpy.dot when the shared
        # dimension is 1 (the weight gradient x.T @ g at batch size 1).
        if a.ndim == 2 and b.ndim == 2 and a.shape[1] == 1:
            return np.dot(a, b)
        return a @ b

    def owns(self, a) -> bool:
        return a.base is None  # not a view (every array the sweep makes is writeable)

    def reusable(self, a) -> bool:
        return a.base is None and a.flags.c_contiguous and a.flags.writeable

    def matmul_into(self, a, b, out):
        if a.ndim == 2 and b.ndim == 2 and a.shape[1] == 1:
            return np.dot(a, b, out=out) if out.flags.c_contiguous else np.dot(a, b)
        return np.matmul(a, b, out=out)

    def sum_into(self, a, axis, out):
        return np.sum(a, axis=axis, out=out)

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
        return np.multiply(g, ans > 0)

    def pick(self, a, labels):
        if a.ndim != 2:
            return super().pick(a, labels)
        return a[np.arange(a.shape[0]), labels]

    def minus_onehot(self, p, labels, weight=1.0):
        if p.ndim != 2:
            return super().minus_onehot(p, labels, weight)
        out = p.copy()
        out[np.arange(p.shape[0]), labels] -= weight  # each row once: no repeated index
        return out

    def scatter_add(self, g, key, shape):
        key = as_key(key)
        if not has_int_array(key, self.xp):
            return assign_selected(self.xp, g, key, shape)
        z = np.zeros(shape, dtype=g.dtype)
        np.add.at(z, key, g)
        return z

    def to_numpy(self, x):
        return x if isinstance(x, np.ndarray) else np.asarray(x)

    def special_forward(self, name: str):
        return scipy_special(name)


def numpy_backend() -> Backend:
    def make():
        xp = import_library("array_api_compat.numpy", "array_api_compat")
        k = library_kernels(xp, NumpyKernels)
        return Backend("numpy", xp, "cpu", True, np.ndarray, np.__version__, "numpy", False, k)

    return intern(("numpy",), make)
