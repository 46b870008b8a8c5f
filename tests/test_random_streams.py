"""gdbp's counter-based streams: NumPy's Philox bits everywhere, a state of two integers, exact resume.

The CuPy kernel's source is run here too, compiled for the host (see
``host_cupy`` in test_gpu_readiness.py); on a GPU the gpu-marked tests run it there.
"""

from __future__ import annotations

import json

import array_api_compat.numpy as xnp
import array_api_strict
import numpy as np
import pytest

import gdbp
from gdbp import backends, nn
from gdbp.backends import _philox
from gdbp.backends._backend import Backend
from gdbp.backends._kernels import Kernels
from gdbp.nn import functional as F
from gdbp.train import CheckpointError

from conftest import backend_params, to_numpy

CASES = [  # (key, counter, n): a seed's key, a large key, a counter near the end of its range, short draws
    (_philox.key_of(0), 0, 1),
    (_philox.key_of(7), 3, 5),
    (_philox.key_of(2**70), 12_345, 64),
    (2**128 - 1, 2**64 - 40, 33),
    (0, 0, 1001),
]


def reference(key, counter, n):
    """NumPy's own Philox: what every implementation must give, bit for bit."""
    return np.random.Generator(np.random.Philox(key=key, counter=counter)).random(n)


@pytest.mark.parametrize("key, counter, n", CASES)
def test_every_implementation_gives_numpys_philox_bits(key, counter, n):
    want = reference(key, counter, n)
    assert np.array_equal(_philox.host_uniform(key, counter, n), want)
    assert np.array_equal(_philox.array_uniform(xnp, key, counter, n), want)
    on_strict = _philox.array_uniform(array_api_strict, key, counter, n)
    assert np.array_equal(np.asarray(on_strict), want)


def test_consecutive_draws_use_consecutive_blocks_and_a_state_resumes_them():
    stream = backends.device_rng(11, "numpy")
    first = stream.random(5, dtype="float64")
    state = json.loads(json.dumps(stream.get_state()))  # JSON-ready: two ints
    second = stream.random((2, 3), dtype="float64")
    key = _philox.key_of(11)
    assert state == {"key": key, "counter": 2}  # 5 values used two blocks of 4
    assert np.array_equal(first, reference(key, 0, 5))
    assert np.array_equal(second.reshape(-1), reference(key, 2, 6))
    again = backends.device_rng(99, "numpy")  # another seed: the state is all there is
    again.set_state(state)
    assert np.array_equal(again.random((2, 3), dtype="float64"), second)


@pytest.mark.parametrize("name", ["numpy", "array_api_strict", "torch"])
def test_cpu_backends_draw_the_same_numbers_rounded_to_the_dtype(name):
    got = to_numpy(backends.device_rng(4, name).random((3, 4)))
    want = reference(_philox.key_of(4), 0, 12).astype(np.float32).reshape(3, 4)
    assert got.dtype == np.float32 and np.array_equal(got, want)


def test_a_gpu_library_without_a_generator_state_draws_the_same_bits_on_its_device():
    # As CuPy: a GPU backend whose own generator cannot give its state. The generic kernels compute
    # Philox on the device in the array API; the stream's state is gdbp's, so it resumes exactly.
    class NoGeneratorKernels(Kernels):
        def __getattr__(self, name):
            if name in ("random", "default_rng", "Generator"):
                raise AssertionError("gdbp asked the library for a generator")
            raise AttributeError(name)

    gpu = Backend("stand-in", xnp, "cpu", True, np.ndarray, "0", "stand-in", True, NoGeneratorKernels(xnp))
    stream = backends.device_rng(8, gpu)
    a = stream.random((4, 5))
    state = stream.get_state()
    b = stream.random(7, dtype="float64")
    on_cpu = backends.device_rng(8, "numpy")
    assert np.array_equal(a, on_cpu.random((4, 5))) and a.dtype == np.float32
    assert np.array_equal(b, on_cpu.random(7, dtype="float64"))
    resumed = backends.device_rng(8, gpu)
    resumed.set_state(state)
    assert np.array_equal(resumed.random(7, dtype="float64"), b)


