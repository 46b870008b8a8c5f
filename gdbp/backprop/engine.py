"""The autodiff engine: primitives, the graph they record, and the backward sweep.

A :class:`Primitive` is a forward function registered beside its
vector-Jacobian products (VJPs). Applying one to Tensors that require grad
records a :class:`Node`; :func:`backprop` sweeps those nodes in reverse
topological order, calling each VJP and adding the results into the parents.

VJP rules are written with namespace functions only (``xp``), so the same
rule runs on raw arrays (the fast path) and on Tensors, when a graph of the
backward pass is asked for (``create_graph=True``): higher-order derivatives
then come for free.
"""

from __future__ import annotations

from .errors import GraphFreedError, InPlaceError, NotDifferentiableError, ShapeError

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


# ---------------------------------------------------------------------------
# Broadcasting, undone in one place
# ---------------------------------------------------------------------------


def unbroadcast(xp, g, shape):
    """Sum ``g`` down to ``shape``: the adjoint of broadcasting ``shape`` to ``g.shape``."""
    gshape = g.shape
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1
    )
    if axes:
        g = xp.sum(g, axis=axes)
    if g.shape != shape:
        g = xp.reshape(g, shape)
    return g


# ---------------------------------------------------------------------------
# The backward sweep
# ---------------------------------------------------------------------------


def _toposort(roots):
    """Nodes reachable from roots, parents before children: a depth-first walk without recursion."""
    order = []
    seen = set()
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root.parents))]
        while stack:
            node, parents = stack[-1]
            for p in parents:
                if p is not None and type(p) is Node and p not in seen:
                    seen.add(p)
                    stack.append((p, iter(p.parents)))
                    break
            else:  # every parent is placed: the node can follow them
                stack.pop()
                order.append(node)
    return order


def _saved_tensor(raw, parent, backend):
    """A saved argument as a Tensor wired into the graph that produced it."""
    if parent is None:
        # A constant; as a Tensor, so that `constant @ g` works on libraries without reflected operators.
        return _wrap(raw, backend) if type(raw) is backend.array_type else raw
    if type(parent) is not Node:
        return parent  # a leaf: the Tensor itself
    return _wrap(raw, backend, node=parent)


def backprop(roots, seeds, targets=None, create_graph=False, retain_graph=None):
    """Sweep the graph backward from ``roots``, seeded with ``seeds``.

    Parameters
    ----------
    roots : list of Tensor
        Outputs whose gradients are given (all require grad).
    seeds : list of arrays or Tensors
        The gradient of the cost with respect to each root.
    targets : list of Tensor, optional
        Return the gradients for these Tensors (``None`` where no path leads
        to one) instead of accumulating into every leaf's ``.grad``.
    create_graph : bool
        Record the backward pass itself, for higher-order derivatives.
    retain_graph : bool, optional
        Keep saved values for another sweep; defaults to ``create_graph``.
    """
    global _grad_enabled
    if retain_graph is None:
        retain_graph = create_graph
    root_nodes = []
    grads = {}
    leaf_grads = {}
    for r, s in zip(roots, seeds):
        key = r._node if r._node is not None else r
        if type(key) is Node:
            root_nodes.append(key)
            grads[key] = s if key not in grads else grads[key] + s
        else:
            leaf_grads[key] = s if key not in leaf_grads else leaf_grads[key] + s
    order = _toposort(root_nodes)

    wanted = None
    found = {}
    target_nodes = ()
    if targets is not None:
        # Sweep only the nodes from which some target can be reached.
        target_keys = [t._node if t._node is not None else t for t in targets]
        target_nodes = set(k for k in target_keys if type(k) is Node)
        wanted = set(target_keys)
        for node in order:  # parents first, so reach is known for every parent
            if node not in wanted and any(p is not None and p in wanted for p in node.parents):
                wanted.add(node)

    previous_mode = _grad_enabled
    _grad_enabled = create_graph
    try:
        for node in reversed(order):
            if wanted is not None and node not in wanted:
                continue
            g = grads.pop(node, None)
            if g is None:
                continue
            if node in target_nodes:
                found[node] = g
            _sweep_node(node, g, grads, leaf_grads, wanted, create_graph)
            if not retain_graph:
                node.args = None
                node.ans = None
    finally:
        _grad_enabled = previous_mode

    if targets is not None:
        out = []
        for t in targets:
            key = t._node if t._node is not None else t
            out.append(found.get(key) if type(key) is Node else leaf_grads.get(key))
        return out
    for leaf, g in leaf_grads.items():
        if not isinstance(g, Tensor):
            g = _wrap(g, leaf._backend)
        leaf.grad = g if leaf.grad is None else _accumulate(leaf.grad, g)
    return None


