"""GradReducer: gradients summed over the ranks in buckets started during the backward sweep; no rank hangs."""

from __future__ import annotations

import numpy as np
import pytest
from dist_helpers import comm  # noqa: F401  (a fixture)

import gdbp
from gdbp import backends, descent, nn
from gdbp.distributed import GradReducer


def _model():
    stream = backends.host_rng(0)
    return nn.Sequential(nn.Linear(3, 6, rng=stream, dtype="float64"), nn.Tanh(),
                         nn.Linear(6, 4, rng=stream, dtype="float64"), nn.Tanh(),
                         nn.Linear(4, 2, rng=stream, dtype="float64"))


def _batch(rank):
    rng = np.random.default_rng([7, rank])
    return rng.normal(size=(5, 3)), rng.integers(0, 2, size=5)


def _grads(model, rank) -> list:
    """Rank ``rank``'s own gradients (any rank can compute any rank's)."""
    model.zero_grad()
    x, y = _batch(rank)
    nn.cross_entropy(model(gdbp.tensor(x)), gdbp.tensor(y)).backward()
    out = [np.array(p.grad.data) for p in model.parameters()]
    model.zero_grad()
    return out


@pytest.mark.parametrize("flat", [False, True], ids=["tensors", "flat"])
def test_buckets_start_during_the_sweep_and_sum_over_the_ranks(comm, flat):
    model = _model()
    opt = descent.SGD(model.parameters(), lr=0.1, flat=flat)
    want = [sum(g) for g in zip(*[_grads(model, r) for r in range(comm.size)])]
    reducer = GradReducer(comm, model.parameters(), opt, bucket_bytes=64)  # a few parameters per bucket
    assert len(reducer.buckets) >= 4
    # The last layers' gradients are ready first: their buckets come first.
    params = list(model.parameters())
    index = {id(p): i for i, p in enumerate(params)}
    firsts = [index[id(b.params[0])] for b in reducer.buckets]
    assert firsts == sorted(firsts, reverse=True)
    for _ in range(2):  # twice: the buffers are reused from one step to the next
        model.zero_grad()
        opt.zero_grad()
        reducer.begin()
        x, y = _batch(comm.rank)
        nn.cross_entropy(model(gdbp.tensor(x)), gdbp.tensor(y)).backward()
        assert reducer._next == len(reducer.buckets)  # every bucket started inside the backward pass
        reducer.finish()
        for p, g in zip(params, want):
            np.testing.assert_allclose(p.grad.data, g, rtol=1e-13, atol=1e-15)
    reducer.close()


def test_gradients_that_some_rank_did_not_reach(comm):
    # a: reached by rank 0 only; b: by no rank (its grad stays None, as on one process); w: by every rank.
    a = gdbp.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = gdbp.tensor(np.array([3.0]), requires_grad=True)
    w = gdbp.tensor(np.array([0.5, -1.0]), requires_grad=True)
    reducer = GradReducer(comm, [a, b, w], bucket_bytes=16)
    reducer.begin()
    cost = (w * w).sum() * (comm.rank + 1)
    if comm.rank == 0:
        cost = cost + (a * a * a).sum()
    cost.backward()
    reducer.finish()
    np.testing.assert_allclose(a.grad.data, 3 * a.data ** 2)
    assert b.grad is None
    np.testing.assert_allclose(w.grad.data, 2 * w.data * sum(r + 1 for r in range(comm.size)))
    reducer.close()


def test_a_rank_without_samples_still_takes_part(comm):
    model = _model()
    reducer = GradReducer(comm, model.parameters())
    want = _grads(model, 0)
    model.zero_grad()
    reducer.begin()
    if comm.rank == 0:  # every other rank skips its forward and backward passes
        x, y = _batch(0)
        nn.cross_entropy(model(gdbp.tensor(x)), gdbp.tensor(y)).backward()
    reducer.finish()
    for p, g in zip(model.parameters(), want):
        np.testing.assert_allclose(p.grad.data, g, rtol=1e-14)
    reducer.close()


def test_hooks_are_inert_outside_a_step_and_gone_after_close(comm):
    model = _model()
    reducer = GradReducer(comm, model.parameters())
    first = reducer.buckets[0].views()[0]
    before = np.array(first)
    _grads(model, comm.rank)  # a backward pass outside begin/finish: nothing is copied or reduced
    assert np.array_equal(np.asarray(first), before, equal_nan=True)
    with pytest.raises(RuntimeError, match="without begin"):
        reducer.finish()
    reducer.close()
    assert all(not gdbp.backprop.hooks.hooks_of(p) for p in model.parameters())
