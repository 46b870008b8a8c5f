"""Flat parameter storage: the parameters of one dtype laid end to end in one buffer.

With ``flat=True`` an optimizer copies its parameters into one contiguous
buffer per dtype and rebinds each ``p.data`` to a reshaped view of its slice.
Gradients get a matching buffer, lent to the backward pass
(:meth:`gdbp.Tensor.zero_grad_`) so that rules that can write a gradient in
place (a linear layer's weight and bias) write it straight into its slice. A
step then applies the optimizer's update rule to the whole buffer, with the
same applier that updates one tensor (:func:`gdbp.descent.optimizer.applier`):
a handful of array operations per block of the buffer, whatever the number
of parameters. The rules are elementwise, so blocks give the same bits as
whole tensors.

Per-parameter semantics are kept as ``torch.optim`` has them: a parameter
without a gradient does not move and its state does not advance. Since the
whole-buffer step moves every parameter of the buffer together, a step in
which some parameter of a buffer has no gradient, or after which the
parameters' step counts differ, updates that buffer one parameter at a time
(on views of the flat state): same results, per-tensor speed.
"""

from __future__ import annotations

import sys

from .. import backends
from ..backprop import unwrap

__all__ = ["FlatGroup", "FlatStorage"]

# CPython tells whether a gradient buffer is still held by someone (see lend_grads).
_getrefcount = getattr(sys, "getrefcount", None)

# backend -> whether a write through a reshaped slice reaches the buffer it came from.
_writes_through: dict = {}

# On the CPU the rule's temporaries come from malloc: at the size of a whole buffer, each
# one is fresh pages from the system (page faults on every step), and each of the rule's
# passes streams the buffer through the cache. Blocks of 256 KiB are recycled from the heap
# and stay in cache. A GPU's memory pool has neither cost, and each block would cost a
# kernel launch per operation: there the block is the whole buffer.
_BLOCK_BYTES = 1 << 18


def check_backend(backend, owner: str) -> None:
    """Refuse flat storage on a backend whose arrays cannot be written through views.

    The array API standard leaves it to each library whether slicing and
    reshaping give views and whether arrays can be written in place; flat
    storage needs both. The answer is probed once per backend, with one read
    of a small array back to the host.

    Raises
    ------
    ValueError
        The backend is immutable, or writes to a view do not reach its buffer.
    """
    ok = _writes_through.get(backend)
    if ok is None:
        ok = backend.mutable and _probe(backend)
        _writes_through[backend] = ok
    if not ok:
        raise ValueError(
            f"{owner}(flat=True) needs a backend whose arrays can be written in place through views; "
            f"{backend.spec} cannot: use flat=False"
        )


def _probe(backend) -> bool:
    xp = backend.xp
    buf = xp.zeros(4, dtype=xp.float32, device=backend.device)
    view = xp.reshape(buf[1:3], (2, 1))
    view[...] = 1.0
    view -= 0.5
    return bool(buf[1] == 0.5) and bool(buf[0] == 0.0)


