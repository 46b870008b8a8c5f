"""The autodiff engine: primitives, and the graph they record.

A :class:`Primitive` is a forward function registered beside its
vector-Jacobian products (VJPs). Applying one to Tensors that require grad
records a :class:`Node`; :func:`gdbp.backprop.sweep.backprop` sweeps those
nodes in reverse topological order.

VJP rules are written with namespace functions only (``xp``), so the same
rule runs on raw arrays (the fast path) and on Tensors, when a graph of the
backward pass is asked for (``create_graph=True``): higher-order derivatives
then come for free.
"""

from __future__ import annotations

from .errors import ShapeError

__all__ = [
    "Primitive",
    "Node",
    "primitive",
    "apply",
    "backprop",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "unbroadcast",
]

# ---------------------------------------------------------------------------
# Grad mode
# ---------------------------------------------------------------------------

_grad_enabled = True


def is_grad_enabled() -> bool:
    """Whether operations on Tensors that require grad are being recorded."""
    return _grad_enabled


class _GradMode:
    __slots__ = ("_mode", "_previous")

    def __init__(self, mode: bool):
        self._mode = mode

    def __enter__(self):
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = self._mode

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, fn):
        """Use as a decorator: run fn with this grad mode."""
        mode = self._mode

        def wrapper(*args, **kw):
            with _GradMode(mode):
                return fn(*args, **kw)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


def no_grad():
    """Context manager (or decorator) in which no graph is recorded.

    Inside it, operations on Tensors that require grad give Tensors that do
    not, and in-place updates of parameters are allowed (as in an optimizer).
    """
    return _GradMode(False)


def enable_grad():
    """Context manager (or decorator) that turns recording back on inside :func:`no_grad`."""
    return _GradMode(True)


# ---------------------------------------------------------------------------
# Primitives and nodes
# ---------------------------------------------------------------------------


class Primitive:
    """A differentiable operation: a forward function beside its VJPs.

    Parameters
    ----------
    name : str
        The operation's name, as errors and the namespace show it.
    forward : callable
        ``forward(xp, *args, **kw) -> array`` on raw arrays of namespace ``xp``.
    vjps : tuple of callables, optional
        One per positional argument: ``vjp(xp, g, ans, *args, **kw)`` gives
        the gradient for that argument from the output gradient ``g``
        (``None`` in the tuple: no gradient flows to that argument).
    vjp_all : callable, optional
        Instead of ``vjps``, one function giving a tuple of gradients for all
        positional arguments at once (for ops taking any number of arrays).
    broadcasts : bool
        The op broadcasts its array arguments; the engine sums gradients back
        to each argument's shape (one shared helper, :func:`unbroadcast`).
    needs_ans : bool
        The VJPs read ``ans``; an in-place change of the output before the
        backward pass is then an error rather than a wrong gradient.
    linear : bool
        The VJPs do not read the inputs' values (only shapes), so inputs may
        be changed in place afterwards.
    differentiable : bool
        False for ops whose outputs carry no gradient (comparisons, floor,
        argmax...): their outputs never require grad.
    view : bool
        The output may share memory with the first argument (reshape,
        slicing...): both then share one version counter, so that an
        in-place change through either is seen by the checks.
    vjps_into : tuple of callables, optional
        Beside ``vjps``: ``vjp_into(xp, out, g, ans, *args, **kw)`` writes
        the gradient into the array ``out`` where the backend can (else it
        returns a new one). The sweep uses it for a leaf whose previous
        gradient buffer was recycled (:meth:`Tensor.zero_grad_`), so that a
        training step does not allocate its largest gradients anew.
    residuals : bool
        The forward returns ``(ans, res)``: intermediate values the VJPs
        reuse instead of recomputing them (e.g. softmax inside
        cross-entropy). The VJPs get them as the keyword ``res``, which is
        None when the backward pass is itself recorded (they then recompute
        from the inputs, so that higher derivatives stay right).
    """

    __slots__ = ("name", "forward", "vjps", "vjp_all", "broadcasts", "needs_ans", "linear", "differentiable",
                 "view", "residuals", "vjps_into", "doc")

    def __init__(
        self,
        name,
        forward,
        vjps=None,
        vjp_all=None,
        broadcasts=False,
        needs_ans=False,
        linear=False,
        differentiable=True,
        view=False,
        residuals=False,
        vjps_into=None,
        doc=None,
    ):
        self.name = name
        self.forward = forward
        self.vjps = vjps
        self.vjp_all = vjp_all
        self.broadcasts = broadcasts
        self.needs_ans = needs_ans
        self.linear = linear
        self.differentiable = differentiable
        self.view = view
        self.residuals = residuals
        self.vjps_into = vjps_into
        self.doc = doc or getattr(forward, "__doc__", None)

    def defvjp(self, *vjps):
        """Register one VJP per positional argument (``None``: no gradient)."""
        self.vjps = vjps
        return self

    def defvjp_all(self, vjp_all):
        """Register one function giving the gradients of all arguments at once."""
        self.vjp_all = vjp_all
        return vjp_all

    def __call__(self, *args, **kw):
        return apply(self, args, kw)

    def __repr__(self):
        return f"<gdbp primitive {self.name}>"


def primitive(fn=None, **options):
    """Decorator: make ``fn(xp, *args, **kw)`` a :class:`Primitive` named after it."""

    def make(f):
        name = options.pop("name", f.__name__.rstrip("_"))
        return Primitive(name, f, **options)

    return make(fn) if fn is not None else make


