"""gdbp's differentiable array namespace: what ``Tensor.__array_namespace__()`` returns.

Code written against the Python array API standard (``xp = array_namespace(x)``)
runs on it unchanged and is differentiated. Differentiable functions come
from the primitive table (:mod:`gdbp.backprop.ops`); functions without a
gradient (searching, sorting indices, sets) pass through to the backend; creation
functions, dtypes and constants are those of the backend the namespace is bound to.
"""

from __future__ import annotations

import math

from .. import backends
from . import ops
from .tensor import Tensor, _wrap

__all__ = ["ArrayNamespace", "namespace_for", "DIFFERENTIABLE", "PASS_THROUGH"]

#: Functions of the standard with a gradient (primitives, or composed from them).
DIFFERENTIABLE = (
    # elementwise
    "abs", "acos", "acosh", "add", "asin", "asinh", "atan", "atan2", "atanh", "clip", "conj", "copysign",
    "cos", "cosh", "divide", "exp", "expm1", "hypot", "log", "log1p", "log2", "log10", "logaddexp",
    "maximum", "minimum", "multiply", "negative", "positive", "pow", "real", "reciprocal", "remainder",
    "sin", "sinh", "sqrt", "square", "subtract", "tan", "tanh",
    # elementwise without a gradient (outputs carry none)
    "bitwise_and", "bitwise_invert", "bitwise_left_shift", "bitwise_or", "bitwise_right_shift",
    "bitwise_xor", "ceil", "equal", "floor", "floor_divide", "greater", "greater_equal", "imag",
    "isfinite", "isinf", "isnan", "less", "less_equal", "logical_and", "logical_not", "logical_or",
    "logical_xor", "nextafter", "not_equal", "round", "sign", "signbit", "trunc",
    # statistics
    "cumulative_prod", "cumulative_sum", "max", "mean", "min", "prod", "std", "sum", "var",
    # linear algebra
    "matmul", "matrix_transpose", "tensordot", "vecdot",
    # manipulation
    "broadcast_arrays", "broadcast_to", "concat", "expand_dims", "flip", "moveaxis", "permute_dims",
    "repeat", "reshape", "roll", "squeeze", "stack", "tile", "unstack", "diff", "tril", "triu",
    # indexing, searching, sorting
    "take", "take_along_axis", "where", "sort",
    # data types
    "astype",
    # beyond the standard: what every cost function needs
    "logsumexp", "softmax", "log_softmax", "relu", "sigmoid",
)

#: Functions of the standard without a gradient, run by the backend on raw arrays.
PASS_THROUGH = (
    "argmax", "argmin", "argsort", "nonzero", "searchsorted", "count_nonzero",
    "all", "any", "unique_all", "unique_counts", "unique_inverse", "unique_values",
)

DTYPES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float32", "float64", "complex64", "complex128",
)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


