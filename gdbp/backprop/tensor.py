"""The Tensor: one backend array, plus the graph node that produced it.

A Tensor is a conforming array object of the array API standard whose
operations are recorded for backprop when a gradient is wanted. It is lean on
purpose (``__slots__``, no graph when nothing requires grad): it sits on the
hot path of every training step.
"""

from __future__ import annotations

import math
import operator
import sys

from .errors import GradRequirementError, InPlaceError, ShapeError

__all__ = ["Tensor", "tensor"]

_NOKW: dict = {}
_getrefcount = getattr(sys, "getrefcount", None)  # CPython: tells whether a gradient is held elsewhere


class Tensor:
    """An array that can carry a gradient.

    Make one with :func:`gdbp.tensor`. ``data`` is the backend array it
    wraps; operations accept Tensors, arrays of the same backend and Python
    scalars, and give Tensors.

    Attributes
    ----------
    data : array
        The wrapped backend array (NumPy, CuPy, torch, array-api-strict...).
    grad : Tensor or None
        The gradient accumulated by :meth:`backward` (leaves only).
    requires_grad : bool
        Whether operations on this Tensor are recorded for backprop.
    """

    __slots__ = ("data", "grad", "_rg", "_node", "_backend", "_vc", "_gbuf", "__weakref__")
    _gdbp_tensor = True
    # NumPy must hand `ndarray * tensor` to Tensor.__rmul__ instead of looping over elements.
    __array_ufunc__ = None
    __array_priority__ = 1000
    __hash__ = object.__hash__

    def __init__(self, data, requires_grad: bool = False):
        from .. import backends

        if isinstance(data, Tensor):
            raise TypeError("Tensor(data) wraps a backend array; use tensor.detach() to copy a Tensor's value")
        backend = backends.backend_of(data)
        if backend is None:
            raise TypeError(
                f"Tensor wraps a backend array, got {type(data).__name__}; use gdbp.tensor(data) for lists and scalars"
            )
        if type(data) is not backend.array_type:
            data = backend.xp.asarray(data)
        self.data = data
        self.grad = None
        self._rg = False
        self._node = None
        self._backend = backend
        self._vc = None
        self._gbuf = None
        if requires_grad:
            self.requires_grad = True

    # -- autodiff ----------------------------------------------------------

    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if flag and not self._backend.xp.isdtype(self.data.dtype, "real floating"):
            raise GradRequirementError(
                f"only real floating-point Tensors can require gradients, got dtype {self.data.dtype}; "
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
        xp = self._backend.xp
        if grad is None:
            if self.data.ndim and math.prod(self.shape) != 1:
                raise GradRequirementError(
                    f"backward() on a non-scalar Tensor of shape {tuple(self.shape)} needs a seed gradient: "
                    "pass grad= (e.g. backward(xp.ones_like(y))) or reduce to a scalar first (y.sum())"
                )
            seed = xp.ones_like(self.data)
        else:
            seed = grad if (create_graph and isinstance(grad, Tensor)) else _unwrap(grad)
            if tuple(seed.shape) != tuple(self.shape):
                raise ShapeError(
                    f"backward(): seed gradient of shape {tuple(seed.shape)} does not match the Tensor's shape {tuple(self.shape)}"
                )
        _engine.backprop([self], [seed], create_graph=create_graph, retain_graph=retain_graph)

    def zero_grad_(self) -> None:
        """Forget the gradient (``grad = None``), keeping its memory for the next backward pass.

        On backends that write in place, the array of a gradient nobody else
        holds becomes the buffer the next backward pass writes this Tensor's
        gradient into, where the gradient rule can (the weight gradient of a
        linear layer, say), instead of allocating a new one each step. A
        gradient still referenced elsewhere (``g = w.grad``) is left alone.
        """
        g = self.grad
        self.grad = None
        if not isinstance(g, Tensor) or g._rg or not self._backend.mutable or _getrefcount is None:
            return
        # Two references each: the local name and getrefcount's argument (the Tensor),
        # the Tensor's slot and the argument (the array). More means someone else holds it.
        if _getrefcount(g) == 2 and _getrefcount(g.data) == 2:
            from ..backends import kernels

            if kernels(self._backend.xp).reusable(g.data):
                self._gbuf = g.data

    def detach(self) -> "Tensor":
        """The same values, cut from the graph (shares memory and version counter)."""
        out = _wrap(self.data, self._backend)
        out._vc = self._version_counter()
        return out

    def _version_counter(self):
        if self._vc is None:
            self._vc = [0]
        return self._vc

    def _bump_version(self) -> None:
        """Record an in-place change, so that stale saved values are caught."""
        if self._vc is not None:
            self._vc[0] += 1

    # -- the array object --------------------------------------------------

    def __array_namespace__(self, *, api_version=None):
        """gdbp's differentiable namespace for this Tensor's backend."""
        if api_version is not None and api_version not in ("2022.12", "2023.12", "2024.12"):
            raise ValueError(f"unsupported array API version {api_version!r}; gdbp implements 2024.12")
        return self._backend.namespace

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
        from ..backends import device_of

        return device_of(self.data)

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
        return _ops.permute_dims(self, (1, 0))

    @property
    def mT(self) -> "Tensor":
        return _ops.matrix_transpose(self)

    def to_device(self, device, /, *, stream=None) -> "Tensor":
        """This Tensor on another device of the same library (differentiable)."""
        return _ops.to_device(self, device)

    def to(self, backend) -> "Tensor":
        """This Tensor on another backend (an explicit copy; differentiable)."""
        return _ops.transfer(self, backend)

    def __dlpack__(self, **kw):
        return self.data.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __index__(self) -> int:
        return operator.index(self.data)

    def __complex__(self) -> complex:
        return complex(self.data)

    def item(self) -> float | int | bool:
        """The single value as a Python number (a host round-trip on GPUs)."""
        if self.size != 1:
            raise ValueError(f"item() needs a single-element Tensor, got shape {self.shape}")
        value = self.data.item() if hasattr(self.data, "item") else float(self.data)
        return value

    def numpy(self):
        """The values as a host NumPy array (a copy from the GPU for CuPy)."""
        from ..backends import to_numpy

        return to_numpy(self.data)

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
        body = repr(self.data)
        extra = ", requires_grad=True" if self._rg else ""
        return f"Tensor({body}{extra}, backend={self._backend.spec!r})"

    # -- a few methods PyTorch users reach for --------------------------------

    def sum(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.min(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops.reshape(self, shape)

    def astype(self, dtype) -> "Tensor":
        return _ops.astype(self, dtype)

    # -- operators ---------------------------------------------------------

    def __add__(self, other):
        return _apply(_ops.add, (self, other), _NOKW)

    def __radd__(self, other):
        return _apply(_ops.add, (other, self), _NOKW)

    def __sub__(self, other):
        return _apply(_ops.subtract, (self, other), _NOKW)

    def __rsub__(self, other):
        return _apply(_ops.subtract, (other, self), _NOKW)

    def __mul__(self, other):
        return _apply(_ops.multiply, (self, other), _NOKW)

    def __rmul__(self, other):
        return _apply(_ops.multiply, (other, self), _NOKW)

    def __truediv__(self, other):
        return _apply(_ops.divide, (self, other), _NOKW)

    def __rtruediv__(self, other):
        return _apply(_ops.divide, (other, self), _NOKW)

    def __floordiv__(self, other):
        return _apply(_ops.floor_divide, (self, other), _NOKW)

    def __rfloordiv__(self, other):
        return _apply(_ops.floor_divide, (other, self), _NOKW)

    def __mod__(self, other):
        return _apply(_ops.remainder, (self, other), _NOKW)

    def __rmod__(self, other):
        return _apply(_ops.remainder, (other, self), _NOKW)

    def __pow__(self, other):
        return _apply(_ops.pow, (self, other), _NOKW)

    def __rpow__(self, other):
        return _apply(_ops.pow, (other, self), _NOKW)

    def __matmul__(self, other):
        return _apply(_ops.matmul, (self, other), _NOKW)

    def __rmatmul__(self, other):
        return _apply(_ops.matmul, (other, self), _NOKW)

    def __neg__(self):
        return _apply(_ops.negative, (self,), _NOKW)

    def __pos__(self):
        return _apply(_ops.positive, (self,), _NOKW)

    def __abs__(self):
        return _apply(_ops.abs, (self,), _NOKW)

    def __invert__(self):
        return _apply(_ops.bitwise_invert, (self,), _NOKW)

    def __and__(self, other):
        return _apply(_ops.bitwise_and, (self, other), _NOKW)

    def __rand__(self, other):
        return _apply(_ops.bitwise_and, (other, self), _NOKW)

    def __or__(self, other):
        return _apply(_ops.bitwise_or, (self, other), _NOKW)

    def __ror__(self, other):
        return _apply(_ops.bitwise_or, (other, self), _NOKW)

    def __xor__(self, other):
        return _apply(_ops.bitwise_xor, (self, other), _NOKW)

    def __rxor__(self, other):
        return _apply(_ops.bitwise_xor, (other, self), _NOKW)

    def __lshift__(self, other):
        return _apply(_ops.bitwise_left_shift, (self, other), _NOKW)

    def __rlshift__(self, other):
        return _apply(_ops.bitwise_left_shift, (other, self), _NOKW)

    def __rshift__(self, other):
        return _apply(_ops.bitwise_right_shift, (self, other), _NOKW)

    def __rrshift__(self, other):
        return _apply(_ops.bitwise_right_shift, (other, self), _NOKW)

    def __eq__(self, other):
        return _apply(_ops.equal, (self, other), _NOKW)

    def __ne__(self, other):
        return _apply(_ops.not_equal, (self, other), _NOKW)

    def __lt__(self, other):
        return _apply(_ops.less, (self, other), _NOKW)

    def __le__(self, other):
        return _apply(_ops.less_equal, (self, other), _NOKW)

    def __gt__(self, other):
        return _apply(_ops.greater, (self, other), _NOKW)

    def __ge__(self, other):
        return _apply(_ops.greater_equal, (self, other), _NOKW)

    def __getitem__(self, key):
        return _apply(_ops.getitem, (self,), {"key": _unwrap_key(key)})

    # -- in place ------------------------------------------------------------

    def __setitem__(self, key, value) -> None:
        key = _unwrap_key(key)
        if _engine._grad_enabled and (self._rg or (isinstance(value, Tensor) and value._rg)):
            self._check_leaf("x[key] = value")
            self._rebind(_apply(_ops.setitem, (self, value), {"key": key}))
        else:
            if not self._backend.mutable:
                raise TypeError(f"arrays of backend {self._backend.spec} cannot be written in place")
            self.data[key] = self._operand(value, _ops.setitem)
            self._bump_version()

    def _operand(self, other, prim):
        """other's raw value for an in-place write: a scalar or an array of self's backend, never a silent copy."""
        if isinstance(other, Tensor):
            if other._backend is not self._backend:
                from ..backends import BackendMismatchError

                raise BackendMismatchError(
                    f"in-place {prim.name}: Tensors from two backends met: {self._backend.spec} and "
                    f"{other._backend.spec}; move one with tensor.to(backend)"
                )
            return other.data
        if type(other) is not self._backend.array_type:
            _engine._check_scalar_or_array(other, self._backend, prim)
        return other

    def _check_leaf(self, what: str) -> None:
        if self._rg and self._node is None:
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
        if _engine._grad_enabled and (self._rg or (isinstance(other, Tensor) and other._rg)):
            self._check_leaf(f"in-place {prim.name}")
            self._rebind(_apply(prim, (self, other), _NOKW))
        else:
            raw = self._operand(other, prim)
            if self._backend.mutable:
                self.data = op(self.data, raw)
            else:
                self.data = _apply(prim, (self, other), _NOKW).data
            self._bump_version()
        return self

    def __iadd__(self, other):
        return self._inplace(_ops.add, operator.iadd, other)

    def __isub__(self, other):
        return self._inplace(_ops.subtract, operator.isub, other)

    def __imul__(self, other):
        return self._inplace(_ops.multiply, operator.imul, other)

    def __itruediv__(self, other):
        return self._inplace(_ops.divide, operator.itruediv, other)

    def __ifloordiv__(self, other):
        return self._inplace(_ops.floor_divide, operator.ifloordiv, other)

    def __imod__(self, other):
        return self._inplace(_ops.remainder, operator.imod, other)

    def __ipow__(self, other):
        return self._inplace(_ops.pow, operator.ipow, other)

    def __imatmul__(self, other):
        return self._inplace(_ops.matmul, operator.imatmul, other)

    def __iand__(self, other):
        return self._inplace(_ops.bitwise_and, operator.iand, other)

    def __ior__(self, other):
        return self._inplace(_ops.bitwise_or, operator.ior, other)

    def __ixor__(self, other):
        return self._inplace(_ops.bitwise_xor, operator.ixor, other)

    def __ilshift__(self, other):
        return self._inplace(_ops.bitwise_left_shift, operator.ilshift, other)

    def __irshift__(self, other):
        return self._inplace(_ops.bitwise_right_shift, operator.irshift, other)


_new = object.__new__


def _wrap(data, backend, node=None) -> Tensor:
    """A Tensor around a backend array, without checks (the engine's fast path)."""
    t = _new(Tensor)
    t.data = data
    t.grad = None
    t._rg = node is not None
    t._node = node
    t._backend = backend
    t._vc = None
    t._gbuf = None
    return t


def _unwrap(x):
    return x.data if isinstance(x, Tensor) else x


def _unwrap_key(key):
    """An index with its Tensors (integer arrays, masks) replaced by their arrays."""
    if isinstance(key, Tensor):
        return key.data
    if isinstance(key, tuple):
        return tuple(k.data if isinstance(k, Tensor) else k for k in key)
    if isinstance(key, list):
        raise TypeError("index with a tuple or an integer array, not a list (the array API standard has no list indices)")
    return key


def tensor(data, requires_grad: bool = False, backend=None, dtype=None) -> Tensor:
    """Make a Tensor.

    Parameters
    ----------
    data : array, Tensor, nested list or scalar
        An array is wrapped without a copy (it shares memory, like
        ``torch.as_tensor``) and keeps its backend and dtype. Lists and
        scalars are created on ``backend``; Python floats become float32,
        the default dtype for parameters.
    requires_grad : bool
        Record operations on it for backprop (floating dtypes only).
    backend : str or Backend, optional
        Where lists and scalars are created (default: :func:`gdbp.use`'s
        choice). An array on another backend is an error: move it
        explicitly with :func:`gdbp.transfer`.
    dtype : dtype, optional
        The dtype for lists and scalars.
    """
    from .. import backends

    if isinstance(data, Tensor):
        data = data.data
    source = backends.backend_of(data)
    if source is not None:
        if backend is not None and backends.resolve(backend) is not source:
            raise backends.BackendMismatchError(
                f"gdbp.tensor: the array lives on {source.spec} but backend={backends.resolve(backend).spec} "
                "was asked for; move it explicitly with gdbp.transfer(x, backend)"
            )
        if dtype is not None and data.dtype != dtype:
            raise TypeError(
                f"gdbp.tensor: the array has dtype {data.dtype} but dtype={dtype} was asked for; "
                "cast it explicitly with xp.astype"
            )
        return Tensor(data, requires_grad=requires_grad)
    target = backends.resolve(backend)
    xp = target.xp
    if dtype is None and _holds_float(data):
        dtype = xp.float32
    try:
        array = xp.asarray(data, dtype=dtype, device=target.device)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"gdbp.tensor: cannot make an array from {type(data).__name__}: {exc}") from None
    if not xp.isdtype(array.dtype, ("bool", "numeric")):  # NumPy makes object or string arrays of anything
        raise TypeError(f"gdbp.tensor: cannot make a numeric array from {type(data).__name__} (got dtype {array.dtype})")
    return Tensor(array, requires_grad=requires_grad)


def _holds_float(data) -> bool:
    if isinstance(data, float):
        return True
    if isinstance(data, (list, tuple)):
        return any(_holds_float(d) for d in data)
    return False


from . import engine as _engine  # noqa: E402  (the engine needs Tensor defined first)
from . import ops as _ops  # noqa: E402
from .engine import apply as _apply  # noqa: E402
