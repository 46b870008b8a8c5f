"""The tracer: it watches a function run once, eagerly, and writes down every step of it.

Every value the plan will need is one of:

- a *slot*: a function input, or the output of a recorded step;
- a *leaf*: a Tensor the function reads but did not get as an argument (a
  parameter), whose ``.data`` is read again at every replay;
- a *constant*: anything else (a Python scalar, an index key, a closed-over
  array), kept by reference.

Arrays are told apart by identity; the tracer keeps every array it has seen
alive while it traces, so that no identity is reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import backends
from ..backprop import Tensor
from ..backprop.engine import apply
from ..backprop.trace import CompileError

__all__ = ["Tracer", "Slot", "Leaf", "Const", "Step"]


@dataclass(frozen=True)
class Slot:
    index: int


@dataclass(frozen=True)
class Leaf:
    tensor: Any = field(compare=False)
    index: int = 0


@dataclass(frozen=True)
class Const:
    value: Any = field(compare=False)
    index: int = 0


@dataclass
class Step:
    """One recorded step: ``kind`` is "apply", "assign", "setitem", "external", "grad", "forget" or "opaque".

    ``fn`` is what runs (a primitive, or a callable); ``args`` and ``kw`` hold
    references (:class:`Slot`, :class:`Leaf`, :class:`Const`, and tuples or
    lists of them) where values go; ``outs`` are the slots it fills.
    """

    kind: str
    fn: Any
    args: tuple
    kw: dict
    outs: tuple = ()
    xp: Any = None
    fix: bool = False  # the forward returned a scalar, not an array: wrap it as the engine does
    target: Any = None  # "assign", "setitem", "grad": what is written


class Tracer:
    """Records a function's steps while it runs; :class:`gdbp.compile.plan.Plan` turns them into code."""

    def __init__(self):
        self.steps: list[Step] = []
        self.n_slots = 0
        self.refs: dict[int, Any] = {}  # id(array) -> Slot or Leaf
        self.alive: list = []  # every array seen, so that no id is reused while tracing
        self.leaves: list = []
        self.consts: list = []
        self.inputs: list[int] = []
        self.meta: dict[int, tuple] = {}  # slot -> (shape, dtype, backend, row-major?) of the array traced there

    # -- values -----------------------------------------------------------------------------

    def new_slot(self, array) -> Slot:
        slot = Slot(self.n_slots)
        self.n_slots += 1
        self.refs[id(array)] = slot
        self.alive.append(array)
        backend = backends.backend_of(array)
        if backend is not None:
            self.meta[slot.index] = (tuple(array.shape), array.dtype, backend, backend.kernels.row_major(array))
        return slot

    def input(self, array) -> Slot:
        """A function input: its value comes from the call."""
        slot = self.new_slot(array)
        self.inputs.append(slot.index)
        return slot

    def knows(self, array) -> bool:
        return id(array) in self.refs

    def ref(self, value):
        """The reference through which a step reads ``value`` at replay."""
        if isinstance(value, Tensor):
            found = self.refs.get(id(value.data))
            if found is not None:
                return found
            if value.is_leaf and value.requires_grad:
                return self._leaf(value)
            value = value.data  # a constant Tensor made outside the function: its array, by reference
        if isinstance(value, (tuple, list)) and not hasattr(value, "_fields"):
            return type(value)(self.ref(v) for v in value)
        found = self.refs.get(id(value))
        if found is not None:
            return found
        if backends.is_array(value):
            self._refuse_untraced_view(value)
        const = Const(value, len(self.consts))
        self.consts.append(value)
        self.alive.append(value)
        return const

    def _leaf(self, tensor) -> Leaf:
        leaf = Leaf(tensor, len(self.leaves))
        self.leaves.append(tensor)
        self.refs[id(tensor.data)] = leaf
        self.alive.append(tensor.data)
        return leaf

    def _refuse_untraced_view(self, array) -> None:
        # An array that is a view of a traced one was computed from traced values outside gdbp's ops
        # (through .data): a replay would reuse its value from the trace.
        base = getattr(array, "base", None)
        while base is not None:
            if id(base) in self.refs and isinstance(self.refs[id(base)], Slot):
                raise CompileError(
                    "a compiled function computed an array from a traced value outside gdbp's operations "
                    "(through .data, or with the array library directly): a replay would reuse the value of "
                    "the first call; use the array namespace of the Tensors (x.__array_namespace__())"
                )
            base = getattr(base, "base", None)

    def refs_of_kw(self, kw: dict) -> dict:
        return {k: self.ref(v) for k, v in kw.items()}

    # -- the hooks (gdbp.backprop.trace) --------------------------------------------------------

    def applied(self, prim, raw, kw, res, out, backend, fixed) -> None:
        """prim ran on ``raw`` (with options kw) on ``backend`` and gave ``out`` (and residuals ``res``).

        ``fixed``: the forward gave a scalar that the engine made an array (NumPy does for 0-d results).
        """
        if self.paused:
            return
        args = tuple(self.ref(a) for a in raw)
        kwr = self.refs_of_kw(kw)
        outputs = out if isinstance(out, tuple) else (out,)
        slots = tuple(self.new_slot(o.data).index if isinstance(o, Tensor) else None for o in outputs)
        if res is not None:
            slots += (self.new_slot(res).index,)
        self.steps.append(Step("apply", prim, args, kwr, slots, xp=backend.xp, fix=fixed))

    def inplace_op(self, tensor, prim, other) -> None:
        """``tensor op= other`` while tracing: the op is recorded, then its result written where tensor's data is."""
        tensor._operand(other, prim)
        new = apply(prim, (tensor, other), {})
        if tensor.backend.mutable:
            tensor.data[...] = new.data
            self.inplace(tensor, new)
        else:
            self.rebind(tensor, new)
            tensor.data = new.data
        tensor.mark_changed()

    def inplace(self, tensor, value) -> None:
        """``tensor.data[...] = value``: the write of an in-place operation (value already recorded)."""
        if not self.paused:
            self.steps.append(Step("assign", None, (self.ref(value),), {}, target=self.ref(tensor)))

    def rebind(self, tensor, value) -> None:
        """``tensor.data = value`` (an in-place op on a backend that cannot write in place)."""
        target = self.ref(tensor)
        if isinstance(target, Leaf) and not self.paused:  # an input's new value is simply value's slot
            self.steps.append(Step("rebind", None, (self.ref(value),), {}, target=target))

    def setitem(self, tensor, key, value) -> None:
        if not self.paused:
            self.steps.append(Step("setitem", None, (self.ref(key), self.ref(value)), {}, target=self.ref(tensor)))

    def grad(self, leaf, g, result) -> None:
        """The sweep gave ``leaf`` its gradient ``g`` (set, or added to the one there), making ``result``."""
        if self.paused:
            return
        step = Step("grad", None, (self.ref(g),), {}, target=self._leaf_ref(leaf))
        step.outs = (self.new_slot(result).index,)
        self.steps.append(step)

    def set_grad(self, tensor, value) -> None:
        """``tensor.grad = value`` in the function: ``None`` is replayed; a value would be the trace's, so refused."""
        if self.paused:
            return
        if value is not None:
            raise CompileError(
                "a compiled function set a Tensor's .grad to a value, which a replay would not compute again: "
                "set it to None (or call zero_grad()) and let backward() give the gradient, or return the value"
            )
        self.steps.append(Step("forget", None, (), {}, target=self._leaf_ref(tensor)))

    def _leaf_ref(self, tensor):
        found = self.refs.get(id(tensor.data))
        return found if isinstance(found, Leaf) else Const(tensor, self._const(tensor))

    def _const(self, value) -> int:
        self.consts.append(value)
        return len(self.consts) - 1

    def external(self, fn, args, kw, result) -> None:
        if self.paused:
            return
        step = Step("external", fn, tuple(self.ref(a) for a in args), self.refs_of_kw(kw))
        if backends.is_array(result):
            step.outs = (self.new_slot(result).index,)
        self.steps.append(step)

    def opaque(self, fn, args, kw):
        if self.paused:
            return fn(*args, **kw)
        self.steps.append(Step("opaque", fn, tuple(self.ref(a) for a in args), self.refs_of_kw(kw)))
        self.paused += 1  # what fn computes inside is not traced: it runs as it is at every replay
        try:
            return fn(*args, **kw)
        finally:
            self.paused -= 1

    paused = 0

    def host_read(self, tensor, what: str) -> None:
        """A read of a value on the host: refused when the value is traced (a replay could not redo it)."""
        if self.paused:
            return
        if id(tensor.data) in self.refs:
            raise CompileError(
                f"{what} reads a traced value on the host, which a replay cannot redo (the plan has no branches, "
                "and the value changes from call to call): return the value from the compiled function and read "
                "it outside, or compute it without a host read"
            )
