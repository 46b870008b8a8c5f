"""Gradient clipping against torch.nn.utils.clip_grad_norm_ / clip_grad_value_."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import gdbp
from gdbp import backends
from gdbp.descent import clip_grad_norm, clip_grad_value, global_norm
from gdbp.nn import Parameter

from conftest import to_numpy

SHAPES = [(3, 4), (4,), ()]


def with_grads(rng, backend, scale, dtype=np.float64):
    values = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    grads = [scale * rng.normal(size=s).astype(dtype) for s in SHAPES]
    params = [Parameter(backends.transfer(v, backend)) for v in values]
    for p, g in zip(params, grads):
        p.grad = backends.transfer(g, backend)
    tparams = [torch.tensor(v, requires_grad=True) for v in values]
    for p, g in zip(tparams, grads):
        p.grad = torch.tensor(g)
    return params, tparams


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf])
@pytest.mark.parametrize("scale", [0.01, 10.0], ids=["below", "above"])
def test_clip_grad_norm_matches_torch(norm_type, scale, backend, rng):
    params, tparams = with_grads(rng, backend, scale)
    total = clip_grad_norm(params, max_norm=1.0, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, max_norm=1.0, norm_type=norm_type)
    assert backends.backend_of(total) is backend and tuple(total.shape) == ()
    assert total.dtype == params[0].dtype
    np.testing.assert_allclose(to_numpy(total), ttotal.numpy(), rtol=1e-12)
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(to_numpy(p.grad), tp.grad.numpy(), rtol=1e-12)
    clipped = float(global_norm([p.grad for p in params], norm_type))
    if scale > 1:
        assert clipped == pytest.approx(1.0, rel=1e-5)  # clipped to max_norm (less the 1e-6 guard)


def test_clip_grad_norm_keeps_float32(backend, rng):
    params, _ = with_grads(rng, backend, 10.0, dtype=np.float32)
    total = clip_grad_norm(params, 0.5)
    assert total.dtype == backend.xp.float32
    assert all(p.grad.dtype == backend.xp.float32 for p in params)


def test_mixed_dtypes_keep_each_gradients_dtype(backend, rng):
    xp = backend.xp
    p32 = Parameter(backends.transfer(np.zeros(3, dtype=np.float32), backend))
    p64 = Parameter(backends.transfer(np.zeros(2), backend))
    p32.grad = backends.transfer(np.full(3, 4.0, dtype=np.float32), backend)
    p64.grad = backends.transfer(np.full(2, 3.0), backend)
    total = clip_grad_norm([p32, p64], 1.0)
    assert total.dtype == xp.float64  # the norms meet in the promoted dtype
    assert p32.grad.dtype == xp.float32 and p64.grad.dtype == xp.float64
    n = math.sqrt(3 * 16.0 + 2 * 9.0)
    np.testing.assert_allclose(to_numpy(p32.grad), 4.0 / (n + 1e-6), rtol=1e-6)


def test_clip_grad_value_matches_torch(backend, rng):
    params, tparams = with_grads(rng, backend, 2.0)
    clip_grad_value(params, 0.7)
    torch.nn.utils.clip_grad_value_(tparams, 0.7)
    for p, tp in zip(params, tparams):
        np.testing.assert_array_equal(to_numpy(p.grad), tp.grad.numpy())
    assert max(np.max(np.abs(to_numpy(p.grad))) for p in params) == 0.7


def test_shared_gradient_arrays_are_scaled_once():
    a = Parameter(np.array([3.0, 0.0]))
    b = Parameter(np.array([0.0, 4.0]))
    (a + b).sum().backward()  # may hand both leaves one gradient array
    total = clip_grad_norm([a, b], max_norm=1.0)
    assert float(total) == pytest.approx(2.0)
    expected = 1.0 / (2.0 + 1e-6)
    np.testing.assert_allclose(to_numpy(a.grad), [expected, expected])
    np.testing.assert_allclose(to_numpy(b.grad), [expected, expected])


def test_clip_keeps_tensor_gradients_tensors():
    p = Parameter(np.zeros(2))
    p.grad = gdbp.tensor(np.array([3.0, 4.0]))
    clip_grad_norm(p, 1.0)
    assert isinstance(p.grad, gdbp.Tensor)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)


def test_no_gradients_gives_zero_and_changes_nothing():
    p = Parameter(np.zeros(2, dtype=np.float32))
    total = clip_grad_norm([p], 1.0)
    assert float(total) == 0.0 and total.dtype == np.float32 and p.grad is None


def test_bad_input():
    p = Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm([p], -1.0)
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm([p], 1.0, norm_type=0)
    with pytest.raises(ValueError, match="no parameters"):
        clip_grad_norm([], 1.0)
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value([p], math.nan)
