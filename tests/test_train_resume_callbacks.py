"""fit(..., resume=path) restores the schedule and the state of every callback: an interrupted run equals an
uninterrupted one, decisions of EarlyStopping and BestCheckpoint included."""

from __future__ import annotations

import numpy as np
import pytest
from train_helpers import host_state

import gdbp
from gdbp import backends, descent, nn
from gdbp.train import BestCheckpoint, CheckpointError, EarlyStopping, LRSchedule, ModelCheckpoint, fit


def _data():
    # Validation labels are noisier than the training ones: the validation cost is lowest at
    # epoch 1 and rises from there on, so that both EarlyStopping and BestCheckpoint have work.
    rng = np.random.default_rng(9)
    x = rng.normal(size=(32, 5))
    y = (x[:, 0] + 0.5 * rng.normal(size=32) > 0).astype(np.int64)
    xv = rng.normal(size=(32, 5))
    yv = (xv[:, 0] + 1.5 * rng.normal(size=32) > 0).astype(np.int64)
    return (x, y), (xv, yv)


class Run:
    """One training run's objects, built afresh as a new process would build them."""

    def __init__(self, tmp_path, tag, init_seed=0):
        stream = backends.host_rng(init_seed)
        self.model = nn.Sequential(nn.Linear(5, 32, backend="numpy", rng=stream, dtype="float64"), nn.ReLU(),
                                   nn.Dropout(0.1, seed=3),
                                   nn.Linear(32, 2, backend="numpy", rng=stream, dtype="float64"))
        self.opt = descent.Adam(self.model.parameters(), lr=0.05)
        self.schedule = descent.StepLR(self.opt, step_size=3, gamma=0.9)
        self.every = ModelCheckpoint(tmp_path / f"{tag}-{{epoch}}.safetensors")
        self.stop = EarlyStopping(monitor="val_cost", patience=2, restore_best=True)
        self.best = BestCheckpoint(tmp_path / f"{tag}-best.safetensors", monitor="val_cost")
        # The checkpoint callback first: it must still save the states the later callbacks reach this epoch.
        self.callbacks = [self.every, LRSchedule(self.schedule, per="step"), self.stop, self.best]

    def fit(self, epochs, **kw):
        train, val = _data()
        return fit(self.model, nn.cross_entropy, self.opt, train, epochs=epochs, batch_size=8, val_data=val,
                   callbacks=self.callbacks, progress=False, seed=1, **kw)


def test_an_interrupted_run_equals_an_uninterrupted_one(tmp_path):
    full = Run(tmp_path, "full")
    full_history = full.fit(6)
    # The scenario this test is about: the best epoch comes before the interruption, the stop after it.
    assert full.stop.best_epoch == 1 and full.stop.stopped_epoch == 4 and full_history.epochs == [0, 1, 2, 3, 4]

    first = Run(tmp_path, "part")
    first.fit(3)
    resumed = Run(tmp_path, "part", init_seed=7)  # other initial weights: everything comes from the file
    history = resumed.fit(6, resume=tmp_path / "part-3.safetensors")

    assert history.epochs == [3, 4]
    assert history["val_cost"] == full_history["val_cost"][3:] and history["lr"] == full_history["lr"][3:]
    assert (resumed.stop.best_epoch, resumed.stop.stopped_epoch, resumed.stop.wait, resumed.stop.best) == (
        full.stop.best_epoch, full.stop.stopped_epoch, full.stop.wait, full.stop.best)
    assert resumed.best.best == full.best.best
    assert resumed.best.saved == [] and full.best.saved == [str(tmp_path / "full-best.safetensors")] * 2
    assert gdbp.load(tmp_path / "part-best.safetensors").epoch == gdbp.load(tmp_path / "full-best.safetensors").epoch
    assert resumed.schedule.last_step == full.schedule.last_step == 20 and resumed.opt.lr == full.opt.lr
    # EarlyStopping put back the best epoch's weights, which the resumed run got from the checkpoint.
    full_state, resumed_state = host_state(full.model), host_state(resumed.model)
    assert all(np.array_equal(resumed_state[k], v) for k, v in full_state.items())
    assert resumed.model[2].rng_state() == full.model[2].rng_state()


