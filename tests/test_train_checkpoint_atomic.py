"""gdbp.load checks everything before it changes anything; strict=False covers generator states."""

from __future__ import annotations

import numpy as np
import pytest
from train_helpers import host_state

import gdbp
from gdbp import backends, descent, nn
from gdbp.train import CheckpointError


def _model(seed, dropout_at=1):
    stream = backends.host_rng(seed)
    middle = nn.Dropout(0.25, seed=seed) if dropout_at == 1 else nn.ReLU()
    return nn.Sequential(nn.Linear(4, 6, backend="numpy", rng=stream), middle,
                         nn.Linear(6, 2, backend="numpy", rng=stream))


def _step(model, opt, schedule=None):
    x = np.linspace(-1, 1, 20, dtype=np.float32).reshape(5, 4)
    model.zero_grad()
    nn.cross_entropy(model(x), np.array([0, 1, 1, 0, 1])).backward()
    opt.step()
    if schedule is not None:
        schedule.step()


def _snapshot(model, opt, schedule):
    state = opt.state_dict()
    arrays = {(i, k): np.array(v) for i, e in state["state"].items() for k, v in e.items() if k != "step"}
    rng = {name: m.rng_state() for name, m in model.named_modules() if hasattr(m, "rng_state")}
    return (host_state(model), rng, state["step"], state["hyperparameters"], arrays,
            None if schedule is None else schedule.state_dict())


def _assert_unchanged(before, after):
    (w0, r0, s0, h0, a0, c0), (w1, r1, s1, h1, a1, c1) = before, after
    assert set(w0) == set(w1) and all(np.array_equal(w0[k], w1[k]) for k in w0)
    assert r0 == r1 and s0 == s1 and h0 == h1 and c0 == c1
    assert set(a0) == set(a1) and all(np.array_equal(a0[k], a1[k]) for k in a0)


@pytest.fixture
def saved(tmp_path):
    model = _model(0)
    opt = descent.Adam(model.parameters(), lr=0.01)
    schedule = descent.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(2):
        _step(model, opt, schedule)
    return gdbp.save(tmp_path / "m.safetensors", model, opt, epoch=2, schedule=schedule)


def _target(seed=1, dropout_at=1, optimizer=descent.Adam, schedule=True):
    model = _model(seed, dropout_at)
    opt = optimizer(model.parameters(), lr=0.3)
    sched = descent.StepLR(opt, step_size=3, gamma=0.9) if schedule else None
    _step(model, opt, sched)  # some state of its own, which a failed load must keep
    return model, opt, sched


def test_an_optimizer_that_does_not_fit_changes_nothing(saved):
    model, opt, sched = _target(optimizer=descent.RMSprop)
    before = _snapshot(model, opt, sched)
    with pytest.raises(ValueError, match="saved by Adam, this optimizer is RMSprop") as info:
        gdbp.load(saved, model, opt, schedule=sched)
    _assert_unchanged(before, _snapshot(model, opt, sched))
    assert isinstance(info.value, CheckpointError) and "optimizer state" in str(info.value)


def test_a_schedule_that_does_not_fit_changes_nothing(saved):
    model = _model(1)
    opt = descent.Adam(model.parameters(), lr=0.3)
    _step(model, opt)
    sched = descent.ExponentialLR(opt, gamma=0.9)
    before = _snapshot(model, opt, sched)
    with pytest.raises(ValueError, match="saved by StepLR, this schedule is ExponentialLR") as info:
        gdbp.load(saved, model, opt, schedule=sched)
    _assert_unchanged(before, _snapshot(model, opt, sched))
    assert isinstance(info.value, CheckpointError) and "schedule state" in str(info.value)


def test_a_generator_state_for_a_module_the_model_lacks(saved):
    model, opt, sched = _target(dropout_at=None)
    before = _snapshot(model, opt, sched)
    with pytest.raises(CheckpointError, match=r"generator state for module '1'") as info:
        gdbp.load(saved, model, opt, schedule=sched)
    _assert_unchanged(before, _snapshot(model, opt, sched))
    assert "strict=False" in str(info.value)

    # strict=False skips it, as it skips state dict entries the model lacks, and loads the rest.
    gdbp.load(saved, model, opt, schedule=sched, strict=False)
    reference = _model(5)
    gdbp.load(saved, reference)
    for k, v in host_state(reference).items():
        assert np.array_equal(host_state(model)[k], v)
    assert opt.step_count == 2 and sched.last_step == 2


