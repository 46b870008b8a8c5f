"""gdbp.compile's memory plan: the buffers a plan keeps are never written while a value in them is still read.

Values whose lifetimes do not overlap share a buffer; a value seen through a
view (a transpose, a reshape, a slice) lives as long as the view is read; a
value that leaves the replay through a view gets no buffer. Each test checks
that the plan did keep the buffers in question (so that it can fail), then
compares replays with eager calls bit for bit.
"""

from __future__ import annotations

import numpy as np

import gdbp
from op_cases import ns


def _buffered_ops(plan) -> list[str]:
    """The primitive (or kernel) names of the steps whose values go into kept buffers."""
    names = []
    for k in plan.buffer_of:
        step = plan.steps[k]
        names.append(step.kw["name"].value if step.fn.name == "kernel" else step.fn.name)
    return names


def test_a_value_read_through_a_view_keeps_its_buffer_until_the_view_is_read(rng):
    def f(x, y):
        xp = ns(x)
        a = xp.exp(x)
        t = xp.matrix_transpose(a)       # a view of a's buffer ...
        for _ in range(3):               # ... while values of a's shape come and go
            y = xp.tanh(y) * 2.0 + 1.0
        return xp.sum(t @ y)             # ... and is read only now

    step = gdbp.compile(f)
    for _ in range(3):
        x, y = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
        np.testing.assert_array_equal(step(x, y), f(x, y))
    plan = step.plan(x, y)
    assert "exp" in _buffered_ops(plan) and "tanh" in _buffered_ops(plan)
    exp_step = next(k for k in plan.buffer_of if plan.steps[k].fn.name == "exp")
    shared = [k for k, b in plan.buffer_of.items() if b == plan.buffer_of[exp_step] and k != exp_step]
    assert all(k > max(j for j, s in enumerate(plan.steps) if s.fn is not None and s.fn.name == "matmul")
               for k in shared), "a's buffer was given to another value while its view was still read"


def test_a_view_that_leaves_the_replay_keeps_its_base_out_of_the_buffers(rng):
    def f(x):
        xp = ns(x)
        return xp.reshape(xp.exp(x) * 3.0, (-1,))  # the output is a view of the product's array

    step = gdbp.compile(f)
    outs = [step(rng.normal(size=(2, 3))) for _ in range(3)]
    kept = [o.copy() for o in outs]
    step(rng.normal(size=(2, 3)))  # a buffer behind an earlier output would now be overwritten
    for o, k in zip(outs, kept):
        np.testing.assert_array_equal(o, k)
    assert "multiply" not in _buffered_ops(step.plan(rng.normal(size=(2, 3))))


def test_the_backward_matrix_products_of_a_training_step_write_into_buffers(rng):
    def cost(w1, w2, x):
        xp = ns(x)
        return xp.sum(xp.tanh(xp.tanh(x @ w1) @ w2))

    def sgd(w1, w2, x):
        loss, (g1, g2) = gdbp.value_and_grad(cost, argnums=(0, 1))(w1, w2, x)
        w1 -= 0.1 * g1
        w2 -= 0.1 * g2
        return loss

    w1, w2 = rng.normal(size=(5, 6)), rng.normal(size=(6, 3))
    e1, e2 = w1.copy(), w2.copy()
    step = gdbp.compile(sgd)
    for _ in range(4):
        x = rng.normal(size=(8, 5))
        np.testing.assert_array_equal(step(w1, w2, x), sgd(e1, e2, x))
        np.testing.assert_array_equal(w1, e1)
        np.testing.assert_array_equal(w2, e2)
    # x @ w1 and h @ w2 forward; g @ w2.T, h.T @ g and x.T @ g backward: all into buffers
    assert _buffered_ops(step.plan(w1, w2, x)).count("matmul") >= 5


def test_a_replay_can_keep_every_value_it_makes(rng):
    # What a CUDA graph capture must own: every array the captured steps write, the buffers' and the rest.
    def sgd(w, x):
        loss, g = gdbp.value_and_grad(lambda w: ns(w).sum(ns(w).tanh(x @ w) ** 2))(w)
        w -= 0.1 * g
        return loss

    w, x = rng.normal(size=(3, 2)), rng.normal(size=(4, 3))
    step = gdbp.compile(sgd)
    step(w.copy(), x)
    plan = step.plan(w, x)
    e = w.copy()
    (loss,), kept = plan.replay_kept(w, x)
    np.testing.assert_array_equal(loss, sgd(e, x))
    np.testing.assert_array_equal(w, e)
    slots = {o for s in plan.steps for o in (s.outs or ()) if o is not None}
    assert len(kept) == len(slots)  # one entry per value the steps make
    ids = {id(k) for k in kept}
    assert all(id(b) in ids for b in plan.buffers)  # every kept buffer is among them
    assert any(k is loss for k in kept)


def test_reductions_write_into_buffers_with_their_axes(rng):
    def f(x, k):
        xp = ns(x)
        a = xp.sum(xp.exp(x), axis=1)
        b = xp.max(x * 2.0, axis=0, keepdims=True)
        c = xp.min(x - 1.0, axis=0)
        counts = xp.sum(k > 2, axis=0)  # booleans counted in the result's integer dtype
        return xp.sum(a) + xp.sum(b) + c, xp.sum(k, axis=1) * 1, counts * 1

    step = gdbp.compile(f)
    for _ in range(3):
        x, k = rng.normal(size=(4, 5)), rng.integers(0, 5, size=(4, 5)).astype(np.int32)
        for got, want in zip(step(x, k), f(x, k)):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    ops = _buffered_ops(step.plan(x, k))
    assert ops.count("sum") >= 4 and "max" in ops and "min" in ops
