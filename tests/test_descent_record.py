"""minimize(record=True): the path of every run, including one that diverges, and why it stopped."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import gdbp
from gdbp import backends
from gdbp.descent import DivergenceError, minimize
from gdbp.descent.minimize import DescentPath

from conftest import to_numpy

A = np.diag([1.0, 10.0])  # an elongated bowl: curvatures 1 and 10, so gd diverges for lr > 2/10


def bowl(A):
    def cost(w):
        return 0.5 * ((w @ A) @ w)

    return cost


def parabola(w):
    return (w - 1.0) ** 2  # minimum at w = 1, curvature 2: gd diverges for lr > 1


def test_no_path_unless_asked(rng):
    res = minimize(parabola, np.asarray(-2.0), lr=0.3)
    assert res.path is None


def test_the_path_is_every_gradient_descent_step(backend):
    xA = backends.transfer(A, backend)
    w0 = backends.transfer(np.array([-4.0, 1.2]), backend)
    lr = 0.15
    res = minimize(bowl(xA), w0, lr=lr, tol=1e-8, record=True)
    path = res.path
    assert isinstance(path, DescentPath)
    assert path.stop == "tol" and path.converged and not path.diverged
    assert path.reason == res.reason and "gradient norm" in path.reason
    assert path.steps == res.steps == len(path.w) - 1 == len(path.cost) - 1 == len(path.grad_norm) - 1
    assert path.cost == res.history and path.grad_norm[-1] == res.grad_norm
    assert path.lr == lr and path.method == "gd" and path.tol == 1e-8
    points = [to_numpy(w) for w in path.w]
    assert all(backends.backend_of(w) is backend for w in path.w)
    np.testing.assert_array_equal(points[0], [-4.0, 1.2])
    # Each recorded point is its own copy: w_{k+1} = w_k - lr * A w_k, the cost and gradient norm at w_k.
    for k in range(path.steps):
        np.testing.assert_allclose(points[k + 1], points[k] - lr * (A @ points[k]), rtol=1e-12, atol=1e-15)
    for w, c, g in zip(points, path.cost, path.grad_norm):
        assert c == pytest.approx(0.5 * w @ A @ w, rel=1e-12, abs=1e-300)
        assert g == pytest.approx(np.linalg.norm(A @ w), rel=1e-12, abs=1e-300)
    assert path.grad_norm[-1] <= 1e-8 < path.grad_norm[-2]
    np.testing.assert_allclose(points[-1], [0.0, 0.0], atol=1e-8)  # within tol of the known minimum
    assert to_numpy(w0).tolist() == [-4.0, 1.2]


def test_max_steps_and_the_line_search_are_recorded_as_reasons():
    res = minimize(parabola, np.asarray(-2.0), lr=0.001, max_steps=50, record=True)
    assert res.path.stop == "max_steps" and not res.path.converged and res.path.steps == 50
    assert abs(float(res.path.w[-1]) - 1.0) > 2.0  # still far from the minimum
    A32 = np.array([[3.0, 1.0], [1.0, 2.0]], dtype=np.float32)
    res = minimize(lambda w: 0.5 * ((w @ A32) @ w) - w @ np.ones(2, dtype=np.float32),
                   np.zeros(2, dtype=np.float32), lr=10.0, tol=1e-9, line_search="backtracking", record=True)
    assert res.path.stop == "line_search" and res.path.reason == res.reason
    assert res.path.steps == res.steps and res.path.w[-1].dtype == np.float32


@pytest.mark.parametrize("cost, w0, lr", [(parabola, np.asarray(-2.0), 1.25), (bowl(A), np.array([-4.0, 1.2]), 0.25)])
def test_a_diverging_run_gives_its_path_on_the_error(cost, w0, lr):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DivergenceError) as info:
            minimize(cost, w0, lr=lr, max_steps=5000, record=True)
    err = info.value
    path = err.path
    assert path.stop == "diverged" and path.diverged and not path.converged
    assert path.reason == str(err) and path.steps == err.step
    assert not (math.isfinite(path.cost[-1]) and math.isfinite(path.grad_norm[-1]))
    assert all(math.isfinite(c) for c in path.cost[:-1])
    # It overshoots further each step: the distance to the minimum grows by |1 - lr * curvature| = 1.5.
    d = [float(np.max(np.abs(np.asarray(w) - (1.0 if w.ndim == 0 else 0.0)))) for w in path.w[:20]]
    assert all(later == pytest.approx(1.5 * earlier, rel=1e-9) for earlier, later in zip(d[5:], d[6:]))


def test_without_record_a_diverging_run_carries_no_path():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DivergenceError) as info:
            minimize(parabola, np.asarray(-2.0), lr=1.25, max_steps=5000)
    assert not hasattr(info.value, "path")


def test_structured_points_and_other_methods_are_recorded():
    def cost(w):
        return (w["a"] - 1.0) ** 2 + 3.0 * (w["b"] + 2.0) ** 2

    res = minimize(cost, {"a": np.asarray(0.0), "b": np.asarray(0.0)}, method="adam", lr=0.1,
                   max_steps=3000, tol=1e-8, record=True)
    path = res.path
    assert path.converged and path.method == "adam"
    assert all(set(w) == {"a", "b"} for w in path.w)
    assert len({id(w["a"]) for w in path.w}) == len(path.w)  # a copy per step, not one array stepped in place
    assert float(path.w[-1]["a"]) == pytest.approx(1.0, abs=1e-7)
    assert float(path.w[-1]["b"]) == pytest.approx(-2.0, abs=1e-7)
    assert float(path.w[1]["a"]) != float(path.w[0]["a"])


def test_record_must_be_a_bool():
    with pytest.raises(TypeError, match="record"):
        minimize(parabola, np.asarray(0.0), record="yes")


def test_record_is_reachable_from_the_package():
    res = gdbp.descent.minimize(parabola, np.asarray(0.0), lr=0.3, record=True)
    assert res.path.converged
