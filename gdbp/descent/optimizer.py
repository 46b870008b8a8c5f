"""The optimizer base class, and the one applier of update rules.

An optimizer holds its parameters, hyperparameters and per-parameter state;
its update rule is a pure function (:mod:`gdbp.descent.rules`) that gives
the step and the new state. :func:`applier` makes one step with any rule,
``w <- w - step``, after the shared weight decay (:mod:`.transforms`): in
place where the backend allows it (that is where speed comes from), by
rebinding where it does not. It runs on a whole tensor, on a flat buffer of
many, or on one block of one; the rules are elementwise, so all give the
same bits.
"""

from __future__ import annotations

import functools

from .. import backends
from ..backprop import Tensor, no_grad, trace, unwrap
from .flat import FlatStorage
from .transforms import decoupled_decay, l2_penalty
from .validate import check_grad, nonnegative, param_list

__all__ = ["Optimizer", "applier"]


def applier(rule, xp, options: dict, *, lr: float, weight_decay: float = 0.0, decoupled: bool = False):
    """One step of gradient descent with a rule: ``update(w, g, state, mutable=True) -> (w, state)``.

    The returned ``update`` takes ``w <- w - step``, ``step`` from the rule,
    after the shared weight decay, on whatever array it is given: a tensor's
    weights, a flat buffer of many, or a block of one.

    Parameters
    ----------
    rule : callable
        ``rule(xp, w, g, state, lr=..., **options) -> (step, new_state)`` (:mod:`gdbp.descent.rules`).
    xp : namespace
    options : dict
        The rule's hyperparameters besides lr.
    lr : float
    weight_decay : float
        Applied first: as an L2 penalty on the gradient, or, ``decoupled``,
        as a shrinking step of the weights (AdamW).

    Returns
    -------
    callable
        ``update(w, g, state, mutable=True)``: ``state`` is the rule's state
        for these weights (empty before their first step); ``mutable`` writes
        ``w`` in place, else a new array is computed. It returns the new
        weights (``w`` itself when written in place) and state.
    """
    step_of = functools.partial(rule, lr=lr, **options)

    def update(w, g, state, mutable=True):
        if weight_decay:
            if decoupled:
                w = _descend(w, decoupled_decay(w, lr, weight_decay), mutable)
            else:
                g = l2_penalty(g, w, weight_decay)
        step, state = step_of(xp, w, g, state)
        return _descend(w, step, mutable), state

    return update


def _descend(w, step, mutable: bool):
    if mutable:
        w -= step
        return w
    return w - step


class TensorStorage:
    """The parameters as they are, each stepped on its own (the storage of ``flat=False``)."""

    def __init__(self, params: list):
        self.params = params
        self.entries: dict[int, dict] = {}

    def state(self, keys) -> dict:
        return self.entries

    def load_state(self, state: dict) -> None:
        self.entries = state

    def step(self, update, counted: bool, check) -> None:
        """One step of ``update(w, g, state, mutable) -> (w, state)`` for each parameter that has a gradient."""
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            if isinstance(g, Tensor):
                g = g.data
            if not backends.fits(g, p.backend, p.shape, p.dtype):
                check(i, p, g)  # raises, naming what does not fit
            p.data, self.entries[i] = update(p.data, g, self.entries.get(i, {}), p.backend.mutable)
            p.mark_changed()  # a graph that saved the old value must not be swept any more

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad_()