class Node:
    """One recorded application of a primitive.

    ``parents`` has one entry per positional argument: ``None`` (no gradient
    wanted), a leaf Tensor (its ``.grad`` collects the gradient) or the Node
    that produced the argument. ``args`` and ``ans`` are the raw values the
    VJPs read; ``checks`` pairs version counters with the versions seen when
    the values were saved.
    """

    __slots__ = ("prim", "parents", "args", "kw", "ans", "backend", "checks")

    def __init__(self, prim, parents, args, kw, ans, backend, checks):
        self.prim = prim
        self.parents = parents
        self.args = args
        self.kw = kw
        self.ans = ans
        self.backend = backend
        self.checks = checks

    def __repr__(self):
        return f"<Node {self.prim.name}>"


_SCALARS = (int, float, bool, complex)


def _check_scalar_or_array(x, backend, prim):
    """A raw argument must be a Python scalar or an array of the same backend."""
    if type(x) in _SCALARS or x is None:
        return
    from .. import backends

    other = backends.backend_of(x)
    if other is None:
        raise TypeError(f"{prim.name}: unsupported argument of type {type(x).__name__}; expected a Tensor, an array or a scalar")
    if other is not backend:
        raise backends.BackendMismatchError(
            f"{prim.name}: arrays from two backends met: {backend.spec} and {other.spec} "
            f"({type(x).__module__.split('.')[0]}.{type(x).__name__}); move one with gdbp.transfer(x, backend)"
        )


def apply(prim: Primitive, args: tuple, kw: dict):
    """Run a primitive on Tensors, arrays and scalars; record a Node if a gradient is wanted."""
    # This is the hot path of every training step: keep it to the work the array call needs.
    backend = None
    record = False
    foreign = False
    raw = []
    for a in args:
        if isinstance(a, Tensor):
            raw.append(a.data)
            b = a._backend
            if backend is None:
                backend = b
            elif b is not backend:
                _mismatch(prim, backend, b)
            if a._rg:
                record = True
        else:
            raw.append(a)
            if a is not None and type(a) not in _SCALARS:
                foreign = True
    if backend is None:
        from .. import backends

        backend = backends.same_backend(*args)
    elif foreign:
        array_type = backend.array_type
        for a in raw:
            if a is not None and type(a) not in _SCALARS and type(a) is not array_type:
                _check_scalar_or_array(a, backend, prim)

    try:
        ans = prim.forward(backend.xp, *raw, **kw)
    except (ValueError, TypeError, RuntimeError) as exc:
        explained = _explain(prim, raw, exc)
        if explained is exc:
            raise
        raise explained from exc
    res = None
    if prim.residuals:
        ans, res = ans
    if type(ans) is not backend.array_type:
        ans = backend.xp.asarray(ans)

    out = _new(Tensor)
    out.data = ans
    out.grad = None
    out._backend = backend
    out._vc = None
    if prim.view and isinstance(args[0], Tensor):
        out._vc = args[0]._version_counter()
    if record and _grad_enabled and prim.differentiable:
        parents = []
        checks = None if prim.linear else []
        for a in args:
            if isinstance(a, Tensor) and a._rg:
                parents.append(a if a._node is None else a._node)
                if checks is not None:
                    checks.append(_saved_version(a))
            else:
                parents.append(None)
        if prim.needs_ans:
            if checks is None:
                checks = []
            checks.append(_saved_version(out))
        if res is not None:
            kw = dict(kw, res=res)
        out._node = Node(prim, parents, raw, kw, ans, backend, checks)
        out._rg = True
    else:
        out._node = None
        out._rg = False
    return out


def _mismatch(prim, a, b):
    from ..backends import BackendMismatchError

    raise BackendMismatchError(
        f"{prim.name}: Tensors from two backends met: {a.spec} and {b.spec}; move one with tensor.to(backend)"
    )


def _saved_version(t: Tensor):
    vc = t._vc
    if vc is None:
        vc = t._vc = [0]
    return (vc, vc[0])


def _explain(prim, raw, exc):
    """Turn a library's broadcasting error into one that names the op and both shapes."""
    shapes = [tuple(a.shape) for a in raw if hasattr(a, "shape")]
    text = str(exc)
    if prim.name == "matmul" and len(shapes) == 2:
        return _explain_matmul(*shapes)
    if prim.broadcasts and len(shapes) >= 2 and ("broadcast" in text or "size of tensor" in text or "shape" in text):
        return ShapeError(f"{prim.name}: shapes {' and '.join(map(str, shapes))} do not broadcast")
    try:
        return type(exc)(f"{prim.name}: {text}")
    except Exception:  # an exception type with its own constructor: keep it as it is
        return exc


def _explain_matmul(a, b):
    # The libraries' own messages differ (and torch's speaks of broadcasting for any mismatch): say which axes clash.
    if not a or not b:
        return ShapeError(f"matmul: shapes {a} and {b}: both operands need at least 1 dimension")
    k = b[0] if len(b) == 1 else b[-2]
    if a[-1] != k:
        return ShapeError(f"matmul: shapes {a} and {b} are not aligned: the last axis of the first ({a[-1]}) "
                          f"must match the {'only' if len(b) == 1 else 'second-to-last'} axis of the second ({k})")
    return ShapeError(f"matmul: the batch axes of shapes {a} and {b} do not broadcast")


from .tensor import Tensor, _new  # noqa: E402  (Tensor's operators need this module complete first)
from .sweep import backprop, unbroadcast  # noqa: E402
