"""The functional face: grad, value_and_grad, vjp, custom_vjp; higher order; deep graphs.

Raw arrays in, raw arrays of the same library and dtype out, on every backend.
"""

from __future__ import annotations

import sys

import array_api_compat
import numpy as np
import pytest

import gdbp
from gdbp import backends

from conftest import to_numpy


def arr(backend, values, dtype="float64"):
    return backends.transfer(np.asarray(values, dtype=dtype), backend)


def assert_raw_like(out, like):
    """out is a raw array of like's library, device and dtype (not a Tensor)."""
    assert not isinstance(out, gdbp.Tensor), "a Tensor came back for raw array input"
    assert backends.backend_of(out) is backends.backend_of(like)
    assert out.dtype == like.dtype
    assert tuple(out.shape) == tuple(like.shape)


def close(a, b, rtol=1e-6, atol=1e-9):
    np.testing.assert_allclose(to_numpy(a), np.asarray(to_numpy(b)), rtol=rtol, atol=atol)


def central_difference(f, x, eps=1e-6):
    """d f / d x by central differences, on host float64 arrays (f returns a float)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        out[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return out


def ns(*arrays):
    return array_api_compat.array_namespace(*arrays)


def sum_tanh_sq(x):
    xp = ns(x)
    return xp.sum(xp.tanh(x) ** 2)


# --- raw arrays in, raw arrays out ------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_grad_returns_the_callers_arrays(backend, dtype):
    values = np.asarray([[0.1, -0.2, 0.3], [0.5, 1.5, -2.0]])
    x = arr(backend, values, dtype)
    g = gdbp.grad(sum_tanh_sq)(x)
    assert_raw_like(g, x)
    t = np.tanh(values)
    close(g, 2 * t * (1 - t * t), rtol=1e-5 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_value_and_grad_returns_the_callers_arrays(backend, dtype):
    values = np.asarray([0.1, -0.7, 1.3])
    x = arr(backend, values, dtype)
    value, g = gdbp.value_and_grad(sum_tanh_sq)(x)
    assert not isinstance(value, gdbp.Tensor)
    assert backends.backend_of(value) is backend and value.dtype == x.dtype and tuple(value.shape) == ()
    assert_raw_like(g, x)
    close(value, np.sum(np.tanh(values) ** 2), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vjp_returns_the_callers_arrays(backend, dtype):
    values = np.asarray([0.5, 1.0, 2.0])
    x = arr(backend, values, dtype)
    out, vjp_fn = gdbp.vjp(lambda a: ns(a).sin(a) * a, x)
    assert_raw_like(out, x)
    close(out, np.sin(values) * values, rtol=1e-6)
    seed = arr(backend, [1.0, -2.0, 0.5], dtype)
    (g,) = vjp_fn(seed)
    assert_raw_like(g, x)
    close(g, np.asarray([1.0, -2.0, 0.5]) * (np.cos(values) * values + np.sin(values)), rtol=1e-5)
    (g_again,) = vjp_fn(seed)          # vjp_fn may be called again
    close(g_again, g)


def test_vjp_with_several_inputs_and_outputs(backend):
    a = arr(backend, [1.0, 2.0])
    b = arr(backend, [3.0, -1.0])
    (p, s), vjp_fn = gdbp.vjp(lambda a, b: (a * b, a + b * b), a, b)
    close(p, [3.0, -2.0])
    close(s, [10.0, 3.0])
    ga, gb = vjp_fn((arr(backend, [1.0, 0.0]), arr(backend, [0.0, 1.0])))
    assert_raw_like(ga, a)
    assert_raw_like(gb, b)
    close(ga, [3.0, 1.0])        # d(ab)/da * [1, 0] + d(a + b^2)/da * [0, 1]
    close(gb, [1.0, -2.0])       # b: a * [1, 0] + 2b * [0, 1]


def test_vjp_seed_must_match(backend):
    _, vjp_fn = gdbp.vjp(lambda a: a * 2.0, arr(backend, [1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        vjp_fn(arr(backend, [1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="expected 1 output gradient"):
        vjp_fn((arr(backend, [1.0, 1.0]), arr(backend, [1.0, 1.0])))


def test_tensors_in_give_tensors_out(backend):
    x = gdbp.tensor(arr(backend, [1.0, 2.0]))
    g = gdbp.grad(lambda a: (a * a).sum())(x)
    assert isinstance(g, gdbp.Tensor) and g.backend is backend
    close(g, [2.0, 4.0])
    assert x.grad is None  # the functional face leaves .grad alone


# --- argnums, has_aux, pytrees ---------------------------------------------------------------


def _f3(a, b, c):
    xp = ns(a, b, c)
    return xp.sum(a * b * b + xp.sin(c))


def test_argnums_int_and_tuple(backend):
    a, b, c = arr(backend, [1.0, 2.0]), arr(backend, [3.0, -1.0]), arr(backend, [0.5, 0.25])
    close(gdbp.grad(_f3, argnums=1)(a, b, c), 2 * np.asarray([1.0, 2.0]) * np.asarray([3.0, -1.0]))
    close(gdbp.grad(_f3, argnums=-1)(a, b, c), np.cos([0.5, 0.25]))
    ga, gc = gdbp.grad(_f3, argnums=(0, 2))(a, b, c)
    close(ga, [9.0, 1.0])
    close(gc, np.cos([0.5, 0.25]))
    (gb,) = gdbp.grad(_f3, argnums=(1,))(a, b, c)  # a tuple argnums gives a tuple
    close(gb, [6.0, -4.0])


def test_argnums_out_of_range(backend):
    with pytest.raises(IndexError, match="argnums 3"):
        gdbp.grad(_f3, argnums=3)(arr(backend, [1.0]), arr(backend, [1.0]), arr(backend, [1.0]))


def test_has_aux(backend):
    x = arr(backend, [1.0, 2.0, 3.0])

    def cost(w):
        xp = ns(w)
        pred = w * 2.0
        return xp.sum(pred * pred), {"pred": pred, "note": "kept"}

    g, aux = gdbp.grad(cost, has_aux=True)(x)
    close(g, 8 * np.asarray([1.0, 2.0, 3.0]))
    assert aux["note"] == "kept"
    assert_raw_like(aux["pred"], x)
    close(aux["pred"], [2.0, 4.0, 6.0])
    (value, aux2), g2 = gdbp.value_and_grad(cost, has_aux=True)(x)
    close(value, 56.0)
    close(g2, g)
    with pytest.raises(TypeError, match="pair"):
        gdbp.grad(lambda w: ns(w).sum(w), has_aux=True)(x)


def test_pytree_arguments(backend):
    params = {
        "layers": [arr(backend, [1.0, 2.0]), arr(backend, [3.0])],
        "pair": (arr(backend, [0.5]), arr(backend, [-1.0, 4.0])),
    }

    def cost(p):
        xp = ns(p["layers"][0])
        w0, w1 = p["layers"]
        u, v = p["pair"]
        return xp.sum(w0 * w0) * xp.sum(w1) + xp.sum(u * 3.0) + xp.sum(v ** 3)

    g = gdbp.grad(cost)(params)
    assert set(g) == {"layers", "pair"}
    assert isinstance(g["layers"], list) and isinstance(g["pair"], tuple)
    close(g["layers"][0], 2 * np.asarray([1.0, 2.0]) * 3.0)
    close(g["layers"][1], [5.0])
    close(g["pair"][0], [3.0])
    close(g["pair"][1], 3 * np.asarray([-1.0, 4.0]) ** 2)
    for leaf, like in ((g["layers"][0], params["layers"][0]), (g["pair"][1], params["pair"][1])):
        assert_raw_like(leaf, like)


def test_pytree_in_tuple_argnums(backend):
    xs = [arr(backend, [1.0]), arr(backend, [2.0])]
    y = arr(backend, [3.0])
    gx, gy = gdbp.grad(lambda xs, y: ns(y).sum(xs[0] * xs[1] * y), argnums=(0, 1))(xs, y)
    close(gx[0], [6.0])
    close(gx[1], [3.0])
    close(gy, [2.0])


def test_independent_function_gives_zeros(backend):
    x = arr(backend, [1.0, 2.0, 3.0], "float32")
    g = gdbp.grad(lambda a: ns(a).sum(ns(a).ones(3, dtype=ns(a).float32)))(x)
    assert_raw_like(g, x)
    close(g, [0.0, 0.0, 0.0])
    ga, gb = gdbp.grad(lambda a, b: ns(b).sum(b * b), argnums=(0, 1))(x, x)
    assert_raw_like(ga, x)
    close(ga, [0.0, 0.0, 0.0])
    close(gb, [2.0, 4.0, 6.0])


def test_readme_example(backend):
    """The example of the README and of grad's docstring, as written there."""

    def cost(w, x, y):
        xp = array_api_compat.array_namespace(w, x, y)
        return xp.mean((xp.tanh(x @ w) - y) ** 2)

    rng = np.random.default_rng(0)
    wh, xh, yh = rng.normal(size=3), rng.normal(size=(5, 3)), rng.normal(size=5)
    w, x, y = (arr(backend, v, "float32") for v in (wh, xh, yh))
    dw = gdbp.grad(cost)(w, x, y)
    assert_raw_like(dw, w)
    t = np.tanh(xh @ wh)
    expected = xh.T @ (2 * (t - yh) * (1 - t * t)) / 5
    close(dw, expected, rtol=1e-4, atol=1e-6)
    fd = central_difference(lambda v: np.mean((np.tanh(xh @ v) - yh) ** 2), wh)
    np.testing.assert_allclose(expected, fd, rtol=1e-6, atol=1e-9)


