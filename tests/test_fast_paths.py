"""The speed-ups keep the math: NumPy fast paths against their generic versions, and recycled gradient buffers."""

import numpy as np
import pytest

import gdbp
from gdbp import nn
from gdbp.backends._kernels import Kernels, kernels
from gdbp.backends._numpy import NumpyKernels
from gdbp.backprop import ops

xp = gdbp.backends.resolve("numpy").xp


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_numpy_gets_its_own_kernels_and_others_the_generic_ones():
    assert type(kernels(xp)) is NumpyKernels
    assert type(kernels(gdbp.backends.resolve("array_api_strict").xp)) is Kernels


@pytest.mark.parametrize("shape", [(5, 4), (1, 4), (3, 2, 4)])
def test_numpy_kernels_match_the_generic_versions(rng, shape):
    fast, generic = NumpyKernels(xp), Kernels(xp)
    g = rng.normal(size=shape).astype(np.float32)
    ans = rng.normal(size=shape).astype(np.float32)
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    np.testing.assert_array_equal(fast.relu_grad(g, ans), generic.relu_grad(g, ans))
    np.testing.assert_array_equal(fast.pick(g, labels), generic.pick(g, labels))
    before = g.copy()
    np.testing.assert_allclose(fast.minus_onehot(g, labels, 0.9), generic.minus_onehot(g, labels, 0.9), rtol=1e-6)
    np.testing.assert_array_equal(g, before)  # a new array: the input is not touched


@pytest.mark.parametrize("m,k,n", [(4, 3, 5), (6, 1, 5)])  # k = 1: numpy.dot's path
def test_products_and_sums_into_a_buffer(rng, m, k, n):
    fast = NumpyKernels(xp)
    a, b = rng.normal(size=(m, k)), rng.normal(size=(k, n))
    out = np.empty((m, n))
    got = fast.matmul_into(a, b, out)
    np.testing.assert_allclose(got, a @ b)
    np.testing.assert_allclose(fast.matmul(a, b), a @ b)
    total = np.empty(n)
    assert fast.sum_into(b, 0, total) is total
    np.testing.assert_allclose(total, b.sum(0))


def _model_and_data(rng):
    model = nn.Sequential(nn.Linear(6, 5, backend="numpy"), nn.ReLU(), nn.Linear(5, 3, backend="numpy"))
    x = rng.normal(size=(8, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=8)
    return model, x, y


def test_zero_grad_recycles_buffers_and_gradients_stay_right(rng):
    model, x, y = _model_and_data(rng)
    params = list(model.parameters())
    nn.cross_entropy(model(x), y).backward()
    first = [p.grad.numpy().copy() for p in params]
    model.zero_grad()
    assert all(p.grad is None for p in params)
    buffers = [p._gbuf for p in params]  # last step's gradient arrays, kept
    assert all(b is not None for b in buffers)
    nn.cross_entropy(model(x), y).backward()
    for p, a, expected in zip(params, buffers, first):
        assert p.grad.data is a  # written into last step's memory
        np.testing.assert_allclose(p.grad.numpy(), expected, rtol=1e-6)


def test_a_gradient_someone_holds_is_not_overwritten(rng):
    model, x, y = _model_and_data(rng)
    weight = model[0].weight
    nn.cross_entropy(model(x), y).backward()
    kept = weight.grad  # the user keeps last step's gradient
    snapshot = kept.numpy().copy()
    model.zero_grad()
    with gdbp.no_grad():
        weight -= 0.5 * kept  # change the weights so the next gradient differs
    nn.cross_entropy(model(x), y).backward()
    assert weight.grad.data is not kept.data
    np.testing.assert_array_equal(kept.numpy(), snapshot)
    assert not np.allclose(weight.grad.numpy(), snapshot)


def test_gradients_of_one_shared_array_are_each_their_own_and_recycled():
    a = gdbp.tensor(np.ones(3), requires_grad=True)
    b = gdbp.tensor(np.ones(3), requires_grad=True)
    ((a + b) * np.arange(3.0)).sum().backward()
    # add hands the same array to both: each leaf gets its own (issue 8: no aliased gradients).
    assert not np.shares_memory(a.grad.data, b.grad.data)
    np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())
    a.zero_grad_()
    assert a._gbuf is not None  # its own memory: kept for the next backward pass
    b.zero_grad_()
    assert b._gbuf is not None and b._gbuf is not a._gbuf


