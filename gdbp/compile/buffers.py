"""Memory planning: which values of a plan are written into buffers the plan keeps, and which buffers they share.

A value is recomputed at every replay. Where the backend's function for its
op writes into ``out=`` (NumPy's and CuPy's ufuncs and matmul:
``kernels.into``), the plan keeps a buffer for it instead of allocating a
fresh array each replay, and values whose lifetimes do not overlap share one
buffer. A value gets no buffer when something may hold on to it past the
replay: a function output, a leaf's gradient, an argument of an opaque or
external step. A value read by an op that may return a view of it (reshape,
slicing, a transpose...) keeps its buffer as long as the view is read, and
has none if the view escapes so.

An op whose result is written straight back into an array in place (``w -= lr
* g`` is a subtract, then the write into ``w``) computes into that array.
"""

from __future__ import annotations

from .. import backends
from .tracer import Slot

__all__ = ["plan_buffers", "complex_value"]

#: Ops whose output never shares memory with their inputs: a value read only by them cannot be seen through a view.
FRESH = frozenset({
    "add", "subtract", "multiply", "divide", "negative", "positive", "abs", "square", "sqrt", "reciprocal", "pow",
    "exp", "expm1", "log", "log1p", "log2", "log10", "logaddexp", "maximum", "minimum", "sin", "cos", "tan",
    "tanh", "sinh", "cosh", "asin", "acos", "atan", "atan2", "asinh", "acosh", "atanh", "hypot", "copysign",
    "remainder", "floor", "ceil", "round", "trunc", "sign", "signbit", "equal", "not_equal", "less", "less_equal",
    "greater", "greater_equal", "isfinite", "isinf", "isnan", "logical_and", "logical_or", "logical_xor",
    "logical_not", "clip", "matmul", "sum", "prod", "max", "min", "cumulative_sum", "cumulative_prod",
    "logsumexp", "softmax", "log_softmax", "relu", "sigmoid", "linear", "softmax_cross_entropy", "erf", "where",
    "take", "take_along_axis", "index_add", "setitem", "concat", "repeat", "tril", "triu",
})
#: Backend kernels (gdbp.backprop.namespace.kernel_p) that return new arrays.
FRESH_KERNELS = frozenset({"matmul", "relu_grad", "maximum_grad", "minus_onehot", "copy_like"})


def _slots(ref):
    if isinstance(ref, Slot):
        yield ref.index
    elif isinstance(ref, (tuple, list)):
        for r in ref:
            yield from _slots(r)


def _reads_fresh(step) -> bool:
    if step.kind == "apply":
        name = step.fn.name
        if name == "astype":
            return step.kw.get("copy") is None or getattr(step.kw["copy"], "value", True) is not False
        if name == "kernel":
            return getattr(step.kw.get("name"), "value", None) in FRESH_KERNELS
        return name in FRESH
    return step.kind in ("assign", "setitem")  # copied into their target


def plan_buffers(steps, outputs, meta):
    """The buffer plan: ``(into, buffers, fused)``.

    ``into[k]`` is the function that writes step k's value into ``out=``;
    ``buffers[k]`` the index of step k's buffer (``(shape, dtype, backend)``
    in ``shapes``); ``fused`` the steps whose value goes straight into the
    next step's assign target (that assign is then dropped).
    """
    uses: dict[int, list] = {}
    escaping = set(_slots(tuple(outputs)))
    base: dict[int, int] = {}  # a view's slot -> the slot whose memory it may share
    for k, step in enumerate(steps):
        read = list(_slots(step.args)) + list(_slots(tuple(step.kw.values())))
        for s in read:
            uses.setdefault(s, []).append(k)
        viewed = _viewed(step)
        if viewed is not None:
            base[step.outs[0]] = base.get(viewed, viewed)
            escaping.update(s for s in read if s != viewed)  # an index array in a key: kept as it is
        elif not _reads_fresh(step):
            escaping.update(read)
        if step.target is not None:
            escaping.update(_slots(step.target))
    for view, b in base.items():  # a base lives while its views are read, and escapes with them
        uses.setdefault(b, []).extend(uses.get(view, []))
        if view in escaping:
            escaping.add(b)
    into, fused, buffers, shapes = {}, set(), {}, []
    free: dict[tuple, list] = {}
    release: dict[int, list] = {}
    for k, step in enumerate(steps):
        _place(k, step, steps, meta, uses, escaping, into, fused, buffers, shapes, free, release)
        for key, b in release.pop(k, []):  # after the step: its own buffer never aliases what it reads
            free.setdefault(key, []).append(b)
    return into, buffers, fused, shapes


