"""NumPy: the CPU backend, and its fast paths.

Each override below is kept because a benchmark showed it pays; the generic
version beneath it (:class:`gdbp.backends._kernels.Kernels`) is the tested
fallback.
"""

from __future__ import annotations

import numpy as np

from ._backend import Backend, import_library, intern
from ._kernels import UNKNOWN, Kernels, Strided, library_kernels
from ._scatter import as_key, assign_selected, has_int_array
from ._special import scipy_special

__all__ = ["NumpyKernels", "numpy_backend"]


# The ops whose library function writes into out= (elementwise ufuncs, and matmul), by the name
# NumPy and CuPy give that function.
INTO_NAMES = {
    "add": "add", "subtract": "subtract", "multiply": "multiply", "divide": "divide", "negative": "negative",
    "positive": "positive", "abs": "absolute", "square": "square", "sqrt": "sqrt", "reciprocal": "reciprocal",
    "pow": "power", "exp": "exp", "expm1": "expm1", "log": "log", "log1p": "log1p", "log2": "log2",
    "log10": "log10", "logaddexp": "logaddexp", "maximum": "maximum", "minimum": "minimum", "sin": "sin",
    "cos": "cos", "tan": "tan", "tanh": "tanh", "sinh": "sinh", "cosh": "cosh", "matmul": "matmul",
}


def _folds(a, b) -> bool:
    # A stack of matrices times one matrix is one product of the stack's rows: a single BLAS call instead
    # of one per matrix, and (for the weight's gradient) no sum over the stack afterwards.
    return a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous


def _matmul_out(a, b, out=None):
    """numpy.matmul (into ``out``), a C-ordered stack times a matrix folded into one product."""
    if _folds(a, b) and (out is None or out.flags.c_contiguous):
        rows = a.reshape(-1, a.shape[-1])
        if out is None:
            return (rows @ b).reshape(a.shape[:-1] + (b.shape[1],))
        np.matmul(rows, b, out=out.reshape(-1, b.shape[1]))
        return out
    return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)


def _reduction_out(reduce):
    def into(x, axis=None, keepdims=False, dtype=None, out=None):
        return reduce(x, axis=axis, keepdims=keepdims, out=out)
    return into


INTO = {name: getattr(np, fn) for name, fn in INTO_NAMES.items()}
INTO["matmul"] = _matmul_out
# Reductions (the ufuncs' reduce, as the array methods the forwards call run it), into out= with their axes.
INTO.update(sum=_reduction_out(np.add.reduce), max=_reduction_out(np.maximum.reduce),
            min=_reduction_out(np.minimum.reduce))


def _reshape(x, shape, copy=None):
    # copy=None: the method, a view where one can be made; else numpy.reshape, which takes the standard's copy=.
    return x.reshape(shape) if copy is None else np.reshape(x, shape, copy=copy)


#: What the forwards of these primitives compute on NumPy arrays, called directly (Kernels.direct).
DIRECT = {
    "permute_dims": lambda x, order: x.transpose(order),
    "reshape": _reshape,
    "max": lambda x, axis=None, keepdims=False: x.max(axis=axis, keepdims=keepdims),
    "min": lambda x, axis=None, keepdims=False: x.min(axis=axis, keepdims=keepdims),
    "broadcast_to": np.broadcast_to,
    "take_along_axis": lambda x, indices, axis: np.take_along_axis(x, indices, axis=axis),
    "astype": lambda x, dtype, copy=True: x.astype(dtype, copy=copy),
}


class NumpyKernels(Strided, Kernels):
    def matmul(self, a, b):
        # numpy.matmul is several times slower than numpy.dot when the shared
        # dimension is 1 (the weight gradient x.T @ g at batch size 1).
        if a.ndim == 2 and b.ndim == 2 and a.shape[1] == 1:
            return np.dot(a, b)
        return _matmul_out(a, b)

    def into(self, name: str):
        return INTO.get(name)

    def kernel_into(self, name: str):
        return self.matmul_into if name == "matmul" else None

    def scalar_array(self, a):
        return np.asarray(a)  # array-api-compat's asarray checks its arguments first: 10x the time

    def direct(self, name: str):
        # The array's own methods: the calls array-api-compat's wrappers end in, without their frames.
        if name == "sum":
            return self.sum
        return DIRECT.get(name)

    def copy_like(self, a, like=None):
        out = np.empty_like(a if like is None or like.shape != a.shape else like)
        out[...] = a
        return out

    def memory_of(self, a):
        base = a.base
        if base is None:
            return None  # not a view
        # A writeable view (a transpose) of an array that owns its memory; a broadcast is read-only.
        return base if a.flags.writeable and base.base is None else UNKNOWN

    def reusable(self, a) -> bool:
        return a.base is None and a.flags.c_contiguous and a.flags.writeable

    def matmul_into(self, a, b, out):
        if a.ndim == 2 and b.ndim == 2 and a.shape[1] == 1:
            return np.dot(a, b, out=out) if out.flags.c_contiguous else np.dot(a, b)
        return _matmul_out(a, b, out)

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

    def known_all_false(self, mask) -> bool:
        return not mask.any()  # host memory: no device to wait on

    def relu_grad(self, g, ans):
        # NumPy multiplies by a boolean mask inside the ufunc loop: no float copy of the mask.
        return np.multiply(g, ans > 0)

    def maximum_grad(self, g, x, y):
        # One pass for the common case; the ties (rare, but exact at relu's kink) only where there are any.
        out = np.multiply(g, x > y)
        ties = x == y
        if ties.any():
            out = out + np.multiply(g, ties) * 0.5
        return out

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
