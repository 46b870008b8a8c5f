"""Primitives every network needs that the standard lacks, written to be stable and fused.

logsumexp, softmax and log_softmax subtract the maximum so that exp cannot
overflow. relu, sigmoid, linear (x @ W.T + b) and softmax cross-entropy from
integer labels are single primitives because composing them costs extra
passes over memory: cross-entropy's gradient is one expression,
(softmax - onehot) / n.
"""

from __future__ import annotations

import math

from ... import backends
from ..engine import Primitive


def _keep(xp, a, axis, keepdims):
    return a if keepdims else xp.expand_dims(a, axis=axis)


# --- logsumexp, softmax, log_softmax ------------------------------------------------


def _shifted(xp, x, axis):
    # Subtract the max so that exp cannot overflow; a row of -inf keeps max 0, not nan.
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    return x - m, m


def _logsumexp_forward(xp, x, axis=None, keepdims=False):
    z, m = _shifted(xp, x, axis)
    out = xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = xp.reshape(out, tuple(n for i, n in enumerate(out.shape) if i not in _axes(axis, x.ndim)))
    return out


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, int) else axis
    return tuple(a % ndim for a in axis)


def _logsumexp_vjp(xp, g, ans, x, axis=None, keepdims=False):
    # d lse / dx = softmax(x) = exp(x - lse)
    if not keepdims:
        shape = tuple(1 if i in _axes(axis, x.ndim) else n for i, n in enumerate(x.shape))
        g = xp.reshape(g, shape)
        ans = xp.reshape(ans, shape)
    return g * xp.exp(x - ans)


logsumexp_ = Primitive("logsumexp", _logsumexp_forward, vjps=(_logsumexp_vjp,), needs_ans=True)


def logsumexp(x, /, *, axis=None, keepdims=False):
    """log(sum(exp(x))) over the given axes, without overflow."""
    return logsumexp_(x, axis=axis, keepdims=keepdims)


def _softmax_forward(xp, x, axis=-1):
    e = xp.exp(_shifted(xp, x, axis)[0])
    return e / xp.sum(e, axis=axis, keepdims=True)


softmax_ = Primitive(
    "softmax", _softmax_forward, needs_ans=True,
    # d softmax: ans * (g - sum(g * ans))
    vjps=(lambda xp, g, ans, x, axis=-1: ans * (g - xp.sum(g * ans, axis=axis, keepdims=True)),),
)


def softmax(x, /, *, axis=-1):
    """exp(x) / sum(exp(x)) along an axis, without overflow."""
    return softmax_(x, axis=axis)


def _log_softmax_forward(xp, x, axis=-1):
    z, _ = _shifted(xp, x, axis)
    return z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))


log_softmax_ = Primitive(
    "log_softmax", _log_softmax_forward, needs_ans=True,
    # d log_softmax: g - softmax * sum(g)
    vjps=(lambda xp, g, ans, x, axis=-1: g - xp.exp(ans) * xp.sum(g, axis=axis, keepdims=True),),
)


def log_softmax(x, /, *, axis=-1):
    """x - logsumexp(x) along an axis: log-probabilities, without overflow."""
    return log_softmax_(x, axis=axis)


# --- activations ------------------------------------------------------------------------

# relu'(0) is taken as 0, as PyTorch does.
relu_ = Primitive("relu", lambda xp, x: xp.maximum(x, 0),
                  vjps=(lambda xp, g, ans, x: _relu_grad(xp, g, ans),), needs_ans=True)


def _relu_grad(xp, g, ans):
    if hasattr(g, "_gdbp_tensor"):  # recorded backward pass
        return g * xp.astype(ans > 0, g.dtype)
    return backends.kernels(xp).relu_grad(g, ans)


def relu(x, /):
    """max(x, 0)."""
    return relu_(x)


def _sigmoid_forward(xp, x):
    # 1 / (1 + exp(-x)) overflows for very negative x; exp(x) / (1 + exp(x)) is its stable twin there.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


sigmoid_ = Primitive("sigmoid", _sigmoid_forward,
                     vjps=(lambda xp, g, ans, x: g * ans * (1 - ans),), needs_ans=True)


