"""Rewrites of the recorded graph: composed code whose backward pass costs more than its math needs.

The engine applies them as it records the graph, eagerly and so while
gdbp.compile traces (the plan then holds the rewritten backward pass); the
forward values are computed as the function wrote them. Each rewrite keeps
the gradient a function of the same saved values (so that higher-order
gradients still see how they depend on the inputs), and changes gradients
only by rounding. ``rewriting(False)`` (:mod:`gdbp.backprop.mode`) records
the graph as written.

The log-sum-exp written as array-API code,

    m = max(z, axis, keepdims=True);  lse = log(sum(exp(z - m), axis)) + m[..., 0]

has the gradient ``g * softmax(z) = e * (g / s)`` with ``e = exp(z - m)`` and
``s = sum(e)``: the shift m drops out (d lse / dm = 1 - sum(e) / s = 0). Swept
as written, the backward pass also computes that zero: m's gradient from both
of its uses, and max's rule spreading it over the row's ties (a comparison,
a cast, a count, a division): about fifteen steps, where two do the work.

The softmax written the same way, ``e = exp(z - m); p = e / sum(e, axis, keepdims=True)``,
does not depend on m either: its gradient is ``p * g - p * sum(p * g)``, four
steps instead of the quotient's, the shift's and max's rules.
"""

from __future__ import annotations

from .engine import REWRITES, Node, _saved_version
from .primitive import defprim

__all__ = ["fuse_logsumexp", "fuse_softmax"]


def _lse_forward(xp, z, e, s, *, axis):
    return xp.log(s) + xp.max(z, axis=axis)


def _lse_vjp(xp, g, ans, z, e, s, *, axis):
    # The same operations the composition's sweep does for z's share through exp (g / s, broadcast, times e).
    return e * xp.reshape(g / s, e.shape[:axis] + (1,) + e.shape[axis + 1:])


def _none(xp, g, ans, *args, **kw):
    return None  # e and s are read, not differentiated: the composition's own nodes carry their gradients


_lse_p = defprim("logsumexp_composed", _lse_forward, _lse_vjp, _none, _none, public=False)


def _axis(node, ndim):
    axis = node.kw.get("axis")
    if isinstance(axis, tuple):
        if len(axis) != 1:
            return None
        axis = axis[0]
    if not isinstance(axis, int) or isinstance(axis, bool):
        return None
    return axis % ndim if -ndim <= axis < ndim else None


def _is(node, name) -> bool:
    return type(node) is Node and node.prim.name == name


def fuse_logsumexp(out) -> bool:
    """If ``out`` (a sum's result) is the log-sum-exp composition above, give it one node for its gradient."""
    add = out._node
    if not _is(add, "add"):
        return False
    for i in (0, 1):
        log, shift = add.parents[i], add.parents[1 - i]
        if _is(log, "log") and _fuse(out, add, log, shift, add.args[1 - i]):
            return True
    return False


def _sums(total, exp, axis, ndim, keepdims) -> bool:
    """Whether ``total`` is sum(exp's value, axis) with the given keepdims and no dtype."""
    return (_is(total, "sum") and bool(total.kw.get("keepdims")) is keepdims and total.kw.get("dtype") is None
            and total.parents[0] is exp and _axis(total, ndim) == axis)


def _fuse(out, add, log, shift, shift_raw) -> bool:
    total = log.parents[0]
    exp = total.parents[0] if type(total) is Node else None
    found = _shifted_exp(exp)
    if found is None:
        return False
    zp, z, axis, sub = found
    if not _sums(total, exp, axis, z.ndim, keepdims=False):
        return False
    # The other term is m without its kept axis: a reshape or an index of every element (m[:, 0]).
    if not (type(shift) is Node and shift.parents[0] is sub.parents[1]
            and shift.prim.name in ("getitem", "reshape") and tuple(shift_raw.shape) == tuple(out.shape)):
        return False
    e, s = exp.ans, log.args[0]
    checks = (total.checks or []) + (log.checks or [])  # e and s, as their own nodes check them
    out._node = Node(_lse_p, [zp, exp, total], [z, e, s], {"axis": axis}, out.data, add.backend, checks or None)
    return True


def _softmax_vjp(xp, g, ans, z, *, axis):
    pg = ans * g
    return pg - ans * xp.sum(pg, axis=axis, keepdims=True)


def _softmax_forward(xp, z, *, axis):
    e = xp.exp(z - xp.max(z, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


_softmax_p = defprim("softmax_composed", _softmax_forward, _softmax_vjp, needs_ans=True, public=False)


def _shifted_exp(exp):
    """(z's parent, z, axis, the subtract node) if ``exp`` is exp(z - max(z, axis, keepdims=True)), else None."""
    if not _is(exp, "exp") or not _is(exp.parents[0], "subtract"):
        return None
    sub = exp.parents[0]
    z, m = sub.args
    top = sub.parents[1]
    if (not _is(top, "max") or not top.kw.get("keepdims") or top.args[0] is not z
            or top.parents[0] is not sub.parents[0] or m is not top.ans):
        return None
    axis = _axis(top, z.ndim)
    return None if axis is None else (sub.parents[0], z, axis, sub)


def fuse_softmax(out) -> bool:
    """If ``out`` (a quotient) is the softmax composition above, give it one node for its gradient."""
    div = out._node
    if not _is(div, "divide"):
        return False
    exp, total = div.parents
    found = _shifted_exp(exp)
    if found is None:
        return False
    zp, z, axis, _ = found
    if not _sums(total, exp, axis, z.ndim, keepdims=True) or div.args[0] is not exp.ans:
        return False
    out._node = Node(_softmax_p, [zp], [z], {"axis": axis}, out.data, div.backend, [_saved_version(out)])
    return True


def _register() -> None:
    from .ops.elementwise import add_p, divide_p  # the ops are built on the engine: looked up once they exist

    REWRITES[add_p] = fuse_logsumexp
    REWRITES[divide_p] = fuse_softmax


_register()