@pytest.mark.parametrize("state, match", [
    ({"key": 1}, "key.*counter"),
    ({"key": -1, "counter": 0}, "key"),
    ({"key": 1, "counter": 2**64}, "counter"),
    ({"key": 1.0, "counter": 0}, "key"),
    ({"key": 1, "counter": True}, "counter"),
    ([1, 2], "key.*counter"),
])
def test_a_malformed_state_is_refused_and_changes_nothing(state, match):
    stream = backends.device_rng(1, "numpy")
    stream.random(3)
    before = stream.get_state()
    with pytest.raises(ValueError, match=match):
        stream.set_state(state)
    assert stream.get_state() == before


def test_a_spent_stream_says_so():
    stream = backends.device_rng(1, "numpy")
    stream.set_state({"key": stream.key, "counter": 2**64 - 2})
    stream.random(4)  # one block: the counter reaches 2**64 - 1
    with pytest.raises(OverflowError, match="another seed"):
        stream.random(1)


# --- Dropout ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", backend_params())
def test_dropout_masks_are_the_same_on_every_backend_and_resume_from_a_json_state(backend):
    x = gdbp.Tensor(backends.transfer(np.ones((6, 9), np.float32), backend))
    layer = nn.Dropout(0.4, seed=21)
    first = to_numpy(layer(x))
    host = np.ones((6, 9), np.float32)
    u = reference(_philox.key_of(21), 0, 54).astype(np.float32).reshape(6, 9)
    np.testing.assert_array_equal(first, np.where(u >= 0.4, host / np.float32(0.6), 0))
    state = json.loads(json.dumps(layer.rng_state()))
    second = to_numpy(layer(x))
    fresh = nn.Dropout(0.4, seed=3)
    fresh.set_rng_state(state)
    np.testing.assert_array_equal(to_numpy(fresh(x)), second)


def test_moving_dropouts_input_to_another_backend_continues_the_stream():
    def ones(name):
        return gdbp.Tensor(backends.transfer(np.ones(8), name))

    layer = nn.Dropout(0.5, seed=2)
    layer(ones("numpy"))
    on_torch = to_numpy(layer(ones("torch")))
    other = nn.Dropout(0.5, seed=2)
    other(ones("numpy"))
    np.testing.assert_array_equal(on_torch, to_numpy(other(ones("numpy"))))


def test_dropout_refuses_a_state_whose_key_is_not_its_seeds():
    layer = nn.Dropout(0.5, seed=1)
    with pytest.raises(ValueError, match="key of seed 1"):
        layer.check_rng_state({"seed": 1, "stream": {"key": _philox.key_of(2), "counter": 0}})


def test_the_functional_dropout_makes_no_library_generator(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a library generator was made")

    monkeypatch.setattr(np.random, "default_rng", refuse)  # what made a host stream per call before
    y = F.dropout(gdbp.tensor(np.ones((3, 3))), 0.5)
    assert set(np.unique(to_numpy(y))) <= {0.0, 2.0}


def _model():
    return nn.Sequential(nn.Linear(3, 4, backend="numpy", seed=0), nn.Dropout(0.5, seed=1),
                         nn.Linear(4, 2, backend="numpy", seed=1))


@pytest.mark.parametrize("old", [
    np.random.default_rng(1).bit_generator.state,  # a host stream's position, as gdbp 0.1 saved it
    list(range(16)),                                 # torch's CUDA generator bytes, likewise
], ids=["pcg64", "torch-bytes"])
def test_a_checkpoint_with_the_old_generator_state_is_refused_saying_what_to_do(tmp_path, monkeypatch, old):
    source = _model()
    monkeypatch.setattr(source[1], "rng_state", lambda: {"seed": 1, "stream": old})
    path = gdbp.save(tmp_path / "old.safetensors", source)
    target = _model()
    before = target[1].rng_state()
    with pytest.raises(CheckpointError, match="library generator's state.*gdbp.load\\(path\\)"):
        gdbp.load(path, target)
    assert target[1].rng_state() == before
    ckpt = gdbp.load(path)  # the way out the message gives: the weights still load
    target.load_state_dict(ckpt.state_dict)


def test_a_checkpoint_saved_before_any_mask_was_drawn_loads_in_either_format(tmp_path):
    source = _model()
    path = gdbp.save(tmp_path / "fresh.safetensors", source)  # stream None: the same in both formats
    target = nn.Sequential(nn.Linear(3, 4, backend="numpy"), nn.Dropout(0.5, seed=9), nn.Linear(4, 2, backend="numpy"))
    gdbp.load(path, target)
    assert target[1].rng_state() == {"seed": 1, "stream": None}