def _viewed(step):
    """The slot a step's value may be a view of (an op with the view flag, on a slot), or None."""
    if (step.kind == "apply" and getattr(step.fn, "view", False) and len(step.outs) == 1
            and step.outs[0] is not None and step.args and isinstance(step.args[0], Slot)):
        return step.args[0].index
    return None


def _place(k, step, steps, meta, uses, escaping, into, fused, buffers, shapes, free, release) -> None:
    """Decide where step k's value goes: into its assign target, into a kept buffer, or a fresh array."""
    if step.kind != "apply" or len(step.outs) != 1 or step.fix:
        return
    kernel = step.fn.name == "kernel"  # a backend kernel (a matrix product of the backward pass)
    if step.kw and not kernel and not _reduction_options(step):
        return
    (o,) = step.outs
    if o not in meta:
        return
    shape, dtype, backend, row_major = meta[o]
    if complex_value(meta[o]):  # as in Plan._direct: the library's own function is not always the forward
        return
    kernels = backend.kernels
    fn = kernels.kernel_into(step.kw["name"].value) if kernel else kernels.into(step.fn.name)
    if fn is None:
        return
    used = uses.get(o, [])
    nxt = steps[k + 1] if k + 1 < len(steps) else None
    if (used == [k + 1] and nxt.kind == "assign" and _only(nxt.args) == o
            and _target_fits(nxt.target, meta, shape, dtype)):
        into[k] = fn
        fused.add(k)
        return
    if o in escaping or not row_major:
        # A buffer is row-major: a value laid out otherwise when traced (an op on a transposed view) keeps
        # its own layout, so that what reads it (a reduction's order of summation) runs as it ran eagerly.
        return
    into[k] = fn
    key = (shape, str(dtype), backend)
    pool = free.setdefault(key, [])
    buffers[k] = pool.pop() if pool else _new_buffer(shapes, (shape, dtype, backend))
    release.setdefault(max(used) if used else k, []).append((key, buffers[k]))


#: Reductions whose library function writes into ``out=`` given only these options.
REDUCTIONS = frozenset({"sum", "max", "min"})


def _reduction_options(step) -> bool:
    # sum(x, axis=, keepdims=) and so on, with no dtype asked for: the options the function takes beside out=.
    if step.fn.name not in REDUCTIONS or not set(step.kw) <= {"axis", "keepdims", "dtype"}:
        return False
    dtype = step.kw.get("dtype")
    return dtype is None or getattr(dtype, "value", None) is None


def complex_value(meta) -> bool:
    """Whether a slot's traced value (``(shape, dtype, backend, row_major)``, or None) is complex."""
    return meta is not None and backends.isdtype(meta[2].xp, meta[1], "complex floating")


def _new_buffer(shapes, spec) -> int:
    shapes.append(spec)
    return len(shapes) - 1


def _only(args):
    return args[0].index if len(args) == 1 and isinstance(args[0], Slot) else None


def _target_fits(target, meta, shape, dtype) -> bool:
    # The target is an input or a leaf: its shape and dtype are those of the value, or no fusion.
    if isinstance(target, Slot):
        m = meta.get(target.index)
        return m is not None and m[0] == shape and m[1] == dtype
    data = getattr(getattr(target, "tensor", None), "data", None)
    return data is not None and tuple(data.shape) == shape and data.dtype == dtype