# --- custom_vjp ---------------------------------------------------------------------------------


def make_softplus(calls):
    @gdbp.custom_vjp
    def softplus(x):
        calls.append(type(x))
        xp = array_api_compat.array_namespace(x)
        return xp.logaddexp(x, xp.zeros_like(x))

    @softplus.defvjp
    def softplus_vjp(g, ans, x):
        calls.append("rule")
        xp = array_api_compat.array_namespace(g)
        return (g * (1 - xp.exp(-ans)),)      # sigmoid(x) = 1 - exp(-softplus(x))

    return softplus


def test_custom_vjp_forward_on_raw_arrays_and_the_rule_is_used(backend):
    calls = []
    softplus = make_softplus(calls)
    values = np.asarray([0.3, -1.2, 2.0])
    x = arr(backend, values)
    out = softplus(gdbp.tensor(x, requires_grad=True))
    assert isinstance(out, gdbp.Tensor) and out.requires_grad
    assert calls == [backend.array_type]  # the function saw a raw array, not a Tensor
    g = gdbp.grad(lambda a: ns(a).sum(softplus(a)))(x)
    assert "rule" in calls
    assert_raw_like(g, x)
    fd = central_difference(lambda v: float(np.sum(np.logaddexp(v, 0.0))), values)
    close(g, fd, rtol=1e-6)
    close(g, 1 / (1 + np.exp(-values)), rtol=1e-12)