def test_recycled_buffer_is_used_once_then_handed_over():
    w = gdbp.tensor(np.ones((2, 3)), requires_grad=True)
    x = gdbp.tensor(np.arange(6.0).reshape(2, 3))
    ops.linear(x, w).sum().backward()
    w.zero_grad_()
    buf = w._gbuf
    ops.linear(x, w).sum().backward()
    assert w.grad.data is buf and w._gbuf is None
    # A second backward without zero_grad accumulates into a new array, leaving the first untouched.
    held = w.grad
    ops.linear(x, w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * held.numpy())


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_numpy_cross_entropy_matches_the_generic_version(rng, smoothing):
    fast, generic = NumpyKernels(xp), Kernels(xp)
    logits = (rng.normal(size=(6, 5)) * 300).astype(np.float32)  # large: the shift must hold
    labels = rng.integers(0, 5, size=6)
    cost_fast, p_fast = fast.softmax_xent(logits, labels, smoothing)
    cost_generic, p_generic = generic.softmax_xent(logits, labels, smoothing)
    np.testing.assert_allclose(cost_fast, cost_generic, rtol=1e-6)
    np.testing.assert_allclose(p_fast, p_generic, rtol=1e-6, atol=1e-30)
    assert np.isfinite(cost_fast).all() and cost_fast.dtype == np.float32
    mean_fast, mean_generic = fast.mean_all(cost_fast), generic.mean_all(cost_fast)
    assert type(mean_fast) is np.ndarray and mean_fast.shape == () and mean_fast.dtype == np.float32
    np.testing.assert_allclose(mean_fast, mean_generic, rtol=1e-6)


def test_a_gradient_that_would_be_a_view_of_another_is_its_own_array():
    # a's gradient would be a view of b's (reshape passes it on): it is copied, so writing one cannot change the other.
    a = gdbp.tensor(np.ones((2, 3)), requires_grad=True)
    b = gdbp.tensor(np.ones(6), requires_grad=True)
    ((a.reshape((6,)) + b) * np.arange(6.0)).sum().backward()
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad *= 0.5
    np.testing.assert_array_equal(b.grad.numpy(), np.arange(6.0))
    a.zero_grad_()
    assert a._gbuf is not None


def test_only_numpy_recycles_buffers():
    w = gdbp.tensor(gdbp.backends.transfer(np.ones((2, 3)), "torch"), requires_grad=True)
    x = gdbp.tensor(gdbp.backends.transfer(np.ones((4, 3)), "torch"))
    ops.linear(x, w).sum().backward()
    w.zero_grad_()
    assert w._gbuf is None  # its rules could not write into it: nothing to gain


KEYS = [(slice(None), 0), (slice(None), -1), (None,), Ellipsis, (Ellipsis, 0), (0, Ellipsis), (slice(None, None, -1),),
        (slice(1, None),), (slice(0, 5),), (slice(None, 2),), (np.int64(0),), (slice(None), slice(None), None),
        (None, Ellipsis, None), (np.array([0]),), (slice(None), np.array([0, 0]))]


@pytest.mark.parametrize("shape", [(3, 1), (1, 3), (1, 1, 2), (3,)])
def test_a_selection_of_every_element_pulls_back_by_a_reshape_and_others_by_a_scatter(rng, shape):
    from gdbp.backprop.ops.indexing import _every_element_in_order

    x = rng.normal(size=shape)
    for key in KEYS:
        try:
            picked = x[key]
        except IndexError:
            continue
        if _every_element_in_order(key, shape):  # never claimed of a selection that drops, repeats or reorders
            assert picked.size == x.size and np.shares_memory(picked, x)
            np.testing.assert_array_equal(picked.reshape(-1), x.reshape(-1))
        g = rng.normal(size=picked.shape)
        want = np.zeros_like(x)
        np.add.at(want, key, g)
        (got,) = gdbp.vjp(lambda a: a[key], x)[1](g)
        np.testing.assert_array_equal(np.asarray(got), want)
    assert _every_element_in_order((slice(None), 0), (3, 1)) and not _every_element_in_order((0,), (3,))
