"""The compiled function: a cache of plans, one per signature of its arguments."""

from __future__ import annotations

import functools
from collections import OrderedDict

from .. import backends
from ..backprop import Tensor, make, tree
from ..backprop.mode import rewriting
from ..backprop.trace import CompileError, set_tracer, tracer
from .plan import Plan
from .tracer import Const, Tracer

__all__ = ["compile", "Compiled"]


def _structure(tree_):
    """A hashable picture of a container's shape (types, lengths, dict keys), leaves as None."""
    if isinstance(tree_, (list, tuple)) and not hasattr(tree_, "_fields"):
        return (type(tree_).__name__, tuple(_structure(t) for t in tree_))
    if isinstance(tree_, dict):
        return ("dict", tuple((k, _structure(v)) for k, v in tree_.items()))
    return None


def _signature(leaves, structure):
    """What a plan depends on, and the call's arrays.

    The signature holds each array's library, device, shape, dtype and whether
    it came as a Tensor (then Tensors come out), and each other argument's value.
    """
    parts = []
    arrays = []
    for leaf in leaves:
        tensor = isinstance(leaf, Tensor)
        data = leaf.data if tensor else leaf
        backend = backends.backend_of(data)
        if backend is not None:
            # Backends are interned (library and device in one object); dtype objects hash as they are.
            parts.append((backend, data.shape, data.dtype, tensor))
            arrays.append(data)
        else:
            try:
                hash(leaf)
            except TypeError:
                raise CompileError(
                    f"a compiled function's arguments are arrays or hashable values (part of its signature); "
                    f"got a {type(leaf).__name__}"
                ) from None
            parts.append(("value", type(leaf), leaf))
    return (structure, tuple(parts)), arrays


class Compiled:
    """``fn`` traced once per signature and replayed (see :mod:`gdbp.compile`).

    Attributes
    ----------
    fn : callable
    traces : int
        How many times ``fn`` was traced (a new signature, or leaves whose
        shapes changed, trace again).
    max_signatures : int
        Plans kept; the least recently used is dropped beyond that.
    rewrite : bool
        Whether traces record the graph with :mod:`gdbp.backprop.rewrites` (as eager calls do by default).
    """

    def __init__(self, fn, max_signatures: int = 8, rewrite: bool = True):
        if not callable(fn):
            raise TypeError(f"gdbp.compile takes a function, got {type(fn).__name__}")
        self.fn = fn
        self.max_signatures = max_signatures
        self.rewrite = rewrite
        self.traces = 0
        self._plans: OrderedDict = OrderedDict()
        functools.update_wrapper(self, fn)

    def plan(self, *args, **kwargs):
        """The plan a call with these arguments replays (tracing it first if needed), for reading."""
        key = _flat_call(args, kwargs)[2]
        if key not in self._plans:
            self(*args, **kwargs)
        return self._plans[key][0]

    def __call__(self, *args, **kwargs):
        if tracer() is not None:
            return self.fn(*args, **kwargs)  # inside another trace: the outer plan records these steps
        leaves, rebuild, key, arrays = _flat_call(args, kwargs)
        found = self._plans.get(key)
        if found is not None and found[0].fits():
            self._plans.move_to_end(key)
            plan, finish = found
            return finish(plan.replay(*arrays))
        raw_out = not any(isinstance(leaf, Tensor) for leaf in leaves)
        return self._trace(key, leaves, rebuild or (lambda values: (tuple(values), {})), raw_out)

    def _trace(self, key, leaves, rebuild, raw_out):
        t = Tracer()
        call_leaves = []
        for leaf in leaves:
            if not _is_array(leaf):
                call_leaves.append(leaf)
                continue
            if isinstance(leaf, Tensor) and leaf.requires_grad:
                raise CompileError(
                    "a compiled function takes arrays, or Tensors that do not require grad, as arguments; "
                    "a Tensor that requires grad (a parameter) is read from where the function finds it "
                    "(a model, a closure), or differentiated inside it with gdbp.grad"
                )
            data = leaf.data if isinstance(leaf, Tensor) else leaf
            t.input(data)
            call_leaves.append(make(data, backends.backend_of(data)))
        args, kwargs = rebuild(call_leaves)
        set_tracer(t)
        try:
            with rewriting(self.rewrite):
                out = self.fn(*args, **kwargs)
        finally:
            set_tracer(None)
        self.traces += 1
        out_leaves, out_rebuild = tree.flatten(out)
        refs = [t.ref(o) if _is_array(o) else Const(o, t._const(o)) for o in out_leaves]
        # An output the plan does not compute (a constant) is copied at each replay: a caller may write it.
        copies = [isinstance(r, Const) and _is_array(o) for r, o in zip(refs, out_leaves)]
        plan = Plan(t.steps, t.inputs, refs, t.leaves, t.consts, t.meta)
        self._plans[key] = (plan, _finisher(out, out_rebuild, copies, raw_out))
        while len(self._plans) > self.max_signatures:
            self._plans.popitem(last=False)
        values = [o.data if isinstance(o, Tensor) else o for o in out_leaves]
        return _outputs(values, out_rebuild, [False] * len(values), raw_out)

    def __repr__(self):
        return f"gdbp.compile({getattr(self.fn, '__name__', self.fn)!r}, {len(self._plans)} plan(s))"


