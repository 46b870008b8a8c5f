"""The optimizer base class: a parameter list, a learning rate, per-parameter state.

Each optimizer (SGD, Adam, ...) writes its update rule in one method,
``_update(p, g, state)``, and takes the step with :meth:`Optimizer._descend`,
which is ``w <- w - step``: in place where the backend allows it (that is
where speed comes from), by rebinding ``p.data`` where it does not.
"""

from __future__ import annotations

import math

from .. import backends
from ..backprop import ShapeError, Tensor
from .flat import FlatStorage

__all__ = ["Optimizer"]


class Optimizer:
    """Base class of the gradient-descent optimizers.

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

    #: The constructor's hyperparameters, in order (saved by :meth:`state_dict`).
    hyperparameter_names: tuple = ("lr",)

    def __init__(self, params, lr: float, flat: bool = False):
        self.params = _param_list(params, type(self).__name__)
        self.lr = lr
        self.step_count = 0
        self._flat = None
        self._state: dict[int, dict] = {}
        if flat:
            # Last (subclasses check their hyperparameters before calling this): a construction
            # that fails leaves the parameters untouched.
            self._flat = FlatStorage(self.params, type(self).__name__)

    @property
    def flat(self) -> bool:
        """Whether the parameters live in flat buffers (the constructor's ``flat``)."""
        return self._flat is not None

    @property
    def state(self) -> dict:
        """Per-parameter state: ``{index: {name: array or int}}``, for parameters stepped at least once."""
        if self._flat is None:
            return self._state
        return self._flat.state(self._state_keys())

    @state.setter
    def state(self, value: dict) -> None:
        if self._flat is None:
            self._state = value
        else:
            self._flat.load_state(value)

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
        TypeError, ShapeError
            A gradient does not match its parameter's backend, dtype or shape.
        """
        if self._flat is not None:
            self._flat.step(self._update, "step" in self._state_keys(), _check_grad)
        else:
            for i, p in enumerate(self.params):
                g = grad_array(p)
                if g is None:
                    continue
                _check_grad(i, p, g)
                self._update(p, g, self._state.setdefault(i, {}))
        self.step_count += 1

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``p.grad = None``) before the next backward pass.

        The memory of a gradient nobody else holds is kept for the next
        backward pass to write into (see :meth:`gdbp.Tensor.zero_grad_`);
        with ``flat=True``, each parameter's slice of the flat gradient buffer.
        """
        if self._flat is not None:
            self._flat.zero_grad()
            return
        for p in self.params:
            p.zero_grad_()

    def _update(self, p: Tensor, g, state: dict) -> None:
        """Apply the update rule to one parameter (raw gradient ``g``; ``state`` starts empty).

        ``p`` may also be a block of a flat buffer holding many parameters
        (see :mod:`gdbp.descent.flat`): a rule reads only ``p.data`` and
        ``p._backend``, and moves ``p`` with :meth:`_descend`. It must be
        elementwise (each entry's update depends on that entry alone), so
        that a block gives the same bits as a tensor; a rule that is not
        (per-tensor norms, as in LAMB) must refuse ``flat=True``.
        """
        raise NotImplementedError

    def _descend(self, p: Tensor, step) -> None:
        """``w <- w - step``: in place on mutable backends, else by rebinding ``p.data``."""
        if p._backend.mutable:
            p.data -= step
        else:
            p.data = p.data - step
        p._bump_version()  # a graph that saved the old value must not be swept any more

    def _descend_scaled(self, p: Tensor, lr: float, d) -> None:
        """``w <- w - lr * d``, in place through the backend's fast path where it has one."""
        if p._backend.mutable:
            backends.kernels(p._backend.xp).sub_scaled_(p.data, lr, d)
            p._bump_version()
        else:
            self._descend(p, lr * d)

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
        if self._flat is not None:
            args += ", flat=True"
        return f"{type(self).__name__}({len(self.params)} parameters, {args})"


# --- helpers shared by the optimizers, clipping and minimize -------------------------------


def grad_array(p: Tensor):
    """The raw gradient array of p, or None (``p.grad`` may be an array or a Tensor)."""
    g = p.grad
    if isinstance(g, Tensor):
        return g.data
    return g


def set_grad_array(p: Tensor, g) -> None:
    """Give p a new gradient array, keeping the kind of ``p.grad`` (array or Tensor)."""
    p.grad = Tensor(g) if isinstance(p.grad, Tensor) else g


def _number(name: str, value) -> float:
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if isinstance(value, Tensor):
        value = value.data
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}") from None


