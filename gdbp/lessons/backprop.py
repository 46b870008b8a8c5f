"""``gdbp lesson backprop``: one backward pass through a 2-2-1 network, walked node by node.

Backpropagation is the chain rule applied from the cost back to every
weight: each node of the recorded graph receives dC/d(its value) from the
nodes that used it, multiplies it by its own local derivative, and passes
the products on to its inputs. The lesson records one forward pass, reads
its graph with :func:`gdbp.backprop.graph`, and prints the sweep in the
order gdbp runs it. Every number it prints is computed, and checked: each
local derivative against finite differences of that one operation, each
chain-rule product against gdbp's own VJP rule, each gradient against
:func:`gdbp.grad` and finite differences of the cost. Then it takes one
gradient-descent step with the walked gradients and shows the cost fall.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from .. import backends
from ..backprop import Tensor, grad, graph, tensor
from ..backprop.graph import format_array
from ..nn.functional import sigmoid

__all__ = ["run", "forward", "BackpropLesson", "LessonCheckError"]

#: The example: input x, target t, and the weights the lesson starts from.
EXAMPLE = {
    "x": [0.05, 0.10],
    "t": [0.01],
    "W1": [[0.15, 0.20], [0.25, 0.30]],
    "b1": [0.35, 0.35],
    "W2": [[0.40, 0.45]],
    "b2": [0.60],
}
WEIGHTS = ("W1", "b1", "W2", "b2")
LR = 0.1
# Central differences: truncation error ~ EPS^2 (1e-10 here), rounding ~ 1e-16 / EPS (1e-11).
EPS = 1e-5
FD_TOL = 1e-6  # relative to the largest value compared
EXACT_TOL = 1e-12

#: What each local derivative is, in words (the numbers beside it are computed from the node's rule).
LOCAL = {
    ("matmul", 0): "d(W v)_i / dW_ij = v_j",
    ("matmul", 1): "d(W v) / dv = W",
    ("subtract", 1): "d(y - t)/dt = -1",
    ("sigmoid", 0): "sigmoid'(z) = sigmoid(z) (1 - sigmoid(z))",
    ("pow", 0): "d(e^2)/de = 2 e",
    ("sum", 0): "1 for every element",
    ("multiply", 0): "the other factor", ("multiply", 1): "the other factor",
}


class LessonCheckError(AssertionError):
    """A number the lesson printed disagrees with gdbp.grad or with finite differences."""


@dataclass
class BackpropLesson:
    """What :func:`run` computed."""

    graph: object = field(repr=False)
    walked: dict = field(default_factory=dict, repr=False)  # weight name -> dC/dweight, from the walk
    by_grad: dict = field(default_factory=dict, repr=False)  # weight name -> gdbp.grad's
    by_fd: dict = field(default_factory=dict, repr=False)  # weight name -> central differences
    worst: dict = field(default_factory=dict)  # check -> worst error seen
    cost_before: float = 0.0
    cost_after: float = 0.0
    files: list = field(default_factory=list)


def forward(p, x, t, override=None):
    """The network, value by value: z1 = W1 x + b1, h = sigmoid(z1), y = W2 h + b2, C = (y - t)^2 / 2.

    ``override`` maps a value's name to a value used instead of computing
    it, so that the cost can be seen as a function of any intermediate value
    (for gdbp.grad and finite differences of the cost with respect to it).
    Returns every value by name.
    """
    override = override or {}
    v = {}

    def let(name, compute):
        v[name] = override[name] if name in override else compute()

    let("a1", lambda: p["W1"] @ x)
    let("z1", lambda: v["a1"] + p["b1"])
    let("h", lambda: sigmoid(v["z1"]))
    let("a2", lambda: p["W2"] @ v["h"])
    let("y", lambda: v["a2"] + p["b2"])
    let("e", lambda: v["y"] - t)
    let("e2", lambda: v["e"] ** 2)
    let("s", lambda: v["e2"].__array_namespace__().sum(v["e2"]))
    let("C", lambda: 0.5 * v["s"])
    return v


def run(out="runs/lessons", backend="numpy", stream=None, plot=True) -> BackpropLesson:
    """Walk one backward pass through a 2-2-1 network, check every number, draw the graph.

    Parameters
    ----------
    out : str or os.PathLike
        The folder for ``backprop-graph.png`` (created if missing).
    backend : str
        Where the arrays live (default ``"numpy"``; float64 on every backend).
    stream : file, optional
        Where the text goes (default standard output).
    plot : bool
        Write the PNG (default True; needs matplotlib).

    Returns
    -------
    BackpropLesson

    Raises
    ------
    LessonCheckError
        A printed gradient differs from gdbp.grad's by more than 1e-12, or
        from central finite differences by more than 1e-8 (relative).
    """
    say = _Writer(sys.stdout if stream is None else stream)
    be = backends.resolve(backend)
    host = backends.resolve("numpy").xp
    arr = {k: be.xp.asarray(v, dtype=be.xp.float64, device=be.device) for k, v in EXAMPLE.items()}
    x, t = tensor(arr["x"]), tensor(arr["t"])
    p = {k: tensor(arr[k], requires_grad=True) for k in WEIGHTS}
    plain = {k: tensor(arr[k]) for k in WEIGHTS}  # the same weights, unrecorded, for finite differences

    say(f"Backprop, walked: a 2-2-1 network on one example, float64 on {be.spec}.")
    say("The network: z1 = W1 x + b1, h = sigmoid(z1), y = W2 h + b2, and the cost C = (y - t)^2 / 2, "
        "each step a named value below.")
    say("  " + "   ".join(f"{k} = {_fmt(arr[k])}" for k in ("x", "t")), raw=True)
    say("  " + "   ".join(f"{k} = {_fmt(arr[k])}" for k in WEIGHTS), raw=True)

    v = forward(p, x, t)
    g = graph(v["C"], names={**p, "x": x, "t": t, **v})
    lesson = BackpropLesson(graph=g)
    check = _Checks(lesson)

    say()
    say("Forward pass: the operations gdbp recorded, in the order they ran.")
    for n in g.nodes:
        if n.kind == "op":
            args = ", ".join(repr(n.scalars[j]) if i is None else g.nodes[i].name for j, i in enumerate(n.inputs))
            say(f"  {n.name:>3} = {n.op}({args})".ljust(34) + f"= {_fmt(n.value)}", raw=True)
    lesson.cost_before = _float(v["C"])
    say(f"The cost: C = {lesson.cost_before:.6g}.")

    say()
    say("Backward pass: gdbp sweeps the nodes from C back to the weights in this order: "
        + ", ".join(g.nodes[i].name for i in g.order) + ". It starts from dC/dC = 1. At each node, the "
        "gradient that arrived is multiplied by the node's local derivative (the chain rule) and passed "
        "to each input; gradients from several uses of a value add up. Each number is checked: "
        "the gradients against gdbp.grad and finite differences of the cost, each local derivative "
        "against finite differences of that one operation, each product against gdbp's own VJP rule.")
    for step, i in enumerate(g.order, 1):
        n = g.nodes[i]
        upstream = n.grad
        say()
        say(f"[{step}] {n.name} = {n.op}: the gradient that arrived, dC/d{n.name} = {_fmt(upstream)}", raw=True)
        found = check.gradient(n.name, upstream, _cost_wrt(n.name, p, plain, x, t, v))
        for e in g.edges_into(i):
            src = g.nodes[e.src]
            if e.grad is None:
                continue  # a constant (x, t, a scalar): no gradient is needed for it
            J = _jacobian(g, i, e.arg, n, src, host)
            local = check.local(n.name, src.name, J, _fd_jacobian(n.name, src.name, plain, x, t, v, host))
            product = host.reshape(host.reshape(_host(upstream), (1, -1)) @ J, src.shape)
            exact = check.exact(f"the product into {src.name} against the VJP rule", product, e.grad)
            hint = LOCAL.get((n.op, e.arg))
            say(f"    to {src.name}: local derivative d{n.name}/d{src.name} = {_local_text(J, host)}"
                + (f"   ({hint})" if hint else ""), raw=True)
            say(f"        chain rule: dC/d{src.name} += dC/d{n.name} x d{n.name}/d{src.name} = "
                f"{_fmt(upstream)} x {_local_text(J, host, short=True)} = {_fmt(e.grad)}", raw=True)
            found += [local, exact]
            if src.kind == "input" and all(d.dst in g.order[:step] for d in g.edges_from(e.src)):
                say(f"        {src.name} is a weight and no other node uses it: dC/d{src.name} = "
                    f"{_fmt(src.grad)} is complete", raw=True)
        say("    checks (largest difference): " + "; ".join(found), raw=True)

    say()
    say("The gradient of every weight, from the walk, by gdbp.grad, by central finite differences:")
    by_grad = grad(lambda q: forward(q, x, t)["C"])({k: arr[k] for k in WEIGHTS})
    for k in WEIGHTS:
        walked = g.node(k).grad
        fd = _fd(lambda w, k=k: _float(forward({**plain, k: tensor(w)}, x, t)["C"]), arr[k], host, be)
        lesson.walked[k], lesson.by_grad[k], lesson.by_fd[k] = walked, by_grad[k], fd
        check.exact(f"dC/d{k} against gdbp.grad", walked, by_grad[k])
        check.close(f"dC/d{k} against finite differences", walked, fd)
        say(f"  dC/d{k:<3} walk               {_fmt(walked, 6)}", raw=True)
        say(f"          gdbp.grad          {_fmt(by_grad[k], 6)}", raw=True)
        say(f"          finite differences {_fmt(fd, 6)}", raw=True)
    say(f"Over the whole walk, the largest difference from gdbp.grad (and of a product from gdbp's VJP rule) "
        f"was {check.worst('exact'):.2g}; from central finite differences (step {EPS:g}, relative to the "
        f"largest value) {check.worst('fd'):.2g}, and {check.worst('local'):.2g} for a local derivative. "
        f"The lesson stops with an error where one exceeds {EXACT_TOL:g} or {FD_TOL:g}.")

    say()
    stepped = {k: tensor(arr[k] - LR * g.node(k).grad) for k in WEIGHTS}
    lesson.cost_after = _float(forward(stepped, x, t)["C"])
    squared = sum(float(host.sum(_host(g.node(k).grad) ** 2)) for k in WEIGHTS)
    say(f"One gradient-descent step with these gradients, w <- w - lr dC/dw with lr = {LR:g}:")
    for k in WEIGHTS:
        say(f"  {k:<3} {_fmt(arr[k])}  ->  {_fmt(stepped[k].data)}", raw=True)
    say(f"The cost went from {lesson.cost_before:.6g} to {lesson.cost_after:.6g} (down by "
        f"{lesson.cost_before - lesson.cost_after:.4g}; to first order, a step falls by lr |dC/dw|^2 = "
        f"{LR * squared:.4g}).")
    if not lesson.cost_after < lesson.cost_before:
        raise LessonCheckError(f"the step did not lower the cost: {lesson.cost_before} -> {lesson.cost_after}")

    if plot:
        from ..plot import graph as draw

        file = Path(out) / "backprop-graph.png"
        draw(g, file=file, title="The 2-2-1 network's graph: values in the nodes (forward, left to right), "
                                 "dC/d(value) on each edge in red (backward, from C = "
                                 f"{lesson.cost_before:.4g} with dC/dC = 1)")
        lesson.files.append(file)
        say()
        say(f"Wrote {file}: the graph, with each node's value and each edge's gradient.")
    return lesson


# --- the checks -------------------------------------------------------------------------------


class _Checks:
    """Compare, record the worst error of each kind, and stop the lesson on a mismatch."""

    def __init__(self, lesson):
        self.lesson = lesson

    def _record(self, kind, what, error, tol):
        self.lesson.worst[kind] = max(self.lesson.worst.get(kind, 0.0), error)
        if not error <= tol:
            raise LessonCheckError(f"{what}: differs by {error:.3g} (tolerance {tol:g})")

    def worst(self, kind):
        return self.lesson.worst.get(kind, 0.0)

    def exact(self, what, a, b):
        error = _max_abs(_host(a) - _host(b))
        self._record("exact", what, error, EXACT_TOL)
        return f"product vs gdbp's VJP rule {error:.1g}"

    def close(self, what, a, b):
        a, b = _host(a), _host(b)
        error = _max_abs(a - b) / max(_max_abs(b), 1e-300)
        self._record("fd", what, error, FD_TOL)
        return error

    def gradient(self, name, walked, by):
        """dC/d(name) against gdbp.grad (to 1e-12) and central differences of the cost (relative 1e-6)."""
        by_grad, fd = by
        exact = _max_abs(_host(walked) - _host(by_grad))
        self._record("exact", f"dC/d{name} against gdbp.grad", exact, EXACT_TOL)
        close = self.close(f"dC/d{name} against finite differences", walked, fd)
        return [f"dC/d{name} vs gdbp.grad {exact:.1g}, vs finite differences {close:.1g}"]

    def local(self, node, src, J, fd):
        error = _max_abs(J - fd) / max(_max_abs(fd), 1.0)
        self._record("local", f"d{node}/d{src} against finite differences", error, FD_TOL)
        return f"d{node}/d{src} vs finite differences {error:.1g}"


def _cost_wrt(name, p, plain, x, t, v):
    """dC/d(value `name`), by gdbp.grad and by central differences of the cost with that value replaced."""
    value = v[name].data
    be = v[name].backend
    by_grad = grad(lambda u: forward(p, x, t, {name: u})["C"])(value)
    fd = _fd(lambda u: _float(forward(plain, x, t, {name: tensor(u)})["C"]), value, backends.resolve("numpy").xp, be)
    return by_grad, fd


def _fd(f, value, host, be):
    """Central differences of a scalar function f at value (an array), element by element, on the host."""
    base = _host(value)
    flat = host.reshape(base, (-1,))
    out = []
    for k in range(flat.shape[0]):
        bump = host.zeros_like(flat)
        bump[k] = EPS
        up = backends.transfer(host.reshape(flat + bump, base.shape), be)
        down = backends.transfer(host.reshape(flat - bump, base.shape), be)
        out.append((f(up) - f(down)) / (2 * EPS))
    return host.reshape(host.asarray(out), base.shape)


def _jacobian(g, i, arg, node, src, host):
    """d(node)/d(src), one row per element of node, from the node's own VJP rule applied to unit vectors."""
    size = max(1, _size(node.shape))
    rows = []
    for k in range(size):
        unit = host.reshape(host.eye(size)[k], node.shape)
        pulled = g.pullback(i, backends.transfer(unit, backends.backend_of(node.value)))[arg]
        rows.append(host.reshape(_host(pulled), (-1,)))
    return host.stack(rows)