def test_resuming_a_run_that_early_stopping_ended_trains_no_further(tmp_path):
    ended = Run(tmp_path, "ended")
    ended.fit(6)
    assert ended.stop.stopped_epoch == 4
    again = Run(tmp_path, "again", init_seed=7)
    history = again.fit(8, resume=tmp_path / "ended-5.safetensors")
    assert history.epochs == [] and again.stop.stopped_epoch == 4
    assert all(np.array_equal(host_state(again.model)[k], v) for k, v in host_state(ended.model).items())


def test_a_schedule_given_as_a_callback_is_restored(tmp_path):
    train, _ = _data()

    def run(epochs, init_seed, **kw):
        stream = backends.host_rng(init_seed)
        model = nn.Sequential(nn.Linear(5, 8, backend="numpy", rng=stream, dtype="float64"), nn.Tanh(),
                              nn.Linear(8, 2, backend="numpy", rng=stream, dtype="float64"))
        opt = descent.SGD(model.parameters(), lr=0.5, momentum=0.9)
        cosine = descent.CosineAnnealingLR(opt, T_max=24)
        callbacks = [LRSchedule(cosine, per="step"), ModelCheckpoint(tmp_path / "c-{epoch}.safetensors")]
        fit(model, nn.cross_entropy, opt, train, epochs=epochs, batch_size=8, callbacks=callbacks, progress=False,
            **kw)
        return model, cosine

    full, full_cosine = run(6, 0)
    run(3, 0)
    resumed, cosine = run(6, 5, resume=tmp_path / "c-3.safetensors")
    assert cosine.last_step == full_cosine.last_step == 24
    assert all(np.array_equal(host_state(resumed)[k], v) for k, v in host_state(full).items())


def test_resume_with_other_stateful_callbacks_is_refused_before_anything_changes(tmp_path):
    first = Run(tmp_path, "p")
    first.fit(2)
    other = Run(tmp_path, "q", init_seed=7)
    other.callbacks = [other.every, LRSchedule(other.schedule, per="step"), other.best]  # no EarlyStopping
    before = host_state(other.model)
    with pytest.raises(ValueError, match=r"EarlyStopping:0.*same callbacks"):
        other.fit(4, resume=tmp_path / "p-2.safetensors")
    assert all(np.array_equal(host_state(other.model)[k], v) for k, v in before.items())
    assert other.opt.step_count == 0 and other.schedule.last_step == 0


def test_callback_states_round_trip_and_are_checked():
    stop = EarlyStopping(monitor="cost", patience=3, restore_best=False)
    stop.on_train_begin(None)
    state = stop.state_dict()
    assert state == {"best": float("inf"), "best_epoch": None, "wait": 0, "stopped_epoch": None, "weights": None}
    fresh = EarlyStopping(monitor="cost", patience=3, restore_best=False)
    fresh.load_state_dict(dict(state, wait=2, best=0.5, best_epoch=4))
    assert (fresh.wait, fresh.best, fresh.best_epoch) == (2, 0.5, 4)
    for bad in (dict(state, wait=-1), dict(state, wait="2"), dict(state, best="low"), {"wait": 0}):
        with pytest.raises((ValueError, TypeError)):
            fresh.load_state_dict(bad)
    assert (fresh.wait, fresh.best) == (2, 0.5)
    best = BestCheckpoint("unused.safetensors", monitor="cost")
    best.load_state_dict({"best": 0.25})
    assert best.best == 0.25
    with pytest.raises(ValueError, match="best"):
        best.load_state_dict({"best": None})


def test_a_forged_callback_state_is_a_checkpoint_error(tmp_path):
    first = Run(tmp_path, "f")
    first.fit(1)
    path = tmp_path / "f-1.safetensors"
    from test_train_checkpoint_files import forge

    def edit(header, doc):
        for item in doc["run"]["__dict__"]:
            if item[0] == "callbacks":
                for entry in item[1]["__dict__"]:
                    if entry[0] == "EarlyStopping:0":
                        entry[1] = {"__dict__": [["wait", "many"]]}
        return doc

    forge(path, edit)
    other = Run(tmp_path, "g", init_seed=7)
    before = host_state(other.model)
    with pytest.raises(CheckpointError, match="EarlyStopping:0"):
        other.fit(3, resume=path)
    assert all(np.array_equal(host_state(other.model)[k], v) for k, v in before.items())
