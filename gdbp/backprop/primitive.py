"""Primitives: a forward function beside its vector-Jacobian products, and the one registry of them.

A primitive is defined in one place, with :func:`defprim` (or the
:func:`unary` and :func:`binary` shorthands): the forward on raw arrays of
namespace ``xp``, one VJP per positional argument, and the flags that tell
the engine what the rules read. It is registered under its name, where
:mod:`gdbp.backprop.ops` and the differentiable namespace both find it; so
is a public function composed from primitives (:func:`defn`). Adding an op
is one entry in one file.

Naming: a primitive's Python name ends in ``_p`` (``sum_p``, as in JAX); the
public name is the standard's (``ops.sum``, ``xp.sum``). Where the public
function only rearranges arguments before calling the primitive (``clip``,
``take``), the primitive stays private and the function is what is registered.

Rules are written with namespace functions only, and with ``kernels(xp)``
for what the standard lacks (scatter-add, transfers, fast paths): on a plain
backward pass ``xp`` is the backend's namespace and the arguments raw arrays;
on a recorded one (``create_graph=True``) ``xp`` is gdbp's differentiable
namespace and they are Tensors, so the same rule records its own graph and
higher-order derivatives come for free.
"""

from __future__ import annotations

import inspect
from typing import Callable

from .. import backends

__all__ = ["Primitive", "OPS", "NAMESPACE", "defprim", "defn", "unary", "binary", "no_grad_op", "no_gradient",
           "axes", "conj", "Extension", "extensions"]

#: Every public op by name: primitives and functions composed from them (what ``gdbp.backprop.ops`` holds).
OPS: dict[str, Callable] = {}
#: The subset that gdbp's differentiable array namespace exposes (the standard's names, and a few extras).
NAMESPACE: dict[str, Callable] = {}


