"""Reliability of the autodiff core: per-thread grad mode, one constructor, every saved value checked,
freed residuals, gradients that are their own arrays, JAX-like argnums, clear errors.

Each test here failed before the fix it names (issue 8, items 1, 5, 6, 8, 9, 12, 13).
"""

from __future__ import annotations

import gc
import sys
import threading
import weakref

import numpy as np
import pytest
import torch

import gdbp
from gdbp import backends, nn
from gdbp.backprop import GradRequirementError, InPlaceError

# --- item 1: grad mode is per thread ----------------------------------------------------------


@pytest.fixture
def fast_switching():
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    yield
    sys.setswitchinterval(before)


def test_no_grad_in_one_thread_leaves_another_threads_gradients_alone(fast_switching):
    stop = threading.Event()
    a = gdbp.tensor(np.ones(3), requires_grad=True)

    def loop_in_no_grad():
        while not stop.is_set():
            with gdbp.no_grad():
                a * 2

    other = threading.Thread(target=loop_in_no_grad)
    other.start()
    try:
        for _ in range(300):
            g = gdbp.grad(lambda w: (w * w).sum())(np.arange(3.0))
            np.testing.assert_array_equal(g, [0.0, 2.0, 4.0])
            assert gdbp.is_grad_enabled()  # never entered no_grad here
    finally:
        stop.set()
        other.join()


def test_each_thread_starts_recording_and_keeps_its_own_mode():
    seen = {}

    def child():
        seen["start"] = gdbp.is_grad_enabled()
        with gdbp.no_grad():
            seen["inside"] = gdbp.is_grad_enabled()

    with gdbp.no_grad():
        t = threading.Thread(target=child)
        t.start()
        t.join()
        assert not gdbp.is_grad_enabled()
    assert seen == {"start": True, "inside": False}
    assert gdbp.is_grad_enabled()


def test_two_threads_train_two_models_as_they_would_alone(fast_switching):
    def train(seed, out):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(32, 4)).astype(np.float32)
        y = rng.integers(0, 3, size=32)
        model = nn.Sequential(nn.Linear(4, 8, seed=seed), nn.ReLU(), nn.Linear(8, 3, seed=seed + 1))
        opt = gdbp.descent.SGD(model.parameters(), lr=0.1)
        for _ in range(40):
            opt.zero_grad()
            nn.cross_entropy(model(gdbp.tensor(x)), gdbp.tensor(y)).backward()
            opt.step()
        out[seed] = [p.numpy().copy() for p in model.parameters()]

    alone = {}
    train(1, alone)
    train(7, alone)
    together = {}
    threads = [threading.Thread(target=train, args=(s, together)) for s in (1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed in (1, 7):
        for a, b in zip(alone[seed], together[seed]):
            np.testing.assert_array_equal(a, b)


# --- item 5: an op's output made a leaf ---------------------------------------------------------


def test_an_op_output_made_a_leaf_backpropagates():
    x = gdbp.tensor(np.ones((2, 3))) * 2.0
    x.requires_grad = True
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 4.0))
    w = (gdbp.tensor(np.arange(3.0)) * 0.01).requires_grad_()  # the PyTorch idiom
    nn.functional.linear(gdbp.tensor(np.ones((4, 3))), w.reshape((1, 3))).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.full(3, 4.0))


# --- item 6: every saved value is checked, constants' too ------------------------------------------


def test_a_constant_changed_after_the_forward_pass_is_caught():
    w = gdbp.tensor(np.ones(3), requires_grad=True)
    x = gdbp.tensor(np.array([1.0, 2.0, 3.0]))
    loss = (w * x).sum()
    x += 10
    with pytest.raises(InPlaceError, match="multiply"):
        loss.backward()


def test_a_linear_layers_input_changed_after_the_forward_pass_is_caught():
    layer = nn.Linear(3, 2, backend="numpy", dtype="float64")
    batch = gdbp.tensor(np.ones((4, 3)))
    out = layer(batch).sum()
    batch[0, 0] = 5.0
    with pytest.raises(InPlaceError, match="linear"):
        out.backward()


def test_a_constant_a_rule_does_not_read_may_change():
    w = gdbp.tensor(np.ones(3), requires_grad=True)
    c = gdbp.tensor(np.array([1.0, 2.0, 3.0]))
    loss = (w + c).sum()  # add's gradient reads neither input
    c += 10
    loss.backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.ones(3))


