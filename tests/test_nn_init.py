"""Initialisers: one seed, the same weights on every backend; the right distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import CPU_BACKENDS, to_numpy
from gdbp import backends, nn
from gdbp.nn import init

INITIALISERS = {
    "uniform": lambda shape, **kw: init.uniform(shape, -2.0, 3.0, **kw),
    "normal": lambda shape, **kw: init.normal(shape, 1.0, 0.5, **kw),
    "xavier_uniform": init.xavier_uniform,
    "xavier_normal": init.xavier_normal,
    "kaiming_uniform": init.kaiming_uniform,
    "kaiming_normal": init.kaiming_normal,
}


@pytest.mark.parametrize("name", INITIALISERS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_bit_equal_values_on_every_backend(name, dtype, backend):
    make = INITIALISERS[name]
    reference = make((7, 5), seed=42, backend="numpy", dtype=dtype)
    values = make((7, 5), seed=42, backend=backend, dtype=dtype)
    assert backends.backend_of(values) is backend
    assert values.dtype == getattr(backend.xp, dtype)
    np.testing.assert_array_equal(to_numpy(values), reference)
    assert not np.array_equal(to_numpy(make((7, 5), seed=43, backend=backend, dtype=dtype)), reference)


def test_same_seed_gives_the_same_model_on_every_backend():
    def model(name):
        return nn.Sequential(nn.Linear(4, 8, backend=name, seed=0), nn.ReLU(), nn.Embedding(3, 2, backend=name, seed=1))

    reference = model("numpy").state_dict()
    for name in CPU_BACKENDS[1:]:
        for key, value in model(name).state_dict().items():
            assert value.dtype == getattr(backends.resolve(name).xp, "float32")
            np.testing.assert_array_equal(to_numpy(value), reference[key], err_msg=f"{name} {key}")


def test_default_stream_is_reset_by_manual_seed():
    nn.manual_seed(123)
    first = to_numpy(nn.Linear(3, 3, backend="numpy").weight)
    second = to_numpy(nn.Linear(3, 3, backend="numpy").weight)
    nn.manual_seed(123)
    np.testing.assert_array_equal(to_numpy(nn.Linear(3, 3, backend="numpy").weight), first)
    assert not np.array_equal(first, second)


def test_one_stream_shared_by_layers_continues():
    rng = backends.host_rng(9)
    a = nn.Linear(3, 3, backend="numpy", rng=rng)
    b = nn.Linear(3, 3, backend="numpy", rng=rng)
    assert not np.array_equal(to_numpy(a.weight), to_numpy(b.weight))
    with pytest.raises(TypeError, match="not both"):
        nn.Linear(3, 3, seed=1, rng=rng)


def test_linear_initialisation_follows_torch():
    # weight ~ U[-1/sqrt(in), 1/sqrt(in)] (kaiming_uniform with a = sqrt(5)); bias from the same range.
    layer = nn.Linear(400, 300, backend="numpy", seed=0)
    bound = 1 / math.sqrt(400)
    w, b = to_numpy(layer.weight), to_numpy(layer.bias)
    assert w.shape == (300, 400) and b.shape == (300,)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound


@pytest.mark.parametrize("name, expected_std", [
    ("xavier_uniform", math.sqrt(2 / (300 + 400))),
    ("xavier_normal", math.sqrt(2 / (300 + 400))),
    ("kaiming_uniform", math.sqrt(2 / 400)),
    ("kaiming_normal", math.sqrt(2 / 400)),
])
def test_scaled_initialisers_have_the_right_spread(name, expected_std):
    w = to_numpy(INITIALISERS[name]((300, 400), seed=1, backend="numpy", dtype="float64"))
    assert abs(w.mean()) < 0.01 * expected_std
    assert abs(w.std() / expected_std - 1) < 0.01
    if name.endswith("uniform"):
        assert np.abs(w).max() <= expected_std * math.sqrt(3)


def test_kaiming_fan_out_and_gain():
    w = to_numpy(init.kaiming_normal((300, 400), mode="fan_out", nonlinearity="tanh", seed=0, backend="numpy",
                                     dtype="float64"))
    assert abs(w.std() / ((5 / 3) / math.sqrt(300)) - 1) < 0.01
    with pytest.raises(ValueError, match="fan_in"):
        init.kaiming_normal((3, 3), mode="fan_middle")


@pytest.mark.parametrize("nonlinearity, param", [("linear", None), ("sigmoid", None), ("tanh", None),
                                                 ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
                                                 ("selu", None)])
def test_gains_match_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(torch.nn.init.calculate_gain(nonlinearity, param))


def test_fans_follow_torch_and_refuse_vectors():
    assert init.fans((5, 3)) == (3, 5)
    assert init.fans((8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform((5,))


def test_zeros_and_ones_and_the_default_dtype(backend):
    z = init.zeros((2, 3), backend=backend)
    o = init.ones((4,), backend=backend, dtype="float64")
    assert z.dtype == backend.xp.float32 and o.dtype == backend.xp.float64
    assert to_numpy(z).sum() == 0 and to_numpy(o).sum() == 4


def test_in_place_forms_keep_the_tensor_backend_and_dtype(backend):
    layer = nn.Linear(5, 4, backend=backend, dtype="float64")
    weight = layer.weight
    assert init.xavier_uniform_(weight, seed=3) is weight
    assert layer.weight is weight and weight.dtype == backend.xp.float64
    np.testing.assert_array_equal(to_numpy(weight), init.xavier_uniform((4, 5), seed=3, backend="numpy",
                                                                        dtype="float64"))
    init.zeros_(layer.bias)
    assert not to_numpy(layer.bias).any()
    init.ones_(layer.bias)
    assert to_numpy(layer.bias).sum() == 4
    for fill in (init.uniform_, init.normal_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_):
        before = to_numpy(weight).copy()
        fill(weight, seed=11)
        assert not np.array_equal(before, to_numpy(weight)), fill.__name__


def test_host_generator_refuses_a_bad_seed():
    with pytest.raises(TypeError, match="seed"):
        backends.host_rng(1.5)
    with pytest.raises(TypeError, match="seed"):
        backends.device_rng(-1, "numpy")
