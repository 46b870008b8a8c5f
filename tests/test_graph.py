"""gdbp.backprop.graph: the recorded graph's nodes and edges, the gradient on each edge, DOT export."""

from __future__ import annotations

import re

import numpy as np
import pytest

import gdbp
from gdbp import backends
from gdbp.backprop import Graph, GraphFreedError, GradRequirementError, graph
import gdbp.nn.functional as F

from conftest import backend_params, to_numpy


def small_program():
    w = gdbp.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    return w, (w * w).sum()


def mlp(p, x, t):
    """A 3-example batch through 2-3-1 layers: the bias adds broadcast, h is read twice."""
    h = F.sigmoid(x @ p["W1"] + p["b1"])
    y = h @ p["W2"] + p["b2"] + 0.1 * (h * h).sum(axis=1, keepdims=True)
    return ((y - t) ** 2).mean()


def mlp_weights(rng, backend="numpy"):
    shapes = {"W1": (2, 3), "b1": (3,), "W2": (3, 1), "b2": (1,)}
    return {k: backends.transfer(rng.normal(size=s), backend) for k, s in shapes.items()}


# --- structure -------------------------------------------------------------------------------


def test_a_small_program_has_the_expected_nodes_and_edges():
    w, loss = small_program()
    g = graph(loss, names={"w": w, "loss": loss})
    assert isinstance(g, Graph) and g.root == 2
    assert [(n.id, n.kind, n.op, n.name) for n in g.nodes] == [
        (0, "input", None, "w"), (1, "op", "multiply", None), (2, "op", "sum", "loss")]
    assert [(e.src, e.dst, e.arg) for e in g.edges] == [(0, 1, 0), (0, 1, 1), (1, 2, 0)]
    assert g.nodes[1].inputs == (0, 0) and g.nodes[2].inputs == (1,)
    assert g.nodes[0].shape == (3,) and g.nodes[2].shape == () and g.order == [2, 1]
    np.testing.assert_array_equal(to_numpy(g.nodes[1].value), [1.0, 4.0, 9.0])
    # w is read twice: each edge carries w (d(w*w)/dw through one factor), the node their sum 2w.
    for e in g.edges_from("w"):
        np.testing.assert_array_equal(to_numpy(e.grad), [1.0, -2.0, 3.0])
    np.testing.assert_array_equal(to_numpy(g.node("w").grad), [2.0, -4.0, 6.0])
    np.testing.assert_array_equal(to_numpy(g.edges_into(2)[0].grad), [1.0, 1.0, 1.0])
    assert float(to_numpy(g.node("loss").grad)) == 1.0
    assert w.grad is None  # the view leaves .grad alone


def test_constants_scalars_and_names_in_a_network():
    x = gdbp.tensor(np.array([0.5, -1.0]))
    t = np.array([0.25])
    W = gdbp.tensor(np.array([[0.1, 0.2], [0.3, 0.4]]), requires_grad=True)
    v = gdbp.tensor(np.array([[1.0, -1.0]]), requires_grad=True)
    h = F.sigmoid(W @ x)
    e = v @ h - t
    C = 0.5 * (e ** 2).sum()
    g = graph(C, names={"W": W, "v": v, "x": x, "t": t, "h": h, "e": e, "C": C})
    ops = [(n.op, n.name) for n in g.nodes if n.kind == "op"]
    assert ops == [("matmul", None), ("sigmoid", "h"), ("matmul", None), ("subtract", "e"), ("pow", None),
                   ("sum", None), ("multiply", "C")]
    kinds = {n.name: n.kind for n in g.nodes if n.name}
    assert kinds == {"W": "input", "v": "input", "x": "constant", "t": "constant", "h": "op", "e": "op",
                     "C": "op"}
    pow_node = next(n for n in g.nodes if n.op == "pow")
    assert pow_node.scalars == {1: 2} and pow_node.inputs[1] is None and pow_node.label == "pow(·, 2)"
    assert g.node("C").scalars == {0: 0.5} and g.node("C").label == "C = multiply(0.5, ·)"
    # No gradient flows to the constants; every other edge carries one, shaped like its source.
    for e_ in g.edges:
        src = g.nodes[e_.src]
        assert (e_.grad is None) == (src.kind == "constant")
        if e_.grad is not None:
            assert tuple(e_.grad.shape) == src.shape
    assert g.node("x").grad is None and g.node("t").grad is None
    # The sweep order: the loss first, every op before the ops it reads.
    assert g.order[0] == g.root and sorted(g.order) == [n.id for n in g.nodes if n.kind == "op"]
    position = {i: k for k, i in enumerate(g.order)}
    assert all(position[e_.dst] < position[e_.src] for e_ in g.edges if g.nodes[e_.src].kind == "op")


