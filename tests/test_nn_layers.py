"""Layers: gradients against finite differences and against torch.nn with the same weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import gdbp
import gdbp.nn.functional as F
from conftest import random_array, random_ints, to_numpy
from gdbp import backends, nn
from gdbp.testing import check_grad


def swap_parameters(module):
    """``f(x, *params)`` calling module with its parameters replaced by check_grad's inputs."""
    names = [name for name, _ in module.named_parameters()]

    def owner(name):
        *path, attr = name.split(".")
        m = module
        for part in path:
            m = m._modules[part]
        return m, attr

    def f(x, *params):
        saved = []
        for name, p in zip(names, params):
            m, attr = owner(name)
            saved.append((m, attr, m._parameters[attr]))
            m._parameters[attr] = p
            m.__dict__[attr] = p
        try:
            return module(x)
        finally:
            for m, attr, old in saved:
                m._parameters[attr] = old
                m.__dict__[attr] = old

    return f, [p.data for _, p in module.named_parameters()]


# Each case: (gdbp module, torch module, input shape), both in float64.
def cases(backend):
    kw = dict(backend=backend, dtype="float64", seed=3)
    return {
        "linear": (nn.Linear(4, 3, **kw), torch.nn.Linear(4, 3), (5, 4)),
        "linear-no-bias": (nn.Linear(4, 3, bias=False, **kw), torch.nn.Linear(4, 3, bias=False), (5, 4)),
        "linear-3d": (nn.Linear(4, 2, **kw), torch.nn.Linear(4, 2), (2, 3, 4)),
        "relu": (nn.ReLU(), torch.nn.ReLU(), (4, 5)),
        "leaky_relu": (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2), (4, 5)),
        "sigmoid": (nn.Sigmoid(), torch.nn.Sigmoid(), (4, 5)),
        "tanh": (nn.Tanh(), torch.nn.Tanh(), (4, 5)),
        "gelu": (nn.GELU(), torch.nn.GELU(), (4, 5)),
        "gelu-tanh": (nn.GELU("tanh"), torch.nn.GELU(approximate="tanh"), (4, 5)),
        "softmax": (nn.Softmax(), torch.nn.Softmax(dim=-1), (4, 5)),
        "log_softmax": (nn.LogSoftmax(), torch.nn.LogSoftmax(dim=-1), (4, 5)),
        "layer_norm": (nn.LayerNorm(4, backend=backend, dtype="float64"), torch.nn.LayerNorm(4), (3, 2, 4)),
        "layer_norm-2d": (nn.LayerNorm((2, 4), backend=backend, dtype="float64"), torch.nn.LayerNorm((2, 4)),
                          (3, 2, 4)),
        "batch_norm": (nn.BatchNorm1d(4, backend=backend, dtype="float64"), torch.nn.BatchNorm1d(4), (6, 4)),
        "batch_norm-3d": (nn.BatchNorm1d(3, backend=backend, dtype="float64"), torch.nn.BatchNorm1d(3), (4, 3, 5)),
        "flatten": (nn.Flatten(), torch.nn.Flatten(), (2, 3, 4)),
        "sequential": (nn.Sequential(nn.Linear(4, 5, **kw), nn.Tanh(), nn.Linear(5, 2, **kw)),
                       torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)), (3, 4)),
    }


CASE_NAMES = list(cases("numpy"))