class Optimizer:
    """Base class of the gradient-descent optimizers.

    A subclass names its update rule (``rule``, a function of
    :mod:`gdbp.descent.rules`), its hyperparameters, the state names the
    rule keeps, and checks its hyperparameters in ``__init__``.

    Parameters
    ----------
    params : iterable of Tensor
        The parameters to update, e.g. ``model.parameters()``, or a list of
        leaf Tensors made with ``requires_grad=True``. All must live on one
        backend. A :class:`gdbp.nn.Parameter` owns its memory; a plain Tensor
        made with ``gdbp.tensor(array)`` shares the caller's array, and the
        optimizer writes that array in place, as ``torch.optim`` does.
    lr : float
        The learning rate, a finite number >= 0. It is a plain attribute:
        a schedule (:mod:`gdbp.descent.schedules`) may set it between steps.
    flat : bool
        Keep the parameters in one contiguous buffer per dtype, so that a
        step is a handful of array operations over the whole buffer (in
        cache-sized blocks on the CPU), however many parameters there are
        (see Notes). Default False.

    Attributes
    ----------
    params : list of Tensor
    lr : float
    step_count : int
        How many times :meth:`step` has run.
    state : dict
        Per-parameter state (momentum buffers, moments...), keyed by the
        parameter's index in ``params``; created at a parameter's first step.

    Notes
    -----
    State arrays live on the parameter's backend and device, in its dtype.
    Hyperparameters are Python floats, so that a float32 parameter stays
    float32: nothing in a step promotes it to float64, and nothing in a step
    reads a value back to the host.

    With ``flat=True`` (on backends that write arrays in place through views:
    NumPy, CuPy, PyTorch, array-api-strict; others raise ``ValueError``):

    - each ``p.data`` is rebound, when the optimizer is made, to a view of
      the optimizer's buffer (same values). An array the caller passed in
      (``gdbp.tensor(array)``) is no longer written by the steps.
    - :meth:`zero_grad` lends the backward pass each parameter's slice of a
      flat gradient buffer; gradients written elsewhere are copied in at the
      step. Call ``optimizer.zero_grad()`` (not only ``model.zero_grad()``)
      for gradients to land in place.
    - a ``p.data`` rebound later (``p.data = value``, ``Module.load_state_dict``)
      is copied back into the buffer at the next :meth:`zero_grad` or
      :meth:`step`. A parameter moved to another backend (``Module.to``)
      makes them raise ``BackendMismatchError``: make the optimizer again.
    - results, :attr:`state` and :meth:`state_dict` are bit for bit those
      of ``flat=False``, and state dicts load across the two. A parameter
      without a gradient is skipped as without ``flat``; from then on, for
      optimizers that count steps per parameter, that buffer is stepped one
      parameter at a time (same results, per-tensor speed).
    - :attr:`state` is built on each access, from views of the flat state;
      assign a whole dict (or use :meth:`load_state_dict`) to change it.
    """

    #: The update rule: ``rule(xp, w, g, state, lr=..., **options) -> (step, state)``.
    rule = None
    #: Weight decay shrinks the weights apart from the gradient (AdamW) rather than adding to it.
    weight_decay_decoupled = False
    #: The constructor's hyperparameters, in order (saved by :meth:`state_dict`).
    hyperparameter_names: tuple = ("lr",)

    def __init__(self, params, lr: float, flat: bool = False):
        self.params = param_list(params, type(self).__name__)
        self.lr = lr
        self.step_count = 0
        # Last (subclasses check their hyperparameters before calling this): a construction
        # that fails leaves the parameters untouched.
        self._storage = FlatStorage(self.params, type(self).__name__) if flat else TensorStorage(self.params)

    @property
    def flat(self) -> bool:
        """Whether the parameters live in flat buffers (the constructor's ``flat``)."""
        return isinstance(self._storage, FlatStorage)

    @property
    def flat_groups(self) -> list:
        """The flat buffers (:class:`gdbp.descent.flat.FlatGroup`, one per dtype) with ``flat=True``; else empty.

        Each group's ``grad`` is the gradient buffer lent to the backward
        pass (re-read it every step: :meth:`zero_grad` may replace it), and
        ``indices`` / ``bounds`` say where each parameter's slice lies.
        """
        return list(self._storage.groups) if self.flat else []

    @property
    def state(self) -> dict:
        """Per-parameter state: ``{index: {name: array or int}}``, for parameters stepped at least once."""
        return self._storage.state(self._state_keys())

    @state.setter
    def state(self, value: dict) -> None:
        self._storage.load_state(value)

    # -- the learning rate ---------------------------------------------------

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = nonnegative("lr", value, what="learning rate")

    # -- stepping ------------------------------------------------------------

    def step(self) -> None:
        """Update every parameter that has a gradient, by this optimizer's rule.

        Parameters without a gradient (``p.grad is None``) are skipped and
        their state does not advance, as in ``torch.optim``.

        Raises
        ------
        TypeError, ShapeError, BackendMismatchError
            A gradient does not match its parameter's backend, dtype or shape.
        """
        trace.opaque(self._step)  # under gdbp.compile, every replay takes the step again, as it is

    def _step(self) -> None:
        with no_grad():
            self._storage.step(self._updater(), "step" in self._state_keys(), check_grad)
        self.step_count += 1

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``p.grad = None``) before the next backward pass.

        The memory of a gradient nobody else holds is kept for the next
        backward pass to write into (see :meth:`gdbp.Tensor.zero_grad_`);
        with ``flat=True``, each parameter's slice of the flat gradient buffer.
        """
        trace.opaque(self._storage.zero_grad)

    def _updater(self):
        """This step's ``update(w, g, state, mutable=True) -> (w, state)``: the rule with this step's hyperparameters.

        It applies to one array of weights: a tensor's, or a block of a flat buffer.
        """
        return applier(self.rule, self.params[0].backend.xp, self._options(), lr=self.lr,
                       weight_decay=getattr(self, "weight_decay", 0.0), decoupled=self.weight_decay_decoupled)

    def _options(self) -> dict:
        """The rule's hyperparameters besides lr (weight decay is a shared transform, not the rule's)."""
        return {k: getattr(self, k) for k in self.hyperparameter_names if k not in ("lr", "weight_decay")}

    def _state_keys(self) -> tuple:
        """The names of the state a parameter holds once it has been stepped."""
        return ()

    # -- saving and restoring -------------------------------------------------

    def hyperparameters(self) -> dict:
        """The constructor's keyword arguments, with their current values."""
        return {name: getattr(self, name) for name in self.hyperparameter_names}

    def state_dict(self) -> dict:
        """A snapshot of the optimizer: step count, hyperparameters and per-parameter state.

        Returns
        -------
        dict
            ``{"optimizer": class name, "step": int, "hyperparameters": {name: value},
            "state": {index: {name: array or int}}}``. Arrays are copies on the
            parameters' backend, so later steps do not change the snapshot.
        """
        state = {}
        for i, entry in self.state.items():  # with flat=True, views of the flat state: copied here
            p = self.params[i]
            state[i] = {k: _copy(p, v) for k, v in entry.items()}
        return {
            "optimizer": type(self).__name__,
            "step": self.step_count,
            "hyperparameters": self.hyperparameters(),
            "state": state,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a snapshot taken by :meth:`state_dict` (possibly on another backend).

        Arrays are copied onto each parameter's backend (an explicit transfer
        when they come from another one); shapes and dtypes must match.
        Nothing changes unless the whole snapshot is valid.

        Raises
        ------
        ValueError
            The snapshot is of another optimizer, has other hyperparameters,
            more parameters than this optimizer, or other state names.
        TypeError, ShapeError
            An array's dtype or shape differs from its parameter's.
        """
        name = type(self).__name__
        saved_name = state_dict.get("optimizer", name)
        if saved_name != name:
            raise ValueError(f"load_state_dict: the state was saved by {saved_name}, this optimizer is {name}")
        missing = {"step", "hyperparameters", "state"} - set(state_dict)
        if missing:
            raise ValueError(f"load_state_dict: the state has no {sorted(missing)}; pass what state_dict() returned")
        hyper = dict(state_dict["hyperparameters"])
        if set(hyper) != set(self.hyperparameter_names):
            raise ValueError(
                f"load_state_dict: {name} has hyperparameters {list(self.hyperparameter_names)}, "
                f"the state has {sorted(hyper)}"
            )
        checked = type(self)(self.params, **hyper)  # validates the values, as the constructor does
        expected = set(checked._state_keys())
        state = {}
        for i, entry in state_dict["state"].items():
            i = int(i)
            if not 0 <= i < len(self.params):
                raise ValueError(
                    f"load_state_dict: the state has parameter {i}, this optimizer has {len(self.params)} parameters"
                )
            if set(entry) != expected:
                raise ValueError(
                    f"load_state_dict: parameter {i} has state {sorted(entry)}, {name} with these "
                    f"hyperparameters keeps {sorted(expected)}"
                )
            state[i] = {k: _restore(self.params[i], i, k, v) for k, v in entry.items()}
        for key in self.hyperparameter_names:
            setattr(self, key, getattr(checked, key))
        self.step_count = int(state_dict["step"])
        self.state = state

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        if self.flat:
            args += ", flat=True"
        return f"{type(self).__name__}({len(self.params)} parameters, {args})"


def _copy(p: Tensor, value):
    if isinstance(value, (int, float)):
        return value
    return p.backend.xp.asarray(value, copy=True)


def _restore(p: Tensor, i: int, key: str, value):
    if key == "step":
        return int(value)
    value = unwrap(value)
    source = backends.backend_of(value)
    if source is None:
        raise TypeError(f"load_state_dict: state {key!r} of parameter {i} is a {type(value).__name__}, not an array")
    if source is not p.backend:
        value = backends.transfer(value, p.backend)  # an explicit move, asked for by loading
    backends.check_fits(value, p.backend, p.shape, p.dtype, f"load_state_dict: state {key!r} of parameter {i}",
                        "the parameter", "; cast the saved arrays explicitly if that is intended")
    return p.backend.xp.asarray(value, copy=True)
