"""The autodiff engine: applying a primitive, and recording the graph it leaves.

Applying a :class:`Primitive` to Tensors that require grad records a
:class:`Node`; :func:`gdbp.backprop.sweep.backprop` sweeps those nodes in
reverse topological order. A primitive with several outputs records one node,
and each output a small ``output`` node that picks its share of the gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import backends
from .errors import ShapeError
from . import trace as _trace
from .mode import state as _mode
from .tensor import Tensor, make, unwrap

__all__ = ["Node", "apply", "check_scalar_or_array", "Cotangents", "output_node", "recorded_outputs"]


@dataclass(slots=True, eq=False, repr=False)  # eq=False: nodes are dictionary keys by identity
class Node:
    """One recorded application of a primitive.

    ``parents`` has one entry per positional argument: ``None`` (no gradient
    wanted), a leaf Tensor (its ``.grad`` collects the gradient) or the Node
    that produced the argument. ``args`` and ``ans`` are the raw values the
    VJPs read; ``checks`` pairs version counters with the versions seen when
    the values were saved.
    """

    prim: Any
    parents: list
    args: Any
    kw: Any
    ans: Any
    backend: Any
    checks: Any

    def __repr__(self):
        return f"<Node {self.prim.name}>"


class Cotangents(tuple):
    """The gradients of a multi-output primitive's outputs, one entry each (None: none arrived)."""

    __slots__ = ()

    def __add__(self, other):
        return Cotangents(b if a is None else a if b is None else a + b for a, b in zip(self, other))


_SCALARS = (int, float, bool, complex)
#: primitive -> a rewrite of the node just recorded for it (gdbp.backprop.rewrites fills it in)
REWRITES: dict = {}
_FLOATING = ("real floating", "complex floating")  # the dtypes that carry gradients


def check_scalar_or_array(x, backend, prim):
    """A raw argument must be a Python scalar or an array of the same backend."""
    if type(x) in _SCALARS or x is None:
        return
    other = backends.backend_of(x)
    if other is None:
        raise TypeError(f"{prim.name}: unsupported argument of type {type(x).__name__}; expected a Tensor, an array or a scalar")
    if other is not backend:
        raise backends.BackendMismatchError(
            f"{prim.name}: arrays from two backends met: {backend.spec} and {other.spec} "
            f"({type(x).__module__.split('.')[0]}.{type(x).__name__}); move one with gdbp.transfer(x, backend)"
        )


def apply(prim, args: tuple, kw: dict):
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
        backend = backends.same_backend(*args)
    elif foreign:
        array_type = backend.array_type
        for a in raw:
            if a is not None and type(a) not in _SCALARS and type(a) is not array_type:
                check_scalar_or_array(a, backend, prim)

    try:
        ans = prim.forward(backend.xp, *raw, **kw)
    except (ValueError, TypeError, RuntimeError) as exc:
        explained = _explain(prim, raw, exc)
        if explained is exc:
            raise
        raise explained from exc
    record = record and prim.differentiable and _mode.grad_enabled
    res = None
    out_backend = backend
    if not prim.plain:
        if prim.multiple:
            return _apply_many(prim, args, raw, kw, ans, backend, record)
        if prim.residuals:
            ans, res = ans
        if prim.moves:
            out_backend = backends.backend_of(ans)
    fixed = type(ans) is not out_backend.array_type
    if fixed:
        ans = out_backend.kernels.scalar_array(ans)  # NumPy gives scalars, not 0-d arrays, for some results
    out = make(ans, out_backend)
    if prim.view and isinstance(args[0], Tensor):
        out._vc = args[0]._version_counter()
    if record:
        out._node = _record(prim, args, raw, kw if res is None else dict(kw, res=res), ans, backend, out)
        out._rg = True
        if prim in REWRITES and _mode.rewrite:
            REWRITES[prim](out)
    if _trace.tracing:
        _traced(prim, raw, kw, res, out, backend, fixed)
    return out


