"""The backward sweep: from a cost back to every input, by the chain rule.

The recorded nodes are put in topological order without recursion (a graph
10,000 operations deep must not hit Python's recursion limit); each node's
VJPs pull the gradient back to its parents, where gradients of a value used
more than once add up; saved values are freed as the sweep passes them.
"""

from __future__ import annotations

from .. import backends
from ..backends import UNKNOWN
from .engine import Cotangents, Node, recorded_outputs
from .errors import GraphFreedError, InPlaceError, NotDifferentiableError
from . import hooks
from . import trace as _trace
from .mode import GradMode
from .mode import state as _mode
from .tensor import Tensor, make

__all__ = ["backprop", "unbroadcast"]


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
        return make(raw, backend) if type(raw) is backend.array_type else raw
    if type(parent) is not Node:
        return parent  # a leaf: the Tensor itself
    if type(raw) is tuple:
        return raw  # the outputs of a multi-output op, which its output nodes pick from
    return make(raw, backend, node=parent)


def backprop(roots, seeds, targets=None, create_graph=False, retain_graph=None, keys=None):
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
    keys : list, optional
        What each target was when it was used (its node, or the leaf itself):
        given where a target may have been updated in place since.
    """
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
        target_keys = keys if keys is not None else [t._node if t._node is not None else t for t in targets]
        target_nodes = set(k for k in target_keys if type(k) is Node)
        wanted = set(target_keys)
        for node in order:  # parents first, so reach is known for every parent
            if node not in wanted and any(p is not None and p in wanted for p in node.parents):
                wanted.add(node)

    lent = set()  # the leaves' lent buffers the rules wrote gradients into: gdbp's own memory
    handed = {id(s) for s in seeds}  # arrays that must not be handed out (again): the caller's seeds
    remaining = _hooked_contributions(order) if targets is None and hooks.any_hooks() else None
    # While gdbp.compile traces, the rules run on Tensors (as for create_graph, without recording a
    # graph), so that every operation of the backward pass is a primitive the tracer sees.
    traced = _trace.tracing and _trace.tracer() is not None
    previous_mode = _mode.grad_enabled
    _mode.grad_enabled = create_graph  # the VJPs record a graph only when one is asked for
    try:
        for node in reversed(order):
            if wanted is not None and node not in wanted:
                continue
            g = grads.pop(node, None)
            if g is not None:
                if node in target_nodes:
                    found[node] = g
                _sweep_node(node, g, grads, leaf_grads, wanted, create_graph, lent, traced)
                if not retain_graph:
                    # Free everything the node saved (residuals in kw too: a kept loss must not pin them).
                    node.args = None
                    node.ans = None
                    node.kw = None
            if remaining:
                _finish_ready_leaves(node, remaining, leaf_grads, handed, lent)
    finally:
        _mode.grad_enabled = previous_mode

    if targets is not None:
        out = []
        for t, key in zip(targets, target_keys):
            g = found.get(key) if type(key) is Node else leaf_grads.get(key)
            out.append(None if g is None else _own(g, t._backend, handed, lent, traced, t.data))
        return out
    for leaf, g in leaf_grads.items():
        _give(leaf, g, handed, lent, traced)
    return None


def _hooked_contributions(order) -> dict:
    """leaf -> how many (node, argument) places of the sweep feed it, for the leaves that have grad hooks."""
    remaining = {}
    for node in order:
        for p in node.parents:
            if p is not None and type(p) is not Node and hooks.hooks_of(p):
                remaining[p] = remaining.get(p, 0) + 1
    return remaining


def _finish_ready_leaves(node, remaining, leaf_grads, handed, lent) -> None:
    """After a node: give each hooked leaf it completed its gradient, and run the leaf's hooks."""
    for p in node.parents:
        if p in remaining:
            remaining[p] -= 1
            if remaining[p] == 0:
                del remaining[p]
                g = leaf_grads.pop(p, None)
                if g is not None:
                    _give(p, g, handed, lent, False)
                with GradMode(False):
                    for hook in list(hooks.hooks_of(p)):
                        hook(p)


def _give(leaf, g, handed, lent, traced) -> None:
    """Set (or add to) a leaf's .grad: the sweep's result for it, as an array of its own."""
    g = _own(g, leaf._backend, handed, lent, traced, leaf.data)
    if not isinstance(g, Tensor):
        g = make(g, leaf._backend)
    leaf._grad = g if leaf._grad is None else _accumulate(leaf._grad, g)
    if traced:  # a replay sets (or adds to) the leaf's gradient as this did
        _trace.tracer().grad(leaf, g.data, leaf._grad.data)