def perturbed_affine(module, rng):
    """Move LayerNorm/BatchNorm weights off ones and zeros, so that the check sees them act."""
    with gdbp.no_grad():
        for _, p in module.named_parameters():
            if isinstance(module, (nn.LayerNorm, nn.BatchNorm1d)):
                p.data = backends.transfer(rng.uniform(0.5, 1.5, size=p.shape), p.backend)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_layer_gradients_match_finite_differences(name, backend, rng):
    module, _, shape = cases(backend)[name]
    perturbed_affine(module, rng)
    f, params = swap_parameters(module)
    check_grad(f, random_array(rng, shape, backend), *params)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_layer_matches_torch_values_and_gradients(name, backend, rng):
    module, reference, shape = cases(backend)[name]
    perturbed_affine(module, rng)
    reference = reference.double()
    with torch.no_grad():
        for pname, p in module.named_parameters():
            dict(reference.named_parameters())[pname].copy_(torch.from_numpy(to_numpy(p).copy()))
    x_host = rng.uniform(-2, 2, size=shape)
    v_host = rng.standard_normal(size=shape[:1] + tuple(reference(torch.from_numpy(x_host)).shape[1:]))

    x = gdbp.Tensor(backends.transfer(x_host, backend), requires_grad=True)
    y = module(x)
    (y * backends.transfer(v_host, backend)).sum().backward()

    xt = torch.from_numpy(x_host).requires_grad_(True)
    yt = reference(xt)
    (yt * torch.from_numpy(v_host)).sum().backward()

    assert y.backend is backend and y.dtype == backend.xp.float64
    np.testing.assert_allclose(to_numpy(y), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_numpy(x.grad), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    torch_params = dict(reference.named_parameters())
    for pname, p in module.named_parameters():
        np.testing.assert_allclose(to_numpy(p.grad), torch_params[pname].grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=pname)


def test_layers_keep_float32(backend, rng):
    model = nn.Sequential(nn.Linear(3, 4, backend=backend), nn.GELU(), nn.LayerNorm(4, backend=backend),
                          nn.BatchNorm1d(4, backend=backend), nn.Dropout(0.2, seed=0), nn.Linear(4, 2, backend=backend))
    x = gdbp.Tensor(random_array(rng, (5, 3), backend, "float32"), requires_grad=True)
    y = model(x)
    y.sum().backward()
    assert y.dtype == backend.xp.float32 and y.backend is backend
    assert all(p.grad.dtype == backend.xp.float32 for p in model.parameters())
    assert x.grad.dtype == backend.xp.float32


def test_linear_refuses_another_dtype_or_backend(rng):
    layer = nn.Linear(3, 2, backend="numpy")
    with pytest.raises(TypeError, match="input has dtype float64, but the layer has dtype float32"):
        layer(rng.standard_normal((4, 3)))
    with pytest.raises(backends.BackendMismatchError, match="torch"):
        layer(torch.zeros(4, 3))


# --- GELU and erf ----------------------------------------------------------------------------


def test_erf_is_accurate_in_float64_and_float32(backend):
    grid = np.concatenate([np.linspace(-7, 7, 4001), [0.0, 1e-12, -0.46875, 0.46875, 4.0, -4.0, 30.0, -30.0]])
    exact = np.array([math.erf(v) for v in grid])
    got = to_numpy(gdbp.backprop.ops.erf(backends.transfer(grid, backend)))
    assert np.max(np.abs(got - exact) / np.maximum(np.abs(exact), 1e-300)) < 1e-14
    grid32 = grid.astype(np.float32)
    exact32 = np.array([math.erf(float(v)) for v in grid32])
    out32 = gdbp.backprop.ops.erf(backends.transfer(grid32, backend))
    assert out32.dtype == backend.xp.float32
    rel = np.abs(to_numpy(out32) - exact32) / np.maximum(np.abs(exact32), 1e-30)
    assert rel.max() < 4 * np.finfo(np.float32).eps


def test_erf_keeps_infinities_and_nan():
    got = to_numpy(gdbp.backprop.ops.erf(np.array([np.inf, -np.inf, np.nan])))
    assert got[0] == 1.0 and got[1] == -1.0 and np.isnan(got[2])


def test_erf_gradient_and_second_derivative(rng):
    x = rng.uniform(-5, 5, size=(7,))
    check_grad(gdbp.backprop.ops.erf, x)
    # d/dx erf = 2/sqrt(pi) exp(-x^2), differentiated once more through the VJP itself.
    check_grad(gdbp.grad(lambda a: gdbp.backprop.ops.erf(a).sum()), x)


def test_gelu_default_is_exact_like_torch(rng):
    x = rng.uniform(-6, 6, size=(1000,))
    expected = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(to_numpy(F.gelu(x)), expected, rtol=1e-13, atol=1e-15)
    # The tanh form is a different function: about 5e-4 away at worst.
    gap = np.abs(to_numpy(F.gelu(x, approximate="tanh")) - expected).max()
    assert 1e-4 < gap < 1e-3


def test_gelu_refuses_unknown_approximation():
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")


# --- Embedding and Flatten ---------------------------------------------------------------------


def test_embedding_gradient_adds_up_over_repeated_indices(backend):
    emb = nn.Embedding(5, 3, backend=backend, seed=0)
    idx = backends.transfer(np.array([[0, 1], [1, 1], [4, 0]]), backend)
    out = emb(idx)
    assert out.shape == (3, 2, 3)
    np.testing.assert_array_equal(to_numpy(out), to_numpy(emb.weight)[np.array([[0, 1], [1, 1], [4, 0]])])
    out.sum().backward()
    np.testing.assert_array_equal(to_numpy(emb.weight.grad), np.repeat([[2.0], [3.0], [0.0], [0.0], [1.0]], 3, axis=1))


def test_embedding_matches_finite_differences_and_torch(backend, rng):
    emb = nn.Embedding(6, 4, backend=backend, dtype="float64", seed=1)
    idx = random_ints(rng, (3, 5), 6, backend)
    check_grad(lambda w, i: F.embedding(i, w), emb.weight.data, idx, argnums=0)
    reference = torch.nn.Embedding(6, 4).double()
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(to_numpy(emb.weight).copy()))
    v = rng.standard_normal((3, 5, 4))
    (emb(idx) * backends.transfer(v, backend)).sum().backward()
    (reference(torch.from_numpy(to_numpy(idx).copy())) * torch.from_numpy(v)).sum().backward()
    np.testing.assert_allclose(to_numpy(emb.weight.grad), reference.weight.grad.numpy(), rtol=1e-12)