def sigmoid(x, /):
    """1 / (1 + exp(-x)), stable for large |x|."""
    return sigmoid_(x)


# --- linear: x @ W.T + b ---------------------------------------------------------------


def _linear_forward(xp, x, weight, bias):
    out = backends.kernels(xp).matmul(x, weight.T)
    if bias is not None:
        out += bias  # out is fresh: adding in place saves an allocation
    return out


def _linear_x(xp, g, ans, x, weight, bias):
    return backends.kernels(xp).matmul(g, weight)


def _rows(xp, a):
    """a as a matrix: every leading (batch) axis merged into the rows."""
    return a if a.ndim == 2 else xp.reshape(a, (-1, a.shape[-1]))


def _linear_weight(xp, g, ans, x, weight, bias):
    # dW = g^T @ x, summed over every batch axis at once.
    return backends.kernels(xp).matmul(_rows(xp, g).T, _rows(xp, x))


def _linear_bias(xp, g, ans, x, weight, bias):
    # One reduction over every batch axis.
    return xp.sum(_rows(xp, g), axis=0)


def _linear_weight_into(xp, out, g, ans, x, weight, bias):
    return backends.kernels(xp).matmul_into(_rows(xp, g).T, _rows(xp, x), out)


def _linear_bias_into(xp, out, g, ans, x, weight, bias):
    return backends.kernels(xp).sum_into(_rows(xp, g), 0, out)


linear_ = Primitive("linear", _linear_forward, vjps=(_linear_x, _linear_weight, _linear_bias),
                    vjps_into=(None, _linear_weight_into, _linear_bias_into))


def linear(x, weight, bias=None, /):
    """x @ weight.T + bias, with weight of shape (out_features, in_features), as in PyTorch."""
    return linear_(x, weight, bias)


# --- softmax cross-entropy from integer labels ---------------------------------------------


def _xent_forward(xp, logits, labels, smoothing=0.0, reduction="mean"):
    k = backends.kernels(xp)
    loss, p = k.softmax_xent(logits, labels, smoothing)
    if reduction == "mean":
        loss = k.mean_all(loss)
    elif reduction == "sum":
        loss = xp.sum(loss)
    return loss, p  # softmax(logits), kept for the backward pass


def _xent_vjp(xp, g, ans, logits, labels, smoothing=0.0, reduction="mean", res=None):
    # d/dlogits = softmax(logits) - target, with target = (1 - eps) onehot + eps / K.
    k = logits.shape[-1]
    if res is None:  # the backward pass is recorded: compose it from differentiable ops
        p = softmax_(logits)
        target = labels_onehot(xp, labels, k, p.dtype)
        if smoothing:
            target = (1 - smoothing) * target + smoothing / k
        grad = p - target
    else:
        grad = backends.kernels(xp).minus_onehot(res - smoothing / k if smoothing else res, labels, 1 - smoothing)
    if reduction == "mean":
        return grad * (g / math.prod(grad.shape[:-1]))
    if reduction == "sum":
        return grad * g
    return grad * xp.expand_dims(g, axis=-1)


def labels_onehot(xp, labels, k, dtype):
    raw = labels.data if hasattr(labels, "_gdbp_tensor") else labels
    rxp = backends.namespace(raw)
    classes = rxp.arange(k, device=backends.device_of(raw))
    return rxp.astype(rxp.expand_dims(raw, axis=-1) == classes, dtype)


softmax_cross_entropy_ = Primitive("softmax_cross_entropy", _xent_forward, vjps=(_xent_vjp, None), residuals=True)


def softmax_cross_entropy(logits, labels, /, *, label_smoothing=0.0, reduction="mean"):
    """Cross-entropy of softmax(logits) against integer class labels, fused.

    cost = -log softmax(logits)[label]; its gradient is softmax - onehot.
    """
    if hasattr(labels, "_gdbp_tensor"):
        labels = labels.data
    return softmax_cross_entropy_(logits, labels, smoothing=float(label_smoothing), reduction=reduction)


__all__ = ["logsumexp", "softmax", "log_softmax", "relu", "sigmoid", "linear", "softmax_cross_entropy"]
