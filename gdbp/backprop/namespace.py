"""gdbp's differentiable array namespace: what ``Tensor.__array_namespace__()`` returns.

Code written against the Python array API standard (``xp = array_namespace(x)``)
runs on it unchanged and is differentiated. Its functions are the registry's
(:data:`gdbp.backprop.primitive.NAMESPACE`): primitives and functions composed
from them, and functions without a gradient that the backend runs. Creation
functions, dtypes and constants are those of the backend the namespace is
bound to.
"""

from __future__ import annotations

import math

from .. import backends
from . import ops
from . import dtype_info, trace
from .info import NamespaceInfo
from .mode import is_grad_enabled
from .primitive import NAMESPACE, Extension, Primitive, defprim, extensions
from .tensor import Tensor, make, unwrap

__all__ = ["ArrayNamespace", "namespace_for", "DIFFERENTIABLE", "PASS_THROUGH", "TapeKernels"]

DTYPES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float32", "float64", "complex64", "complex128",
)


#: A backend kernel as one step: while gdbp.compile traces a backward pass (no graph recorded), a rule's
#: fast path is one primitive of the plan rather than the generic composition. It has no gradient.
kernel_p = defprim("kernel", lambda xp, *args, name: getattr(backends.kernels(xp), name)(*args),
                   differentiable=False, public=False)


class TapeKernels(backends.Kernels):
    """The kernels of gdbp's namespace: the generic versions, on Tensors, so that they are recorded.

    A gradient rule calls ``kernels(xp)``; on a recorded backward pass ``xp``
    is this namespace, and what the standard lacks is done by recorded
    primitives, so that the rule's own graph can be differentiated again.
    While gdbp.compile traces without recording a graph, the backend's fast
    paths run instead, each as one primitive (:data:`kernel_p`).
    """

    def transposed(self, a) -> bool:
        return backends.kernels(self.xp.backend.xp).transposed(unwrap(a))

    def matmul(self, a, b):
        return super().matmul(a, b) if is_grad_enabled() else kernel_p(a, b, name="matmul")

    def relu_grad(self, g, ans):
        return super().relu_grad(g, ans) if is_grad_enabled() else kernel_p(g, ans, name="relu_grad")

    def maximum_grad(self, g, x, y):
        return super().maximum_grad(g, x, y) if is_grad_enabled() else kernel_p(g, x, y, name="maximum_grad")

    def minus_onehot(self, p, labels, weight=1.0):
        if is_grad_enabled():
            return super().minus_onehot(p, labels, weight)
        return kernel_p(p, labels, weight, name="minus_onehot")

    def scatter_add(self, g, key, shape):
        return ops.index_add(g, key=key, shape=shape)

    def transfer(self, x, backend):
        return ops.transfer(x, backend)

    def to_device(self, x, device):
        return ops.to_device(x, device)

    def to_numpy(self, x):
        return backends.to_numpy(unwrap(x))

    def special(self, name):
        return ops.special.__dict__[name]  # the recorded primitive (xp.special.digamma...)


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
        self._info = None
        # array-api-compat tells namespaces apart by name.
        self.__name__ = f"gdbp.namespace[{backend.spec}]"
        for name in DTYPES:
            if hasattr(backend.xp, name):
                setattr(self, name, getattr(backend.xp, name))
        self.fft = _fft_extension(self)

    def __repr__(self):
        return f"<gdbp differentiable namespace on {self.backend.spec}>"

    def __array_namespace_info__(self):
        """The inspection namespace: capabilities, devices and dtypes on the bound backend (made once)."""
        if self._info is None:
            self._info = NamespaceInfo(self.backend)
        return self._info

    # -- creation: new arrays on the bound backend ----------------------------------

    def _new(self, array):
        return make(array, backends.backend_of(array) or self.backend)

    def _device(self, device):
        return self.backend.device if device is None else device

    def _create(self, create, *args, device=None, **kw):
        """``create(*args, device=..., **kw)`` as a Tensor, on ``device`` (default: the bound backend's).

        Inside the library's creation context: array-api-compat's CuPy
        functions ignore ``device=`` (see :meth:`gdbp.backends.Kernels.creating`).
        """
        device = self._device(device)
        with self.backend.kernels.creating(device):
            # Through trace.external: under gdbp.compile, made again at each replay.
            return self._new(trace.external(create, *args, device=device, **kw))

    def _create_like(self, create, x, *args, device=None, **kw):
        """As :meth:`_create`, for a ``*_like`` function: on x's device unless ``device`` says otherwise."""
        x = unwrap(x)
        return self._create(create, x, *args, device=backends.device_of(x) if device is None else device, **kw)

    def asarray(self, obj, /, *, dtype=None, device=None, copy=None):
        if isinstance(obj, Tensor):
            if dtype is not None and obj.dtype != dtype:
                return ops.astype(obj, dtype)
            if copy:  # astype copies every dtype (positive has no bool loop), and passes a float's gradient
                return ops.astype(obj, obj.dtype, copy=True)
            return obj
        return self._create(self._xp.asarray, obj, dtype=dtype, device=device, copy=copy)

    def zeros(self, shape, *, dtype=None, device=None):
        return self._create(self._xp.zeros, shape, dtype=dtype, device=device)

    def ones(self, shape, *, dtype=None, device=None):
        return self._create(self._xp.ones, shape, dtype=dtype, device=device)

    def empty(self, shape, *, dtype=None, device=None):
        return self._create(self._xp.empty, shape, dtype=dtype, device=device)

    def full(self, shape, fill_value, *, dtype=None, device=None):
        return self._create(self._xp.full, shape, unwrap(fill_value), dtype=dtype, device=device)

    def zeros_like(self, x, /, *, dtype=None, device=None):
        return self._create_like(self._xp.zeros_like, x, dtype=dtype, device=device)

    def ones_like(self, x, /, *, dtype=None, device=None):
        return self._create_like(self._xp.ones_like, x, dtype=dtype, device=device)

    def empty_like(self, x, /, *, dtype=None, device=None):
        return self._create_like(self._xp.empty_like, x, dtype=dtype, device=device)

    def full_like(self, x, /, fill_value, *, dtype=None, device=None):
        return self._create_like(self._xp.full_like, x, unwrap(fill_value), dtype=dtype, device=device)

    def arange(self, start, /, stop=None, step=1, *, dtype=None, device=None):
        return self._create(self._xp.arange, start, stop, step, dtype=dtype, device=device)

    def linspace(self, start, stop, /, num, *, dtype=None, device=None, endpoint=True):
        return self._create(self._xp.linspace, start, stop, num, dtype=dtype, device=device, endpoint=endpoint)

    def eye(self, n_rows, n_cols=None, /, *, k=0, dtype=None, device=None):
        return self._create(self._xp.eye, n_rows, n_cols, k=k, dtype=dtype, device=device)

    def from_dlpack(self, x, /, *, device=None, copy=None):
        return self._new(trace.external(self._xp.from_dlpack, unwrap(x)))

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
        return self._xp.result_type(*[unwrap(a) for a in arrays_and_dtypes])

    def can_cast(self, from_, to, /):
        return self._xp.can_cast(unwrap(from_), to)

    def finfo(self, type, /):
        return dtype_info.finfo(self._xp, unwrap(type))

    def iinfo(self, type, /):
        return self._xp.iinfo(unwrap(type))


