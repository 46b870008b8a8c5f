"""gdbp.compile: every replay gives what an eager call gives, and what cannot be replayed is refused.

On NumPy the plan runs the same operations in the same order as the trace,
so results are compared bit for bit; a few rules take a fast path on a
traced backward pass that rounds differently, compared to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest

import gdbp
from gdbp import nn
from gdbp.compile import CompileError
from op_cases import CASES, host_args, ns


def _same(a, b, exact=True):
    a, b = np.asarray(gdbp.backends.to_numpy(a)), np.asarray(gdbp.backends.to_numpy(b))
    assert a.shape == b.shape and a.dtype == b.dtype
    if exact:
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def cost(w, x, y):
    xp = ns(w, x, y)
    return xp.mean((xp.tanh(x @ w) - y) ** 2)


def test_a_value_and_grad_closure_replays_what_eager_gives(rng):
    step = gdbp.compile(lambda w, x, y: gdbp.value_and_grad(cost)(w, x, y))
    w = rng.normal(size=(3, 2))
    for _ in range(4):  # the first call traces, the others replay, each on new data of one signature
        x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
        (v1, g1), (v2, g2) = step(w, x, y), gdbp.value_and_grad(cost)(w, x, y)
        _same(v1, v2)
        _same(g1, g2)
        assert type(g1) is np.ndarray  # arrays in, arrays out
    assert step.traces == 1
    assert "def replay" in step.plan(w, x, y).source


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict", "torch"])
def test_every_backend_replays(backend, rng):
    w, x, y = (gdbp.transfer(rng.normal(size=s), backend) for s in ((3, 2), (5, 3), (5, 2)))
    step = gdbp.compile(gdbp.grad(cost))
    for _ in range(3):
        _same(step(w, x, y), gdbp.grad(cost)(w, x, y), exact=False)
    assert step.traces == 1


def _mlp_cost(params, x, y):
    xp = ns(x)
    h = x
    for k in range(0, len(params), 2):
        h = h @ params[k].T + params[k + 1]
        if k < len(params) - 2:
            h = xp.maximum(h, 0.0)
    m = xp.max(h, axis=1, keepdims=True)
    lse = xp.log(xp.sum(xp.exp(h - m), axis=1)) + m[:, 0]
    return xp.mean(lse - xp.take_along_axis(h, xp.expand_dims(y, axis=1), axis=1)[:, 0])


def _mlp_step(params, x, y):
    loss, grads = gdbp.value_and_grad(_mlp_cost)(params, x, y)
    for p, g in zip(params, grads):
        p -= 0.1 * g  # written into the caller's arrays, eagerly and replayed
    return loss


def _mlp(rng, dtype=np.float32):
    sizes = (6, 8, 8, 3)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params += [rng.normal(size=(b, a)).astype(dtype) * 0.5, rng.normal(size=b).astype(dtype) * 0.1]
    return params


def test_a_training_step_with_an_in_place_update_of_the_callers_arrays(rng):
    eager, compiled = _mlp(rng), None
    compiled = [p.copy() for p in eager]
    step = gdbp.compile(_mlp_step)
    losses = []
    for _ in range(6):
        x = rng.normal(size=(16, 6)).astype(np.float32)
        y = rng.integers(0, 3, size=16)
        l1, l2 = _mlp_step(eager, x, y), step(compiled, x, y)
        losses.append(float(l2))
        # float32; a few fast paths of a traced backward pass round differently
        np.testing.assert_allclose(l1, l2, rtol=1e-5)
        for a, b in zip(eager, compiled):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert losses[-1] < losses[0]
    assert step.traces == 1


def test_outputs_are_never_overwritten_by_the_next_replay(rng):
    step = gdbp.compile(lambda w, x: gdbp.grad(lambda w: (x @ w).sum())(w) * 1.0)
    w = rng.normal(size=(3, 2))
    kept = [step(w, rng.normal(size=(4, 3))) for _ in range(4)]
    assert len({id(k) for k in kept}) == 4
    snapshots = [k.copy() for k in kept]
    step(w, rng.normal(size=(4, 3)))
    for k, s in zip(kept, snapshots):
        np.testing.assert_array_equal(k, s)


def test_a_new_signature_traces_again_and_the_cache_is_bounded(rng):
    step = gdbp.compile(gdbp.grad(cost), max_signatures=2)
    for n in (5, 6, 7, 5):
        w, x, y = rng.normal(size=(3, 2)), rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
        _same(step(w, x, y), gdbp.grad(cost)(w, x, y))
    assert step.traces == 4  # n=5 was dropped when n=7 came, and traced again
    step(w.astype(np.float32), x.astype(np.float32), y.astype(np.float32))
    assert step.traces == 5  # another dtype: another signature


def test_non_array_arguments_are_part_of_the_signature(rng):
    step = gdbp.compile(lambda x, k: (x * k).sum())
    x = rng.normal(size=3)
    assert float(step(x, 2.0)) == pytest.approx(2 * x.sum())
    assert float(step(x, 3.0)) == pytest.approx(3 * x.sum())
    assert step.traces == 2
    with pytest.raises(CompileError, match="hashable"):
        step(x, {1.0})  # a set: a leaf that cannot be hashed


@pytest.mark.parametrize("read", [
    lambda x: float(x.sum()),
    lambda x: 1.0 if x.sum() > 0 else 0.0,
    lambda x: x.sum().item(),
    lambda x: x.numpy().sum(),
    lambda x: x[int(x.sum() > 0)],
], ids=["float", "if", "item", "numpy", "index"])
def test_a_host_read_of_a_traced_value_is_refused(read, rng):
    step = gdbp.compile(lambda x: read(x * 2.0))
    with pytest.raises(CompileError, match="host"):
        step(rng.normal(size=3))


def test_a_value_computed_outside_gdbps_ops_is_refused(rng):
    def leaky(x):
        y = x * 2.0
        return y + gdbp.tensor(y.data.T)  # through .data: a replay could not redo it

    with pytest.raises(CompileError, match="outside gdbp's operations"):
        gdbp.compile(leaky)(rng.normal(size=(3, 3)))


def test_a_tensor_that_requires_grad_is_not_an_argument(rng):
    w = gdbp.tensor(rng.normal(size=3), requires_grad=True)
    with pytest.raises(CompileError, match="requires grad"):
        gdbp.compile(lambda w: (w * w).sum())(w)


def _model(seed, dropout=0.0):
    layers = [nn.Linear(4, 8, seed=seed, backend="numpy"), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout, seed=seed + 1))
    return nn.Sequential(*layers, nn.BatchNorm1d(8, backend="numpy"), nn.Linear(8, 3, seed=seed + 2, backend="numpy"))


def _fit_step(model, opt):
    def step(x, y):
        opt.zero_grad()
        loss = nn.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


@pytest.mark.parametrize("flat", [False, True], ids=["per-tensor", "flat"])
def test_a_model_with_dropout_batchnorm_and_an_optimizer_trains_as_eagerly(flat, rng):
    eager, compiled = _model(3, dropout=0.3), _model(3, dropout=0.3)
    opt_e = gdbp.descent.Adam(eager.parameters(), lr=0.01, flat=flat)
    opt_c = gdbp.descent.Adam(compiled.parameters(), lr=0.01, flat=flat)
    step_e, step_c = _fit_step(eager, opt_e), gdbp.compile(_fit_step(compiled, opt_c))
    for _ in range(5):
        x = gdbp.tensor(rng.normal(size=(16, 4)).astype(np.float32))
        y = gdbp.tensor(rng.integers(0, 3, size=16))
        _same(step_e(x, y), step_c(x, y), exact=False)
    for (name, a), b in zip(eager.state_dict().items(), compiled.state_dict().values()):
        np.testing.assert_allclose(gdbp.backends.to_numpy(a), gdbp.backends.to_numpy(b), rtol=1e-5, atol=1e-6,
                                   err_msg=name)  # weights, and BatchNorm's running statistics
    assert opt_c.step_count == 5 and step_c.traces == 1


def test_a_stream_passed_in_draws_anew_at_every_replay():
    rng_c, rng_e = gdbp.backends.device_rng(7, "numpy"), gdbp.backends.device_rng(7, "numpy")
    x = np.ones((2, 50), dtype=np.float32)
    step = gdbp.compile(lambda x: nn.functional.dropout(x, 0.5, rng=rng_c))
    masks = [step(x) for _ in range(3)]
    for m in masks:
        np.testing.assert_array_equal(m, nn.functional.dropout(x, 0.5, rng=rng_e).data)
    assert not np.array_equal(masks[0], masks[1])


def test_higher_order_gradients_replay(rng):
    f = lambda w: gdbp.grad(lambda w: gdbp.grad(lambda w: (w ** 3).sum())(w).sum())(w)  # noqa: E731
    step = gdbp.compile(f)
    for _ in range(3):
        w = rng.normal(size=4)
        _same(step(w), 6 * w, exact=False)


def test_in_place_writes_and_views_inside_the_function(rng):
    def f(x):
        xp = ns(x)
        y = x * 1.0
        y[0] = 5.0
        y += 1.0
        z = xp.zeros((3,), dtype=x.dtype)
        z[1:] = y[1:, 0]
        return y[:, 1:] * 2.0, z

    step = gdbp.compile(f)
    for _ in range(3):
        x = rng.normal(size=(3, 2))
        for got, want in zip(step(x), f(gdbp.tensor(x))):
            _same(got, want.data)


def test_a_parameter_whose_shape_changed_is_traced_again(rng):
    w = gdbp.tensor(rng.normal(size=3), requires_grad=True)
    step = gdbp.compile(lambda x: gdbp.grad(lambda v: (v * x).sum())(w) + 0.0)
    _same(step(np.ones(3)), np.ones(3))
    w.data = rng.normal(size=4)
    _same(step(np.ones(3) if False else np.ones(4)), np.ones(4))
    assert step.traces == 2


def _real(xp, s):
    # A complex value has no gradient of its own: both of its parts enter the cost.
    return xp.real(s) + xp.imag(s) if xp.isdtype(s.dtype, "complex floating") else s


@pytest.mark.parametrize("case", [c for c in CASES if c.float_argnums()], ids=lambda c: c.id)
def test_every_case_of_the_op_table_replays_its_value_and_gradient(case, rng):
    nums = case.float_argnums()

    def scalar(*a):
        out = case.fn(*a)
        parts = out if isinstance(out, (list, tuple)) else [out]  # broadcast_arrays, unstack, meshgrid
        return sum(_real(ns(*a), ns(*a).sum(p * 1.0)) for p in parts)

    vg = gdbp.value_and_grad(scalar, argnums=nums)
    step = gdbp.compile(vg)
    for _ in range(2):
        args = host_args(case, rng)
        (v1, g1), (v2, g2) = step(*args), vg(*args)
        _same(v1, v2)
        for a, b in zip(g1, g2):
            _same(a, b)


def test_fit_with_compile_trains_as_without(rng):
    x = rng.normal(size=(100, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=100)
    runs = []
    for compiled in (False, True):
        model = _model(5, dropout=0.2)
        opt = gdbp.descent.SGD(model.parameters(), lr=0.1, momentum=0.9)
        history = gdbp.train.fit(model, nn.cross_entropy, opt, (x, y), epochs=3, batch_size=32, seed=1,
                                 progress=False, metrics=["accuracy"], compile=compiled)
        runs.append((history, model))
    (h1, m1), (h2, m2) = runs
    np.testing.assert_allclose(h1["cost"], h2["cost"], rtol=1e-5)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        np.testing.assert_allclose(gdbp.backends.to_numpy(a), gdbp.backends.to_numpy(b), rtol=1e-4, atol=1e-6)


def test_fit_refuses_compile_with_a_communicator(rng):
    comm = gdbp.distributed.init("single")
    x = rng.normal(size=(8, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=8)
    model = _model(5)
    opt = gdbp.descent.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="compile=True and distributed"):
        gdbp.train.fit(model, nn.cross_entropy, opt, (x, y), progress=False, compile=True, distributed=comm)


@pytest.mark.parametrize("fn", ["tanh", "expm1"])
def test_compiled_complex_special_cases_are_the_forwards_not_numpys(fn):
    # gdbp's tanh and expm1 mend NumPy's values at complex infinities and -0+0j; a replay keeps gdbp's.
    z = np.array([complex(np.inf, 1.0), complex(-np.inf, -2.0), complex(-0.0, 0.0), 0.5 + 0.25j])

    def f(z):
        return getattr(ns(z), fn)(z)

    compiled = gdbp.compile(f)
    for _ in range(2):
        got, want = compiled(z), f(gdbp.tensor(z))
        np.testing.assert_array_equal(np.asarray(gdbp.backends.to_numpy(got)), gdbp.backends.to_numpy(want))
        assert np.array_equal(np.signbit(np.asarray(got).imag), np.signbit(gdbp.backends.to_numpy(want).imag))


def test_setting_grad_to_none_inside_is_replayed(rng):
    from gdbp.backprop import ops

    x = rng.standard_normal((4, 8)).astype(np.float32)
    W = gdbp.tensor(rng.standard_normal((8, 8)).astype(np.float32), requires_grad=True)

    def step(x):
        W.grad = None  # each call starts afresh, so W.grad is this call's gradient only
        out = ops.relu(x @ W).sum()
        out.backward()
        return out

    step(x)
    want = W.grad.numpy().copy()
    compiled = gdbp.compile(step)
    for _ in range(3):
        compiled(x)
        np.testing.assert_array_equal(W.grad.numpy(), want)


def test_setting_grad_to_a_value_inside_is_refused(rng):
    W = gdbp.tensor(rng.standard_normal(3), requires_grad=True)

    def step(x):
        W.grad = gdbp.tensor(x * 2.0)
        return (W * x).sum()

    with pytest.raises(CompileError, match=r"set a Tensor's .grad to a value"):
        gdbp.compile(step)(np.ones(3))