def nonnegative(name: str, value, what: str | None = None) -> float:
    """value as a Python float, or a ValueError naming it when it is negative, NaN or infinite."""
    x = _number(name, value)
    if not (math.isfinite(x) and x >= 0.0):
        label = f"{what} {name}" if what else name
        raise ValueError(f"invalid {label}={x!r}: it must be a finite number >= 0")
    return x


def fraction(name: str, value) -> float:
    """value as a Python float in [0, 1), or a ValueError naming it."""
    x = _number(name, value)
    if not 0.0 <= x < 1.0:  # also False for NaN
        raise ValueError(f"invalid {name}={x!r}: it must lie in [0, 1)")
    return x


def _param_list(params, owner: str) -> list:
    if isinstance(params, Tensor) or backends.is_array(params):
        raise TypeError(
            f"{owner} takes an iterable of parameters, got a single {type(params).__name__}; "
            "wrap it in a list: [w]"
        )
    if isinstance(params, dict):
        raise TypeError(f"{owner} takes an iterable of parameters, got a dict; pass model.parameters() or list(d.values())")
    params = list(params)
    if not params:
        raise ValueError(
            f"{owner} got an empty parameter list: pass model.parameters() or a list of Tensors "
            "made with requires_grad=True (a generator can be used only once)"
        )
    seen = set()
    first = None
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(
                f"{owner}: parameter {i} is a {type(p).__name__}, not a Tensor; wrap arrays with "
                "gdbp.nn.Parameter(x) or gdbp.tensor(x, requires_grad=True)"
            )
        if not p.is_leaf:
            raise ValueError(
                f"{owner}: parameter {i} is computed from other Tensors, not a leaf; optimize the leaves it comes from"
            )
        if not p._backend.xp.isdtype(p.dtype, "real floating"):
            raise TypeError(f"{owner}: parameter {i} has dtype {p.dtype}; only real floating parameters can be trained")
        if id(p) in seen:
            raise ValueError(f"{owner}: parameter {i} appears twice in the parameter list; pass each parameter once")
        seen.add(id(p))
        if first is None:
            first = p
        elif p._backend is not first._backend:
            raise backends.BackendMismatchError(
                f"{owner}: parameter 0 lives on {first._backend.spec} and parameter {i} on {p._backend.spec}; "
                "one optimizer updates parameters of one backend: move them with model.to(backend)"
            )
    return params


def _check_grad(i: int, p: Tensor, g) -> None:
    # Cheap attribute checks: a gradient of another dtype would be cast (or promote)
    # silently by the in-place update, one of another backend would fail obscurely.
    if type(g) is not p._backend.array_type and backends.backend_of(g) is not p._backend:
        raise backends.BackendMismatchError(
            f"parameter {i} lives on {p._backend.spec} but its gradient is a {type(g).__name__}; "
            "a gradient must live where its parameter does"
        )
    if g.dtype != p.dtype:
        raise TypeError(f"parameter {i} has dtype {p.dtype} but its gradient has dtype {g.dtype}")
    if tuple(g.shape) != p.shape:
        raise ShapeError(f"parameter {i} has shape {p.shape} but its gradient has shape {tuple(g.shape)}")


def _copy(p: Tensor, value):
    if isinstance(value, (int, float)):
        return value
    return p._backend.xp.asarray(value, copy=True)


def _restore(p: Tensor, i: int, key: str, value):
    if key == "step":
        return int(value)
    if isinstance(value, Tensor):
        value = value.data
    source = backends.backend_of(value)
    if source is None:
        raise TypeError(f"load_state_dict: state {key!r} of parameter {i} is a {type(value).__name__}, not an array")
    if source is not p._backend:
        value = backends.transfer(value, p._backend)  # an explicit move, asked for by loading
    if tuple(value.shape) != p.shape:
        raise ShapeError(
            f"load_state_dict: state {key!r} of parameter {i} has shape {tuple(value.shape)}, the parameter {p.shape}"
        )
    if value.dtype != p.dtype:
        raise TypeError(
            f"load_state_dict: state {key!r} of parameter {i} has dtype {value.dtype}, the parameter {p.dtype}; "
            "cast the saved arrays explicitly if that is intended"
        )
    return p._backend.xp.asarray(value, copy=True)
