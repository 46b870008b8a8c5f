"""The Tensor: one backend array, plus the graph node that produced it.

A Tensor is a conforming array object of the array API standard whose
operations are recorded for backprop when a gradient is wanted. It is lean on
purpose (``__slots__``, no graph when nothing requires grad): it sits on the
hot path of every training step. Every Tensor, whoever makes it, is built by
:func:`make`.
"""

from __future__ import annotations

import math
import operator
import sys

from .. import backends
from .errors import GradRequirementError, InPlaceError, ShapeError
from . import trace as _trace
from .mode import state as _mode

__all__ = ["Tensor", "make", "unwrap", "unwrap_key"]

_NOKW: dict = {}
_FLOATING = ("real floating", "complex floating")
_getrefcount = getattr(sys, "getrefcount", None)  # CPython: tells whether a gradient is held elsewhere
_new = object.__new__


# Operator methods: each calls the op of its name (``_inplace`` for ``a += b``).
def _binary_op(name):
    return lambda self, other: apply(OPS[name], (self, other), _NOKW)


def _reflected_op(name):
    return lambda self, other: apply(OPS[name], (other, self), _NOKW)


def _unary_op(name):
    return lambda self: apply(OPS[name], (self,), _NOKW)


def _inplace_op(name, op):
    return lambda self, other: self._inplace(OPS[name], op, other)