# --- item 8: the sweep frees what a node saved, residuals too ---------------------------------------


def test_a_kept_loss_does_not_pin_the_softmax_residual():
    logits = gdbp.tensor(np.random.default_rng(0).normal(size=(64, 100)), requires_grad=True)
    labels = gdbp.tensor(np.arange(64) % 100)
    loss = nn.cross_entropy(logits, labels)
    residual = weakref.ref(loss._node.kw["res"])
    loss.backward()
    gc.collect()
    assert residual() is None  # the 64x100 softmax is gone although the loss is kept
    assert np.isfinite(loss.item())


# --- item 9: every gradient is its own writable array ------------------------------------------------


def test_the_gradient_of_a_sum_is_writable():
    w = gdbp.tensor(np.ones(3), requires_grad=True)
    w.sum().backward()
    w.grad *= 0.5  # was a read-only broadcast view
    np.testing.assert_array_equal(w.grad.numpy(), np.full(3, 0.5))


def test_two_leaves_never_share_a_gradient_array(backend):
    xp = backend.xp
    a = gdbp.tensor(xp.ones(3, dtype=xp.float64), requires_grad=True)
    b = gdbp.tensor(xp.ones(3, dtype=xp.float64), requires_grad=True)
    (a + b).sum().backward()
    assert a.grad.data is not b.grad.data
    a.grad[0] = 7.0
    assert float(b.grad.data[0]) == 1.0


def test_gradients_do_not_alias_the_callers_seed():
    x = gdbp.tensor(np.ones(3), requires_grad=True)
    seed = np.array([1.0, 2.0, 3.0])
    (x + 0.0).backward(grad=seed)
    assert not np.shares_memory(x.grad.data, seed)
    x.grad *= 0
    np.testing.assert_array_equal(seed, [1.0, 2.0, 3.0])
    _, pull = gdbp.vjp(lambda v: v * 1.0 + 0.0, np.ones(3))
    ct = np.array([4.0, 5.0, 6.0])
    (g,) = pull(ct)
    assert not np.shares_memory(g, ct)
    out, pull = gdbp.vjp(lambda v: v, np.ones(2))  # the identity hands the seed straight back
    ct = np.ones(2)
    assert not np.shares_memory(pull(ct)[0], ct)


# --- item 12: argnums as JAX has them; no gradient of an integer output --------------------------------


def test_repeated_and_reordered_argnums():
    f = lambda a, b: (a * b).sum()  # noqa: E731
    a, b = np.ones(2), np.arange(2.0)
    ga, gb = gdbp.grad(f, argnums=(0, 0))(a, b)
    np.testing.assert_array_equal(ga, b)
    np.testing.assert_array_equal(gb, b)
    assert ga is not gb
    g1, g0 = gdbp.grad(f, argnums=(1, 0))(a, b)
    np.testing.assert_array_equal(g1, a)
    np.testing.assert_array_equal(g0, b)


@pytest.mark.parametrize("kind", ["int", "bool"])
def test_grad_of_an_integer_or_boolean_output_is_a_type_error(kind):
    def f(x):
        xp = x.__array_namespace__()
        return xp.sum(x > 0) if kind == "int" else xp.all(x > 0)

    with pytest.raises(TypeError, match="real floating-point scalar"):
        gdbp.grad(f)(np.ones(3))


# --- item 13 (autodiff part): clear errors -------------------------------------------------------


@pytest.mark.parametrize("bad", [1.0, "0", [0.5], True])
def test_argnums_that_are_not_ints_say_so(bad):
    with pytest.raises(TypeError, match="argnums must be an int or a tuple of ints"):
        gdbp.grad(lambda a: a.sum(), argnums=bad)(np.ones(2))


def test_a_seed_of_another_backend_is_refused():
    y = gdbp.tensor(np.ones(2), requires_grad=True) * 2.0
    with pytest.raises(backends.BackendMismatchError, match="seed gradient lives on torch"):
        y.backward(grad=torch.ones(2, dtype=torch.float64))


def test_grad_mode_errors_stay_clear_after_threads():
    with pytest.raises(GradRequirementError):
        gdbp.tensor(np.ones(2)).sum().backward()
