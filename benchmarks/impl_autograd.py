"""HIPS autograd: the cost written with autograd.numpy, differentiated by autograd.grad.

Its style is functional: the step computes new weight arrays rather than
updating them in place.
"""

from __future__ import annotations

import numpy as np

from .problems import Skip

try:
    import autograd
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp
except ImportError as exc:
    autograd = None
    _why = f"HIPS autograd is not installed ({exc}): pip install autograd"

__all__ = ["AutogradMLP", "AutogradTiny", "BENCHES"]


def _need_autograd():
    if autograd is None:
        raise Skip(_why)


def _mlp_cost(params, x, y):
    h = x
    n_layers = len(params) // 2
    for k in range(n_layers):
        h = anp.dot(h, params[2 * k].T) + params[2 * k + 1]
        if k < n_layers - 1:
            h = anp.maximum(h, 0)
    rows = np.arange(h.shape[0])
    return anp.mean(logsumexp(h, axis=1) - h[rows, y])


class AutogradMLP:
    """autograd.value_and_grad of the cost, then w - lr * g for every weight."""

    def __init__(self, problem):
        _need_autograd()
        self.params = [p.copy() for p in problem["params"]]
        self.x, self.y, self.lr = problem["x"], problem["y"], np.float32(problem["lr"])
        self.value_and_grad = autograd.value_and_grad(_mlp_cost)
        self.loss = None

    def step(self):
        loss, grads = self.value_and_grad(self.params, self.x, self.y)
        self.params = [p - self.lr * g for p, g in zip(self.params, grads)]
        self.loss = loss

    def result(self):
        return {"loss": np.asarray(self.loss), "params": self.params}


def _tiny(W, b, x):
    return anp.sum(anp.maximum(anp.dot(x, W) + b, 0))


class AutogradTiny:
    """autograd.value_and_grad of sum(relu(x @ W + b)) with respect to W and b."""

    def __init__(self, problem):
        _need_autograd()
        self.x, self.W, self.b = problem["x"], problem["W"].copy(), problem["b"].copy()
        self.value_and_grad = autograd.value_and_grad(_tiny, argnum=(0, 1))

    def step(self):
        self.out, self.grads = self.value_and_grad(self.W, self.b, self.x)

    def result(self):
        return {"out": np.asarray(self.out), "grads": list(self.grads)}


BENCHES = {
    ("mlp", "autograd"): AutogradMLP,
    ("tiny", "autograd"): AutogradTiny,
}