def test_custom_vjp_rule_is_what_is_used():
    @gdbp.custom_vjp
    def double(x):
        return x * 2.0

    @double.defvjp
    def double_vjp(g, ans, x):
        return (g * 5.0,)   # deliberately not the true derivative

    g = gdbp.grad(lambda a: ns(a).sum(double(a)))(np.asarray([1.0, 2.0]))
    close(g, [5.0, 5.0])


def test_custom_vjp_second_derivative(backend):
    softplus = make_softplus([])
    values = np.asarray([0.3, -1.2, 2.0])
    x = arr(backend, values)
    first = gdbp.grad(lambda a: ns(a).sum(softplus(a)))
    second = gdbp.grad(lambda a: ns(a).sum(first(a)))(x)
    s = 1 / (1 + np.exp(-values))
    close(second, s * (1 - s), rtol=1e-10)
    fd = central_difference(lambda v: float(np.sum(1 / (1 + np.exp(-v)))), values)
    close(second, fd, rtol=1e-6)


def test_custom_vjp_with_two_inputs_and_none(backend):
    @gdbp.custom_vjp
    def scaled(x, k):
        return x * k

    @scaled.defvjp
    def scaled_vjp(g, ans, x, k):
        return g * k, None

    x = arr(backend, [1.0, 2.0])
    k = arr(backend, [3.0, 4.0])
    gx, gk = gdbp.grad(lambda x, k: ns(x).sum(scaled(x, k)), argnums=(0, 1))(x, k)
    close(gx, [3.0, 4.0])
    close(gk, [0.0, 0.0])  # None: no gradient flows, zeros come back


