"""Cost functions: closed forms, torch's values and gradients, stability, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import gdbp
import gdbp.nn.functional as F
from conftest import random_array, random_ints, to_numpy
from gdbp import backends, nn
from gdbp.testing import check_grad

REDUCTIONS = ["mean", "sum", "none"]


def log_softmax_np(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def reduce_np(loss, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](loss)


# --- closed forms ---------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_costs_match_their_closed_forms(backend, rng, reduction):
    p, t = rng.standard_normal((4, 3)) * 2, rng.standard_normal((4, 3))
    d = p - t
    bp, bt = backends.transfer(p, backend), backends.transfer(t, backend)
    np.testing.assert_allclose(to_numpy(F.mse(bp, bt, reduction)), reduce_np(d**2, reduction), rtol=1e-13)
    np.testing.assert_allclose(to_numpy(F.mae(bp, bt, reduction)), reduce_np(np.abs(d), reduction), rtol=1e-13)
    for delta in (1.0, 0.5):
        a = np.abs(d)
        expected = np.where(a < delta, 0.5 * a**2, delta * (a - 0.5 * delta))
        np.testing.assert_allclose(to_numpy(F.huber(bp, bt, delta, reduction)), reduce_np(expected, reduction),
                                   rtol=1e-13)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_classification_costs_match_their_closed_forms(backend, rng, smoothing, reduction):
    logits, labels = rng.standard_normal((6, 4)) * 3, rng.integers(0, 4, size=6)
    logp = log_softmax_np(logits)
    picked = -logp[np.arange(6), labels]
    expected = (1 - smoothing) * picked - smoothing * logp.mean(axis=-1)
    bl, by = backends.transfer(logits, backend), backends.transfer(labels, backend)
    np.testing.assert_allclose(to_numpy(F.cross_entropy(bl, by, smoothing, reduction)),
                               reduce_np(expected, reduction), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(F.nll(backends.transfer(logp, backend), by, reduction)),
                               reduce_np(picked, reduction), rtol=1e-12)
    targets = rng.uniform(0, 1, size=(6, 4))
    sig = 1 / (1 + np.exp(-logits))
    bce = -(targets * np.log(sig) + (1 - targets) * np.log(1 - sig))
    np.testing.assert_allclose(
        to_numpy(F.binary_cross_entropy_with_logits(bl, backends.transfer(targets, backend), reduction)),
        reduce_np(bce, reduction), rtol=1e-12)


# --- against torch -----------------------------------------------------------------------------------

# name -> (ours(pred, target, reduction), torch's(pred, target, reduction), target maker)
REGRESSION = {
    "mse": (F.mse, TF.mse_loss),
    "mae": (F.mae, TF.l1_loss),
    "huber": (lambda p, t, r: F.huber(p, t, 0.7, r), lambda p, t, reduction: TF.huber_loss(p, t, reduction=reduction,
                                                                                           delta=0.7)),
}


def compare_with_torch(ours, theirs, x_host, target_host, backend, rng):
    """Values and gradients of ours(x, target) and theirs on the same inputs, reduction='none' seeded by v."""
    x = gdbp.Tensor(backends.transfer(x_host, backend), requires_grad=True)
    xt = torch.from_numpy(x_host).requires_grad_(True)
    target = backends.transfer(target_host, backend)
    target_t = torch.from_numpy(np.asarray(target_host))
    for reduction in REDUCTIONS:
        x.grad, xt.grad = None, None
        y, yt = ours(x, target, reduction), theirs(xt, target_t, reduction)
        np.testing.assert_allclose(to_numpy(y), yt.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=reduction)
        v = rng.standard_normal(tuple(yt.shape))
        (y * backends.transfer(v, backend)).sum().backward()
        (yt * torch.from_numpy(v)).sum().backward()
        np.testing.assert_allclose(to_numpy(x.grad), xt.grad.numpy(), rtol=1e-11, atol=1e-14, err_msg=reduction)


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_costs_match_torch(name, backend, rng):
    ours, theirs = REGRESSION[name]
    compare_with_torch(ours, lambda p, t, r: theirs(p, t, reduction=r), rng.standard_normal((5, 3)) * 2,
                       rng.standard_normal((5, 3)), backend, rng)


@pytest.mark.parametrize("smoothing", [0.0, 0.25])
def test_cross_entropy_matches_torch(backend, rng, smoothing):
    compare_with_torch(
        lambda z, y, r: F.cross_entropy(z, y, smoothing, r),
        lambda z, y, r: TF.cross_entropy(z, y, reduction=r, label_smoothing=smoothing),
        rng.standard_normal((7, 5)) * 3, rng.integers(0, 5, size=7), backend, rng)


def test_cross_entropy_over_extra_axes_matches_torch(backend, rng):
    # Classes along the last axis here; torch takes them on axis 1.
    compare_with_torch(
        lambda z, y, r: F.cross_entropy(z, y, 0.1, r),
        lambda z, y, r: TF.cross_entropy(z.permute(0, 2, 1), y, reduction=r, label_smoothing=0.1),
        rng.standard_normal((3, 4, 5)), rng.integers(0, 5, size=(3, 4)), backend, rng)


def test_nll_and_bce_match_torch(backend, rng):
    compare_with_torch(F.nll, lambda z, y, r: TF.nll_loss(z, y, reduction=r),
                       rng.standard_normal((6, 4)), rng.integers(0, 4, size=6), backend, rng)
    compare_with_torch(F.binary_cross_entropy_with_logits,
                       lambda z, y, r: TF.binary_cross_entropy_with_logits(z, y, reduction=r),
                       rng.standard_normal((6, 4)) * 4, rng.uniform(0, 1, size=(6, 4)), backend, rng)


# --- finite differences ---------------------------------------------------------------------------------


def test_cost_gradients_match_finite_differences(backend, rng):
    pred = random_array(rng, (4, 3), backend, low=-2, high=2)
    target = random_array(rng, (4, 3), backend)
    labels = random_ints(rng, (4,), 3, backend)
    check_grad(lambda p: F.mse(p, target), pred)
    check_grad(lambda p: F.mae(p, target), pred)
    check_grad(lambda p: F.huber(p, target, 0.5), pred)
    check_grad(lambda z: F.cross_entropy(z, labels, 0.2), pred)
    check_grad(lambda z: F.nll(z, labels, "sum"), pred)
    check_grad(lambda z: F.binary_cross_entropy_with_logits(z, target), pred)


# --- stability -------------------------------------------------------------------------------------------


def test_cross_entropy_is_exact_at_logits_of_1000(backend):
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0], [1000.0, 1000.0, -1000.0]], dtype=np.float32)
    labels = np.array([0, 0, 2])
    z = gdbp.Tensor(backends.transfer(logits, backend), requires_grad=True)
    cost = F.cross_entropy(z, backends.transfer(labels, backend), reduction="none")
    np.testing.assert_allclose(to_numpy(cost), [0.0, 2000.0, 2000.0 + np.log(2)], rtol=1e-6)
    cost.sum().backward()
    expected = np.array([[0, 0, 0], [-1, 1, 0], [0.5, 0.5, -1]], dtype=np.float32)
    np.testing.assert_allclose(to_numpy(z.grad), expected, atol=1e-6)
    smoothed = F.cross_entropy(backends.transfer(logits, backend), backends.transfer(labels, backend), 0.1)
    assert np.isfinite(to_numpy(smoothed))


def test_binary_cross_entropy_is_exact_at_logits_of_1000(backend):
    logits = np.array([1000.0, -1000.0, 1000.0, -1000.0, 0.0], dtype=np.float32)
    targets = np.array([1.0, 0.0, 0.0, 1.0, 1.0], dtype=np.float32)
    z = gdbp.Tensor(backends.transfer(logits, backend), requires_grad=True)
    cost = F.binary_cross_entropy_with_logits(z, backends.transfer(targets, backend), reduction="none")
    np.testing.assert_allclose(to_numpy(cost), [0.0, 0.0, 1000.0, 1000.0, np.log(2)], rtol=1e-6)
    cost.sum().backward()
    # d/dz = sigmoid(z) - y, also at z = 0 exactly.
    np.testing.assert_allclose(to_numpy(z.grad), [0.0, 0.0, 1.0, -1.0, -0.5], atol=1e-7)


def test_costs_keep_float32(backend, rng):
    z = random_array(rng, (4, 3), backend, "float32")
    y = random_ints(rng, (4,), 3, backend)
    for cost in (F.cross_entropy(z, y), F.mse(z, z), F.binary_cross_entropy_with_logits(z, z), F.nll(z, y)):
        assert cost.dtype == backend.xp.float32 and cost.shape == ()


# --- errors ----------------------------------------------------------------------------------------------


def test_float_labels_are_refused():
    with pytest.raises(TypeError, match="integer class labels are needed"):
        F.cross_entropy(np.zeros((3, 2)), np.array([0.0, 1.0, 1.0]))
    with pytest.raises(TypeError, match="integer class labels are needed"):
        F.nll(np.zeros((3, 2)), np.zeros((3, 2)))


def test_label_shape_must_be_logits_shape_without_classes():
    with pytest.raises(gdbp.ShapeError, match=r"\(4, 3\).*labels of shape \(4,\).*got labels of shape \(4, 1\)"):
        F.cross_entropy(np.zeros((4, 3)), np.zeros((4, 1), dtype=np.int64))


def test_regression_shapes_must_match_exactly():
    with pytest.raises(gdbp.ShapeError, match=r"pred has shape \(5, 1\) but target has shape \(5,\)"):
        F.mse(np.zeros((5, 1)), np.zeros(5))
    for cost in (F.mae, F.huber, F.binary_cross_entropy_with_logits):
        with pytest.raises(gdbp.ShapeError, match=r"\(2, 3\).*\(3,\)"):
            cost(np.zeros((2, 3)), np.zeros(3))


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="reduction"):
        F.mse(np.zeros(2), np.zeros(2), reduction="average")
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="max")
    with pytest.raises(TypeError, match="floating"):
        F.binary_cross_entropy_with_logits(np.zeros(3), np.ones(3, dtype=np.int64))
    with pytest.raises(ValueError, match="delta"):
        F.huber(np.zeros(2), np.zeros(2), delta=0.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(np.zeros((2, 2)), np.zeros(2, dtype=np.int64), label_smoothing=1.5)


# --- Module forms -------------------------------------------------------------------------------------------


def test_module_forms_match_the_functions(rng):
    z, t = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    y = rng.integers(0, 3, size=5)
    pairs = [
        (nn.MSELoss(), F.mse(z, t)), (nn.L1Loss(reduction="sum"), F.mae(z, t, "sum")),
        (nn.HuberLoss(delta=0.3), F.huber(z, t, 0.3)),
        (nn.BCEWithLogitsLoss(), F.binary_cross_entropy_with_logits(z, t)),
    ]
    for module, expected in pairs:
        np.testing.assert_array_equal(to_numpy(module(z, t)), to_numpy(expected))
    np.testing.assert_array_equal(to_numpy(nn.CrossEntropyLoss(label_smoothing=0.2)(z, y)),
                                  to_numpy(F.cross_entropy(z, y, 0.2)))
    np.testing.assert_array_equal(to_numpy(nn.NLLLoss(reduction="none")(z, y)), to_numpy(F.nll(z, y, "none")))
