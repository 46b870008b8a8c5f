"""Checking (x, y) data against a model, and cutting it into minibatches on its device."""

from __future__ import annotations

import functools

from .. import backends
from .._validate import integer
from ..backprop import ShapeError, Tensor, unwrap

__all__ = ["whole", "positive_int", "model_backend", "check_array", "check_data", "check_finite",
           "takes_class_labels", "check_labels", "batch_bounds", "take_rows"]




whole = integer  # value as a Python int >= low, never a bool (see gdbp._validate.integer)


def positive_int(name: str, value, where: str) -> int:
    """value as an int >= 1, or a clear error naming it."""
    return whole(name, value, where, low=1)


def model_backend(model, where: str):
    """The one backend of the model's parameters (raises if they sit on two, or there are none)."""
    params = list(model.parameters())
    if not params:
        raise ValueError(f"{where}: the model has no parameters to train or evaluate")
    found = params[0].backend
    names = [n for n, _ in model.named_parameters()] if hasattr(model, "named_parameters") else None
    for i, p in enumerate(params):
        if p.backend is not found:
            label = repr(names[i]) if names else f"parameter {i}"
            first = repr(names[0]) if names else "parameter 0"
            raise backends.BackendMismatchError(
                f"{where}: the model's parameters live on two backends: {first} on {found.spec} and "
                f"{label} on {p.backend.spec}; move the whole model with model.to(backend)"
            )
    return found


def check_array(value, what: str, backend, where: str):
    """The backend array of ``value`` (an array or Tensor with a sample axis), checked to live on ``backend``."""
    value = unwrap(value)
    found = backends.backend_of(value)
    if found is None:
        raise TypeError(
            f"{where}: {what} must be an array of the model's backend or a gdbp.Tensor, got "
            f"{type(value).__name__}; make one with gdbp.tensor(...) or gdbp.transfer(array, backend)"
        )
    if found is not backend:
        name = what.split()[-1]
        raise backends.BackendMismatchError(
            f"{where}: {what} lives on {found.spec} but the model's parameters live on {backend.spec}; "
            f"move the model with model.to({found.spec!r}) or the data with gdbp.transfer({name}, {backend.spec!r})"
        )
    if value.ndim < 1:
        raise ShapeError(f"{where}: {what} must have a leading sample axis, got a 0-d array")
    if value.shape[0] == 0:
        raise ValueError(f"{where}: {what} holds no samples")
    return value


def check_data(data, what: str, backend, where: str):
    """The arrays (x, y) of a data pair, checked: same number of samples, on ``backend``.

    Parameters
    ----------
    data : tuple
        ``(x, y)``: arrays (or Tensors) whose first axis indexes samples.
    what : str
        How the pair is called in messages (``"train_data"``...).
    backend : Backend
        The model's backend.
    where : str
        The public function, for messages.
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{where}: {what} must be a pair (x, y) of arrays, got {type(data).__name__}")
    x = unwrap(data[0])
    y = unwrap(data[1])
    if backends.is_array(x) and backends.is_array(y) and x.ndim >= 1 and y.ndim >= 1 and x.shape[0] != y.shape[0]:
        raise ShapeError(
            f"{where}: {what} has {x.shape[0]} samples in x but {y.shape[0]} in y "
            f"(shapes {tuple(x.shape)} and {tuple(y.shape)}): their first dimensions must match"
        )
    return check_array(x, f"{what} x", backend, where), check_array(y, f"{what} y", backend, where)


def check_finite(value, what: str, where: str) -> None:
    """Refuse floating data holding a NaN or an infinity, naming the first (once per fit: one host read)."""
    backend = backends.backend_of(value)
    if not backend.xp.isdtype(value.dtype, ("real floating", "complex floating")):
        return
    bad = backends.first_not_finite(value)
    if bad is not None:
        position, v = bad
        raise ValueError(
            f"{where}: {what} is not finite: {v} at position {position}; remove or impute the samples that "
            "hold NaN or inf before training (every cost computed from them would be NaN)"
        )


def takes_class_labels(cost) -> bool:
    """Whether a cost function says it takes integer class labels (``takes_class_labels = True``).

    gdbp's cross_entropy, nll, CrossEntropyLoss and NLLLoss say so, and
    ``functools.partial`` of them; a cost of your own may set the attribute.
    """
    while isinstance(cost, functools.partial):
        cost = cost.func
    return bool(getattr(cost, "takes_class_labels", False))


def check_labels(labels, classes: int, what: str, where: str) -> None:
    """Refuse integer labels outside [0, classes), naming the first and its position.

    One host read for the whole array, once per fit (on a GPU: its minimum
    and maximum, and the labels themselves only if one is out of range).
    """
    backend = backends.backend_of(labels)
    if not backend.xp.isdtype(labels.dtype, "integral"):
        return  # the cost function names the wrong dtype itself
    bad = backends.out_of_range(labels, 0, classes)
    if bad is not None:
        position, value = bad
        raise IndexError(
            f"{where}: {what} holds label {value} at position {position}, outside [0, {classes}): the model gives "
            f"{classes} class scores, so labels are class indices 0..{classes - 1}"
        )


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each minibatch; the last one may be smaller."""
    return [(start, min(n, start + batch_size)) for start in range(0, n, batch_size)]


def take_rows(xp, a, order, start: int, stop: int):
    """Rows start..stop of ``a``, or of ``a`` permuted by ``order``: indexed on the device."""
    if order is None:
        return a[start:stop, ...]
    return xp.take(a, order[start:stop], axis=0)