def test_embedding_refuses_float_indices():
    with pytest.raises(TypeError, match="integers"):
        nn.Embedding(3, 2, backend="numpy")(np.array([0.0, 1.0]))


def test_flatten_dims():
    x = np.zeros((2, 3, 4, 5))
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)
    assert F.flatten(x, 0).shape == (120,)


# --- Dropout ----------------------------------------------------------------------------------


def test_dropout_is_deterministic_per_seed_and_changes_per_call(backend):
    x = backends.transfer(np.ones((50, 40), dtype=np.float32), backend)
    a, b = nn.Dropout(0.3, seed=7), nn.Dropout(0.3, seed=7)
    first, second = to_numpy(a(x)), to_numpy(a(x))
    np.testing.assert_array_equal(first, to_numpy(b(x)))
    np.testing.assert_array_equal(second, to_numpy(b(x)))
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, to_numpy(nn.Dropout(0.3, seed=8)(x)))
    a.reset()
    np.testing.assert_array_equal(to_numpy(a(x)), first)


def test_dropout_scales_kept_elements_and_drops_about_p(backend):
    x = backends.transfer(np.full((200, 100), 2.0, dtype=np.float32), backend)
    y = to_numpy(nn.Dropout(0.25, seed=0)(x))
    assert set(np.unique(y)) == {0.0, np.float32(2.0 / 0.75)}
    assert abs(np.mean(y == 0) - 0.25) < 0.01


def test_dropout_masks_agree_across_cpu_backends():
    masks = []
    for name in ("numpy", "array_api_strict", "torch"):
        x = backends.transfer(np.ones((30, 20)), name)
        masks.append(to_numpy(F.dropout(x, 0.5, seed=11)))
    np.testing.assert_array_equal(masks[0], masks[1])
    np.testing.assert_array_equal(masks[0], masks[2])


def test_dropout_is_the_identity_in_eval_mode_and_at_p0(backend, rng):
    x = gdbp.Tensor(random_array(rng, (4, 5), backend))
    layer = nn.Dropout(0.5, seed=0).eval()
    assert layer(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert F.dropout(x, 0.9, training=False) is x
    assert np.all(to_numpy(nn.Dropout(1.0)(x)) == 0)


def test_dropout_gradient_is_the_mask(backend, rng):
    layer = nn.Dropout(0.4, seed=3)
    x_host = rng.uniform(1, 2, size=(6, 7))
    x = gdbp.Tensor(backends.transfer(x_host, backend), requires_grad=True)
    y = layer(x)
    y.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), to_numpy(y) / x_host, rtol=1e-12)

    def f(a):
        layer.reset()  # the same mask at every evaluation
        return layer(a)

    check_grad(f, backends.transfer(x_host, backend))


def test_dropout_refuses_bad_p_and_a_stream_of_another_backend():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nn.Dropout(1.5)
    with pytest.raises(TypeError, match="device_rng"):
        F.dropout(np.ones(3), 0.5, rng=backends.device_rng(0, "torch"))


