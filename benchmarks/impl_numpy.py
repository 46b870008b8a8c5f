"""Hand-written NumPy: the reference every other implementation is measured against.

The MLP step is written the way a careful person would write it by hand:
forward and backward derived on paper, every buffer allocated once, the
update in place. Each matrix product uses whichever of ``matmul`` and ``dot``
is faster for its shapes, measured when the step is built (``numpy.matmul``
is several times slower than ``numpy.dot`` when the shared dimension is 1,
as in the weight gradient ``dz.T @ x`` at batch size 1).

:class:`HandMLP` and :class:`Floor` take the array module ``xp`` (NumPy or
CuPy), so the GPU suite reuses them.
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np

__all__ = ["HandMLP", "Floor", "HandAttention", "TinyByHand", "AdamByHand", "AdamFlat", "BENCHES"]


def _fastest_product(xp, a, b, out, trials: int = 7):
    """A zero-argument function computing ``out = a @ b``, the fastest way xp offers."""
    candidates = {"matmul": functools.partial(xp.matmul, a, b, out=out)}
    if xp is np:
        candidates["dot"] = functools.partial(np.dot, a, b, out=out)
    if len(candidates) == 1:
        return "matmul", candidates["matmul"]
    best = {}
    for name, f in candidates.items():
        f()
        times = []
        for _ in range(trials):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        best[name] = min(times)
    name = min(best, key=best.get)
    return name, candidates[name]


class _Buffers:
    """Weights (own copies), data and every activation/gradient buffer of an MLP step."""

    def __init__(self, problem, xp=np):
        self.xp = xp
        params = [xp.asarray(p).copy() for p in problem["params"]]
        self.W, self.b = params[0::2], params[1::2]
        self.x = xp.asarray(problem["x"])
        self.y = xp.asarray(problem["y"])
        self.lr = problem["lr"]
        n = self.x.shape[0]
        dtype = self.x.dtype
        widths = [W.shape[0] for W in self.W]
        # Zeros, not empty: the product timings below must not run on garbage (NaN, subnormals).
        # h[k] is the input of layer k (h[0] = x); h[L] holds the logits.
        self.h = [self.x] + [xp.zeros((n, w), dtype=dtype) for w in widths]
        # dz[k]: gradient of the cost with respect to layer k's pre-activation.
        self.dz = [xp.zeros((n, w), dtype=dtype) for w in widths]
        self.dW = [xp.zeros_like(W) for W in self.W]
        self.db = [xp.empty_like(b) for b in self.b]
        self.mask = [xp.empty((n, w), dtype=bool) for w in widths[:-1]]
        self.rowmax = xp.empty((n, 1), dtype=dtype)
        self.rowsum = xp.empty((n, 1), dtype=dtype)
        self.rows = xp.arange(n)
        self.loss = None
        self.products = {}
        L = len(self.W)
        self.forward_products = [self._product(f"h{k + 1} = h{k} @ W{k + 1}.T", self.h[k], self.W[k].T, self.h[k + 1])
                                 for k in range(L)]
        self.weight_products = [self._product(f"dW{k + 1} = dz{k + 1}.T @ h{k}", self.dz[k].T, self.h[k], self.dW[k])
                                for k in range(L)]
        # No gradient is needed for the input x: L - 1 products, 3L - 1 in all (8 for three layers).
        self.input_products = [None] + [
            self._product(f"dh{k} = dz{k + 1} @ W{k + 1}", self.dz[k], self.W[k], self.dz[k - 1]) for k in range(1, L)
        ]

    def _product(self, label, a, b, out):
        choice, f = _fastest_product(self.xp, a, b, out)
        self.products[label] = choice
        return f

    def result(self):
        params = []
        for W, b in zip(self.W, self.b):
            params += [_host(W), _host(b)]
        return {"loss": _host(self.loss), "params": params}


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


class HandMLP(_Buffers):
    """One SGD step of the MLP, by hand: forward, softmax cross-entropy, backward, update."""

    def step(self):
        xp = self.xp
        L = len(self.W)
        for k in range(L):
            self.forward_products[k]()
            z = self.h[k + 1]
            z += self.b[k]
            if k < L - 1:
                xp.maximum(z, 0, out=z)  # relu in place

        # cost = mean(logsumexp(z) - z[label]); dcost/dz = (softmax(z) - onehot) / n
        logits, p = self.h[L], self.dz[L - 1]
        n = logits.shape[0]
        xp.max(logits, axis=1, keepdims=True, out=self.rowmax)
        xp.subtract(logits, self.rowmax, out=p)  # shift by the max so that exp cannot overflow
        picked = p[self.rows, self.y]
        xp.exp(p, out=p)
        xp.sum(p, axis=1, keepdims=True, out=self.rowsum)
        self.loss = xp.mean(xp.log(self.rowsum[:, 0]) - picked)
        p /= self.rowsum
        p[self.rows, self.y] -= 1
        p *= 1 / n

        for k in reversed(range(L)):
            self.weight_products[k]()
            xp.sum(self.dz[k], axis=0, out=self.db[k])
            if k > 0:
                self.input_products[k]()
                # relu'(z) = [z > 0] = [h > 0], with relu'(0) taken as 0
                xp.greater(self.h[k], 0, out=self.mask[k - 1])
                xp.multiply(self.dz[k - 1], self.mask[k - 1], out=self.dz[k - 1])

        for W, dW, b, db in zip(self.W, self.dW, self.b, self.db):
            dW *= self.lr
            W -= dW
            db *= self.lr
            b -= db


class Floor(_Buffers):
    """Only the matrix products an MLP step needs (3 forward, 2L - 1 backward): a lower bound."""

    def step(self):
        for f in self.forward_products:
            f()
        for k in reversed(range(len(self.W))):
            self.weight_products[k]()
            if k > 0:
                self.input_products[k]()

    def result(self):
        raise NotImplementedError("the floor computes no cost or update: it has nothing to check")


class HandAttention:
    """One SGD step of the attention-like blocks (``problems.attention``), derived by hand.

    Forward, per block: Q = X Wq, K = X Wk, V = X Wv, S = Q K^T / sqrt(H),
    P = softmax(S) by rows, R = P V Wo - Y; cost = sum(R^2) / B. Backward:

        dR = 2 R / B,  dWo = (P V)^T dR,  dO = dR Wo^T,
        dP = dO V^T,  dV = P^T dO,  dS = P * (dP - rowsum(dP * P)) / sqrt(H),
        dQ = dS K,  dK = dS^T Q,  dWq = X^T dQ (and so for Wk, Wv)

    with the weight gradients summed over blocks. The projections by shared
    weights are single 2-D products over all B*T rows (flat views of the
    buffers); only the per-block products (Q K^T, P V and their gradients)
    are ``numpy.matmul`` over stacks. Every buffer is allocated once.
    """

    def __init__(self, problem):
        self.W = [p.copy() for p in problem["params"]]
        self.x, self.y, self.lr = problem["x"], problem["y"], problem["lr"]
        B, T, D = self.x.shape
        H = self.W[0].shape[1]
        self.scale = 1 / math.sqrt(H)

        def stack(*shape):
            return np.zeros(shape, dtype=self.x.dtype)

        self.q, self.k, self.v, self.o = (stack(B, T, H) for _ in range(4))
        self.dq, self.dk, self.dv, self.do = (stack(B, T, H) for _ in range(4))
        self.p, self.dp, self.scratch = (stack(B, T, T) for _ in range(3))
        self.r = stack(B, T, D)
        self.rowmax, self.rowsum = stack(B, T, 1), stack(B, T, 1)
        self.dW = [np.zeros_like(W) for W in self.W]
        self.loss = None

    def step(self):
        Wq, Wk, Wv, Wo = self.W
        dWq, dWk, dWv, dWo = self.dW
        q, k, v, o, p, dp, r = self.q, self.k, self.v, self.o, self.p, self.dp, self.r
        dq, dk, dv, do = self.dq, self.dk, self.dv, self.do
        B = self.x.shape[0]

        def rows(a):  # (B, T, n) -> (B*T, n), a view of the contiguous buffer
            return a.reshape(-1, a.shape[-1])

        x = rows(self.x)
        np.dot(x, Wq, out=rows(q))
        np.dot(x, Wk, out=rows(k))
        np.dot(x, Wv, out=rows(v))
        np.matmul(q, k.transpose(0, 2, 1), out=p)
        p *= self.scale
        np.max(p, axis=-1, keepdims=True, out=self.rowmax)
        p -= self.rowmax  # shift by the row maximum, so that exp cannot overflow
        np.exp(p, out=p)
        np.sum(p, axis=-1, keepdims=True, out=self.rowsum)
        p /= self.rowsum
        np.matmul(p, v, out=o)
        np.dot(rows(o), Wo, out=rows(r))
        r -= self.y
        self.loss = np.vdot(r, r) / B

        r *= 2 / B  # dR
        np.dot(rows(o).T, rows(r), out=dWo)
        np.dot(rows(r), Wo.T, out=rows(do))
        np.matmul(do, v.transpose(0, 2, 1), out=dp)
        np.matmul(p.transpose(0, 2, 1), do, out=dv)
        np.multiply(dp, p, out=self.scratch)
        np.sum(self.scratch, axis=-1, keepdims=True, out=self.rowsum)
        dp -= self.rowsum
        dp *= p
        dp *= self.scale  # dS
        np.matmul(dp, k, out=dq)
        np.matmul(dp.transpose(0, 2, 1), q, out=dk)
        np.dot(x.T, rows(dq), out=dWq)
        np.dot(x.T, rows(dk), out=dWk)
        np.dot(x.T, rows(dv), out=dWv)

        for W, dW in zip(self.W, self.dW):
            dW *= self.lr
            W -= dW

    def result(self):
        return {"loss": np.asarray(self.loss), "params": [W.copy() for W in self.W]}


class TinyByHand:
    """sum(relu(x @ W + b)) and its gradient with respect to W and b, in plain NumPy."""

    def __init__(self, problem):
        self.x, self.W, self.b = problem["x"], problem["W"].copy(), problem["b"].copy()

    def step(self):
        z = self.x @ self.W + self.b
        self.out = np.maximum(z, 0).sum()
        g = (z > 0).astype(z.dtype)  # d out / dz
        self.dW = self.x.T @ g
        self.db = g.sum(axis=0)

    def result(self):
        return {"out": np.asarray(self.out), "grads": [self.dW, self.db]}


class AdamByHand:
    """Adam, one parameter at a time, in place, with one scratch buffer.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
    w <- w - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """

    def __init__(self, problem):
        self.params = [p.copy() for p in problem["params"]]
        self.grads = problem["grads"]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.tmp = np.empty_like(self.params[0])
        self.lr, (self.b1, self.b2), self.eps = problem["lr"], problem["betas"], problem["eps"]
        self.t = 0

    def step(self):
        self.t += 1
        b1, b2, tmp = self.b1, self.b2, self.tmp
        step_size = self.lr / (1 - b1 ** self.t)
        bc2_sqrt = math.sqrt(1 - b2 ** self.t)
        for w, g, m, v in zip(self.params, self.grads, self.m, self.v):
            m *= b1
            np.multiply(g, 1 - b1, out=tmp)
            m += tmp
            v *= b2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - b2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp /= bc2_sqrt
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            w -= tmp

    def result(self):
        return {"params": [p.copy() for p in self.params]}


class AdamFlat(AdamByHand):
    """The same Adam on one flat buffer holding every parameter: a handful of whole-model ufuncs."""

    def __init__(self, problem):
        shapes = [p.shape for p in problem["params"]]
        self.flat = np.concatenate([p.ravel() for p in problem["params"]])
        self.shapes = shapes
        self.params = [self.flat]
        self.grads = [np.concatenate([g.ravel() for g in problem["grads"]])]
        self.m = [np.zeros_like(self.flat)]
        self.v = [np.zeros_like(self.flat)]
        self.tmp = np.empty_like(self.flat)
        self.lr, (self.b1, self.b2), self.eps = problem["lr"], problem["betas"], problem["eps"]
        self.t = 0

    def result(self):
        out, start = [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            out.append(self.flat[start:start + size].reshape(shape).copy())
            start += size
        return {"params": out}


BENCHES = {
    ("mlp", "numpy"): HandMLP,
    ("mlp", "floor"): Floor,
    ("plain", "numpy"): HandMLP,  # the same problem: the plain code's reference is the same step by hand
    ("attention", "numpy"): HandAttention,
    ("tiny", "numpy"): TinyByHand,
    ("adam", "numpy"): AdamByHand,
    ("adam", "numpy-flat"): AdamFlat,
}