class ArrayNamespace:
    """The array API standard (2024.12), differentiable, bound to one backend.

    Differentiable functions accept Tensors and raw arrays of the backend and
    return Tensors. Creation functions make arrays on the bound backend.
    """

    __array_api_version__ = "2024.12"
    e = math.e
    pi = math.pi
    inf = math.inf
    nan = math.nan
    newaxis = None

    def __init__(self, backend):
        self.backend = backend
        self._xp = backend.xp
        # array-api-compat tells namespaces apart by name.
        self.__name__ = f"gdbp.namespace[{backend.spec}]"
        for name in DTYPES:
            if hasattr(backend.xp, name):
                setattr(self, name, getattr(backend.xp, name))

    def __repr__(self):
        return f"<gdbp differentiable namespace on {self.backend.spec}>"

    def __array_namespace_info__(self):
        return self._xp.__array_namespace_info__()

    # -- creation: new arrays on the bound backend ----------------------------------

    def _new(self, array):
        return _wrap(array, backends.backend_of(array) or self.backend)

    def _device(self, device):
        return self.backend.device if device is None else device

    def asarray(self, obj, /, *, dtype=None, device=None, copy=None):
        if isinstance(obj, Tensor):
            if dtype is not None and obj.dtype != dtype:
                return ops.astype(obj, dtype)
            if copy:
                return ops.positive(obj)
            return obj
        return self._new(self._xp.asarray(obj, dtype=dtype, device=self._device(device), copy=copy))

    def zeros(self, shape, *, dtype=None, device=None):
        return self._new(self._xp.zeros(shape, dtype=dtype, device=self._device(device)))

    def ones(self, shape, *, dtype=None, device=None):
        return self._new(self._xp.ones(shape, dtype=dtype, device=self._device(device)))

    def empty(self, shape, *, dtype=None, device=None):
        return self._new(self._xp.empty(shape, dtype=dtype, device=self._device(device)))

    def full(self, shape, fill_value, *, dtype=None, device=None):
        return self._new(self._xp.full(shape, _raw(fill_value), dtype=dtype, device=self._device(device)))

    def zeros_like(self, x, /, *, dtype=None, device=None):
        return self._new(self._xp.zeros_like(_raw(x), dtype=dtype, device=device))

    def ones_like(self, x, /, *, dtype=None, device=None):
        return self._new(self._xp.ones_like(_raw(x), dtype=dtype, device=device))

    def empty_like(self, x, /, *, dtype=None, device=None):
        return self._new(self._xp.empty_like(_raw(x), dtype=dtype, device=device))

    def full_like(self, x, /, fill_value, *, dtype=None, device=None):
        return self._new(self._xp.full_like(_raw(x), _raw(fill_value), dtype=dtype, device=device))

    def arange(self, start, /, stop=None, step=1, *, dtype=None, device=None):
        return self._new(self._xp.arange(start, stop, step, dtype=dtype, device=self._device(device)))

    def linspace(self, start, stop, /, num, *, dtype=None, device=None, endpoint=True):
        return self._new(self._xp.linspace(start, stop, num, dtype=dtype, device=self._device(device), endpoint=endpoint))

    def eye(self, n_rows, n_cols=None, /, *, k=0, dtype=None, device=None):
        return self._new(self._xp.eye(n_rows, n_cols, k=k, dtype=dtype, device=self._device(device)))

    def from_dlpack(self, x, /, *, device=None, copy=None):
        return self._new(self._xp.from_dlpack(_raw(x)))

    def meshgrid(self, *arrays, indexing="xy"):
        """Coordinate grids, as broadcasts of reshaped inputs (differentiable)."""
        n = len(arrays)
        sizes = [a.shape[0] for a in arrays]
        if indexing == "xy" and n >= 2:
            sizes[0], sizes[1] = sizes[1], sizes[0]
        out = []
        for i, a in enumerate(arrays):
            axis = i
            if indexing == "xy" and n >= 2 and i < 2:
                axis = 1 - i
            shape = [1] * n
            shape[axis] = a.shape[0]
            out.append(ops.broadcast_to(ops.reshape(a, tuple(shape)), tuple(sizes)))
        return out

    # -- data type functions ----------------------------------------------------------

    def isdtype(self, dtype, kind):
        return self._xp.isdtype(dtype, kind)

    def result_type(self, *arrays_and_dtypes):
        return self._xp.result_type(*[_raw(a) for a in arrays_and_dtypes])

    def can_cast(self, from_, to, /):
        return self._xp.can_cast(_raw(from_), to)

    def finfo(self, type, /):
        return self._xp.finfo(_raw(type))

    def iinfo(self, type, /):
        return self._xp.iinfo(_raw(type))


def _differentiable(name):
    fn = getattr(ops, name)
    return staticmethod(fn)


def _passing_through(name):
    def fn(self, *args, **kw):
        return ops.pass_through(name, lambda xp, *a, **k: getattr(xp, name)(*a, **k), *args, **kw)

    fn.__name__ = name
    fn.__doc__ = f"{name} of the standard, run by the backend (no gradient)."
    return fn


for _name in DIFFERENTIABLE:
    setattr(ArrayNamespace, _name, _differentiable(_name))
for _name in PASS_THROUGH:
    setattr(ArrayNamespace, _name, _passing_through(_name))

_namespaces: dict = {}


def namespace_for(backend) -> ArrayNamespace:
    """The differentiable namespace bound to a backend (one per backend)."""
    ns = _namespaces.get(backend)
    if ns is None:
        ns = _namespaces[backend] = ArrayNamespace(backend)
    return ns
