"""Plain array-API programs, written the way a user of the standard writes them.

Nothing here knows of gdbp: each function takes its namespace from its
arguments (``array_api_compat.array_namespace``), so called on NumPy arrays
it is NumPy code, and called by ``gdbp.value_and_grad`` it runs on gdbp's
differentiable namespace. No fused primitive is in sight: a ReLU is
``xp.maximum(z, 0.0)``, the log-sum-exp is built from ``xp.max``, ``xp.exp``,
``xp.sum`` and ``xp.log``, and the labels are picked with
``xp.take_along_axis``.

The weights of :func:`mlp_cost` are (in, out), so that a layer reads
``x @ W + b``; the problem (:func:`benchmarks.problems.mlp`) stores them
(out, in), and the implementations transpose once when they are built.
``benchmarks.impl_torch`` mirrors these functions line for line in torch's
own functions.
"""

from __future__ import annotations

import math

import array_api_compat

__all__ = ["mlp_cost", "attention_cost", "tiny"]


def mlp_cost(W1, b1, W2, b2, W3, b3, x, y):
    """Mean softmax cross-entropy of a 3-layer ReLU network on inputs x (n, 784) and integer labels y (n,)."""
    xp = array_api_compat.array_namespace(x, W1)
    h = xp.maximum(x @ W1 + b1, 0.0)
    h = xp.maximum(h @ W2 + b2, 0.0)
    z = h @ W3 + b3
    m = xp.max(z, axis=1, keepdims=True)  # shift by the row maximum, so that exp cannot overflow
    logsumexp = xp.log(xp.sum(xp.exp(z - m), axis=1)) + m[:, 0]
    picked = xp.take_along_axis(z, xp.expand_dims(y, axis=1), axis=1)[:, 0]
    return xp.mean(logsumexp - picked)


def attention_cost(Wq, Wk, Wv, Wo, x, y):
    """Mean over blocks of || softmax(Q K^T / sqrt(H)) V Wo - y ||^2, x and y of shape (B, T, D)."""
    xp = array_api_compat.array_namespace(x, Wq)
    q, k, v = x @ Wq, x @ Wk, x @ Wv
    s = xp.matmul(q, xp.matrix_transpose(k)) / math.sqrt(Wq.shape[1])
    e = xp.exp(s - xp.max(s, axis=-1, keepdims=True))
    p = e / xp.sum(e, axis=-1, keepdims=True)
    r = xp.matmul(p, v) @ Wo - y
    return xp.mean(xp.sum(r * r, axis=(1, 2)))


def tiny(W, b, x):
    """sum(relu(x @ W + b)) with the ReLU written as a maximum."""
    xp = array_api_compat.array_namespace(x, W)
    return xp.sum(xp.maximum(x @ W + b, 0.0))