def _own(g, backend, handed: set, lent: set, traced: bool = False, like=None):
    """g as a gradient of its own: every gradient handed out is its own writable array, as PyTorch's are.

    A rule may pass ``g`` on unchanged (add), or as a view (a broadcast, a
    reshape): one array would then reach two leaves, or the caller's seed
    would come back as a gradient. Such a gradient is copied; one the sweep
    made (a product, a sum, a lent buffer written in place) is handed over
    as it is, so a training step pays no copy. It also gets the memory layout
    of the array it is the gradient of (``like``), as PyTorch's do: ``x @ W.T``
    gives W a transposed gradient, and an update ``W -= lr * g`` across two
    layouts would stride through memory.
    """
    if isinstance(g, Tensor):
        if g._rg:
            return g  # a recorded gradient (create_graph): its graph is the point
        g = g.data
    key = id(g)
    kernels = backend.kernels
    memory = None if key in lent else kernels.memory_of(g)
    shared = memory is UNKNOWN or (memory is not None and id(memory) in handed)
    if key in handed or shared or (like is not None and not kernels.same_layout(g, like)):
        # While gdbp.compile traces, the copy is a step of the plan.
        g = kernel_p(make(g, backend), like, name="copy_like").data if traced else kernels.copy_like(g, like)
        key, memory = id(g), None
    handed.add(key)
    if memory is not None:
        handed.add(id(memory))  # a second gradient in the same memory is copied
    return g


def _accumulate(old, g):
    """old + g for a leaf's .grad; recorded only when either carries a graph."""
    if old._rg or g._rg:
        return old + g
    return make(old.data + g.data, old._backend)


def _sweep_node(node, g, grads, leaf_grads, wanted, create_graph, lent, traced=False):
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
    if create_graph or traced:
        xp = namespace_for(backend)
        args = [_saved_tensor(a, p, backend) for a, p in zip(args, parents)]
        out_backend = backends.backend_of(ans) if prim.moves else backend  # a transfer's output lives elsewhere
        ans = recorded_outputs(node) if type(ans) is tuple else make(ans, out_backend, node=node)
        if not isinstance(g, (Tensor, Cotangents)):
            g = make(g, out_backend)
    else:
        xp = backend.xp
    kw = node.kw
    if create_graph and prim.residuals:
        kw = dict(kw, res=None)  # recompute from the (recorded) inputs instead
    elif traced and prim.residuals:
        kw = dict(kw, res=make(kw["res"], backend))  # the forward's residual, a value the plan computes
    vjps = prim.vjps
    all_grads = None if prim.vjp_all is None else prim.vjp_all(xp, g, ans, *args, **kw)
    for i, p in enumerate(parents):
        if p is None or (wanted is not None and p not in wanted):
            continue
        if all_grads is not None:
            gi = all_grads[i]
        elif (type(p) is not Node and p._gbuf is not None and prim.vjps_into is not None and p not in leaf_grads
              and not traced):
            gi = _vjp_into(prim, i, p, xp, g, ans, args, kw)
            lent.add(id(gi))
        else:
            vjp = vjps[i] if i < len(vjps) else None
            if vjp is None:
                raise NotDifferentiableError(f"gdbp cannot differentiate {prim.name} with respect to its argument {i}")
            gi = vjp(xp, g, ans, *args, **kw)
        if gi is None:
            continue
        if type(gi) is not Cotangents:
            a = args[i]
            if gi.shape != a.shape:
                gi = unbroadcast(xp, gi, tuple(a.shape))
            if gi.dtype != a.dtype:
                gi = _cast(xp, gi, a.dtype)
            if type(gi) is not type(a):
                gi = xp.asarray(gi)  # NumPy gives scalars, not 0-d arrays, for some 0-d results
        if type(p) is Node:
            prev = grads.get(p)
            grads[p] = gi if prev is None else prev + gi
        else:
            prev = leaf_grads.get(p)
            leaf_grads[p] = gi if prev is None else prev + gi


def _cast(xp, g, dtype):
    """g in its argument's dtype; a real argument of a complex computation gets the real part, as in PyTorch."""
    if backends.isdtype(xp, g.dtype, "complex floating") and not backends.isdtype(xp, dtype, "complex floating"):
        g = xp.real(g)
        if g.dtype == dtype:
            return g
    return xp.astype(g, dtype)


def _vjp_into(prim, i, leaf, xp, g, ans, args, kw):
    """The gradient for a leaf, written into its recycled buffer when the rule can."""
    buf = leaf._gbuf
    leaf._gbuf = None  # the buffer becomes this step's gradient: never hand it out twice
    into = prim.vjps_into[i] if i < len(prim.vjps_into) else None
    if into is None or buf.shape != args[i].shape or buf.dtype != args[i].dtype:
        return prim.vjps[i](xp, g, ans, *args, **kw)
    return into(xp, buf, g, ans, *args, **kw)


from .namespace import kernel_p, namespace_for  # noqa: E402  (the namespace is built on the ops, on the engine)
