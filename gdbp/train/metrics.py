"""Metrics: per-batch values computed on the device, averaged on the host in chunks.

A metric is ``metric(pred, target) -> 0-d array``: the MEAN over the batch
(as the cost functions are), so that averaging batches weighted by their
size gives the value over the whole data set. That is exact for accuracy and
for costs with ``reduction="mean"``; a metric that is not a mean of
per-sample terms (an F1 score, an AUC) is only approximated this way.
"""

from __future__ import annotations

import math

from .. import backends
from ..backprop import no_grad, unwrap

__all__ = ["accuracy", "resolve_metrics", "RunningMean", "sync_all"]


def accuracy(pred, target):
    """The fraction of samples whose predicted class is the target's.

    Parameters
    ----------
    pred : array or Tensor
        Class scores (logits or probabilities) of shape ``(n, classes)``: the
        prediction is their argmax. For shape ``(n,)`` or ``(n, 1)``, one
        logit of a binary classifier: the prediction is ``pred > 0``.
    target : array or Tensor
        Integer class labels of shape ``(n,)``; or, beside ``(n, classes)``
        scores, one-hot (or probability) rows of the same shape; for a binary
        classifier, 0/1 labels of pred's shape.

    Returns
    -------
    array
        0-d, float32: the fraction correct in the batch.

    Raises
    ------
    TypeError
        Class scores met labels that are not integers.
    ShapeError
        The shapes do not pair up in any of the ways above.
    """
    from ..backprop import ShapeError

    p, t = unwrap(pred), unwrap(target)
    xp = backends.namespace(p, t)
    if p.ndim == t.ndim + 1 and p.shape[:-1] == t.shape:
        if not xp.isdtype(t.dtype, "integral"):
            raise TypeError(
                f"accuracy: class scores of shape {tuple(p.shape)} need integer class labels, got dtype {t.dtype}; "
                "cast the labels, e.g. xp.astype(y, xp.int64)"
            )
        hit = xp.argmax(p, axis=-1) == t
    elif p.shape == t.shape and p.ndim >= 2 and p.shape[-1] > 1:
        hit = xp.argmax(p, axis=-1) == xp.argmax(t, axis=-1)
    elif p.shape == t.shape:
        hit = (p > 0) == (xp.astype(t, xp.float32) > 0.5)
    else:
        raise ShapeError(
            f"accuracy: predictions of shape {tuple(p.shape)} do not pair with targets of shape {tuple(t.shape)}: "
            "expected (n, classes) scores with (n,) integer labels or (n, classes) one-hot rows, "
            "or binary logits and labels of one shape"
        )
    return xp.mean(xp.astype(hit, xp.float32))


def _cost_metric(cost):
    def cost_metric(pred, target):
        return cost(pred, target)

    return cost_metric


def resolve_metrics(metrics, cost, where: str) -> list[tuple[str, object]]:
    """(name, function) pairs for the metrics asked for.

    Parameters
    ----------
    metrics : iterable or dict
        ``"accuracy"``, ``"cost"`` and callables ``metric(pred, target)``
        (named by their ``__name__``); or a dict name -> callable.
    cost : callable or None
        What ``"cost"`` means.
    """
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    items = list(metrics.items()) if isinstance(metrics, dict) else [(None, m) for m in metrics]
    out = []
    for name, m in items:
        if m == "accuracy":
            out.append((name or "accuracy", accuracy))
        elif m == "cost":
            if cost is None:
                raise ValueError(f"{where}: the metric 'cost' needs the cost function: pass cost=...")
            out.append((name or "cost", _cost_metric(cost)))
        elif callable(m):
            out.append((name or getattr(m, "__name__", type(m).__name__), m))
        else:
            raise ValueError(
                f"{where}: unknown metric {m!r}: use 'accuracy', 'cost' or a callable metric(pred, target) -> 0-d array"
            )
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: two metrics share a name in {names}; pass a dict name -> metric")
    return out


def batch_value(fn, pred, target):
    """A metric's 0-d array on one batch (no graph is recorded)."""
    with no_grad():
        value = unwrap(fn(pred, target))
    if math.prod(value.shape) != 1:
        name = getattr(fn, "__name__", type(fn).__name__)
        raise ValueError(
            f"metric {name} returned shape {tuple(value.shape)}; a metric returns the batch mean as a 0-d array"
        )
    return value


class RunningMean:
    """A size-weighted mean of per-batch 0-d device values, brought to the host in chunks.

    :meth:`add` keeps the device value (no host sync); :meth:`sync` (or
    :func:`sync_all`, for several means at once) copies the pending values
    to the host in ONE transfer.
    """

    __slots__ = ("_values", "_weights", "_steps", "total", "count", "first_bad")

    def __init__(self):
        self._values, self._weights, self._steps = [], [], []
        self.total = 0.0
        self.count = 0
        self.first_bad = None  # (step, value) of the first non-finite value seen

    def add(self, value, weight: int, step: int) -> None:
        self._values.append(value)
        self._weights.append(weight)
        self._steps.append(step)

    def sync(self) -> None:
        sync_all([self])

    def _take(self, host: list) -> None:
        """Fold in the host values of the pending entries, in order."""
        for v, w, s in zip(host, self._weights, self._steps):
            if self.first_bad is None and not math.isfinite(v):
                self.first_bad = (s, v)
            self.total += v * w
            self.count += w
        self._values, self._weights, self._steps = [], [], []

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan


def sync_all(means) -> None:
    """Bring the pending values of several running means to the host in one transfer.

    Each transfer from a GPU waits for the device; the training loop's cost
    and metrics are read together, every ``sync_every`` steps. The values
    meet in float64 (exact for float32 values), on their backend.
    """
    means = [m for m in means if m._values]
    if not means:
        return
    values = [v for m in means for v in m._values]
    xp = backends.namespace(values[0])
    host = backends.to_numpy(xp.stack([xp.astype(xp.reshape(v, ()), xp.float64) for v in values])).tolist()
    start = 0
    for m in means:
        stop = start + len(m._values)
        m._take(host[start:stop])
        start = stop