class Tensor:
    """An array that can carry a gradient.

    Make one with :func:`gdbp.tensor` (:mod:`gdbp.backprop.creation`). ``data`` is the backend array it
    wraps; operations accept Tensors, arrays of the same backend and Python
    scalars, and give Tensors. Each operator is the op of the same name in
    :mod:`gdbp.backprop.ops` (``a + b`` is ``ops.add(a, b)``).

    Attributes
    ----------
    data : array
        The wrapped backend array (NumPy, CuPy, torch, array-api-strict...).
    grad : Tensor or None
        The gradient accumulated by :meth:`backward` (leaves only).
    requires_grad : bool
        Whether operations on this Tensor are recorded for backprop.
    """

    __slots__ = ("data", "_grad", "_rg", "_node", "_backend", "_vc", "_gbuf", "__weakref__")
    _gdbp_tensor = True
    __array_priority__ = 1000
    __hash__ = object.__hash__

    def __init__(self, data, requires_grad: bool = False):
        if isinstance(data, Tensor):
            raise TypeError("Tensor(data) wraps a backend array; use tensor.detach() to copy a Tensor's value")
        backend = backends.backend_of(data)
        if backend is None:
            raise TypeError(
                f"Tensor wraps a backend array, got {type(data).__name__}; use gdbp.tensor(data) for lists and scalars"
            )
        if type(data) is not backend.array_type:
            data = backend.xp.asarray(data)
        make(data, backend, into=self)
        if requires_grad:
            self.requires_grad = True

    # -- autodiff ----------------------------------------------------------

    @property
    def grad(self):
        """The gradient the backward passes gave this Tensor (summed), or None."""
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if _trace.tracing and _trace.tracer() is not None:
            _trace.tracer().set_grad(self, value)  # inside gdbp.compile: replayed (None), or refused
        self._grad = value

    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if flag and not backends.isdtype(self._backend.xp, self.data.dtype, _FLOATING):
            raise GradRequirementError(
                f"only real floating-point and complex floating-point Tensors can require gradients, "
                f"got dtype {self.data.dtype}; "
                "cast first, e.g. xp.astype(x, xp.float32)"
            )
        if not flag and self._node is not None:
            raise GradRequirementError(
                "requires_grad cannot be turned off on a Tensor computed from others; use tensor.detach()"
            )
        self._rg = bool(flag)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        """Set requires_grad in place and return self (as in PyTorch)."""
        self.requires_grad = flag
        return self

    @property
    def is_leaf(self) -> bool:
        """True for Tensors made by the user rather than computed from others."""
        return self._node is None

    def backward(self, grad=None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Backpropagate: add d(self)/d(leaf), weighted by ``grad``, into each leaf's ``.grad``.

        Parameters
        ----------
        grad : Tensor or array, optional
            The seed gradient, in self's shape. Needed unless self holds a
            single element.
        retain_graph : bool, optional
            Keep the saved values so that the graph can be swept again.
        create_graph : bool
            Record the backward pass too, so that ``.grad`` can itself be
            differentiated (higher-order derivatives).

        Raises
        ------
        GradRequirementError
            self does not require grad, or it has many elements and no seed.
        """
        if not self._rg:
            raise GradRequirementError(
                "backward() on a Tensor that does not require grad: nothing it was computed from "
                "requires grad (make inputs with gdbp.tensor(..., requires_grad=True), outside gdbp.no_grad())"
            )
        if grad is None:
            if self.data.ndim and math.prod(self.shape) != 1:
                raise GradRequirementError(
                    f"backward() on a non-scalar Tensor of shape {tuple(self.shape)} needs a seed gradient: "
                    "pass grad= (e.g. backward(xp.ones_like(y))) or reduce to a scalar first (y.sum())"
                )
            if backends.isdtype(self._backend.xp, self.data.dtype, "complex floating"):
                # As in PyTorch: a complex output has no gradient of its own; which real cost is meant must be said.
                raise GradRequirementError(
                    f"backward() on a complex Tensor (dtype {self.data.dtype}) needs a seed gradient: "
                    "reduce it to a real cost first (xp.real(y), xp.abs(y) ** 2, ...) or pass grad="
                )
            seed = self._backend.xp.ones_like(self.data)
        else:
            seed = grad if (create_graph and isinstance(grad, Tensor)) else unwrap(grad)
            backends.check_fits(unwrap(seed), self._backend, None, None, "backward(): the seed gradient",
                                "the Tensor", "; move it with gdbp.transfer(grad, backend)")
            if tuple(seed.shape) != tuple(self.shape):
                raise ShapeError(
                    f"backward(): seed gradient of shape {tuple(seed.shape)} does not match the Tensor's shape {tuple(self.shape)}"
                )
        backprop([self], [seed], create_graph=create_graph, retain_graph=retain_graph)

    def zero_grad_(self, buffer=None) -> None:
        """Forget the gradient (``grad = None``), keeping its memory for the next backward pass.

        On backends that write in place, the array of a gradient nobody else
        holds becomes the buffer the next backward pass writes this Tensor's
        gradient into, where the gradient rule can (the weight gradient of a
        linear layer, say), instead of allocating a new one each step. A
        gradient still referenced elsewhere (``g = w.grad``) is left alone.

        Parameters
        ----------
        buffer : array, optional
            Lend this array instead (e.g. the Tensor's slice of an
            optimizer's flat gradient buffer): the next backward pass may
            write the gradient into it. It must be of the Tensor's backend,
            shape and dtype, and not be read by anyone until then.
        """
        if _trace.tracing and _trace.tracer() is not None:
            return _trace.opaque(self._forget_grad, buffer)  # replayed, so that a replay's gradient starts anew
        self._forget_grad(buffer)

    def _forget_grad(self, buffer=None) -> None:
        g = self._grad
        self._grad = None
        if buffer is not None:
            self._gbuf = buffer
            return
        if not isinstance(g, Tensor) or g._rg or not self._backend.mutable or _getrefcount is None:
            return
        # Two references each: the local name and getrefcount's argument (the Tensor),
        # the Tensor's slot and the argument (the array). More means someone else holds it.
        if _getrefcount(g) == 2 and _getrefcount(g.data) == 2:
            if self._backend.kernels.reusable(g.data):
                self._gbuf = g.data

    def detach(self) -> "Tensor":
        """The same values, cut from the graph (shares memory and version counter)."""
        return make(self.data, self._backend, vc=self._version_counter())

    def _version_counter(self):
        if self._vc is None:
            self._vc = [0]
        return self._vc

    def mark_changed(self) -> None:
        """Record that ``data`` was changed in place behind gdbp's back (through a view, say).

        Graphs that saved the old value then refuse to backpropagate through
        it (:class:`InPlaceError`) rather than give a wrong gradient. gdbp's
        own in-place operations (``x += 1``, ``x[i] = v``, an optimizer's
        step) record their changes themselves.
        """
        if self._vc is not None:
            self._vc[0] += 1

    # -- the array object --------------------------------------------------

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):  # np.exp(t), ndarray * t: gdbp's ops (ufuncs.py)
        return array_ufunc(ufunc, method, inputs, kwargs)

    def __array__(self, dtype=None, copy=None):  # np.asarray(t): CPU values, refused if t requires grad
        return host_values(self, dtype, copy)

    def __array_namespace__(self, *, api_version=None):
        """gdbp's differentiable namespace for this Tensor's backend."""
        if api_version is not None and api_version not in ("2022.12", "2023.12", "2024.12"):
            raise ValueError(f"unsupported array API version {api_version!r}; gdbp implements 2024.12")
        return namespace_for(self._backend)

    @property
    def backend(self):
        """The :class:`gdbp.backends.Backend` the data lives on."""
        return self._backend

    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return backends.device_of(self.data)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return math.prod(self.data.shape)

    @property
    def T(self) -> "Tensor":
        if self.ndim != 2:
            raise ValueError(f"x.T is defined for 2-D Tensors only, got {self.ndim}-D; use x.mT or permute_dims")
        return OPS["permute_dims"](self, (1, 0))

    @property
    def mT(self) -> "Tensor":
        return OPS["matrix_transpose"](self)

    def to_device(self, device, /, *, stream=None) -> "Tensor":
        """This Tensor on another device of the same library (differentiable)."""
        return OPS["to_device"](self, device)

    def to(self, backend) -> "Tensor":
        """This Tensor on another backend (an explicit copy; differentiable)."""
        return OPS["transfer"](self, backend)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        return backends.dlpack(self.data, stream=stream, max_version=max_version, dl_device=dl_device, copy=copy)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    def _host(self, what: str):
        """The data, for a read on the host; refused while gdbp.compile traces a value (it cannot be replayed)."""
        if _trace.tracing:
            t = _trace.tracer()
            if t is not None:
                t.host_read(self, what)
        return self.data

    def __bool__(self) -> bool:
        return bool(self._host("bool(x) (an if or while on an array)"))

    def __float__(self) -> float:
        return float(self._host("float(x)"))

    def __int__(self) -> int:
        return int(self._host("int(x)"))

    def __index__(self) -> int:
        # Not operator.index(self.data): CuPy's arrays have no __index__. A 0-d integer Tensor only.
        return self._backend.kernels.index(self._host("an index from an array"))

    def __complex__(self) -> complex:
        return complex(self._host("complex(x)"))

    def item(self) -> float | int | bool:
        """The single value as a Python number (a host round-trip on GPUs)."""
        if self.size != 1:
            raise ValueError(f"item() needs a single-element Tensor, got shape {self.shape}")
        data = self._host("x.item()")
        return data.item() if hasattr(data, "item") else float(data)

    def numpy(self):
        """The values as a host NumPy array (a copy from the GPU for CuPy)."""
        return backends.to_numpy(self._host("x.numpy()"))

    def tolist(self):
        return self.numpy().tolist()

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d Tensor")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i, ...]  # the standard wants every axis indexed, or an ellipsis

    def __repr__(self) -> str:
        extra = ", requires_grad=True" if self._rg else ""
        return f"Tensor({self.data!r}{extra}, backend={self._backend.spec!r})"

    # -- a few methods PyTorch users reach for --------------------------------

    def sum(self, axis=None, keepdims=False) -> "Tensor":
        return OPS["sum"](self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False) -> "Tensor":
        return OPS["mean"](self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False) -> "Tensor":
        return OPS["max"](self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False) -> "Tensor":
        return OPS["min"](self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return OPS["reshape"](self, shape)

    def astype(self, dtype) -> "Tensor":
        return OPS["astype"](self, dtype)

    # -- operators: each is the op of the same name (the arithmetic ones are set below) ----

    __eq__, __ne__ = _binary_op("equal"), _binary_op("not_equal")
    __lt__, __le__ = _binary_op("less"), _binary_op("less_equal")
    __gt__, __ge__ = _binary_op("greater"), _binary_op("greater_equal")
    __neg__, __pos__ = _unary_op("negative"), _unary_op("positive")
    __abs__, __invert__ = _unary_op("abs"), _unary_op("bitwise_invert")

    def __getitem__(self, key):
        return apply(OPS["getitem"], (self,), {"key": unwrap_key(key)})

    # -- in place ------------------------------------------------------------

    def __setitem__(self, key, value) -> None:
        key = unwrap_key(key)
        if _mode.grad_enabled and (self._rg or (isinstance(value, Tensor) and value._rg)):
            self._check_leaf("x[key] = value")
            self._rebind(apply(OPS["setitem"], (self, value), {"key": key}))
        else:
            if not self._backend.mutable:
                raise TypeError(f"arrays of backend {self._backend.spec} cannot be written in place")
            self.data[key] = self._operand(value, OPS["setitem"])
            if _trace.tracing and _trace.tracer() is not None:
                _trace.tracer().setitem(self, key, value)
            self.mark_changed()

    def _operand(self, other, prim):
        """other's raw value for an in-place write: a scalar or an array of self's backend, never a silent copy."""
        if isinstance(self._vc, Borrowed):
            own(self)  # first, a write into an array lent by a caller of grad takes a copy (functional.Borrowed)
        if isinstance(other, Tensor):
            if other._backend is not self._backend:
                raise backends.BackendMismatchError(
                    f"in-place {prim.name}: Tensors from two backends met: {self._backend.spec} and "
                    f"{other._backend.spec}; move one with tensor.to(backend)"
                )
            return other.data
        if type(other) is not self._backend.array_type:
            check_scalar_or_array(other, self._backend, prim)
        return other

    def _check_leaf(self, what: str) -> None:
        if self._rg and self._node is None and type(self._vc) is not Received:  # (grad's own leaves may)
            raise InPlaceError(
                f"{what}: a leaf Tensor that requires grad cannot be changed in place while gradients are recorded "
                "(its gradient would describe a value that no longer exists); do it inside gdbp.no_grad(), "
                "as an optimizer does, or use an out-of-place op"
            )

    def _rebind(self, new: "Tensor") -> None:
        """Take the value and graph node of an out-of-place result computed from self."""
        if tuple(new.shape) != tuple(self.shape):
            raise ShapeError(
                f"in-place op would change the shape from {tuple(self.shape)} to {tuple(new.shape)}; use an out-of-place op"
            )
        if new.dtype != self.dtype:
            raise TypeError(
                f"in-place op would change the dtype from {self.dtype} to {new.dtype}; use an out-of-place op"
            )
        self.data = new.data
        self._node = new._node
        self._rg = new._rg
        # The old buffer is left as it was (values saved from it stay valid); count the new one's versions.
        self._vc = new._vc

    def _inplace(self, prim, op, other) -> "Tensor":
        if _mode.grad_enabled and (self._rg or (isinstance(other, Tensor) and other._rg)):
            self._check_leaf(f"in-place {prim.name}")
            self._rebind(apply(prim, (self, other), _NOKW))
        elif _trace.tracing and _trace.tracer() is not None:
            _trace.tracer().inplace_op(self, prim, other)  # gdbp.compile traces: recorded, then written
        else:
            raw = self._operand(other, prim)
            if self._backend.mutable:
                self.data = op(self.data, raw) if prim.inplace is None else prim.inplace(self._backend.xp, self.data, raw)
            else:
                self.data = apply(prim, (self, other), _NOKW).data
            self.mark_changed()
        return self


#: The arithmetic operators: ``a + b`` is ``ops.add(a, b)``, ``b + a`` with ``a`` a Tensor is
#: ``ops.add(b, a)`` (``__radd__``), and ``a += b`` is ``ops.add`` in place (``__iadd__``).
ARITHMETIC = {
    "add": "add", "sub": "subtract", "mul": "multiply", "truediv": "divide", "floordiv": "floor_divide",
    "mod": "remainder", "pow": "pow", "matmul": "matmul", "and": "bitwise_and", "or": "bitwise_or",
    "xor": "bitwise_xor", "lshift": "bitwise_left_shift", "rshift": "bitwise_right_shift",
}
for _symbol, _op in ARITHMETIC.items():
    setattr(Tensor, f"__{_symbol}__", _binary_op(_op))
    setattr(Tensor, f"__r{_symbol}__", _reflected_op(_op))
    setattr(Tensor, f"__i{_symbol}__", _inplace_op(_op, getattr(operator, f"i{_symbol}")))


def make(data, backend, node=None, vc=None, into=None) -> Tensor:
    """The one constructor: a Tensor around a backend array, without checks (the engine's fast path).

    ``node`` is the graph node that produced it (then it requires grad);
    ``vc`` a version counter to share (a view's, or a detached copy's);
    ``into`` a Tensor being initialised (``Tensor.__init__``, after its checks).
    """
    t = _new(Tensor) if into is None else into
    t.data = data
    t._grad = None
    t._rg = node is not None
    t._node = node
    t._backend = backend
    t._vc = vc
    t._gbuf = None
    return t


def unwrap(x):
    """The backend array inside a Tensor; anything else as it is."""
    return x.data if isinstance(x, Tensor) else x


def unwrap_key(key):
    """An index with its Tensors (integer arrays, masks) replaced by their arrays."""
    if isinstance(key, Tensor):
        return key.data
    if isinstance(key, tuple):
        return tuple(unwrap(k) for k in key)
    if isinstance(key, list):
        raise TypeError("index with a tuple or an integer array, not a list (the array API standard has no list indices)")
    return key


# The engine builds Tensors, and the ops register into the registry the operators read: both come after.
from .engine import apply, check_scalar_or_array  # noqa: E402
from .primitive import OPS  # noqa: E402
from .sweep import backprop  # noqa: E402
from .namespace import namespace_for  # noqa: E402
from .ufuncs import array_ufunc, host_values  # noqa: E402
from .functional import Borrowed, Received, own  # noqa: E402