def _accumulate(old, g):
    """old + g for a leaf's .grad; recorded only when either carries a graph."""
    if old._rg or g._rg:
        return old + g
    return _wrap(old.data + g.data, old._backend)


def _sweep_node(node, g, grads, leaf_grads, wanted, create_graph):
    """Pull g back through one node and add the results into its parents' gradients."""
    prim = node.prim
    args = node.args
    if args is None:
        raise GraphFreedError(
            f"the graph through {prim.name} was already swept and its saved values freed; "
            "pass retain_graph=True to the first backward() to sweep twice"
        )
    checks = node.checks
    if checks:
        for vc, version in checks:
            if vc[0] != version:
                raise InPlaceError(
                    f"a value {prim.name} needs for its gradient was changed in place after it was used "
                    f"(version {version} then, {vc[0]} now); use an out-of-place op (y = y + 1) instead of y += 1, "
                    "or make the change before the forward pass"
                )
    backend = node.backend
    ans = node.ans
    parents = node.parents
    if create_graph:
        xp = backend.namespace
        args = [_saved_tensor(a, p, backend) for a, p in zip(args, parents)]
        ans = _wrap(ans, backend, node=node)
        if not isinstance(g, Tensor):
            g = _wrap(g, backend)
    else:
        xp = backend.xp
    kw = node.kw
    if create_graph and prim.residuals:
        kw = dict(kw, res=None)  # recompute from the (recorded) inputs instead
    vjps = prim.vjps
    all_grads = None if prim.vjp_all is None else prim.vjp_all(xp, g, ans, *args, **kw)
    for i, p in enumerate(parents):
        if p is None or (wanted is not None and p not in wanted):
            continue
        if all_grads is not None:
            gi = all_grads[i]
        elif type(p) is not Node and p._gbuf is not None and prim.vjps_into is not None and p not in leaf_grads:
            gi = _vjp_into(prim, i, p, xp, g, ans, args, kw)
        else:
            vjp = vjps[i] if vjps is not None and i < len(vjps) else None
            if vjp is None:
                raise NotDifferentiableError(f"gdbp cannot differentiate {prim.name} with respect to its argument {i}")
            gi = vjp(xp, g, ans, *args, **kw)
        if gi is None:
            continue
        a = args[i]
        if gi.shape != a.shape:
            gi = unbroadcast(xp, gi, tuple(a.shape))
        if gi.dtype != a.dtype:
            gi = xp.astype(gi, a.dtype)
        if type(gi) is not type(a):
            gi = xp.asarray(gi)  # NumPy gives scalars, not 0-d arrays, for some 0-d results
        if type(p) is Node:
            prev = grads.get(p)
            grads[p] = gi if prev is None else prev + gi
        else:
            prev = leaf_grads.get(p)
            leaf_grads[p] = gi if prev is None else prev + gi


def _vjp_into(prim, i, leaf, xp, g, ans, args, kw):
    """The gradient for a leaf, written into its recycled buffer when the rule can."""
    buf = leaf._gbuf
    leaf._gbuf = None  # the buffer becomes this step's gradient: never hand it out twice
    into = prim.vjps_into[i] if i < len(prim.vjps_into) else None
    if into is None or buf.shape != args[i].shape or buf.dtype != args[i].dtype:
        return prim.vjps[i](xp, g, ans, *args, **kw)
    return into(xp, buf, g, ans, *args, **kw)


from .tensor import Tensor, _new, _wrap  # noqa: E402  (Tensor's operators need this module complete first)