class Primitive:
    """A differentiable operation: a forward function beside its VJPs.

    Parameters
    ----------
    name : str
        The operation's name, as errors and the namespace show it.
    forward : callable
        ``forward(xp, *args, **kw) -> array`` on raw arrays of namespace ``xp``.
        Positional arguments are the op's inputs (arrays or scalars);
        keyword arguments are its options (axes, shapes, index keys).
    vjps : tuple of callables
        One per positional argument: ``vjp(xp, g, ans, *args, **kw)`` gives
        the gradient for that argument from the output gradient ``g``
        (``None`` in the tuple: no gradient flows to that argument).
    vjp_all : callable, optional
        Instead of ``vjps``, one function giving a tuple of gradients for all
        positional arguments at once (for ops taking any number of arrays).
    vjps_into : tuple of callables, optional
        Beside ``vjps``: ``vjp_into(xp, out, g, ans, *args, **kw)`` writes
        the gradient into the array ``out`` where the backend can (else it
        returns a new one). The sweep uses it for a leaf whose previous
        gradient buffer was recycled (:meth:`Tensor.zero_grad_`), so that a
        training step does not allocate its largest gradients anew.
    broadcasts : bool
        The op broadcasts its array arguments; the engine sums gradients back
        to each argument's shape (one shared helper, ``unbroadcast``).
    needs_ans : bool
        The VJPs read ``ans``; an in-place change of the output before the
        backward pass is then an error rather than a wrong gradient.
    linear : bool
        The VJPs do not read the inputs' values (only shapes), so inputs may
        be changed in place afterwards.
    differentiable : bool
        False for ops whose outputs carry no gradient because it is zero
        (comparisons, floor, sign...): their outputs never require grad.
    view : bool
        The output may share memory with the first argument (reshape,
        slicing...): both then share one version counter, so that an
        in-place change through either is seen by the checks.
    residuals : bool
        The forward returns ``(ans, res)``: intermediate values the VJPs
        reuse instead of recomputing them (e.g. softmax inside
        cross-entropy). The VJPs get them as the keyword ``res``, which is
        None when the backward pass is itself recorded (they then recompute
        from the inputs, so that higher derivatives stay right).
    multiple : bool
        The forward may return a tuple of arrays (a named tuple keeps its
        type): each becomes a Tensor, and the VJPs get ``g`` as a tuple with
        one entry per output (``None`` where no gradient arrived).
    moves : bool
        The output lives on another backend or device than the inputs (a
        transfer): the engine takes the output's backend from the result.
    no_gradient : bool
        The op has no gradient rule (unique values, sorting indices...):
        integer and boolean outputs carry none, and a gradient that reaches a
        floating output raises :class:`NotDifferentiableError`.
    signature : inspect.Signature, optional
        The public signature (default: the forward's, without ``xp``).
    inplace : callable, optional
        ``inplace(xp, x, y)``: ``x op= y`` written into x's buffer, for an
        in-place operator outside a recorded graph on a backend that writes
        in place, where the library's own in-place operator gives other
        values than ``forward`` (NumPy's ``//=`` at infinities).
    """

    __slots__ = ("name", "forward", "vjps", "vjp_all", "vjps_into", "broadcasts", "needs_ans", "linear",
                 "differentiable", "view", "residuals", "multiple", "moves", "no_gradient", "inplace", "plain", "_signature")

    def __init__(self, name, forward, vjps=(), *, vjp_all=None, vjps_into=None, broadcasts=False,
                 needs_ans=False, linear=False, differentiable=True, view=False, residuals=False,
                 multiple=False, moves=False, no_gradient=False, signature=None, inplace=None):
        self.name = name
        self.forward = forward
        self.vjps = tuple(vjps) if vjps is not None else ()
        self.vjp_all = vjp_all
        self.vjps_into = vjps_into
        self.broadcasts = broadcasts
        self.needs_ans = needs_ans
        self.linear = linear
        self.differentiable = differentiable
        self.view = view
        self.residuals = residuals
        self.multiple = multiple
        self.moves = moves
        self.no_gradient = no_gradient
        self.inplace = inplace
        # One output of the inputs' backend, no residuals: the engine's shortest path.
        self.plain = not (multiple or residuals or moves)
        self._signature = signature

    def __call__(self, *args, **kw):
        return apply(self, args, kw)

    @property
    def __signature__(self) -> inspect.Signature:
        """The op's public signature: the forward's, without the namespace argument."""
        if self._signature is None:
            sig = inspect.signature(self.forward)
            self._signature = sig.replace(parameters=list(sig.parameters.values())[1:])
        return self._signature

    def __repr__(self):
        return f"<gdbp primitive {self.name}>"


def _register(name: str, fn, namespace: bool) -> None:
    if name in OPS:
        raise ValueError(f"two ops are registered under the name {name!r}")
    OPS[name] = fn
    if namespace:
        NAMESPACE[name] = fn


def defprim(name: str, forward, *vjps, public: bool = True, namespace: bool = True, **flags) -> Primitive:
    """Define a primitive and register it under ``name``.

    Parameters
    ----------
    name : str
        The op's public name (the standard's, where it has one).
    forward : callable
        ``forward(xp, *args, **kw)``; its signature, without ``xp``, is the op's.
    *vjps : callable or None
        One VJP per positional argument (see :class:`Primitive`).
    public : bool
        Register it (in :data:`OPS`); False for a primitive that a public
        function wraps (the function is registered instead).
    namespace : bool
        Also expose it in gdbp's differentiable array namespace.
    **flags
        Any of :class:`Primitive`'s keyword parameters.
    """
    prim = Primitive(name, forward, vjps, **flags)
    if public:
        _register(name, prim, namespace)
    return prim


def defn(fn=None, *, name: str | None = None, namespace: bool = True):
    """Decorator: register a public function composed from primitives under its name."""

    def register(f):
        _register(name or f.__name__, f, namespace)
        return f

    return register(fn) if fn is not None else register


