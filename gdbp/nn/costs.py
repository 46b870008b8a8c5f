"""Cost functions: functional forms and Module classes.

Every cost takes ``(pred, target)`` and a ``reduction``: "mean" (default)
averages the per-element (or per-example) costs, "sum" adds them, "none"
returns them. Regression costs need pred and target of one shape (nothing is
broadcast silently); classification costs take class scores along the last
axis and integer labels of shape ``logits.shape[:-1]``.
"""

from __future__ import annotations

from .. import backends
from ..backprop import ShapeError, Tensor, ops, unwrap
from ._util import as_tensor, refuse_out_of_range
from .module import Module

__all__ = [
    "mse", "mae", "huber", "cross_entropy", "binary_cross_entropy_with_logits", "nll",
    "MSELoss", "L1Loss", "HuberLoss", "CrossEntropyLoss", "BCEWithLogitsLoss", "NLLLoss",
]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss, reduction):
    if reduction == "mean":
        return ops.mean(loss)
    if reduction == "sum":
        return ops.sum(loss)
    return loss


def _check_reduction(name, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _same_shape(name, pred, target):
    if tuple(pred.shape) != tuple(target.shape):
        raise ShapeError(
            f"{name}: pred has shape {tuple(pred.shape)} but target has shape {tuple(target.shape)}; "
            "they must match (reshape one: no broadcasting is done)"
        )


def _check_labels(name, scores, labels, what):
    raw = unwrap(labels)
    same = scores.backend if isinstance(scores, Tensor) else None
    backend = same if same is not None and type(raw) is same.array_type else backends.backend_of(raw)
    if backend is None:
        raise TypeError(f"{name}: labels must be an integer array or Tensor, got {type(labels).__name__}")
    if not backends.isdtype(backend.xp, raw.dtype, "integral"):
        raise TypeError(
            f"{name}: integer class labels are needed, got dtype {raw.dtype}; pass class indices "
            f"(e.g. xp.astype(y, xp.int64)), not one-hot vectors or probabilities"
        )
    if scores.ndim < 1 or tuple(raw.shape) != tuple(scores.shape[:-1]):
        raise ShapeError(
            f"{name}: {what} of shape {tuple(scores.shape)} need labels of shape {tuple(scores.shape[:-1])} "
            f"(classes along the last axis), got labels of shape {tuple(raw.shape)}"
        )
    k = scores.shape[-1]
    refuse_out_of_range(name, "label", raw, k, f"{what} hold {k} classes: labels are class indices 0..{k - 1}",
                        backend)
    return raw


# --- regression ---------------------------------------------------------------------------


def mse(pred, target, reduction: str = "mean"):
    """Mean squared error: cost = mean((pred - target)^2)."""
    _check_reduction("mse", reduction)
    _same_shape("mse", pred, target)
    d = as_tensor(pred) - target
    return _reduce(d * d, reduction)


def mae(pred, target, reduction: str = "mean"):
    """Mean absolute error (L1): cost = mean(|pred - target|); its gradient at 0 is taken as 0."""
    _check_reduction("mae", reduction)
    _same_shape("mae", pred, target)
    return _reduce(ops.abs(as_tensor(pred) - target), reduction)


def huber(pred, target, delta: float = 1.0, reduction: str = "mean"):
    """Huber cost: quadratic near 0, linear beyond delta.

    With d = |pred - target|: cost_i = d^2 / 2 if d < delta, else
    delta (d - delta / 2); reduced by ``reduction``. Computed as
    q^2 / 2 + delta (d - q) with q = min(d, delta), which is the same
    function without a branch.
    """
    _check_reduction("huber", reduction)
    _same_shape("huber", pred, target)
    if not delta > 0:
        raise ValueError(f"huber: delta must be positive, got {delta}")
    d = ops.abs(as_tensor(pred) - target)
    q = ops.minimum(d, delta)
    return _reduce(0.5 * (q * q) + delta * (d - q), reduction)


# --- classification -----------------------------------------------------------------------


def cross_entropy(logits, labels, label_smoothing: float = 0.0, reduction: str = "mean"):
    """Cross-entropy of softmax(logits) against integer class labels (fused and stable).

    With p = softmax(logits) along the last axis, K classes and smoothing e:
    cost_i = -(1 - e) log p[i, y_i] - e / K sum_k log p[i, k]; reduced by
    ``reduction``. Its gradient is p - ((1 - e) onehot(y) + e / K).

    Labels outside [0, K) are refused on CPU backends (NumPy, torch on the
    CPU, array-api-strict), where reading them costs no device sync. On GPU
    backends they are not checked here, since that would make the host wait
    for the device at every call: :func:`gdbp.train.fit` checks its labels
    once, before the first step, and a direct call with a bad label gives an
    undefined result.

    Raises
    ------
    TypeError
        labels are not integers.
    ShapeError
        labels' shape is not logits.shape[:-1].
    IndexError
        (CPU backends) a label lies outside [0, K): the first one is named
        with its position.
    """
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must lie in [0, 1], got {label_smoothing}")
    raw = _check_labels("cross_entropy", logits, labels, "logits")
    return ops.softmax_cross_entropy(logits, raw, label_smoothing=label_smoothing, reduction=reduction)


def nll(log_probs, labels, reduction: str = "mean"):
    """Negative log-likelihood of integer labels under log-probabilities: cost_i = -log_probs[i, y_i].

    Labels are checked as in :func:`cross_entropy`: on CPU backends, one
    outside [0, K) raises an IndexError naming it and its position; on GPU
    backends :func:`gdbp.train.fit` checks them once per fit.

    Raises
    ------
    TypeError, ShapeError, IndexError
        As :func:`cross_entropy`.
    """
    _check_reduction("nll", reduction)
    raw = _check_labels("nll", log_probs, labels, "log_probs")
    xp = backends.namespace(raw)
    picked = ops.take_along_axis(log_probs, xp.expand_dims(raw, axis=-1), axis=-1)
    return _reduce(-ops.reshape(picked, tuple(raw.shape)), reduction)


# fit checks the labels of the costs that say they take class labels (see gdbp.train.fit).
cross_entropy.takes_class_labels = True
nll.takes_class_labels = True


def binary_cross_entropy_with_logits(logits, targets, reduction: str = "mean"):
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], stable.

    cost_i = -(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))) = log(1 + exp(x)) - x y,
    computed as logaddexp(0, x) - x y so that it neither overflows nor loses
    the gradient sigmoid(x) - y at x = 0.
    """
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    _same_shape("binary_cross_entropy_with_logits", logits, targets)
    raw = unwrap(targets)
    backend = backends.backend_of(raw)
    if backend is not None and not backends.isdtype(backend.xp, raw.dtype, "real floating"):
        raise TypeError(
            f"binary_cross_entropy_with_logits: targets must be floating (probabilities in [0, 1]), "
            f"got dtype {raw.dtype}; cast them, e.g. xp.astype(y, logits.dtype)"
        )
    logits = as_tensor(logits)
    return _reduce(ops.logaddexp(0.0, logits) - logits * targets, reduction)


# --- Module forms ---------------------------------------------------------------------------


class _Cost(Module):
    """A cost function as a Module: options at construction (and ``reduction``), arrays at the call."""

    cost = None  # the functional form

    def __init__(self, reduction: str = "mean", **options):
        super().__init__()
        _check_reduction(type(self).__name__, reduction)
        self.reduction = reduction
        self.option_names = tuple(options)
        for name, value in options.items():
            setattr(self, name, value)  # e.g. HuberLoss().delta, as in PyTorch

    def _options(self) -> dict:
        return {name: getattr(self, name) for name in self.option_names}

    def forward(self, scores, target):
        return type(self).cost(scores, target, reduction=self.reduction, **self._options())

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in {**self._options(), "reduction": self.reduction}.items())


class MSELoss(_Cost):
    """:func:`mse` as a Module: ``MSELoss()(pred, target)``."""

    cost = staticmethod(mse)


class L1Loss(_Cost):
    """:func:`mae` as a Module."""

    cost = staticmethod(mae)


class HuberLoss(_Cost):
    """:func:`huber` as a Module."""

    cost = staticmethod(huber)

    def __init__(self, delta: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction, delta=delta)


class CrossEntropyLoss(_Cost):
    """:func:`cross_entropy` as a Module: ``CrossEntropyLoss(label_smoothing=0.1)(logits, labels)``."""

    cost = staticmethod(cross_entropy)
    takes_class_labels = True

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean"):
        super().__init__(reduction, label_smoothing=label_smoothing)


class BCEWithLogitsLoss(_Cost):
    """:func:`binary_cross_entropy_with_logits` as a Module."""

    cost = staticmethod(binary_cross_entropy_with_logits)


class NLLLoss(_Cost):
    """:func:`nll` as a Module."""

    cost = staticmethod(nll)
    takes_class_labels = True
