"""Every layer of gdbp.nn through gdbp.save and gdbp.load, 0-d arrays included, and resuming a BatchNorm model."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import to_numpy
from train_helpers import host_state

import gdbp
from gdbp import backends, descent, nn
from gdbp.train import ModelCheckpoint, fit


class Temperature(nn.Module):
    """Divides by a learned 0-d temperature, as in distillation or calibration."""

    def __init__(self, t=1.5):
        super().__init__()
        self.t = nn.Parameter(np.array(t, dtype=np.float32))

    def forward(self, x):
        return x / self.t


class EveryLayer(nn.Module):
    """A model that holds every Module class gdbp.nn exports (cost modules beside it, unused)."""

    def __init__(self, seed=0):
        super().__init__()
        stream = backends.host_rng(seed)
        self.embed = nn.Embedding(10, 4, backend="numpy", rng=stream)
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(12, 16, backend="numpy", rng=stream),
            nn.LayerNorm(16, backend="numpy"),
            nn.BatchNorm1d(16, backend="numpy"),
            nn.GELU(),
            nn.Dropout(0.3, seed=seed + 7),
            nn.ReLU(),
            nn.LeakyReLU(0.1),
            nn.Tanh(),
            nn.Sigmoid(),
            nn.Identity(),
            nn.Linear(16, 3, backend="numpy", rng=stream),
            Temperature(1.5 + seed),
            nn.Softmax(),
        )
        self.log_softmax = nn.LogSoftmax()
        self.costs = nn.Sequential(nn.MSELoss(), nn.L1Loss(), nn.HuberLoss(), nn.CrossEntropyLoss(),
                                   nn.BCEWithLogitsLoss(), nn.NLLLoss())

    def forward(self, tokens):
        return self.log_softmax(self.body(self.embed(tokens)))


def _exported_modules():
    return {obj for obj in vars(nn).values()
            if isinstance(obj, type) and issubclass(obj, nn.Module) and obj is not nn.Module}


def test_the_model_holds_every_layer_of_gdbp_nn():
    # So that a layer added to gdbp.nn without being added here fails this test.
    present = {type(m) for m in EveryLayer().modules()}
    assert _exported_modules() <= present, _exported_modules() - present


def _train_a_little(model, steps=3):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 10, size=(8, 3))
    labels = rng.integers(0, 3, size=8)
    opt = descent.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        model.zero_grad()
        nn.nll(model(tokens), labels).backward()
        opt.step()
    return opt, tokens


def test_every_layer_round_trips_through_save_and_load(tmp_path):
    model = EveryLayer(seed=0)
    opt, tokens = _train_a_little(model)
    state = host_state(model)
    assert state["body.3.num_batches_tracked"].shape == ()  # the 0-d buffer that used to come back as (1,)
    assert int(state["body.3.num_batches_tracked"]) == 3
    assert state["body.12.t"].shape == ()
    extra = {"temperature": np.array(0.25), "count": np.array(7, dtype=np.int64), "nested": [np.float32(2.5)]}
    path = gdbp.save(tmp_path / "every.safetensors", model, opt, extra=extra, epoch=1)

    fresh = EveryLayer(seed=1)
    fresh_opt = descent.Adam(fresh.parameters(), lr=0.5)
    assert not np.array_equal(host_state(fresh)["body.12.t"], state["body.12.t"])
    ckpt = gdbp.load(path, fresh, fresh_opt)
    restored = host_state(fresh)
    assert set(restored) == set(state)
    for k, v in state.items():
        assert restored[k].shape == v.shape and restored[k].dtype == v.dtype, k
        assert np.array_equal(restored[k], v), k
    assert ckpt.extra["temperature"].shape == () and float(ckpt.extra["temperature"]) == 0.25
    assert ckpt.extra["count"].shape == () and ckpt.extra["count"].dtype == np.int64 and int(ckpt.extra["count"]) == 7
    assert to_numpy(ckpt.extra["nested"][0]).shape == ()
    assert fresh_opt.step_count == opt.step_count == 3

    # The generator of the Dropout layer continues where it was: the next training step is the same.
    assert fresh.body[5].rng_state() == model.body[5].rng_state()
    a = to_numpy(model(tokens))
    b = to_numpy(fresh(tokens))
    assert np.array_equal(a, b)


def test_a_zero_d_parameter_alone_round_trips(tmp_path):
    model = Temperature(0.75)
    path = gdbp.save(tmp_path / "t.safetensors", model)
    fresh = Temperature(3.0)
    gdbp.load(path, fresh)
    assert fresh.t.shape == () and float(to_numpy(fresh.t)) == 0.75


def test_to_numpy_contiguous_keeps_the_shape_of_0d_arrays():
    for value in (np.array(3.0), np.float64(2.0), np.ones((2, 3))[:, ::2]):
        host = backends.to_numpy_contiguous(value)
        assert host.shape == np.shape(value) and host.flags["C_CONTIGUOUS"]


def _bn_model(seed):
    stream = backends.host_rng(seed)
    return nn.Sequential(nn.Linear(5, 8, backend="numpy", rng=stream, dtype="float64"),
                         nn.BatchNorm1d(8, backend="numpy", dtype="float64"), nn.ReLU(),
                         nn.Linear(8, 3, backend="numpy", rng=stream, dtype="float64"))


@pytest.mark.parametrize("momentum", [0.1, None])
def test_model_checkpoint_and_resume_of_a_batchnorm_model(tmp_path, momentum):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 5))
    y = rng.integers(0, 3, size=40)
    kw = dict(batch_size=8, progress=False, seed=4)

    def run(epochs, seed, **more):
        model = _bn_model(seed)
        model[1].momentum = momentum
        opt = descent.SGD(model.parameters(), lr=0.1, momentum=0.9)
        fit(model, nn.cross_entropy, opt, (x, y), epochs=epochs, **kw, **more)
        return model

    full = run(4, seed=0)
    run(2, seed=0, callbacks=[ModelCheckpoint(tmp_path / "bn-{epoch}.safetensors")])
    resumed = run(4, seed=9, resume=tmp_path / "bn-2.safetensors")
    assert int(host_state(resumed)["1.num_batches_tracked"]) == 20
    for k, v in host_state(full).items():
        assert np.array_equal(host_state(resumed)[k], v), k