def test_a_model_generator_the_file_lacks_is_an_error_when_strict(tmp_path):
    plain = _model(0, dropout_at=None)
    path = gdbp.save(tmp_path / "plain.safetensors", plain)
    model = _model(1)
    before = host_state(model), model[1].rng_state()
    with pytest.raises(CheckpointError, match=r"no generator state for module '1'"):
        gdbp.load(path, model)
    assert all(np.array_equal(before[0][k], v) for k, v in host_state(model).items())
    gdbp.load(path, model, strict=False)
    assert model[1].rng_state() == before[1]


def test_a_malformed_generator_state_is_refused_before_anything_changes(tmp_path, monkeypatch):
    source = _model(0)
    monkeypatch.setattr(source[1], "rng_state", lambda: {"seed": 3, "stream": {"bit_generator": "Nonsense"}})
    path = gdbp.save(tmp_path / "bad.safetensors", source)
    model = _model(1)
    before = host_state(model), model[1].rng_state()
    with pytest.raises(CheckpointError, match=r"generator state of module '1'"):
        gdbp.load(path, model)
    assert all(np.array_equal(before[0][k], v) for k, v in host_state(model).items())
    assert model[1].rng_state() == before[1]


def test_weights_that_do_not_fit_change_nothing_elsewhere(saved):
    model = nn.Sequential(nn.Linear(4, 7, backend="numpy"), nn.Dropout(0.5, seed=2),
                          nn.Linear(7, 2, backend="numpy"))
    opt = descent.Adam(model.parameters(), lr=0.3)
    _step(model, opt)
    before = _snapshot(model, opt, None)
    with pytest.raises(gdbp.ShapeError, match="0.weight"):
        gdbp.load(saved, model, opt)
    _assert_unchanged(before, _snapshot(model, opt, None))


def test_check_state_dict_validates_without_changing(saved):
    model = _model(1)
    before = host_state(model)
    ckpt = gdbp.load(saved)
    assert model.check_state_dict(ckpt.state_dict) == ([], [])
    wrong = dict(ckpt.state_dict, **{"0.bias": np.zeros(3, np.float32)})
    with pytest.raises(gdbp.ShapeError):
        model.check_state_dict(wrong)
    with pytest.raises(TypeError, match="dtype"):
        model.check_state_dict(dict(ckpt.state_dict, **{"0.bias": np.zeros(6, np.float64)}))
    assert all(np.array_equal(before[k], v) for k, v in host_state(model).items())


@pytest.mark.parametrize("flat", [False, True])
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_every_optimizer_is_checked_and_loaded_flat_or_not(tmp_path, name, flat):
    make = getattr(descent, name)
    kw = {"momentum": 0.9} if name == "SGD" else {}
    model = _model(0)
    opt = make(model.parameters(), lr=0.01, flat=flat, **kw)
    for _ in range(2):
        _step(model, opt)
    path = gdbp.save(tmp_path / "m.safetensors", model, opt, epoch=2)

    fresh = _model(1)
    fresh_opt = make(fresh.parameters(), lr=0.5, flat=not flat, **kw)
    gdbp.load(path, fresh, fresh_opt)
    assert fresh_opt.step_count == 2 and fresh_opt.lr == 0.01
    for i, entry in opt.state_dict()["state"].items():
        for k, v in entry.items():
            assert np.array_equal(np.asarray(fresh_opt.state_dict()["state"][i][k]), np.asarray(v)), (i, k)

    # A flat optimizer whose parameters do not fit the file keeps its state and its parameters.
    other = nn.Sequential(nn.Linear(4, 6, backend="numpy", seed=3), nn.Dropout(0.25, seed=0),
                          nn.Linear(6, 3, backend="numpy", seed=4))
    other_opt = make(other.parameters(), lr=0.3, flat=True, **kw)
    _step(other, other_opt)
    before = _snapshot(other, other_opt, None)
    with pytest.raises((CheckpointError, gdbp.ShapeError)):
        gdbp.load(path, other, other_opt)
    with pytest.raises(CheckpointError, match="optimizer state"):
        gdbp.load(path, optimizer=other_opt)
    _assert_unchanged(before, _snapshot(other, other_opt, None))