def test_custom_vjp_errors():
    @gdbp.custom_vjp
    def no_rule(x):
        return x * 2.0

    with pytest.raises(gdbp.NotDifferentiableError, match=r"no_rule.*defvjp"):
        gdbp.grad(lambda a: ns(a).sum(no_rule(a)))(np.ones(2))

    @gdbp.custom_vjp
    def bad(x, y):
        return x * y

    @bad.defvjp
    def bad_vjp(g, ans, x, y):
        return (g,)

    with pytest.raises(ValueError, match=r"bad: the rule returned 1 gradient\(s\) for 2 input\(s\)"):
        gdbp.grad(lambda a: ns(a).sum(bad(a, a)))(np.ones(2))


# --- second derivatives ----------------------------------------------------------------------------

ELEMENTWISE = {
    "tanh": (lambda xp, x: xp.tanh(x), lambda v: np.tanh(v), lambda v: 1 - np.tanh(v) ** 2),
    "sin": (lambda xp, x: xp.sin(x), np.sin, np.cos),
    "cube": (lambda xp, x: x ** 3, lambda v: v ** 3, lambda v: 3 * v ** 2),
    "exp-times-x": (lambda xp, x: xp.exp(x) * x, lambda v: np.exp(v) * v, lambda v: np.exp(v) * (v + 1)),
}


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_grad_of_grad(backend, name):
    fn, _, first_np = ELEMENTWISE[name]
    values = np.asarray([-1.3, -0.2, 0.4, 1.1])
    x = arr(backend, values)
    first = gdbp.grad(lambda a: ns(a).sum(fn(ns(a), a)))
    second = gdbp.grad(lambda a: ns(a).sum(first(a)))(x)
    assert_raw_like(second, x)
    close(first(x), first_np(values), rtol=1e-12)
    fd = central_difference(lambda v: float(np.sum(first_np(v))), values)
    close(second, fd, rtol=1e-6, atol=1e-8)


def test_third_derivative(backend):
    x = arr(backend, [0.5, -1.0])
    d1 = gdbp.grad(lambda a: ns(a).sum(a ** 4))
    d2 = gdbp.grad(lambda a: ns(a).sum(d1(a)))
    d3 = gdbp.grad(lambda a: ns(a).sum(d2(a)))
    close(d3(x), 24 * np.asarray([0.5, -1.0]))


def test_mixed_partial(backend):
    x, y = arr(backend, [1.0, 2.0]), arr(backend, [0.5, -1.5])

    def f(x, y):
        return ns(x).sum(x * x * y ** 3)

    dfdx = gdbp.grad(f, argnums=0)
    cross = gdbp.grad(lambda x, y: ns(x).sum(dfdx(x, y)), argnums=1)(x, y)
    close(cross, 6 * np.asarray([1.0, 2.0]) * np.asarray([0.5, -1.5]) ** 2)


def _mlp_cost(w, x, y):
    """A 3-4-1 MLP with tanh, mean squared error; w is a flat vector of its 21 weights."""
    xp = ns(w, x, y)
    w1 = xp.reshape(w[0:12], (3, 4))
    b1 = w[12:16]
    w2 = xp.reshape(w[16:20], (4, 1))
    b2 = w[20:21]
    h = xp.tanh(x @ w1 + b1)
    out = h @ w2 + b2
    return xp.mean((out[:, 0] - y) ** 2)