def _record(prim, args, raw, kw, ans, backend, out):
    """The Node of one application, with the version checks its saved values need (out's, if the rules read it)."""
    parents = []
    checks = None if prim.linear else []
    for a in args:
        if isinstance(a, Tensor):
            parents.append((a if a._node is None else a._node) if a._rg else None)
            # Every saved value a rule reads is checked, a constant's too: changing x after
            # y = w * x would make w's gradient silently wrong.
            if checks is not None:
                vc = a._vc
                if vc is None:
                    vc = a._vc = [0]
                checks.append((vc, vc[0]))
        else:
            parents.append(None)
    if out is not None and prim.needs_ans:
        if checks is None:
            checks = []
        checks.append(_saved_version(out))
    return Node(prim, parents, raw, kw, ans, backend, checks)


def _apply_many(prim, args, raw, kw, ans, backend, record):
    """Wrap each output of a multi-output primitive; one node for the op, a picking node per output."""
    if not isinstance(ans, (tuple, list)):
        ans = (ans,)
        single = True
    else:
        single = False
    outs = [make(a if type(a) is backend.array_type else backend.xp.asarray(a), backend)
            if backends.backend_of(a) is not None else a for a in ans]
    if record:
        floating = [isinstance(o, Tensor) and backends.isdtype(backend.xp, o.dtype, _FLOATING) for o in outs]
        if any(floating):
            values = tuple(unwrap(o) for o in outs)
            node = _record(prim, args, raw, kw, values, backend, None)
            for i, o in enumerate(outs):
                if floating[i]:
                    o._node = output_node(node, i)
                    o._rg = True
    if single:
        result = outs[0]
    elif hasattr(ans, "_fields"):  # a named tuple (EighResult, UniqueAllResult...) keeps its type
        result = type(ans)(*outs)
    else:
        result = tuple(outs)
    if _trace.tracing:
        _traced(prim, raw, kw, None, result, backend, True)
    return result


def _traced(prim, raw, kw, res, out, backend, fixed) -> None:
    """Tell this thread's tracer (gdbp.compile), if any, that prim ran."""
    t = _trace.tracer()
    if t is not None:
        t.applied(prim, raw, kw, res, out, backend, fixed)


def output_node(node: Node, i: int) -> Node:
    """The node of output i of a multi-output node: it passes that output's gradient to the op."""
    return Node(_output_p, [node], [node.ans], {"index": i}, node.ans[i], node.backend, None)


def recorded_outputs(node: Node) -> tuple:
    """A multi-output node's outputs as Tensors wired into the graph (for a recorded backward pass)."""
    xp = node.backend.xp
    return tuple(make(v, node.backend, node=output_node(node, i))
                 if backends.backend_of(v) is not None and backends.isdtype(xp, v.dtype, _FLOATING) else v
                 for i, v in enumerate(node.ans))


def _output_vjp(xp, g, ans, values, *, index):
    # The op's gradient: this output's g at its place, nothing for the others.
    parts = [None] * len(values)
    parts[index] = g
    return (Cotangents(parts),)


def _saved_version(t: Tensor):
    vc = t._vc
    if vc is None:
        vc = t._vc = [0]
    return (vc, vc[0])


def _mismatch(prim, a, b):
    raise backends.BackendMismatchError(
        f"{prim.name}: Tensors from two backends met: {a.spec} and {b.spec}; move one with tensor.to(backend)"
    )


def _explain(prim, raw, exc):
    """Turn a library's broadcasting error into one that names the op and both shapes."""
    shapes = [tuple(a.shape) for a in raw if hasattr(a, "shape")]
    text = str(exc)
    if prim.name == "matmul" and len(shapes) == 2:
        explained = _explain_matmul(*shapes)
        if explained is not None:
            return explained
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
    batch_a, batch_b = a[:-2], b[:-2]
    lead = min(len(batch_a), len(batch_b))
    if all(p == q or 1 in (p, q) for p, q in zip(batch_a[len(batch_a) - lead:], batch_b[len(batch_b) - lead:])):
        return None  # the shapes fit: the library refused something else (torch: a real and a complex operand)
    return ShapeError(f"matmul: the batch axes of shapes {a} and {b} do not broadcast")


from .primitive import Primitive  # noqa: E402  (the primitive module calls apply)

#: The node of one output of a multi-output primitive: it passes that output's gradient to the op.
_output_p = Primitive("output", None, vjp_all=_output_vjp, linear=True)