def test_the_order_is_the_order_gdbp_sweeps_in():
    """Logging VJP rules record the order backward() really runs them in; the view's walk must match it."""
    log = []

    def tagged(name):
        @gdbp.custom_vjp
        def op(x):
            return 1.0 * x

        op.prim.name = name

        @op.defvjp
        def rule(g, ans, x):
            log.append(name)
            return (g,)

        return op

    a_, b_, c_, d_ = (tagged(n) for n in "abcd")
    w = gdbp.tensor(np.array([1.0, 2.0]), requires_grad=True)
    a = a_(w)
    loss = (d_(b_(a) * c_(a))).sum()
    log.clear()
    g = graph(loss)
    walked = list(log)
    log.clear()
    loss.backward()
    swept = list(log)
    assert walked == swept and sorted(swept) == ["a", "b", "c", "d"]
    assert [g.nodes[i].op for i in g.order if g.nodes[i].op in {"a", "b", "c", "d"}] == swept
    np.testing.assert_allclose(to_numpy(g.node(0).grad), to_numpy(w.grad), rtol=0, atol=1e-15)


# --- gradients -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", backend_params(("numpy", "array_api_strict", "torch", "cupy")))
def test_walked_gradients_equal_gdbp_grad(backend_name, rng):
    backend = backends.resolve(backend_name)
    raw = mlp_weights(rng, backend)
    # Constants as Tensors: array-api-strict's own operators refuse to meet a Tensor on their right.
    x = gdbp.tensor(backends.transfer(rng.normal(size=(3, 2)), backend))
    t = gdbp.tensor(backends.transfer(rng.normal(size=(3, 1)), backend))
    p = {k: gdbp.tensor(v, requires_grad=True) for k, v in raw.items()}
    g = graph(mlp(p, x, t), names=p)
    expected = gdbp.grad(lambda q: mlp(q, x, t))(raw)
    for k in raw:
        walked = g.node(k).grad
        assert backends.backend_of(walked) is backend and walked.dtype == raw[k].dtype
        np.testing.assert_allclose(to_numpy(walked), to_numpy(expected[k]), rtol=0, atol=1e-12)
    # Each node's gradient is the sum over its outgoing edges.
    for n in g.nodes:
        out = [e.grad for e in g.edges_from(n.id) if e.grad is not None]
        if n.id != g.root and out:
            np.testing.assert_allclose(to_numpy(n.grad), sum(to_numpy(o) for o in out), rtol=0, atol=1e-15)


def test_after_backward_with_retain_graph_the_view_agrees_with_grad(rng):
    raw = mlp_weights(rng)
    x, t = rng.normal(size=(3, 2)), rng.normal(size=(3, 1))
    p = {k: gdbp.tensor(v, requires_grad=True) for k, v in raw.items()}
    loss = mlp(p, x, t)
    loss.backward(retain_graph=True)
    g = graph(loss, names=p)
    for k in p:
        np.testing.assert_allclose(to_numpy(g.node(k).grad), to_numpy(p[k].grad), rtol=0, atol=1e-12)


def test_a_non_scalar_loss_takes_a_seed():
    w = gdbp.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = w * 3.0
    with pytest.raises(GradRequirementError, match="seed"):
        graph(y)
    g = graph(y, seed=np.array([1.0, -1.0]), names={"w": w})
    np.testing.assert_array_equal(to_numpy(g.node("w").grad), [3.0, -3.0])
    assert graph(y, gradients=False).node(0).grad is None


# --- evaluate and pullback -------------------------------------------------------------------


def test_evaluate_replays_the_forward_pass(rng):
    raw = mlp_weights(rng)
    x, t = rng.normal(size=(3, 2)), rng.normal(size=(3, 1))
    p = {k: gdbp.tensor(v, requires_grad=True) for k, v in raw.items()}
    loss = mlp(p, x, t)
    g = graph(loss, names=p)
    assert float(to_numpy(g.evaluate())) == pytest.approx(float(loss), rel=1e-15)
    W2 = raw["W2"] + 0.5
    expected = mlp({**raw, "W2": W2}, x, t)
    assert float(to_numpy(g.evaluate(replace={"W2": W2}))) == pytest.approx(float(expected), rel=1e-13)
    sig = next(n for n in g.nodes if n.op == "sigmoid")
    np.testing.assert_allclose(to_numpy(g.evaluate(at=sig.id)), to_numpy(sig.value), rtol=1e-15)


def test_pullback_is_the_nodes_vjp():
    w, loss = small_program()
    g = graph(loss)
    gx, gy = g.pullback(1, np.array([1.0, 0.0, 2.0]))  # multiply(w, w): each factor gets g * the other
    np.testing.assert_array_equal(to_numpy(gx), [1.0, 0.0, 6.0])
    np.testing.assert_array_equal(to_numpy(gy), [1.0, 0.0, 6.0])
    with pytest.raises(ValueError, match="not an operation"):
        g.pullback(0, np.ones(3))


