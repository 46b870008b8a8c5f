"""gdbp, used the way its users write a training step.

Two MLP steps: plain Tensors with ``requires_grad`` and the primitives of
``gdbp.backprop.ops`` with an SGD update written out under ``gdbp.no_grad()``;
and ``gdbp.nn.Sequential`` with ``gdbp.descent.SGD``. Both take a backend
spec, so the GPU suite runs them on CuPy unchanged.

Then the plain array-API programs of :mod:`benchmarks.plain` on NumPy
arrays, three ways: eagerly (``gdbp.value_and_grad``, then ``W -= lr * dW``
on the NumPy arrays); ``gdbp.compile`` of the whole step (value_and_grad
and the update inside the compiled function, which writes the caller's
arrays); and ``gdbp.compile`` of value_and_grad alone, the update outside.
"""

from __future__ import annotations

import functools

import gdbp
from gdbp.backprop import ops

from . import plain
from .problems import Skip

__all__ = ["GdbpMLP", "GdbpSequentialMLP", "GdbpTiny", "GdbpAdam", "GdbpAdamFlat", "PlainStep", "CompiledStep",
           "CompiledValueAndGrad", "PlainTiny", "CompiledTiny", "CompiledPlainTiny", "BENCHES"]


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


# --- plain array-API code ---------------------------------------------------------------------


def _transposed(params):
    """MLP weights (out, in) as (in, out) or back: one transposed copy of each matrix."""
    return [p.T.copy() if p.ndim == 2 else p.copy() for p in params]


def _copied(params):
    return [p.copy() for p in params]


# program -> (its plain cost, the problem's weights in the code's layout, and back)
PROGRAMS = {
    "mlp": (plain.mlp_cost, _transposed, _transposed),
    "attention": (plain.attention_cost, _copied, _copied),
}


class PlainStep:
    """SGD on a plain array-API cost: ``loss, grads = value_and_grad(cost)(*params, x, y)``, then ``p -= lr * g``.

    ``program`` names the cost in :data:`PROGRAMS`: :func:`benchmarks.plain.mlp_cost`
    (the MLP problem's weights transposed to (in, out) once, here) or
    :func:`benchmarks.plain.attention_cost`. The weights are NumPy arrays, updated in place.
    """

    def __init__(self, problem, program):
        self.cost, to_code, self.to_problem = PROGRAMS[program]
        self.params = to_code(problem["params"])
        self.x, self.y, self.lr = problem["x"], problem["y"], problem["lr"]
        self.value_and_grad = gdbp.value_and_grad(self.cost, argnums=tuple(range(len(self.params))))
        self.loss = None

    def step(self):
        loss, grads = self.value_and_grad(*self.params, self.x, self.y)
        for p, g in zip(self.params, grads):
            p -= self.lr * g
        self.loss = loss

    def result(self):
        return {"loss": self.loss, "params": self.to_problem(self.params)}


class CompiledStep(PlainStep):
    """``gdbp.compile`` of the whole step: value_and_grad and the in-place SGD update, one plan.

    The step is traced when the bench is built, on copies of the weights
    (the trace runs eagerly and updates what it is given), so that every
    step the suite checks or times is a replay.
    """

    def __init__(self, problem, program):
        super().__init__(problem, program)
        value_and_grad, lr = self.value_and_grad, self.lr

        def sgd_step(params, x, y):
            loss, grads = value_and_grad(*params, x, y)
            for p, g in zip(params, grads):
                p -= lr * g  # replayed into the caller's arrays
            return loss

        self.compiled = gdbp.compile(sgd_step)
        self.compiled([p.copy() for p in self.params], self.x, self.y)

    def step(self):
        self.loss = self.compiled(self.params, self.x, self.y)

    @property
    def products(self):  # recorded in the results: one trace, then replays
        return {"traces": self.compiled.traces}


class CompiledValueAndGrad(PlainStep):
    """``gdbp.compile(value_and_grad(cost))``, traced when built; the SGD update outside, as in :class:`PlainStep`."""

    def __init__(self, problem, program):
        super().__init__(problem, program)
        self.value_and_grad = self.compiled = gdbp.compile(self.value_and_grad)
        self.compiled(*self.params, self.x, self.y)

    products = CompiledStep.products


def _tiny_ops(W, b, x):
    return ops.relu(x @ W + b).sum()


class PlainTiny:
    """``value_and_grad`` of the tiny graph written as plain code (``xp.maximum``), with respect to W and b.

    The compiled variants trace when built, so that every step checked or timed is a replay.
    """

    cost = staticmethod(plain.tiny)
    use_compile = False

    def __init__(self, problem):
        self.x, self.W, self.b = problem["x"], problem["W"].copy(), problem["b"].copy()
        self.value_and_grad = gdbp.value_and_grad(self.cost, argnums=(0, 1))
        if self.use_compile:
            self.value_and_grad = self.compiled = gdbp.compile(self.value_and_grad)
            self.compiled(self.W, self.b, self.x)

    def step(self):
        self.out, self.grads = self.value_and_grad(self.W, self.b, self.x)

    def result(self):
        return {"out": self.out, "grads": list(self.grads)}

    @property
    def products(self):
        return {"traces": self.compiled.traces} if self.use_compile else None


class CompiledTiny(PlainTiny):
    """``gdbp.compile(value_and_grad(f))`` with f = ops.relu(x @ W + b).sum() (gdbp's fused relu)."""

    cost = staticmethod(_tiny_ops)
    use_compile = True


class CompiledPlainTiny(PlainTiny):
    """``gdbp.compile`` of the plain-code tiny graph's value_and_grad."""

    use_compile = True


BENCHES = {
    ("mlp", "gdbp"): GdbpMLP,
    ("mlp", "gdbp-nn"): GdbpSequentialMLP,
    **{(task, impl): functools.partial(bench, program=program)
       for task, program in (("plain", "mlp"), ("attention", "attention"))
       for impl, bench in (("gdbp-plain", PlainStep), ("gdbp-compile", CompiledStep),
                           ("gdbp-compile-vg", CompiledValueAndGrad))},
    ("tiny", "gdbp"): GdbpTiny,
    ("tiny", "gdbp-plain"): PlainTiny,
    ("tiny", "gdbp-compile"): CompiledTiny,
    ("tiny", "gdbp-plain-compile"): CompiledPlainTiny,
    ("adam", "gdbp"): GdbpAdam,
    ("adam", "gdbp-flat"): GdbpAdamFlat,
}