class FlatGroup:
    """Parameters of one dtype in one buffer, with their gradient buffer and flat state.

    Attributes
    ----------
    indices : list of int
        The parameters' indices in the optimizer's parameter list.
    params : list of Tensor
    data, grad : array
        The 1-D buffers of the parameters' values and gradients.
    views, grad_views : list of array
        Each parameter's slice of ``data`` / ``grad``, in its shape.
    state : dict
        Name -> 1-D array of the optimizer's state, every parameter's slice.
    steps : list of int
        Steps each parameter has taken (0 or 1 for optimizers that do not
        count steps: whether its state exists).
    """

    def __init__(self, indices: list, params: list):
        self.backend = params[0].backend
        xp = self.backend.xp
        self.indices = indices
        self.params = params
        self.shapes = [tuple(p.shape) for p in params]
        self.bounds = []
        start = 0
        for p in params:
            self.bounds.append((start, start + p.size))
            start += p.size
        # concat allocates: the buffer never shares memory with the caller's arrays.
        self.data = xp.concat([xp.reshape(p.data, (-1,)) for p in params])
        self.views = self.split(self.data)
        for p, view in zip(params, self.views):
            p.data = view
        self._new_grad_buffer()
        self.state: dict = {}
        self.steps = [0] * len(params)
        n = start
        block = n if self.backend.is_gpu else _BLOCK_BYTES // (xp.finfo(self.data.dtype).bits // 8)
        self.blocks = [(a, min(a + block, n)) for a in range(0, n, max(block, 1))]

    def __reduce__(self):
        # A copy (copy.deepcopy, pickle) would copy each view as an array of its own, cut from
        # the buffer: build the copy's buffer and views again from the copied parameters.
        return _rebuilt_group, (self.indices, self.params, self.state, self.steps)

    def split(self, flat) -> list:
        """Each parameter's slice of a 1-D buffer, in the parameter's shape (views)."""
        xp = self.backend.xp
        return [xp.reshape(flat[a:b], shape) for (a, b), shape in zip(self.bounds, self.shapes)]

    def _new_grad_buffer(self) -> None:
        # Never read before written: a slice is filled by the backward pass or by gather.
        self.grad = self.backend.xp.empty_like(self.data)
        self.grad_views = self.split(self.grad)

    def _mark_changed(self) -> None:
        # The buffer changed in place: so did every parameter (a graph that saved one is stale).
        for p in self.params:
            p.mark_changed()

    # -- keeping p.data on the buffer ------------------------------------------------

    def relink(self) -> None:
        """Bring back into the buffer any parameter whose ``data`` was rebound.

        ``p.data = value`` (by the user, or by ``Module.load_state_dict``)
        leaves the buffer; its value is copied into the parameter's slice and
        ``p.data`` is the view again, so the next step moves it.

        Raises
        ------
        BackendMismatchError, ShapeError, TypeError
            The new value lives on another backend (``Module.to`` after the
            optimizer was made), or has another shape or dtype.
        """
        for j, (p, view) in enumerate(zip(self.params, self.views)):
            if p.data is not view:
                self._relink(j, p, view)

    def _relink(self, j: int, p, view) -> None:
        i = self.indices[j]
        value = p.data
        where = backends.backend_of(value)
        if p.backend is not self.backend or where is not self.backend:
            raise backends.BackendMismatchError(
                f"parameter {i} now lives on {where.spec if where else type(value).__name__}, but this "
                f"optimizer keeps its flat buffers on {self.backend.spec}; after model.to(backend), make "
                "the optimizer again (its state can be carried over with state_dict / load_state_dict)"
            )
        backends.check_fits(value, self.backend, self.shapes[j], view.dtype,
                            f"parameter {i} was rebound to an array that", "its slice of the flat buffer",
                            "; make the optimizer again for the new shape or dtype (or cast the value first)")
        view[...] = value
        p.data = view

    # -- gradients -------------------------------------------------------------------

    def lend_grads(self) -> None:
        """Forget the gradients and lend each parameter its slice of the gradient buffer.

        A slice still held elsewhere (``g = w.grad`` kept across
        ``zero_grad``) must not be written by the next backward pass: then a
        fresh gradient buffer is taken for the whole group, as
        :meth:`gdbp.Tensor.zero_grad_` keeps a held gradient.
        """
        for p in self.params:
            p.grad = None  # before counting references: a gradient written into its slice holds the slice
        if _getrefcount is None:
            return  # no way to tell whether a slice is held: lend nothing, step copies
        held = False
        for view in self.grad_views:
            # Three references: the list, the loop variable and getrefcount's argument.
            if _getrefcount(view) > 3:
                held = True
                break
        del view
        if held:
            self._new_grad_buffer()
        for p, view in zip(self.params, self.grad_views):
            p.zero_grad_(buffer=view)

    def gather(self, grads: list, check) -> None:
        """Copy into the gradient buffer every gradient the backward pass did not write there."""
        for i, p, g, view in zip(self.indices, self.params, grads, self.grad_views):
            if g is not view:
                if not backends.fits(g, self.backend, view.shape, view.dtype):
                    check(i, p, g)  # raises, naming what does not fit
                view[...] = g

    # -- stepping --------------------------------------------------------------------

    def step_whole(self, update, counted: bool) -> None:
        """Apply ``update(w, g, state) -> (w, state)`` to the whole buffer, block by block, in place.

        For a step in which every parameter has its gradient in ``grad``
        and all have taken the same number of steps.
        """
        xp = self.backend.xp
        t = self.steps[0]
        for a, b in self.blocks:
            given = {k: v[a:b] for k, v in self.state.items()} if t else {}
            _, state = update(self.data[a:b], self.grad[a:b], dict(given, step=t) if counted and t else given)
            state = dict(state)
            state.pop("step", None)
            # The rules compute new state arrays. A block that is the whole buffer (always, on a GPU)
            # takes the new array as the flat state: copying it back would be one more pass over memory.
            whole = len(self.blocks) == 1
            for k, v in state.items():
                if v is not given.get(k):
                    if whole and v.dtype == self.data.dtype and self.backend.kernels.memory_of(v) is None:
                        self.state[k] = v
                        continue
                    if k not in self.state:
                        self.state[k] = xp.empty_like(self.data)  # every block fills its slice
                    self.state[k][a:b] = v
        self.steps = [t + 1 if counted else 1] * len(self.steps)
        self._mark_changed()

    # -- state -----------------------------------------------------------------------

    def state_of(self, j: int, keys) -> dict:
        """Parameter j's state in the per-tensor format: views of the flat state, and its step count."""
        if not self.steps[j]:
            return {}
        a, b = self.bounds[j]
        shape = self.shapes[j]
        xp = self.backend.xp
        out = {}
        for k in keys:
            if k == "step":
                out[k] = self.steps[j]
            elif k in self.state:
                out[k] = xp.reshape(self.state[k][a:b], shape)
        return out

    def put_state(self, j: int, entry: dict) -> None:
        """Write one parameter's per-tensor state into its slices of the flat state."""
        a, b = self.bounds[j]
        xp = self.backend.xp
        for k, v in entry.items():
            if k == "step":
                continue
            if k not in self.state:
                self.state[k] = xp.zeros_like(self.data)  # other parameters' slices: unused until their steps
            view = xp.reshape(self.state[k][a:b], self.shapes[j])
            if v is not view:
                view[...] = v
        self.steps[j] = entry.get("step", 1)


