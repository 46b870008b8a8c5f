"""The engine's rewrites of composed code (gdbp.backprop.rewrites), checked against the graph as written and torch.

The log-sum-exp written with max, exp, sum and log gets one gradient node as
it is recorded, eagerly and while gdbp.compile traces: the backward pass drops
the shift's gradient, which is zero, and max's tie rule. A compiled plan
replays what the eager call runs, bit for bit, with the rewrite (the default)
and without it (``rewriting(False)`` eagerly, ``rewrite=False`` compiled);
the two differ by rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gdbp
from op_cases import ns


def lse_m0(z):
    xp = ns(z)
    m = xp.max(z, axis=1, keepdims=True)
    return xp.log(xp.sum(xp.exp(z - m), axis=1)) + m[:, 0]


def lse_reshape(z):  # the shift dropped by a reshape, the other term first, over axis 0
    xp = ns(z)
    m = xp.max(z, axis=0, keepdims=True)
    return xp.reshape(m, (z.shape[1],)) + xp.log(xp.sum(xp.exp(z - m), axis=0))


def lse_squeeze(z):  # over the last axis given as -1, of a 3-D stack
    xp = ns(z)
    m = xp.max(z, axis=-1, keepdims=True)
    return xp.log(xp.sum(xp.exp(z - m), axis=-1)) + xp.squeeze(m, axis=-1)


FORMS = {lse_m0: 1, lse_reshape: 0, lse_squeeze: -1}


def _cost(lse):
    def cost(w, x, y):
        xp = ns(x)
        z = x @ w
        return xp.mean(lse(z) * y)
    return cost


def _names(plan):
    return [s.fn.name for s in plan.steps if s.fn is not None]


def _data(rng, lse):
    if lse is lse_squeeze:
        x = rng.normal(size=(2, 5, 3))
        return rng.normal(size=(3, 4)), x, rng.normal(size=(2, 5))
    n = 4 if lse is lse_reshape else 6
    return rng.normal(size=(3, 4)), rng.normal(size=(6, 3)), rng.normal(size=n)


@pytest.mark.parametrize("lse", list(FORMS), ids=lambda f: f.__name__)
def test_rewritten_and_as_written_agree_eagerly_compiled_and_with_torch(lse, rng):
    vg = gdbp.value_and_grad(_cost(lse))
    rewritten, as_written = gdbp.compile(vg), gdbp.compile(vg, rewrite=False)
    for _ in range(3):
        w, x, y = _data(rng, lse)
        (v1, g1), (v2, g2) = rewritten(w, x, y), as_written(w, x, y)
        v3, g3 = vg(w, x, y)
        with gdbp.rewriting(False):
            v4, g4 = vg(w, x, y)
        np.testing.assert_array_equal(g1, g3)  # each plan replays what the eager call runs
        np.testing.assert_array_equal(g2, g4)
        for v in (v1, v2, v4):
            np.testing.assert_array_equal(v, v3)  # the forward is the same either way
        np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-15)
        tw = torch.tensor(w, requires_grad=True)
        z = torch.as_tensor(x) @ tw
        (torch.logsumexp(z, dim=FORMS[lse]) * torch.as_tensor(y)).mean().backward()
        np.testing.assert_allclose(g1, tw.grad.numpy(), rtol=1e-12, atol=1e-15)
    # max's tie rule (a comparison, a cast, a count) and the shift's gradient are gone from the plan
    assert "equal" in _names(as_written.plan(w, x, y)) and "equal" not in _names(rewritten.plan(w, x, y))
    assert len(rewritten.plan(w, x, y).steps) < len(as_written.plan(w, x, y).steps) - 5


def test_the_eager_graph_holds_one_node_for_the_composition(rng):
    z = gdbp.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    out = lse_m0(z)
    assert out._node.prim.name == "logsumexp_composed" and out._node.parents[0] is z
    with gdbp.rewriting(False):
        assert lse_m0(z)._node.prim.name == "add"
    with gdbp.no_grad():
        assert lse_m0(z)._node is None  # nothing recorded, nothing rewritten


def test_tied_maxima_give_softmax_as_torch_does(rng):
    def cost(z):
        return ns(z).sum(lse_m0(z) * ns(z).asarray([1.0, -2.0]))

    z = np.array([[1.0, 3.0, 3.0, -1.0], [0.5, 0.5, 0.5, 0.5]])
    got = gdbp.compile(gdbp.grad(cost))(z)
    tz = torch.tensor(z, requires_grad=True)
    (torch.logsumexp(tz, dim=1) * torch.tensor([1.0, -2.0])).sum().backward()
    np.testing.assert_allclose(got, tz.grad.numpy(), rtol=1e-14, atol=1e-15)
    with gdbp.rewriting(False):  # as written: the shift's gradient (zero up to rounding) shared by the ties
        np.testing.assert_allclose(got, gdbp.grad(cost)(z), rtol=1e-14, atol=1e-15)


def test_second_derivatives_through_the_rewritten_node(rng):
    # The rewritten node reads exp's and sum's values as graph values: a gradient of the gradient sees them.
    def inner(z):
        return ns(z).sum(lse_m0(z))

    def outer(z, v):
        return ns(z).sum(gdbp.grad(inner)(z) * v)  # v . softmax(z), summed over rows

    z, v = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    got = gdbp.compile(gdbp.grad(outer))(z, v)
    tz = torch.tensor(z, requires_grad=True)
    (gz,) = torch.autograd.grad(torch.logsumexp(tz, dim=1).sum(), tz, create_graph=True)
    (gz * torch.as_tensor(v)).sum().backward()
    np.testing.assert_allclose(got, tz.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(got, gdbp.grad(outer)(z, v))
    with gdbp.rewriting(False):
        np.testing.assert_allclose(got, gdbp.grad(outer)(z, v), rtol=1e-12, atol=1e-14)


def test_a_shift_that_is_not_the_max_of_the_same_values_is_left_as_written(rng):
    def cost(z, u):
        xp = ns(z)
        m = xp.max(u, axis=1, keepdims=True)  # another array's max: log(sum(exp(z - m))) + m is not lse(z)
        return xp.sum(xp.log(xp.sum(xp.exp(z - m), axis=1)) + m[:, 0])

    z, u = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    vg = gdbp.grad(cost, argnums=(0, 1))
    compiled = gdbp.compile(vg)
    for a, b in zip(compiled(z, u), vg(z, u)):
        np.testing.assert_array_equal(a, b)
    assert "equal" in _names(compiled.plan(z, u))  # max's rule is still there: nothing was rewritten


def softmax_last(z):
    xp = ns(z)
    e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def softmax_first(z):
    xp = ns(z)
    e = xp.exp(z - xp.max(z, axis=0, keepdims=True))
    return e / xp.sum(e, axis=0, keepdims=True)


@pytest.mark.parametrize("softmax, shape, dim", [(softmax_last, (2, 3, 4), -1), (softmax_first, (5, 3), 0)],
                         ids=["last-axis", "first-axis"])
def test_the_softmax_composition_agrees_as_written_compiled_and_with_torch(softmax, shape, dim, rng):
    w = rng.normal(size=shape)

    def cost(z):
        return ns(z).sum(softmax(z) * w)

    compiled, as_written = gdbp.compile(gdbp.grad(cost)), gdbp.compile(gdbp.grad(cost), rewrite=False)
    for _ in range(3):
        z = rng.normal(size=shape)
        g = gdbp.grad(cost)(z)
        with gdbp.rewriting(False):
            g_written = gdbp.grad(cost)(z)
        np.testing.assert_array_equal(compiled(z), g)
        np.testing.assert_array_equal(as_written(z), g_written)
        tz = torch.tensor(z, requires_grad=True)
        (torch.softmax(tz, dim=dim) * torch.as_tensor(w)).sum().backward()
        np.testing.assert_allclose(g, tz.grad.numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(g, g_written, rtol=1e-12, atol=1e-15)
    assert "equal" in _names(as_written.plan(z)) and "equal" not in _names(compiled.plan(z))


def test_second_derivatives_and_in_place_checks_through_the_softmax_node(rng):
    z, v = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))

    def outer(z):  # the gradient of v . softmax(z), squared: a second derivative of the softmax
        return ns(z).sum(gdbp.grad(lambda z: ns(z).sum(softmax_last(z) * v))(z) ** 2)

    got = gdbp.grad(outer)(z)
    tz = torch.tensor(z, requires_grad=True)
    (gz,) = torch.autograd.grad((torch.softmax(tz, dim=-1) * torch.as_tensor(v)).sum(), tz, create_graph=True)
    (gz ** 2).sum().backward()
    np.testing.assert_allclose(got, tz.grad.numpy(), rtol=1e-11, atol=1e-14)

    t = gdbp.tensor(z, requires_grad=True)
    p = softmax_last(t)
    assert p._node.prim.name == "softmax_composed"
    with gdbp.no_grad():
        p += 1.0  # the node's gradient reads p: changing it afterwards is refused, as for any saved value
    with pytest.raises(gdbp.InPlaceError):
        p.sum().backward()