_UNARY = inspect.Signature([inspect.Parameter("x", inspect.Parameter.POSITIONAL_ONLY)])
_BINARY = inspect.Signature([inspect.Parameter("x1", inspect.Parameter.POSITIONAL_ONLY),
                             inspect.Parameter("x2", inspect.Parameter.POSITIONAL_ONLY)])


def unary(name: str, forward, vjp, **flags) -> Primitive:
    """An elementwise op of one array, ``name(x, /)``."""
    return defprim(name, forward, vjp, signature=_UNARY, **flags)


def binary(name: str, forward, vjp_x, vjp_y, **flags) -> Primitive:
    """An elementwise op of two arrays that broadcast, ``name(x1, x2, /)``."""
    return defprim(name, forward, vjp_x, vjp_y, broadcasts=True, signature=_BINARY, **flags)


def no_grad_op(name: str, forward, **flags) -> Primitive:
    """An op whose output carries no gradient because it is zero (piecewise constant, boolean or integer)."""
    arity = forward.__code__.co_argcount - 1
    return defprim(name, forward, differentiable=False, broadcasts=True,
                   signature=_UNARY if arity == 1 else _BINARY if arity == 2 else None, **flags)


def no_gradient(name: str, forward, **flags) -> Primitive:
    """An op without a gradient rule, run by the backend: reaching it with a gradient is an error."""

    def refuse(xp, g, ans, *args, **kw):
        raise NotDifferentiableError(
            f"gdbp cannot differentiate through {name}: it has no gradient rule; "
            "compute it on a detached value (x.detach()) or write one with gdbp.custom_vjp"
        )

    return defprim(name, forward, vjp_all=refuse, multiple=True, no_gradient=True, **flags)


class Extension:
    """The functions of one extension of the standard (``xp.linalg``, ``xp.fft``), as attributes."""

    def __init__(self, name: str, functions: dict):
        self.__name__ = name
        for fn_name, fn in functions.items():
            setattr(self, fn_name, fn)

    def __repr__(self):
        return f"<gdbp extension {self.__name__}>"


def extensions(registry: dict) -> dict:
    """name -> :class:`Extension` for the registry's dotted names (``"linalg.solve"`` goes in ``linalg``)."""
    grouped: dict = {}
    for name, fn in registry.items():
        if "." in name:
            ext, fn_name = name.split(".", 1)
            grouped.setdefault(ext, {})[fn_name] = fn
    return {ext: Extension(ext, fns) for ext, fns in grouped.items()}


def axes(axis, ndim: int) -> tuple:
    """The axes an ``axis`` argument names, as non-negative ints in the order given (None: all).

    Raises
    ------
    ValueError
        An axis is out of range for ``ndim`` dimensions, or repeats.
    """
    if axis is None:
        return tuple(range(ndim))
    given = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in given:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for an array of {ndim} dimension(s)")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis}")
    return tuple(out)


def conj(xp, a):
    """The complex conjugate of ``a`` where ``a`` is complex; a real ``a`` as it is.

    Gradient rules of complex ops follow PyTorch's convention: for a real
    cost, the gradient of a complex input is the conjugate Wirtinger
    derivative, so a holomorphic ``f`` pulls ``g`` back to ``g * conj(f'(z))``.
    A real array is returned untouched (``xp.conj`` of one is a copy in
    NumPy), so that real code pays no pass over memory for complex support.
    """
    dtype = getattr(a, "dtype", None)
    if dtype is None:  # a Python scalar
        return a.conjugate() if type(a) is complex else a
    try:
        is_complex = _COMPLEX[xp][dtype]
    except KeyError:
        is_complex = _COMPLEX.setdefault(xp, {})[dtype] = backends.isdtype(xp, dtype, "complex floating")
    return xp.conj(a) if is_complex else a


# namespace -> dtype -> whether it is complex; nested (no key tuple to build), as conj runs in every
# product's backward pass, and per namespace, as dtypes of two libraries must not be compared.
_COMPLEX: dict = {}


from .engine import apply  # noqa: E402  (the engine needs Tensor, which needs this registry)
from .errors import NotDifferentiableError  # noqa: E402
