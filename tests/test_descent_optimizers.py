"""The optimizers of gdbp.descent: formulas by hand, step-by-step agreement with torch.optim,
exact state round trips, dtypes, in-place updates and input checks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import gdbp
from gdbp import backends
from gdbp.descent import SGD, Adagrad, Adam, AdamW, DivergenceError, Optimizer, RMSprop
from gdbp.nn import Parameter

from conftest import to_numpy

# (class, hyperparameters): torch.optim takes the same names.
CONFIGS = [
    (SGD, dict(lr=0.1)),
    (SGD, dict(lr=0.1, momentum=0.9)),
    (SGD, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    (SGD, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    (Adam, dict(lr=0.1)),
    (Adam, dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True)),
    (AdamW, dict(lr=0.1)),
    (AdamW, dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    (RMSprop, dict(lr=0.01)),
    (RMSprop, dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1)),
    (Adagrad, dict(lr=0.1)),
    (Adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2, eps=1e-8)),
]
CONFIG_IDS = [f"{cls.__name__}-{i}" for i, (cls, _) in enumerate(CONFIGS)]

# The cost's scale changes from step to step, so that gradients both grow and shrink
# (amsgrad's maximum and the moments' decay are exercised).
SCALES = [1.0, 0.5, 2.0, 0.1, 1.0, 0.3, 3.0, 0.05]


def problem(rng):
    """Values for a cost 0.5 ||W v - y||^2 + 0.5 v.A.v - b.v of two parameters, W (3, 4) and v (4,)."""
    M = rng.normal(size=(4, 4))
    return {
        "W": rng.normal(size=(3, 4)),
        "v": rng.normal(size=4),
        "y": rng.normal(size=3),
        "A": M @ M.T / 4 + np.eye(4),
        "b": rng.normal(size=4),
    }


def cost(W, v, y, A, b, scale):
    # Parameters on the left of each operator: array-api-strict arrays refuse a Tensor on their right.
    r = W @ v - y
    return scale * (0.5 * (r * r).sum() + 0.5 * (v * (v @ A)).sum() - (v * b).sum())


def gdbp_run(cls, hyper, data, backend, steps, drop_v_at=None):
    """Steps of a gdbp optimizer; gradients by gdbp's backprop. Returns the params' values after each step."""
    W = Parameter(backends.transfer(data["W"], backend))
    v = Parameter(backends.transfer(data["v"], backend))
    y, A, b = (backends.transfer(data[k], backend) for k in ("y", "A", "b"))
    opt = cls([W, v], **hyper)
    trace = []
    for k in range(steps):
        opt.zero_grad()
        cost(W, v, y, A, b, SCALES[k % len(SCALES)]).backward()
        if k == drop_v_at:
            v.grad = None
        opt.step()
        trace.append((to_numpy(W).copy(), to_numpy(v).copy()))
    return trace


def torch_run(cls, hyper, data, steps, drop_v_at=None):
    W = torch.tensor(data["W"], requires_grad=True)
    v = torch.tensor(data["v"], requires_grad=True)
    y, A, b = (torch.tensor(data[k]) for k in ("y", "A", "b"))
    opt = getattr(torch.optim, cls.__name__)([W, v], **hyper)
    trace = []
    for k in range(steps):
        opt.zero_grad()
        cost(W, v, y, A, b, SCALES[k % len(SCALES)]).backward()
        if k == drop_v_at:
            v.grad = None
        opt.step()
        trace.append((W.detach().numpy().copy(), v.detach().numpy().copy()))
    return trace


def assert_close(actual, expected, rtol=1e-10):
    err = np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-300)
    assert err < rtol, f"relative error {err:.3g}"


# --- against torch.optim ------------------------------------------------------------------


@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
def test_steps_match_torch(cls, hyper, backend, rng):
    data = problem(rng)
    ours = gdbp_run(cls, hyper, data, backend, steps=8, drop_v_at=3)
    theirs = torch_run(cls, hyper, data, steps=8, drop_v_at=3)
    for k, ((W, v), (W_t, v_t)) in enumerate(zip(ours, theirs)):
        assert_close(W, W_t), f"W after step {k + 1}"
        assert_close(v, v_t), f"v after step {k + 1}"
    assert not np.allclose(ours[-1][0], data["W"])  # the run moved the weights


def test_amsgrad_changes_the_steps(rng):
    # Guards the comparison above: with these gradients the maximum of v matters.
    data = problem(rng)
    plain = gdbp_run(Adam, dict(lr=0.05), data, "numpy", steps=8)
    ams = gdbp_run(Adam, dict(lr=0.05, amsgrad=True), data, "numpy", steps=8)
    assert not np.allclose(plain[-1][0], ams[-1][0])


# --- one step by hand ------------------------------------------------------------------------


def quadratic_grad(w, A, b):
    """Gradient of 0.5 w.A.w - b.w."""
    return A @ w - b


@pytest.fixture
def quad(rng):
    M = rng.normal(size=(3, 3))
    return {"A": M @ M.T + np.eye(3), "b": rng.normal(size=3), "w": rng.normal(size=3)}


def one_step(cls, hyper, w0, g, backend, steps=1, grads=None):
    p = Parameter(backends.transfer(w0, backend))
    opt = cls([p], **hyper)
    for k in range(steps):
        p.grad = backends.transfer(grads[k] if grads else g, backend)
        opt.step()
    return to_numpy(p), opt


def test_gd_step_by_hand(quad, backend):
    w, A, b = quad["w"], quad["A"], quad["b"]
    g = quadratic_grad(w, A, b)
    got, _ = one_step(SGD, dict(lr=0.1), w, g, backend)
    np.testing.assert_allclose(got, w - 0.1 * g, rtol=1e-14)


def test_sgd_momentum_two_steps_by_hand(quad, backend):
    w, A, b = quad["w"], quad["A"], quad["b"]
    lr, mu, tau, wd = 0.1, 0.9, 0.3, 0.01
    g1 = quadratic_grad(w, A, b) + wd * w
    buf = g1  # the first step takes the gradient itself, undampened
    w1 = w - lr * buf
    g2 = quadratic_grad(w1, A, b) + wd * w1
    buf = mu * buf + (1 - tau) * g2
    w2 = w1 - lr * buf
    grads = [quadratic_grad(w, A, b), quadratic_grad(w1, A, b)]
    got, _ = one_step(SGD, dict(lr=lr, momentum=mu, dampening=tau, weight_decay=wd), w, None, backend, 2, grads)
    np.testing.assert_allclose(got, w2, rtol=1e-13)


def test_nesterov_step_by_hand(quad, backend):
    w, A, b = quad["w"], quad["A"], quad["b"]
    g = quadratic_grad(w, A, b)
    got, _ = one_step(SGD, dict(lr=0.1, momentum=0.9, nesterov=True), w, g, backend)
    np.testing.assert_allclose(got, w - 0.1 * (g + 0.9 * g), rtol=1e-13)


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_step_by_hand(cls, quad, backend):
    w, A, b = quad["w"], quad["A"], quad["b"]
    lr, b1, b2, eps, wd = 0.1, 0.8, 0.99, 1e-3, 0.2
    g = quadratic_grad(w, A, b)
    if cls is Adam:
        start, g_used = w, g + wd * w
    else:
        start, g_used = w - lr * wd * w, g
    m = (1 - b1) * g_used
    v = (1 - b2) * g_used**2
    m_hat, v_hat = m / (1 - b1), v / (1 - b2)
    expected = start - lr * m_hat / (np.sqrt(v_hat) + eps)
    got, _ = one_step(cls, dict(lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd), w, g, backend)
    np.testing.assert_allclose(got, expected, rtol=1e-13)


def test_rmsprop_step_by_hand(quad, backend):
    w, A, b = quad["w"], quad["A"], quad["b"]
    lr, alpha, eps = 0.01, 0.9, 1e-8
    g = quadratic_grad(w, A, b)
    s = (1 - alpha) * g**2
    a = (1 - alpha) * g
    expected = w - lr * g / (np.sqrt(s - a * a) + eps)
    got, _ = one_step(RMSprop, dict(lr=lr, alpha=alpha, eps=eps, centered=True), w, g, backend)
    np.testing.assert_allclose(got, expected, rtol=1e-13)


def test_adagrad_two_steps_by_hand(quad, backend):
    w, A, b = quad["w"], quad["A"], quad["b"]
    lr, decay, s0, eps = 0.1, 0.5, 0.2, 1e-10
    g1 = quadratic_grad(w, A, b)
    S = s0 + g1**2
    w1 = w - lr * g1 / (np.sqrt(S) + eps)
    g2 = quadratic_grad(w1, A, b)
    S = S + g2**2
    w2 = w1 - lr / (1 + decay) * g2 / (np.sqrt(S) + eps)
    hyper = dict(lr=lr, lr_decay=decay, initial_accumulator_value=s0, eps=eps)
    got, _ = one_step(Adagrad, hyper, w, None, backend, 2, [g1, g2])
    np.testing.assert_allclose(got, w2, rtol=1e-13)


# --- state_dict ----------------------------------------------------------------------------


def _run_with_grads(opt, params, grads_per_step, backend):
    for grads in grads_per_step:
        for p, g in zip(params, grads):
            p.grad = backends.transfer(g, backend)
        opt.step()


@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
def test_state_dict_round_trip_is_exact(cls, hyper, backend, rng):
    shapes = [(3, 2), (2,)]
    params = [Parameter(backends.transfer(rng.normal(size=s), backend)) for s in shapes]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(6)]
    opt = cls(params, **hyper)
    _run_with_grads(opt, params, grads[:3], backend)
    saved = opt.state_dict()
    snapshot = {i: {k: (to_numpy(v).copy() if not isinstance(v, int) else v) for k, v in e.items()}
                for i, e in saved["state"].items()}

    fresh = [Parameter(p.data) for p in params]  # copies of the current values
    other = cls(fresh, lr=123.0)  # hyperparameters come from the state
    other.load_state_dict(saved)
    assert other.step_count == 3 and other.lr == hyper["lr"]
    _run_with_grads(opt, params, grads[3:], backend)
    _run_with_grads(other, fresh, grads[3:], backend)
    for p, q in zip(params, fresh):
        assert np.array_equal(to_numpy(p), to_numpy(q))  # bit for bit
    # The saved state is a snapshot: the later steps did not write into it.
    for i, entry in saved["state"].items():
        for k, value in entry.items():
            assert np.array_equal(to_numpy(value) if not isinstance(value, int) else value, snapshot[i][k])


def test_state_dict_loads_across_backends(rng):
    shapes = [(3,), (2, 2)]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(4)]
    start = [rng.normal(size=s) for s in shapes]
    params = [Parameter(w) for w in start]
    opt = Adam(params, lr=0.1, amsgrad=True)
    _run_with_grads(opt, params, grads[:2], "numpy")
    saved = opt.state_dict()

    moved = [Parameter(backends.transfer(to_numpy(p), "torch")) for p in params]
    other = Adam(moved, lr=0.1, amsgrad=True)
    other.load_state_dict(saved)
    assert all(backends.backend_of(v) is backends.resolve("torch")
               for e in other.state.values() for k, v in e.items() if k != "step")
    _run_with_grads(opt, params, grads[2:], "numpy")
    _run_with_grads(other, moved, grads[2:], "torch")
    for p, q in zip(params, moved):
        np.testing.assert_allclose(to_numpy(q), to_numpy(p), rtol=1e-12)


def test_load_state_dict_rejects_a_mismatch(rng):
    p = Parameter(rng.normal(size=3))
    opt = Adam([p])
    p.grad = rng.normal(size=3)
    opt.step()
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="saved by Adam"):
        SGD([Parameter(rng.normal(size=3))]).load_state_dict(saved)
    with pytest.raises(gdbp.ShapeError, match="exp_avg"):
        Adam([Parameter(rng.normal(size=4))]).load_state_dict(saved)
    with pytest.raises(TypeError, match="float32"):
        Adam([Parameter(rng.normal(size=3).astype(np.float32))]).load_state_dict(saved)
    with pytest.raises(ValueError, match="max_exp_avg_sq"):  # amsgrad keeps one more array
        broken = {**saved, "hyperparameters": {**saved["hyperparameters"], "amsgrad": True}}
        Adam([Parameter(rng.normal(size=3))]).load_state_dict(broken)
    with pytest.raises(ValueError, match="lr"):
        broken = {**saved, "hyperparameters": {**saved["hyperparameters"], "lr": -1.0}}
        Adam([Parameter(rng.normal(size=3))]).load_state_dict(broken)
    target = Adam([Parameter(rng.normal(size=3))], lr=0.5)
    with pytest.raises(ValueError):
        target.load_state_dict({**saved, "state": {5: saved["state"][0]}})
    assert target.lr == 0.5 and target.state == {}  # a failed load changes nothing


# --- dtypes, devices, in place ----------------------------------------------------------------


@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
def test_float32_stays_float32(cls, hyper, backend, rng):
    p = Parameter(backends.transfer(rng.normal(size=(2, 3)).astype(np.float32), backend))
    opt = cls([p], **hyper)
    for _ in range(3):
        p.grad = backends.transfer(rng.normal(size=(2, 3)).astype(np.float32), backend)
        opt.step()
    assert p.dtype == backend.xp.float32
    assert backends.backend_of(p.data) is backend
    for key, value in opt.state[0].items():
        if key != "step":
            assert value.dtype == backend.xp.float32, key
            assert backends.backend_of(value) is backend, key
    assert np.all(np.isfinite(to_numpy(p)))


def test_updates_in_place_and_never_the_callers_array(backend, rng):
    start = backends.transfer(rng.normal(size=4), backend)
    kept = to_numpy(start).copy()
    p = Parameter(start)
    buffer = p.data
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad = backends.transfer(np.ones(4), backend)
    opt.step()
    assert p.data is buffer  # the parameter's own memory was written
    np.testing.assert_allclose(to_numpy(p), kept - 0.1)
    assert np.array_equal(to_numpy(start), kept)  # the caller's array was not


def test_plain_tensor_is_written_in_place_like_torch():
    w = np.array([1.0, 2.0])
    t = gdbp.tensor(w, requires_grad=True)
    opt = SGD([t], lr=0.5)
    t.grad = np.array([1.0, 1.0])
    opt.step()
    np.testing.assert_array_equal(w, [0.5, 1.5])  # documented: a plain Tensor shares the caller's array


def test_step_invalidates_a_graph_that_saved_the_old_value(rng):
    p = Parameter(rng.normal(size=3))
    y = (p * p).sum()
    opt = SGD([p], lr=0.1)
    p.grad = np.ones(3)
    opt.step()
    with pytest.raises(gdbp.InPlaceError):
        y.backward()


def test_immutable_backend_rebinds(rng):
    start = rng.normal(size=3)
    p = Parameter(start)
    frozen = dataclasses.replace(p._backend, mutable=False)
    p._backend = frozen
    old = p.data
    before = old.copy()
    opt = Adam([p], lr=0.1)
    p.grad = np.ones(3)
    opt.step()
    assert p.data is not old
    assert np.array_equal(old, before)  # nothing was written in place
    np.testing.assert_allclose(p.data, before - 0.1, rtol=1e-7)  # Adam's first step is lr * sign(g)


def test_parameters_without_gradient_are_skipped(rng):
    a, b = Parameter(rng.normal(size=2)), Parameter(rng.normal(size=2))
    before = to_numpy(b).copy()
    opt = Adam([a, b])
    a.grad = np.ones(2)
    opt.step()
    assert np.array_equal(to_numpy(b), before)
    assert 1 not in opt.state and opt.state[0]["step"] == 1


def test_zero_grad(rng):
    p = Parameter(rng.normal(size=2))
    p.grad = np.ones(2)
    opt = SGD([p])
    opt.zero_grad()
    assert p.grad is None


def test_gradient_kept_as_tensor_works(rng):
    p = Parameter(rng.normal(size=2))
    before = to_numpy(p).copy()
    p.grad = gdbp.tensor(np.ones(2))
    SGD([p], lr=0.5).step()
    np.testing.assert_allclose(to_numpy(p), before - 0.5)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop, Adagrad])
@pytest.mark.parametrize("lr", [-0.1, math.nan, math.inf])
def test_bad_learning_rate_is_named(cls, lr, rng):
    with pytest.raises(ValueError, match=rf"lr={lr!r}"):
        cls([Parameter(rng.normal(size=2))], lr=lr)


def test_lr_set_later_is_checked(rng):
    opt = SGD([Parameter(rng.normal(size=2))], lr=0.1)
    opt.lr = np.float64(0.2)
    assert type(opt.lr) is float and opt.lr == 0.2
    with pytest.raises(ValueError, match="lr=-1.0"):
        opt.lr = -1.0
    with pytest.raises(TypeError, match="lr"):
        opt.lr = "0.1"


@pytest.mark.parametrize(
    "cls, bad, name",
    [
        (SGD, dict(momentum=-0.5), "momentum"),
        (SGD, dict(weight_decay=math.nan), "weight_decay"),
        (SGD, dict(nesterov=True), "nesterov"),
        (SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), "nesterov"),
        (Adam, dict(betas=(1.0, 0.999)), r"betas\[0\]"),
        (Adam, dict(betas=(0.9, -0.1)), r"betas\[1\]"),
        (Adam, dict(eps=-1e-8), "eps"),
        (AdamW, dict(weight_decay=-0.01), "weight_decay"),
        (RMSprop, dict(alpha=1.5), "alpha"),
        (RMSprop, dict(momentum=math.nan), "momentum"),
        (Adagrad, dict(lr_decay=-1.0), "lr_decay"),
        (Adagrad, dict(initial_accumulator_value=-0.1), "initial_accumulator_value"),
    ],
)
def test_bad_hyperparameters_are_named(cls, bad, name, rng):
    with pytest.raises(ValueError, match=name):
        cls([Parameter(rng.normal(size=2))], **bad)


def test_bad_parameter_lists(rng):
    p = Parameter(rng.normal(size=2))
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD(iter(()), lr=0.1)
    with pytest.raises(TypeError, match="single"):
        SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="not a Tensor"):
        SGD([rng.normal(size=2)], lr=0.1)
    with pytest.raises(ValueError, match="twice"):
        SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="not a leaf"):
        SGD([p * 2.0], lr=0.1)
    with pytest.raises(backends.BackendMismatchError, match="numpy.*torch"):
        SGD([p, Parameter(torch.zeros(2, dtype=torch.float64))], lr=0.1)


def test_bad_gradients(rng):
    p = Parameter(rng.normal(size=2))
    opt = SGD([p], lr=0.1)
    p.grad = np.ones(2, dtype=np.float32)
    with pytest.raises(TypeError, match="float32"):
        opt.step()
    p.grad = np.ones(3)
    with pytest.raises(gdbp.ShapeError, match=r"\(3,\)"):
        opt.step()
    p.grad = torch.ones(2, dtype=torch.float64)
    with pytest.raises(backends.BackendMismatchError):
        opt.step()


def test_base_class_and_exports():
    assert issubclass(DivergenceError, FloatingPointError)
    assert gdbp.descent.DivergenceError is DivergenceError
    assert all(issubclass(c, Optimizer) for c in (SGD, Adam, AdamW, RMSprop, Adagrad))
    for name in gdbp.descent.__all__:
        assert hasattr(gdbp.descent, name), name
