"""A plan: the traced steps, turned into one straight-line Python function that replays them.

Replaying calls each primitive's forward on raw arrays, in the order the
trace ran them, forward and backward: no Tensors, Nodes, topological sort or
checks are made. The generated source is kept (``plan.source``) so that what
a replay does can be read.
"""

from __future__ import annotations

import functools

from .. import backends
from ..backprop import Tensor, make
from .buffers import complex_value, plan_buffers
from .tracer import Const, Leaf, Slot, Step

__all__ = ["Plan"]


def _give_grad(leaf, g):
    """What the sweep does with a leaf's gradient: set it, or add it to the one already there."""
    if leaf._grad is None:
        leaf._grad = make(g, leaf.backend)
    else:
        old = leaf._grad
        leaf._grad = make((old.data if isinstance(old, Tensor) else old) + g, leaf.backend)
    return leaf._grad.data


class Plan:
    """The replayable form of one trace.

    Parameters
    ----------
    steps : list of Step
    inputs : list of int
        The slots the call's arrays go into, in order.
    outputs : list
        A reference per output leaf.
    leaves, consts : list
        What :class:`Leaf` and :class:`Const` references index.
    """

    def __init__(self, steps, inputs, outputs, leaves, consts, meta=None):
        self.steps = steps
        self.leaves = leaves
        self.consts = consts
        self.guards = [(tuple(t.data.shape), t.data.dtype, t.backend) for t in leaves]
        self.meta = meta or {}
        self.into, self.buffer_of, fused, shapes = plan_buffers(steps, outputs, self.meta)
        self.buffers = [b.xp.empty(shape, dtype=dtype, device=b.device) for shape, dtype, b in shapes]
        names: dict = {"Tensor": Tensor, "GRAD": _give_grad}
        names.update({f"B{i}": buf for i, buf in enumerate(self.buffers)})
        lines = [f"def replay({', '.join(f'v{i}' for i in inputs) or ''}):"]
        skip = False
        for k, step in enumerate(steps):
            if skip:  # the assign a fused step already wrote
                skip = False
                lines += self._changed(step.target, names)
                continue
            if k in fused:
                lines += self._into(k, step, names, self._expr(steps[k + 1].target, names))
                skip = True
            elif k in self.into:
                lines += self._into(k, step, names, f"B{self.buffer_of[k]}")
            else:
                lines += self._code(k, step, names)
        result = f"({''.join(self._expr(r, names) + ', ' for r in outputs)})"
        self.source = "\n".join(lines + [f"    return {result}"])
        exec(compile(self.source, "<gdbp plan>", "exec"), names)  # noqa: S102  (code generated above)
        self.replay = names["replay"]
        self._generated = (lines, result, names)

    @functools.cached_property
    def replay_kept(self):
        """The replay, also returning every value its steps make: ``(outputs, [arrays])``.

        What a CUDA graph capture must keep owned (the memory pool is not graph-aware), so that the
        graph's later launches write memory still its own. Generated on first use.
        """
        lines, result, names = self._generated
        made = sorted({o for step in self.steps for o in step.outs if o is not None})
        kept = "\n".join(["def replay_kept" + lines[0][len("def replay"):]] + lines[1:]
                         + [f"    return {result}, [{', '.join(f'v{o}' for o in made)}]"])
        exec(compile(kept, "<gdbp plan, kept>", "exec"), names)  # noqa: S102  (the replay's own lines)
        return names["replay_kept"]

    # -- code generation ------------------------------------------------------------------------

    def _expr(self, ref, names) -> str:
        if isinstance(ref, Slot):
            return f"v{ref.index}"
        if isinstance(ref, Leaf):
            names[f"L{ref.index}"] = self.leaves[ref.index]
            return f"L{ref.index}.data"
        if isinstance(ref, Const):
            names[f"C{ref.index}"] = self.consts[ref.index]
            return f"C{ref.index}"
        if isinstance(ref, tuple):
            return "(" + "".join(self._expr(r, names) + ", " for r in ref) + ")"
        if isinstance(ref, list):
            return "[" + ", ".join(self._expr(r, names) for r in ref) + "]"
        raise TypeError(f"plan: cannot refer to {ref!r}")

    def _call(self, fn_name, step, names, first=()) -> str:
        parts = list(first) + [self._expr(a, names) for a in step.args]
        parts += [f"{k}={self._expr(v, names)}" for k, v in step.kw.items()]
        return f"{fn_name}({', '.join(parts)})"

    def _code(self, k, step: Step, names) -> list[str]:
        if step.kind == "apply":
            names[f"X{k}"] = step.xp
            call = self._direct(k, step, names)
            if call is None:
                names[f"P{k}"] = step.fn.forward
                call = self._call(f"P{k}", step, names, first=(f"X{k}",))
            outs = ", ".join(f"v{o}" if o is not None else "_" for o in step.outs)
            lines = [f"    {outs}{',' if len(step.outs) > 1 else ''} = {call}"]
            if step.fix:
                names[f"S{k}"] = backends.kernels(step.xp).scalar_array
                lines += [f"    v{o} = S{k}(v{o})" for o in step.outs if o is not None]
            return lines
        if step.kind == "assign":
            return [f"    {self._expr(step.target, names)}[...] = {self._expr(step.args[0], names)}"] + \
                self._changed(step.target, names)
        if step.kind == "rebind":
            leaf = self._expr(step.target, names)[: -len(".data")]
            return [f"    {leaf}.data = {self._expr(step.args[0], names)}", f"    {leaf}.mark_changed()"]
        if step.kind == "setitem":
            key, value = step.args
            return [f"    {self._expr(step.target, names)}[{self._expr(key, names)}] = {self._expr(value, names)}"] + \
                self._changed(step.target, names)
        if step.kind == "grad":
            leaf = self._expr(step.target, names)
            leaf = leaf[: -len(".data")] if leaf.endswith(".data") else leaf
            out = f"v{step.outs[0]} = " if step.outs else ""
            return [f"    {out}GRAD({leaf}, {self._expr(step.args[0], names)})"]
        if step.kind == "forget":  # leaf.grad = None
            leaf = self._expr(step.target, names)
            return [f"    {leaf[: -len('.data')] if leaf.endswith('.data') else leaf}.grad = None"]
        if step.kind in ("external", "opaque"):
            names[f"E{k}"] = step.fn
            out = f"v{step.outs[0]} = " if step.outs else ""
            return [f"    {out}{self._call(f'E{k}', step, names)}"]
        raise ValueError(f"plan: unknown step kind {step.kind!r}")

    def _direct(self, k, step, names):
        """A call of the backend's own function where one does the forward's work (no wrappers), or None."""
        if step.fn.name == "kernel":  # a backend kernel: bound once, not looked up at every replay
            kernel = step.kw["name"].value
            names[f"K{k}"] = getattr(backends.kernels(step.xp), kernel)
            parts = [self._expr(a, names) for a in step.args]
            return f"K{k}({', '.join(parts)})"
        kernels = backends.kernels(step.xp) if step.xp is not None else None
        if kernels is not None and any(complex_value(self.meta.get(o)) for o in step.outs):
            kernels = None  # some forwards mend the library's complex special cases (tanh, expm1): keep them
        fn = kernels is not None and not step.kw and kernels.into(step.fn.name)
        if fn and not step.fix:
            names[f"U{k}"] = fn
            return f"U{k}({', '.join(self._expr(a, names) for a in step.args)})"
        fn = kernels is not None and kernels.direct(step.fn.name)
        if fn:  # what the forward computes, without its wrappers (a fix, if any, follows as for the forward)
            names[f"D{k}"] = fn
            return self._call(f"D{k}", step, names)
        return None

    def _into(self, k, step, names, out: str) -> list[str]:
        names[f"U{k}"] = self.into[k]
        parts = [self._expr(a, names) for a in step.args]
        if step.fn.name != "kernel":  # a kernel's only option is its name; a reduction's are its axes
            parts += [f"{key}={self._expr(v, names)}" for key, v in step.kw.items()]
        parts.append(f"out={out}")
        return [f"    v{step.outs[0]} = U{k}({', '.join(parts)})"]

    def _changed(self, target, names) -> list[str]:
        # An in-place write to a leaf (a parameter) makes graphs that saved its old value stale, as eagerly.
        if isinstance(target, Leaf):
            return [f"    L{target.index}.mark_changed()"]
        return []

    # -- replaying ------------------------------------------------------------------------------

    def fits(self) -> bool:
        """Whether the leaves the plan reads still have the shapes, dtypes and backends it was traced with."""
        for t, (shape, dtype, backend) in zip(self.leaves, self.guards):
            data = t.data
            if tuple(data.shape) != shape or data.dtype != dtype or t.backend is not backend:
                return False
        return True
