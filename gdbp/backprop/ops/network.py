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
from ..primitive import axes, conj, defn, defprim
from ..tensor import unwrap

# --- logsumexp, softmax, log_softmax ------------------------------------------------


def _shifted(xp, x, axis):
    # Subtract the max so that exp cannot overflow; a row of -inf keeps max 0, not nan.
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    return x - m, m


def _logsumexp(xp, x, /, *, axis=None, keepdims=False):
    """log(sum(exp(x))) over the given axes, without overflow."""
    z, m = _shifted(xp, x, axis)
    out = xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = xp.reshape(out, tuple(n for i, n in enumerate(out.shape) if i not in axes(axis, x.ndim)))
    return out


def _logsumexp_vjp(xp, g, ans, x, *, axis=None, keepdims=False):
    # d lse / dx = softmax(x) = exp(x - lse)
    if not keepdims:
        reduced = axes(axis, x.ndim)
        shape = tuple(1 if i in reduced else n for i, n in enumerate(x.shape))
        g = xp.reshape(g, shape)
        ans = xp.reshape(ans, shape)
    return g * xp.exp(x - ans)


logsumexp_p = defprim("logsumexp", _logsumexp, _logsumexp_vjp, needs_ans=True)


def _softmax(xp, x, /, *, axis=-1):
    """exp(x) / sum(exp(x)) along an axis, without overflow."""
    e = xp.exp(_shifted(xp, x, axis)[0])
    return e / xp.sum(e, axis=axis, keepdims=True)


# d softmax: ans * (g - sum(g * ans))
softmax_p = defprim("softmax", _softmax,
                    lambda xp, g, ans, x, *, axis=-1: ans * (g - xp.sum(g * ans, axis=axis, keepdims=True)),
                    needs_ans=True)


def _log_softmax(xp, x, /, *, axis=-1):
    """x - logsumexp(x) along an axis: log-probabilities, without overflow."""
    z, _ = _shifted(xp, x, axis)
    return z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))


# d log_softmax: g - softmax * sum(g)
log_softmax_p = defprim("log_softmax", _log_softmax,
                        lambda xp, g, ans, x, *, axis=-1: g - xp.exp(ans) * xp.sum(g, axis=axis, keepdims=True),
                        needs_ans=True)


# --- activations ------------------------------------------------------------------------


def _relu(xp, x, /):
    """max(x, 0)."""
    return xp.maximum(x, 0)


# relu'(0) is taken as 0, as PyTorch does.
relu_p = defprim("relu", _relu, lambda xp, g, ans, x: backends.kernels(xp).relu_grad(g, ans), needs_ans=True)


def _sigmoid(xp, x, /):
    """1 / (1 + exp(-x)), stable for large |x|."""
    # 1 / (1 + exp(-x)) overflows for very negative x; exp(x) / (1 + exp(x)) is its stable twin there.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


sigmoid_p = defprim("sigmoid", _sigmoid, lambda xp, g, ans, x: g * ans * (1 - ans), needs_ans=True)


# --- linear: x @ W.T + b ---------------------------------------------------------------


def _linear(xp, x, weight, bias=None, /):
    """x @ weight.T + bias, with weight of shape (out_features, in_features), as in PyTorch."""
    out = backends.kernels(xp).matmul(x, weight.T)
    if bias is not None:
        out += bias  # out is fresh: adding in place saves an allocation
    return out


def _linear_x(xp, g, ans, x, weight, bias=None):
    return backends.kernels(xp).matmul(g, conj(xp, weight))


def _rows(xp, a):
    """a as a matrix: every leading (batch) axis merged into the rows."""
    return a if a.ndim == 2 else xp.reshape(a, (-1, a.shape[-1]))


def _linear_weight(xp, g, ans, x, weight, bias=None):
    # dW = g^T @ conj(x), summed over every batch axis at once.
    return backends.kernels(xp).matmul(_rows(xp, g).T, conj(xp, _rows(xp, x)))


def _linear_bias(xp, g, ans, x, weight, bias=None):
    # One reduction over every batch axis.
    return xp.sum(_rows(xp, g), axis=0)


def _linear_weight_into(xp, out, g, ans, x, weight, bias=None):
    if g.dtype != out.dtype:  # a complex g for a real weight: its real part, computed apart
        return _linear_weight(xp, g, ans, x, weight, bias)
    return backends.kernels(xp).matmul_into(_rows(xp, g).T, conj(xp, _rows(xp, x)), out)


def _linear_bias_into(xp, out, g, ans, x, weight, bias=None):
    if g.dtype != out.dtype:
        return _linear_bias(xp, g, ans, x, weight, bias)
    return backends.kernels(xp).sum_into(_rows(xp, g), 0, out)


linear_p = defprim("linear", _linear, _linear_x, _linear_weight, _linear_bias,
                   vjps_into=(None, _linear_weight_into, _linear_bias_into), namespace=False)


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
    # res, the forward's softmax, is None on a recorded backward pass: recompute it, recorded.
    p = res if res is not None else softmax_p(logits)
    grad = backends.kernels(xp).minus_onehot(p - smoothing / k if smoothing else p, labels, 1 - smoothing)
    if reduction == "mean":
        return grad * (g / math.prod(grad.shape[:-1]))
    if reduction == "sum":
        return grad * g
    return grad * xp.expand_dims(g, axis=-1)


softmax_cross_entropy_p = defprim("softmax_cross_entropy", _xent_forward, _xent_vjp, None, residuals=True,
                                  public=False)


@defn(namespace=False)
def softmax_cross_entropy(logits, labels, /, *, label_smoothing=0.0, reduction="mean"):
    """Cross-entropy of softmax(logits) against integer class labels, fused.

    cost = -log softmax(logits)[label]; its gradient is softmax - onehot.
    """
    return softmax_cross_entropy_p(logits, unwrap(labels), smoothing=float(label_smoothing), reduction=reduction)