def _fft_extension(ns: ArrayNamespace) -> Extension:
    """``xp.fft``: the registry's transforms, and fftfreq and rfftfreq, creating arrays on ns's backend (as arange)."""

    def fftfreq(n, /, *, d=1.0, dtype=None, device=None):
        """The frequencies of an n-point DFT's bins, in cycles per unit of the spacing d.

        ``[0, 1, ..., (n - 1) // 2, -(n // 2), ..., -1] / (d * n)``; no gradient (a creation function).
        """
        return ns._create(ns._xp.fft.fftfreq, _points(n, "fftfreq"), d=d, dtype=dtype, device=device)

    def rfftfreq(n, /, *, d=1.0, dtype=None, device=None):
        """The frequencies of rfft's bins: ``[0, 1, ..., n // 2] / (d * n)``; no gradient."""
        return ns._create(ns._xp.fft.rfftfreq, _points(n, "rfftfreq"), d=d, dtype=dtype, device=device)

    transforms = {name.split(".", 1)[1]: fn for name, fn in NAMESPACE.items() if name.startswith("fft.")}
    return Extension("fft", {**transforms, "fftfreq": fftfreq, "rfftfreq": rfftfreq})


def _points(n, name) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"fft.{name}: n={n!r}; the number of points must be a positive integer")
    return n


# The registry's functions, as the namespace's: one registry, read here and by gdbp.backprop.ops.
for _name, _fn in NAMESPACE.items():
    if "." not in _name:
        setattr(ArrayNamespace, _name, staticmethod(_fn))
for _name, _extension in extensions(NAMESPACE).items():  # xp.linalg, xp.fft
    setattr(ArrayNamespace, _name, _extension)

#: The namespace's functions without a gradient rule, which the backend runs.
PASS_THROUGH = tuple(n for n, f in NAMESPACE.items() if isinstance(f, Primitive) and f.no_gradient and "." not in n)
#: The rest: differentiable, or with outputs that carry no gradient (comparisons, floor...).
DIFFERENTIABLE = tuple(n for n in NAMESPACE if n not in PASS_THROUGH and "." not in n)

_namespaces: dict = {}


def namespace_for(backend) -> ArrayNamespace:
    """The differentiable namespace bound to a backend (one per backend)."""
    ns = _namespaces.get(backend)
    if ns is None:
        ns = _namespaces[backend] = ArrayNamespace(backend)
        backends.register_kernels(ns, TapeKernels(ns))
    return ns