def test_hessian_vector_product_of_an_mlp_cost(backend):
    rng = np.random.default_rng(1)
    wh, xh, yh, vh = rng.normal(size=21), rng.normal(size=(6, 3)), rng.normal(size=6), rng.normal(size=21)
    w, x, y, v = (arr(backend, a) for a in (wh, xh, yh, vh))
    grad_cost = gdbp.grad(_mlp_cost)
    hvp = gdbp.grad(lambda w: ns(w).sum(grad_cost(w, x, y) * v))(w)
    assert_raw_like(hvp, w)

    def host_grad(wv):
        return to_numpy(gdbp.grad(_mlp_cost)(wv, xh, yh))

    eps = 1e-5
    fd = (host_grad(wh + eps * vh) - host_grad(wh - eps * vh)) / (2 * eps)
    close(hvp, fd, rtol=1e-5, atol=1e-7)
    # and the first derivative itself, against finite differences of the cost
    fd1 = central_difference(lambda wv: float(_mlp_cost(wv, xh, yh)), wh)
    close(grad_cost(w, x, y), fd1, rtol=1e-6, atol=1e-8)


def test_backward_create_graph_then_differentiate_grad(backend):
    values = np.asarray([0.3, -0.8, 1.5])
    x = gdbp.tensor(arr(backend, values), requires_grad=True)
    xp = x.__array_namespace__()
    (xp.sin(x) * x).sum().backward(create_graph=True)
    g = x.grad                       # cos(x) x + sin(x), itself differentiable
    assert isinstance(g, gdbp.Tensor) and g.requires_grad
    close(g, np.cos(values) * values + np.sin(values), rtol=1e-12)
    x.grad = None
    g.sum().backward()
    close(x.grad, 2 * np.cos(values) - values * np.sin(values), rtol=1e-12)


def test_backward_without_create_graph_gives_a_constant_grad(backend):
    x = gdbp.tensor(arr(backend, [1.0, 2.0]), requires_grad=True)
    (x ** 3).sum().backward()
    assert not x.grad.requires_grad and x.grad._node is None


# --- deep graphs ---------------------------------------------------------------------------------------


def _count_nodes(t):
    seen, stack = set(), [t._node]
    while stack:
        node = stack.pop()
        if node is None or type(node) is not gdbp.backprop.engine.Node or id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(node.parents)
    return len(seen)


def test_a_chain_of_10000_ops_runs_backward_without_recursion():
    assert sys.getrecursionlimit() < 10_000  # the chain is deeper than Python's stack allows
    x = gdbp.tensor(np.asarray([1.0, 2.0]), requires_grad=True)
    y = x
    for _ in range(5_000):
        y = y * 1.0001 + 0.0          # two recorded ops per step
    assert _count_nodes(y) == 10_000
    y.sum().backward()
    close(x.grad, [1.0001 ** 5_000] * 2, rtol=1e-10)
    del y                             # tearing the deep graph down must not overflow either


def test_a_chain_of_10000_ops_through_grad():
    def f(x):
        xp = ns(x)
        for _ in range(10_000):
            x = x * 0.9999
        return xp.sum(x)

    g = gdbp.grad(f)(np.asarray([3.0]))
    close(g, [0.9999 ** 10_000], rtol=1e-10)


def test_argnums_are_checked_the_same_at_every_call():
    # argnums are remembered per form once checked; what is not an argnums is refused every time, clearly.
    x = np.asarray([1.0, 2.0])
    for _ in range(2):
        np.testing.assert_allclose(gdbp.grad(lambda a: (a * a).sum(), argnums=[0])(x)[0], 2 * x)
        for bad in (([0],), True, 1.5):
            with pytest.raises(TypeError, match="argnums must be an int or a tuple of ints"):
                gdbp.grad(lambda a: a.sum(), argnums=bad)(x)
        with pytest.raises(IndexError, match="out of range"):
            gdbp.grad(lambda a: a.sum(), argnums=1)(x)