# --- errors ----------------------------------------------------------------------------------


def test_errors_name_the_problem_and_the_fix():
    w = gdbp.tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(GradRequirementError, match="requires_grad=True"):
        graph(w)  # a leaf: nothing recorded
    with pytest.raises(GradRequirementError, match="nothing was recorded"):
        graph(gdbp.tensor(np.array([1.0])) * 2.0)
    _, loss = small_program()
    with pytest.raises(KeyError, match="not found"):
        graph(loss, names={"other": gdbp.tensor(np.ones(3), requires_grad=True)})
    with pytest.raises(KeyError, match="no node"):
        graph(loss).node("nope")
    loss.backward()
    with pytest.raises(GraphFreedError, match="retain_graph=True"):
        graph(loss)


# --- DOT ---------------------------------------------------------------------------------------

_ID = r"[A-Za-z_][A-Za-z0-9_]*"
_STRING = r'"(?:[^"\\]|\\.)*"'
_VALUE = rf"(?:{_STRING}|{_ID}|-?[0-9.]+)"
_ATTRS = rf"\[\s*{_ID}\s*=\s*{_VALUE}(?:\s*,\s*{_ID}\s*=\s*{_VALUE})*\s*\]"


def parse_dot(text):
    """A structural check of DOT's digraph grammar (the subset to_dot writes): returns (nodes, edges, labels).

    Raises AssertionError on anything else: unbalanced braces, an unterminated or badly escaped string,
    a statement that is neither an attribute, a node nor an edge, an edge to an undeclared node.
    """
    m = re.fullmatch(rf"\s*digraph\s+{_ID}\s*\{{(.*)\}}\s*", text, flags=re.S)
    assert m, "not a digraph { ... } block"
    body = m.group(1)
    statements = re.findall(rf"(?:{_STRING}|[^;\"])+;", body)
    assert "".join(statements).strip() == body.strip().rstrip(), "text outside ;-terminated statements"
    nodes, edges, labels = set(), [], {}
    for s in (s.strip()[:-1].strip() for s in statements):
        if m := re.fullmatch(rf"{_ID}\s*=\s*{_VALUE}", s):
            continue  # graph attribute: rankdir=LR
        if m := re.fullmatch(rf"(?:node|edge|graph)\s*{_ATTRS}", s):
            continue
        if m := re.fullmatch(rf"({_ID})\s*->\s*({_ID})\s*({_ATTRS})?", s):
            edges.append((m.group(1), m.group(2)))
            continue
        m = re.fullmatch(rf"({_ID})\s*({_ATTRS})?", s)
        assert m, f"not a DOT statement: {s!r}"
        nodes.add(m.group(1))
        label = re.search(rf"label\s*=\s*({_STRING})", m.group(2) or "")
        if label:
            labels[m.group(1)] = re.sub(r"\\(.)", lambda c: "\n" if c.group(1) == "n" else c.group(1),
                                        label.group(1)[1:-1])
    assert all(a in nodes and b in nodes for a, b in edges), "an edge names an undeclared node"
    return nodes, edges, labels


def test_the_dot_checker_rejects_broken_dot():
    good = 'digraph g {\n  a [label="x \\"q\\""];\n  b;\n  a -> b;\n}\n'
    assert parse_dot(good)[1] == [("a", "b")]
    for bad in ['digraph g {\n  a -> b;\n}', 'digraph g {\n  a [label="open];\n}', 'graph g { a; }',
                'digraph g {\n  a;\n', 'digraph g {\n  a b;\n}']:
        with pytest.raises(AssertionError):
            parse_dot(bad)


def test_dot_export_parses_and_carries_the_graph():
    x = gdbp.tensor(np.array([0.5, -1.0]))
    W = gdbp.tensor(np.array([[0.1, 0.2], [0.3, 0.4]]), requires_grad=True)
    loss = (F.sigmoid(W @ x) ** 2).sum()
    g = graph(loss, names={'W "weights" \\ 1': W, "x": x})
    nodes, edges, labels = parse_dot(g.to_dot())
    assert nodes == {f"n{n.id}" for n in g.nodes}
    assert sorted(edges) == sorted((f"n{e.src}", f"n{e.dst}") for e in g.edges)
    assert labels["n0"].startswith('W "weights" \\ 1 (input)\nshape (2, 2)')
    assert "[[0.1, 0.2], [0.3, 0.4]]" in labels["n0"]
    dot = g.to_dot()
    w_grad = to_numpy(g.node(0).grad)
    assert f"grad [[{w_grad[0, 0]:.4g}, {w_grad[0, 1]:.4g}]" in dot
    assert "style=dashed" in dot  # the constant's edge
    assert "[[0.1, 0.2]" not in g.to_dot(values=False) and "grad" not in g.to_dot(gradients=False)
