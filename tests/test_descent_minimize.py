"""minimize: convergence to closed-form minima, line search, divergence, and its contract with w0."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import gdbp
from gdbp import backends
from gdbp.descent import METHODS, DivergenceError, MinimizeResult, minimize

from conftest import to_numpy

# A learning rate and step budget per method that converge on the quadratic below.
SETTINGS = {
    "gd": dict(lr=0.2),
    "momentum": dict(lr=0.05),
    "nesterov": dict(lr=0.05),
    "adam": dict(lr=0.05),
    "rmsprop": dict(lr=0.01),
    "adagrad": dict(lr=0.5),
}


def spd(rng, n, low=1.0, high=4.0):
    """A symmetric positive definite matrix with eigenvalues in [low, high]."""
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return Q @ np.diag(np.linspace(low, high, n)) @ Q.T


def quadratic(A, b):
    """cost(w) = 0.5 w.A.w - b.w, written against the array API standard (w on the left of each op)."""

    def cost(w):
        return 0.5 * ((w @ A) @ w) - w @ b

    return cost


@pytest.mark.parametrize("method", sorted(METHODS))
def test_converges_to_the_closed_form_minimum(method, backend, rng):
    A, b = spd(rng, 3), rng.normal(size=3)
    w_star = np.linalg.solve(A, b)
    xA, xb = backends.transfer(A, backend), backends.transfer(b, backend)
    w0 = backends.transfer(np.zeros(3), backend)
    res = minimize(quadratic(xA, xb), w0, method=method, tol=1e-8, max_steps=3000, **SETTINGS[method])
    assert isinstance(res, MinimizeResult)
    assert res.converged, res.reason
    assert res.grad_norm <= 1e-8 and "gradient" in res.reason
    assert len(res.history) == res.steps + 1
    assert res.cost == res.history[-1] == pytest.approx(-0.5 * b @ w_star, rel=1e-10)
    np.testing.assert_allclose(to_numpy(res.w), w_star, rtol=1e-6, atol=1e-8)
    assert backends.backend_of(res.w) is backend


def test_gd_cost_falls_every_step_for_a_small_learning_rate(rng):
    A, b = spd(rng, 4), rng.normal(size=4)
    res = minimize(quadratic(A, b), np.zeros(4), lr=0.1, tol=1e-6)
    assert res.converged
    assert all(later < earlier for earlier, later in zip(res.history, res.history[1:]))


def test_linear_regression_recovers_lstsq(backend, rng):
    n, d = 200, 3
    X = np.column_stack([np.ones(n), rng.normal(size=(n, d))])
    y = X @ np.array([0.5, -1.0, 2.0, 3.0]) + 0.1 * rng.normal(size=n)
    expected = np.linalg.lstsq(X, y, rcond=None)[0]
    xX, xy = backends.transfer(X, backend), backends.transfer(y, backend)

    def mse(w):
        xp = w.__array_namespace__()
        r = w @ xX.T - xy
        return xp.mean(r * r)

    res = minimize(mse, backends.transfer(np.zeros(d + 1), backend), lr=0.3, tol=1e-7, max_steps=2000)
    assert res.converged, res.reason
    rel = np.linalg.norm(to_numpy(res.w) - expected) / np.linalg.norm(expected)
    assert rel < 1e-4


def test_float32_start_gives_float32_result(backend, rng):
    A, b = spd(rng, 3).astype(np.float32), rng.normal(size=3).astype(np.float32)
    xA, xb = backends.transfer(A, backend), backends.transfer(b, backend)
    w0 = backends.transfer(np.zeros(3, dtype=np.float32), backend)
    for method in ("gd", "adam"):
        res = minimize(quadratic(xA, xb), w0, method=method, lr=0.05, tol=1e-3, max_steps=2000)
        assert res.converged, res.reason
        assert res.w.dtype == backend.xp.float32 and backends.backend_of(res.w) is backend
        np.testing.assert_allclose(to_numpy(res.w), np.linalg.solve(A, b), rtol=1e-3, atol=1e-3)


# --- w0: pytrees, never modified ------------------------------------------------------------


def test_w0_is_never_modified(backend, rng):
    A, b = spd(rng, 3), rng.normal(size=3)
    xA, xb = backends.transfer(A, backend), backends.transfer(b, backend)
    w0 = backends.transfer(rng.normal(size=3), backend)
    kept = to_numpy(w0).copy()
    res = minimize(quadratic(xA, xb), w0, method="momentum", lr=0.05)
    assert res.w is not w0
    assert np.array_equal(to_numpy(w0), kept)
    res = minimize(quadratic(xA, xb), w0, lr=1.0, line_search="backtracking")
    assert np.array_equal(to_numpy(w0), kept)


def test_dict_and_list_starting_points(rng):
    A, b = spd(rng, 2), rng.normal(size=2)
    target = rng.normal(size=(2, 2))

    def cost(w):
        d = w["M"] - target
        return 0.5 * ((w["v"] @ A) @ w["v"]) - w["v"] @ b + (d * d).sum()

    w0 = {"v": np.zeros(2), "M": np.zeros((2, 2))}
    res = minimize(cost, w0, method="nesterov", lr=0.05, tol=1e-8)
    assert res.converged and set(res.w) == {"v", "M"}
    np.testing.assert_allclose(res.w["v"], np.linalg.solve(A, b), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(res.w["M"], target, rtol=1e-6, atol=1e-7)
    assert np.array_equal(w0["v"], np.zeros(2))

    res = minimize(lambda ws: ((ws[0] - 1.0) ** 2).sum() + ((ws[1] + 2.0) ** 2).sum(),
                   [np.zeros(2), np.zeros(3)], lr=0.25, tol=1e-8)
    assert isinstance(res.w, list) and len(res.w) == 2
    np.testing.assert_allclose(res.w[1], -2.0)


# --- line search ----------------------------------------------------------------------------


def test_backtracking_converges_where_a_fixed_learning_rate_fails(rng):
    A, b = spd(rng, 2, low=1.0, high=100.0), rng.normal(size=2)  # condition number 100
    cost = quadratic(A, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow warnings on the way to inf
        with pytest.raises(DivergenceError):
            minimize(cost, np.zeros(2), lr=1.0, max_steps=2000)  # too large for the steep direction
    stalled = minimize(cost, np.zeros(2), lr=1e-3, max_steps=500)  # too small for the flat one
    assert not stalled.converged and "max_steps" in stalled.reason

    res = minimize(cost, np.zeros(2), lr=1.0, max_steps=2000, line_search="backtracking")
    assert res.converged, res.reason
    np.testing.assert_allclose(res.w, np.linalg.solve(A, b), rtol=1e-5)
    assert all(later < earlier for earlier, later in zip(res.history, res.history[1:]))  # Armijo: always down


def test_backtracking_on_rosenbrock(rng):
    def rosenbrock(w):
        return (1.0 - w[0]) ** 2 + 100.0 * (w[1] - w[0] ** 2) ** 2

    w0 = np.array([-1.2, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DivergenceError):
            minimize(rosenbrock, w0, lr=0.01, max_steps=200)
    res = minimize(rosenbrock, w0, lr=1.0, max_steps=400, line_search="backtracking",
                   sufficient_decrease=1e-4, shrink=0.5)
    assert all(later < earlier for earlier, later in zip(res.history, res.history[1:]))
    assert res.history[-1] < 1e-2 * res.history[0]  # well down the curved valley


def test_line_search_reports_a_cost_flat_to_machine_precision():
    # float32: near the minimum the cost no longer resolves the decrease Armijo asks for.
    A = np.array([[3.0, 1.0], [1.0, 2.0]], dtype=np.float32)
    b = np.ones(2, dtype=np.float32)
    res = minimize(quadratic(A, b), np.zeros(2, dtype=np.float32), lr=10.0, tol=1e-9,
                   line_search="backtracking")
    assert not res.converged and "machine precision" in res.reason and res.steps < 100


# --- divergence and bad input ---------------------------------------------------------------


def test_divergence_names_the_step_and_suggests_a_smaller_learning_rate(backend):
    xA = backends.transfer(np.diag([1.0, 10.0]), backend)
    xb = backends.transfer(np.ones(2), backend)
    w0 = backends.transfer(np.ones(2), backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DivergenceError) as info:
            minimize(quadratic(xA, xb), w0, lr=1.5, max_steps=5000)
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert isinstance(err.step, int) and err.step > 1 and err.lr == 1.5
    message = str(err)
    assert f"at step {err.step}" in message and "lr=1.5" in message
    assert "smaller learning rate" in message and "0.15" in message
    assert err.suggested_lr == pytest.approx(0.15)
    assert to_numpy(w0).tolist() == [1.0, 1.0]


def test_divergence_error_message_and_pickling():
    import pickle

    err = DivergenceError(math.inf, step=7, lr=1.5)
    assert str(err) == (
        "cost became inf at step 7 with lr=1.5; the steps diverge: try a smaller learning rate (e.g. 0.15)"
    )
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.step == 7
    assert "epoch 3, batch 17" in str(DivergenceError(math.nan, "epoch 3, batch 17", quantity="loss"))


@pytest.mark.parametrize("lr", [-0.1, math.nan])
def test_bad_learning_rate_is_named(lr):
    with pytest.raises(ValueError, match=rf"learning rate lr={lr!r}"):
        minimize(lambda w: (w * w).sum(), np.ones(2), lr=lr)
    with pytest.raises(ValueError, match=rf"lr={lr!r}"):
        minimize(lambda w: (w * w).sum(), np.ones(2), lr=lr, line_search="backtracking")


def test_bad_settings():
    f = lambda w: (w * w).sum()  # noqa: E731
    w0 = np.ones(2)
    with pytest.raises(ValueError, match="unknown method 'newton'"):
        minimize(f, w0, method="newton")
    with pytest.raises(ValueError, match="method='gd'"):
        minimize(f, w0, method="adam", line_search="backtracking")
    with pytest.raises(ValueError, match="line_search"):
        minimize(f, w0, line_search="wolfe")
    with pytest.raises(TypeError, match="momentum"):
        minimize(f, w0, method="adam", momentum=0.9)
    with pytest.raises(TypeError, match="shrink"):
        minimize(f, w0, line_search="backtracking", factor=0.5)
    with pytest.raises(ValueError, match="shrink"):
        minimize(f, w0, line_search="backtracking", shrink=1.0)
    with pytest.raises(ValueError, match="tol"):
        minimize(f, w0, tol=-1.0)
    with pytest.raises(ValueError, match="max_steps"):
        minimize(f, w0, max_steps=-1)
    with pytest.raises(TypeError, match="floating"):
        minimize(f, np.ones(2, dtype=np.int64))
    with pytest.raises(TypeError, match="array"):
        minimize(f, [1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="w0"):
            minimize(lambda w: (w * w).sum() / 0.0, w0)  # inf at the start: not a learning-rate problem


def test_method_options_reach_the_optimizer(rng):
    A, b = spd(rng, 2), rng.normal(size=2)
    slow = minimize(quadratic(A, b), np.zeros(2), method="momentum", lr=0.05, momentum=0.0, max_steps=5)
    plain = minimize(quadratic(A, b), np.zeros(2), method="gd", lr=0.05, max_steps=5)
    np.testing.assert_array_equal(slow.w, plain.w)
    fast = minimize(quadratic(A, b), np.zeros(2), method="momentum", lr=0.05, max_steps=5)
    assert not np.array_equal(fast.w, plain.w)


def test_max_steps_zero_only_evaluates(rng):
    res = minimize(lambda w: (w * w).sum(), np.ones(2), max_steps=0)
    assert res.steps == 0 and res.history == [2.0] and not res.converged
    np.testing.assert_array_equal(res.w, np.ones(2))


def test_growing_cost_is_reported(rng):
    # Diverging slowly: not yet inf at max_steps, but the reason says what is happening.
    res = minimize(lambda w: (w * w).sum(), np.ones(2), lr=1.05, max_steps=20)
    assert not res.converged and "too large" in res.reason


def test_reachable_from_the_package():
    assert gdbp.descent.minimize is minimize