def test_the_draws_of_torch_on_cuda_are_a_function_of_key_and_counter():
    # torch on CUDA draws with its own generator, reseeded from (key, counter): run here on the CPU.
    k = backends.resolve("torch").kernels
    first = k.seeded_uniform(5, 0, (3, 4), None, "cpu")
    assert first.dtype == torch.float32 and bool(((first >= 0) & (first < 1)).all())
    assert torch.equal(first, k.seeded_uniform(5, 0, (3, 4), None, "cpu"))  # the generator is reseeded
    assert not torch.equal(k.seeded_uniform(5, 1, (3, 4), None, "cpu"), first)
    assert not torch.equal(k.seeded_uniform(6, 0, (3, 4), None, "cpu"), first)


# --- BatchNorm1d ---------------------------------------------------------------------------------


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("shape", [(8, 3), (5, 3, 4)])
def test_batch_norm_running_statistics_match_torch(backend, rng, momentum, shape):
    layer = nn.BatchNorm1d(3, momentum=momentum, backend=backend, dtype="float64")
    reference = torch.nn.BatchNorm1d(3, momentum=momentum).double()
    for step in range(4):
        x = rng.normal(step, 1 + step, size=shape)
        layer(backends.transfer(x, backend))
        reference(torch.from_numpy(x))
    np.testing.assert_allclose(to_numpy(layer.running_mean), reference.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(layer.running_var), reference.running_var.numpy(), rtol=1e-12)
    assert int(to_numpy(layer.num_batches_tracked)) == int(reference.num_batches_tracked) == 4

    layer.eval()
    reference.eval()
    x = rng.normal(size=shape)
    np.testing.assert_allclose(to_numpy(layer(backends.transfer(x, backend))),
                               reference(torch.from_numpy(x)).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_batch_norm_eval_uses_running_statistics_not_the_batch(rng):
    layer = nn.BatchNorm1d(2, backend="numpy", dtype="float64").eval()
    x = rng.normal(5.0, 3.0, size=(10, 2))
    # Fresh running statistics (mean 0, var 1): eval leaves x almost unchanged.
    np.testing.assert_allclose(to_numpy(layer(x)), x / np.sqrt(1 + 1e-5), rtol=1e-12)
    assert int(to_numpy(layer.num_batches_tracked)) == 0


def test_batch_norm_refuses_one_value_per_channel_and_wrong_channels():
    layer = nn.BatchNorm1d(3, backend="numpy")
    with pytest.raises(ValueError, match="more than 1 value"):
        layer(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(gdbp.ShapeError, match="channels"):
        layer(np.zeros((4, 2), dtype=np.float32))


# --- sizes: clear errors, and zero features as PyTorch allows them --------------------------------


@pytest.mark.parametrize("args, error, message", [
    ((-1, 3), ValueError, r"Linear: in_features must be an int >= 0, got -1"),
    ((3, -2), ValueError, r"Linear: out_features must be an int >= 0, got -2"),
    ((2.5, 3), TypeError, r"Linear: in_features must be an int >= 0, got float 2.5"),
    ((True, 3), TypeError, r"Linear: in_features must be an int >= 0, got True"),
    ((3, "4"), TypeError, r"Linear: out_features must be an int >= 0, got str '4'"),
])
def test_linear_names_a_bad_size(args, error, message):
    with pytest.raises(error, match=message):
        nn.Linear(*args, backend="numpy")


def test_embedding_names_a_bad_size():
    with pytest.raises(ValueError, match="Embedding: num_embeddings must be an int >= 0, got -1"):
        nn.Embedding(-1, 3, backend="numpy")
    with pytest.raises(TypeError, match="Embedding: embedding_dim must be an int >= 0"):
        nn.Embedding(4, 1.5, backend="numpy")


def test_linear_with_no_input_features_gives_its_bias_as_pytorch_does():
    layer = nn.Linear(0, 3, backend="numpy", dtype="float64", seed=0)
    assert tuple(layer.weight.shape) == (3, 0) and np.array_equal(to_numpy(layer.bias), np.zeros(3))
    x = gdbp.tensor(np.zeros((5, 0)))
    out = layer(x)
    assert tuple(out.shape) == (5, 3)
    out.sum().backward()
    assert np.array_equal(to_numpy(layer.bias.grad), np.full(3, 5.0)) and tuple(layer.weight.grad.shape) == (3, 0)
    assert tuple(nn.Linear(np.int64(4), 0, backend="numpy")(np.ones((2, 4), np.float32)).shape) == (2, 0)
    for make in (nn.init.kaiming_uniform, nn.init.kaiming_normal, nn.init.xavier_uniform, nn.init.xavier_normal):
        assert make((3, 0), backend="numpy").shape == (3, 0) and make((0, 0), backend="numpy").shape == (0, 0)