def _rebuilt_group(indices, params, state, steps) -> FlatGroup:
    group = FlatGroup(list(indices), list(params))
    group.state = dict(state)
    group.steps = list(steps)
    return group


class FlatStorage:
    """An optimizer's parameters in flat buffers, one :class:`FlatGroup` per dtype.

    Parameters
    ----------
    params : list of Tensor
        The optimizer's (checked) parameters, all on one backend.
    owner : str
        The optimizer's name, for error messages.

    Raises
    ------
    ValueError
        The backend cannot be written through views (see :func:`check_backend`).
    """

    def __init__(self, params: list, owner: str):
        check_backend(params[0].backend, owner)
        by_dtype: dict = {}
        for i, p in enumerate(params):
            by_dtype.setdefault(p.dtype, []).append(i)
        self.groups = [FlatGroup(indices, [params[i] for i in indices]) for indices in by_dtype.values()]
        self.where = {i: (group, j) for group in self.groups for j, i in enumerate(group.indices)}

    def relink(self) -> None:
        """See :meth:`FlatGroup.relink`."""
        for group in self.groups:
            group.relink()

    def zero_grad(self) -> None:
        """Forget the gradients; lend the gradient buffers to the next backward pass."""
        self.relink()  # a parameter moved by Module.to is caught here, before a backward pass
        for group in self.groups:
            group.lend_grads()

    def step(self, update, counted: bool, check) -> None:
        """One step of the rule ``update(p, g, state)`` over every group.

        Parameters
        ----------
        update : callable
            The optimizer's per-tensor rule; applied to a whole group (see
            :meth:`FlatGroup.step_whole`) when every parameter of the group
            has a gradient and all have taken the same number of steps, else
            to each parameter that has a gradient.
        counted : bool
            Whether the optimizer keeps a per-parameter ``"step"`` count.
        check : callable
            ``check(i, p, g)`` raises if a gradient does not fit its parameter.
        """
        for group in self.groups:
            group.relink()
            grads = [unwrap(p.grad) for p in group.params]
            steps = group.steps
            if steps.count(steps[0]) == len(steps) and all(g is not None for g in grads):
                group.gather(grads, check)
                group.step_whole(update, counted)
            else:
                self._step_each(group, grads, update, counted, check)

    @staticmethod
    def _step_each(group, grads, update, counted, check) -> None:
        # Per tensor, on views: the parameter is its view of the buffer, so the rule's in-place
        # descent lands there; its state comes from and goes back to the flat state.
        keys = (("step",) if counted else ()) + tuple(group.state)
        for j, (i, p, g) in enumerate(zip(group.indices, group.params, grads)):
            if g is None:
                continue
            if not backends.fits(g, p.backend, p.shape, p.dtype):
                check(i, p, g)
            _, state = update(p.data, g, group.state_of(j, keys))  # p.data is its view: written in place
            group.put_state(j, state)
            p.mark_changed()

    def state(self, keys) -> dict:
        """Per-parameter state, as the per-tensor optimizer keeps it: ``{index: {name: view or int}}``."""
        out = {}
        for group in self.groups:
            for j, i in enumerate(group.indices):
                if group.steps[j]:
                    out[i] = group.state_of(j, keys)
        return dict(sorted(out.items()))

    def load_state(self, state: dict) -> None:
        """Replace the state by per-parameter entries (checked arrays on the parameters' backend)."""
        for group in self.groups:
            group.state = {}
            group.steps = [0] * len(group.steps)
        for i, entry in state.items():
            group, j = self.where[i]
            group.put_state(j, entry)