def _fd_jacobian(name, src_name, p, x, t, v, host):
    """d(name)/d(src_name) by central differences of that one operation (everything else held fixed)."""
    be = v[name].backend
    held = {k: val for k, val in v.items() if k != name}  # every value fixed but the one recomputed
    if src_name in p:
        def f(u):
            return forward({**p, src_name: tensor(u)}, x, t, held)[name]
        base = p[src_name].data
    else:
        def f(u):
            return forward(p, x, t, {**held, src_name: tensor(u)})[name]
        base = v[src_name].data
    cols = []
    flat = host.reshape(_host(base), (-1,))
    for k in range(flat.shape[0]):
        bump = host.zeros_like(flat)
        bump[k] = EPS
        up = _host(f(backends.transfer(host.reshape(flat + bump, tuple(base.shape)), be)))
        down = _host(f(backends.transfer(host.reshape(flat - bump, tuple(base.shape)), be)))
        cols.append(host.reshape((up - down) / (2 * EPS), (-1,)))
    return host.stack(cols, axis=1)


# --- text -------------------------------------------------------------------------------------


class _Writer:
    def __init__(self, stream):
        self.stream = stream

    def __call__(self, text="", raw=False):
        print(text if raw or not text else textwrap.fill(text, 100), file=self.stream)


def _local_text(J, host, short=False):
    """A diagonal Jacobian (an elementwise operation) as its diagonal; any other as the matrix."""
    n_out, n_in = J.shape
    if n_out == n_in and n_out > 1 and _max_abs(J - host.diag(host.diag(J))) == 0.0:
        return ("diag " if short else "elementwise ") + _fmt(host.diag(J))
    if J.shape == (1, 1):
        return _fmt(J[0, 0])
    # In a product, the matrix printed on the line above is named, not repeated.
    return "J" if short else f"J = {_fmt(J)}  (the Jacobian, {n_out} x {n_in}: a row per output, a column per input)"


def _fmt(x, precision=4):
    return format_array(x, precision=precision, max_size=16)


def _host(x):
    if isinstance(x, Tensor):
        x = x.data
    return backends.to_numpy(x)


def _float(x) -> float:
    return float(_host(x))


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _max_abs(a) -> float:
    xp = backends.resolve("numpy").xp
    a = xp.asarray(a)
    return float(xp.max(xp.abs(a))) if a.size else 0.0
