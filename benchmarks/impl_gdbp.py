"""gdbp, used the way its users write a training step.

Two MLP steps: plain Tensors with ``requires_grad`` and the primitives of
``gdbp.backprop.ops`` with an SGD update written out under ``gdbp.no_grad()``;
and ``gdbp.nn.Sequential`` with ``gdbp.descent.SGD``. Both take a backend
spec, so the GPU suite runs them on CuPy unchanged.
"""

from __future__ import annotations

import gdbp
from gdbp.backprop import ops

from .problems import Skip

__all__ = ["GdbpMLP", "GdbpSequentialMLP", "GdbpTiny", "GdbpAdam", "GdbpAdamFlat", "BENCHES"]


def _param(array, backend):
    """A leaf that requires grad, holding its own copy of array on backend."""
    return gdbp.tensor(gdbp.transfer(array.copy(), backend), requires_grad=True)


def _data(array, backend):
    return gdbp.tensor(gdbp.transfer(array, backend))


class GdbpMLP:
    """Forward with ops.linear / ops.relu / ops.softmax_cross_entropy, loss.backward(), SGD by hand."""

    def __init__(self, problem, backend="numpy"):
        self.params = [_param(p, backend) for p in problem["params"]]
        self.x = _data(problem["x"], backend)
        self.y = _data(problem["y"], backend)
        self.lr = problem["lr"]
        self.loss = None

    def step(self):
        params = self.params
        h = self.x
        n_layers = len(params) // 2
        for k in range(n_layers):
            h = ops.linear(h, params[2 * k], params[2 * k + 1])
            if k < n_layers - 1:
                h = ops.relu(h)
        loss = ops.softmax_cross_entropy(h, self.y)
        loss.backward()
        with gdbp.no_grad():
            for p in params:
                p -= self.lr * p.grad
                p.grad = None
        self.loss = loss

    def result(self):
        return {"loss": self.loss.numpy(), "params": [p.numpy().copy() for p in self.params]}


def _nn_and_descent():
    """The parts of gdbp.nn and gdbp.descent this step needs, or Skip naming what is missing."""
    try:
        import gdbp.descent
        import gdbp.nn

        nn, descent = gdbp.nn, gdbp.descent
        return nn.Sequential, nn.Linear, nn.ReLU, nn.cross_entropy, descent.SGD
    except (ImportError, AttributeError) as exc:
        raise Skip(f"gdbp.nn / gdbp.descent are not usable yet ({exc})") from None


class GdbpSequentialMLP:
    """gdbp.nn.Sequential of Linear and ReLU layers, gdbp.nn.cross_entropy, gdbp.descent.SGD."""

    def __init__(self, problem, backend="numpy"):
        Sequential, Linear, ReLU, cross_entropy, SGD = _nn_and_descent()
        sizes = problem["sizes"]
        layers = []
        for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(n_in, n_out, backend=backend))
            if k < len(sizes) - 2:
                layers.append(ReLU())
        self.model = Sequential(*layers)
        names = [name for name, _ in self.model.named_parameters()]
        self.model.load_state_dict(
            {name: gdbp.transfer(p, backend) for name, p in zip(names, problem["params"])}
        )
        self.optimizer = SGD(self.model.parameters(), lr=problem["lr"])
        self.cost = cross_entropy
        self.x = _data(problem["x"], backend)
        self.y = _data(problem["y"], backend)
        self.loss = None

    def step(self):
        self.optimizer.zero_grad()
        loss = self.cost(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        self.loss = loss

    def result(self):
        return {"loss": self.loss.numpy(), "params": [p.numpy().copy() for p in self.model.parameters()]}


class GdbpTiny:
    """sum(relu(x @ W + b)).backward() on gdbp Tensors."""

    def __init__(self, problem, backend="numpy"):
        self.x = _data(problem["x"], backend)
        self.W = _param(problem["W"], backend)
        self.b = _param(problem["b"], backend)

    def step(self):
        self.W.grad = self.b.grad = None
        out = ops.relu(self.x @ self.W + self.b).sum()
        out.backward()
        self.out = out

    def result(self):
        return {"out": self.out.numpy(), "grads": [self.W.grad.numpy(), self.b.grad.numpy()]}


class GdbpAdam:
    """gdbp.descent.Adam(params, lr=...).step() over parameters whose .grad is set."""

    flat = False

    def __init__(self, problem, backend="numpy"):
        try:
            from gdbp.descent import Adam
        except ImportError as exc:
            raise Skip(f"gdbp.descent.Adam is not importable yet ({exc})") from None
        self.params = [_param(p, backend) for p in problem["params"]]
        self.optimizer = Adam(self.params, lr=problem["lr"], flat=self.flat)
        for p, g in zip(self.params, problem["grads"]):
            p.grad = _data(g, backend)

    def step(self):
        self.optimizer.step()

    def result(self):
        return {"params": [p.numpy().copy() for p in self.params]}


class GdbpAdamFlat(GdbpAdam):
    """The same with Adam(..., flat=True): one buffer per dtype, updated a few array operations at a time.

    The gradients are the caller's arrays, so each step first copies them
    into the flat gradient buffer (a training loop's backward pass writes
    the linear layers' gradients there directly).
    """

    flat = True


BENCHES = {
    ("mlp", "gdbp"): GdbpMLP,
    ("mlp", "gdbp-nn"): GdbpSequentialMLP,
    ("tiny", "gdbp"): GdbpTiny,
    ("adam", "gdbp"): GdbpAdam,
    ("adam", "gdbp-flat"): GdbpAdamFlat,
}