def _flat_call(args, kwargs):
    """The call's leaves, how to rebuild its arguments from them (None: as a tuple), its signature and arrays."""
    if not kwargs and not any(isinstance(a, (list, tuple, dict)) for a in args):
        # The common call, a few arrays: no containers to walk.
        return args, None, *_signature(args, len(args))
    leaves, rebuild = tree.flatten((args, kwargs))
    return leaves, rebuild, *_signature(leaves, _structure((args, kwargs)))


def _finisher(out, rebuild, copies, raw_out):
    """How a replay's values become the call's result, with no more work than the result's form needs."""
    if raw_out and not any(copies):
        if isinstance(out, (Tensor,)) or backends.is_array(out):
            return lambda values: values[0]
        if type(out) in (tuple, list) and all(_is_array(o) for o in out):
            return tuple if type(out) is tuple else list
    return lambda values: _outputs(values, rebuild, copies, raw_out)


def _is_array(x) -> bool:
    return isinstance(x, Tensor) or backends.is_array(x)


def _outputs(values, rebuild, copies, raw_out):
    out = []
    for v, copy in zip(values, copies):
        backend = backends.backend_of(v)
        if backend is None:
            out.append(v)
            continue
        if copy:
            v = backend.xp.asarray(v, copy=True)
        out.append(v if raw_out else make(v, backend))
    return rebuild(out)


def compile(fn=None, *, max_signatures: int = 8, rewrite: bool = True):
    """Trace ``fn`` once per signature of its arguments and replay the plan (see :mod:`gdbp.compile`).

    Parameters
    ----------
    fn : callable
        A function of arrays (and of values that are part of its signature).
        It may read and update Tensors it finds elsewhere (a model's
        parameters, through an optimizer).
    max_signatures : int
        How many plans to keep (default 8).
    rewrite : bool
        Record the traced graph with the rewrites eager calls use by default
        (:mod:`gdbp.backprop.rewrites`: the log-sum-exp built from max, exp,
        sum and log gets one gradient node); False traces the operations as
        written, as an eager call inside ``rewriting(False)`` runs them.

    Returns
    -------
    Compiled
        Called as fn is; arrays in give arrays out (of the same library), Tensors in give Tensors out.

    Raises
    ------
    CompileError
        At trace time, for what a replay could not redo (see :mod:`gdbp.compile`).

    Examples
    --------
    >>> step = gdbp.compile(lambda w, x: gdbp.grad(lambda w: (x @ w).sum())(w))
    >>> g = step(w, x)          # traced
    >>> g = step(w, x2)         # x2 of x's shape and dtype: replayed
    """
    if fn is None:
        return functools.partial(compile, max_signatures=max_signatures, rewrite=rewrite)
    return Compiled(fn, max_signatures, rewrite)
