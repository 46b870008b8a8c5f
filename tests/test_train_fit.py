"""gdbp.train.fit, evaluate, predict: the loop, History, progress bar, metrics, callbacks."""

from __future__ import annotations

import io
import math
import sys

import numpy as np
import pytest
from conftest import backend_params, to_numpy
from train_helpers import adam, blobs, host_state, mlp

import gdbp
from gdbp import backends, descent, nn
from gdbp.train import (
    BestCheckpoint,
    Callback,
    EarlyStopping,
    History,
    LRSchedule,
    ModelCheckpoint,
    accuracy,
    evaluate,
    fit,
    predict,
)


# -- the loop and History ---------------------------------------------------------------------------


def test_history_logs_every_epoch_and_cost_falls():
    x, y = blobs()
    model = mlp()
    history = fit(model, nn.cross_entropy, adam(model), (x, y), epochs=4, batch_size=16, val_data=(x, y),
                  metrics=["accuracy"], progress=False)
    assert isinstance(history, History)
    assert history.epochs == [0, 1, 2, 3]
    assert list(history.keys()) == ["cost", "accuracy", "val_cost", "val_accuracy", "lr", "seconds"]
    assert all(len(v) == 4 for v in history.history.values())
    assert history["cost"][-1] < history["cost"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert history["lr"] == [0.01] * 4
    with pytest.raises(KeyError, match="holds"):
        history["val_f1"]


def test_epoch_values_are_whole_data_means():
    # With lr = 0 the weights never change, so the epoch's running means equal evaluate() on the same data.
    x, y = blobs(n=50)
    model = mlp()
    history = fit(model, nn.cross_entropy, descent.SGD(model.parameters(), lr=0.0), (x, y), epochs=1,
                  batch_size=8, val_data=(x[:20], y[:20]), metrics=["accuracy"], progress=False)
    whole = evaluate(model, (x, y), ["cost", "accuracy"], cost=nn.cross_entropy)
    part = evaluate(model, (x[:20], y[:20]), ["cost", "accuracy"], cost=nn.cross_entropy, batch_size=7)
    assert history["cost"][0] == pytest.approx(whole["cost"], rel=1e-5)
    assert history["accuracy"][0] == pytest.approx(whole["accuracy"], rel=1e-6)
    assert history["val_cost"][0] == pytest.approx(part["cost"], rel=1e-5)
    assert history["val_accuracy"][0] == pytest.approx(part["accuracy"], rel=1e-6)


class RecordRows(nn.Module):
    """A linear model that records the first feature of every row it sees (the sample's id)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 1, backend="numpy", seed=0)
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(np.array(x.data[:, 0]))
        return self.fc(x)


def _ids(n):
    ids = np.arange(n, dtype=np.float32)[:, None]
    return ids, np.zeros((n, 1), np.float32)


def test_each_epoch_visits_every_sample_once_in_a_seeded_order():
    x, y = _ids(10)
    model = RecordRows()
    fit(model, nn.mse, descent.SGD(model.parameters(), lr=0.0), (x, y), epochs=2, batch_size=4, seed=3,
        progress=False)
    sizes = [len(b) for b in model.seen]
    assert sizes == [4, 4, 2, 4, 4, 2]
    first, second = np.concatenate(model.seen[:3]), np.concatenate(model.seen[3:])
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert list(first) != list(range(10)) and list(first) != list(second)

    again = RecordRows()
    fit(again, nn.mse, descent.SGD(again.parameters(), lr=0.0), (x, y), epochs=2, batch_size=4, seed=3,
        progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(model.seen, again.seen))
    other = RecordRows()
    fit(other, nn.mse, descent.SGD(other.parameters(), lr=0.0), (x, y), epochs=1, batch_size=10, seed=4,
        progress=False)
    assert list(other.seen[0]) != list(first)


def test_shuffle_false_keeps_the_order():
    x, y = _ids(7)
    model = RecordRows()
    fit(model, nn.mse, descent.SGD(model.parameters(), lr=0.0), (x, y), batch_size=3, shuffle=False, progress=False)
    assert [list(b) for b in model.seen] == [[0, 1, 2], [3, 4, 5], [6]]


def test_initial_epoch_continues_numbering_and_shuffle_sequence():
    x, y = _ids(6)
    full = RecordRows()
    fit(full, nn.mse, descent.SGD(full.parameters(), lr=0.0), (x, y), epochs=3, batch_size=6, progress=False)
    late = RecordRows()
    history = fit(late, nn.mse, descent.SGD(late.parameters(), lr=0.0), (x, y), epochs=3, batch_size=6,
                  initial_epoch=2, progress=False)
    assert history.epochs == [2]
    assert np.array_equal(late.seen[0], full.seen[2])


def test_fit_accepts_tensors():
    x, y = blobs(n=40)
    model = mlp()
    history = fit(model, nn.cross_entropy, adam(model), (gdbp.tensor(x), gdbp.tensor(y)), epochs=1, progress=False)
    assert math.isfinite(history["cost"][0])


@pytest.mark.parametrize("backend", backend_params(("array_api_strict", "torch", "cupy")), indirect=True)
def test_fit_on_another_backend_matches_numpy(backend):
    x, y = blobs(n=60)
    reference = mlp()
    ref = fit(reference, nn.cross_entropy, adam(reference), (x, y), epochs=2, batch_size=16,
              metrics=["accuracy"], progress=False)

    xb, yb = backends.transfer(x, backend), backends.transfer(y, backend)
    model = mlp(backend=backend)
    history = fit(model, nn.cross_entropy, adam(model), (xb, yb), epochs=2, batch_size=16, val_data=(xb, yb),
                  metrics=["accuracy"], progress=False)
    np.testing.assert_allclose(history["cost"], ref["cost"], rtol=1e-4)
    assert history["accuracy"] == pytest.approx(ref["accuracy"])
    for k, v in model.state_dict().items():
        assert type(v) is backend.array_type
        np.testing.assert_allclose(to_numpy(v), host_state(reference)[k], rtol=1e-4, atol=1e-5)
    out = predict(model, xb, batch_size=25)
    assert type(out) is backend.array_type and tuple(out.shape) == (60, 3)


# -- the progress bar -----------------------------------------------------------------------------


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stream, progress, drawn", [
    (io.StringIO(), True, False),   # not a terminal: never a bar
    (FakeTTY(), False, False),      # a terminal, but progress=False
    (FakeTTY(), True, True),
])
def test_progress_bar_only_on_a_terminal_when_asked(monkeypatch, stream, progress, drawn):
    monkeypatch.setattr(sys, "stderr", stream)
    x, y = blobs(n=40)
    model = mlp()
    fit(model, nn.cross_entropy, adam(model), (x, y), epochs=2, batch_size=8, metrics=["accuracy"],
        val_data=(x, y), progress=progress)
    text = stream.getvalue()
    if drawn:
        assert "epoch 1/2" in text and "epoch 2/2" in text
        assert "cost" in text and "samples/s" in text and "val_acc" in text and "5/5" in text
    else:
        assert text == ""


def test_missing_tqdm_is_a_clear_import_error(monkeypatch):
    monkeypatch.setattr(sys, "stderr", FakeTTY())
    monkeypatch.setitem(sys.modules, "tqdm", None)
    x, y = blobs(n=8)
    model = mlp()
    with pytest.raises(ImportError, match=r"pip install 'gdbp\[train\]'.*progress=False"):
        fit(model, nn.cross_entropy, adam(model), (x, y), progress=True)
    fit(model, nn.cross_entropy, adam(model), (x, y), progress=False)  # no bar, no tqdm needed


# -- divergence -----------------------------------------------------------------------------------


class Log(nn.Module):
    def forward(self, x):
        return x.__array_namespace__().log(x)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_divergence_names_epoch_and_step_and_suggests_smaller_lr():
    x = np.ones((12, 1), np.float32)
    x[6] = -1.0  # log(-1) makes the cost NaN at step 7 of epoch 1 (batch size 1, no shuffling)
    y = np.zeros((12, 1), np.float32)
    model = nn.Sequential(Log(), nn.Linear(1, 1, backend="numpy", seed=0))
    opt = descent.SGD(model.parameters(), lr=0.1)
    with pytest.raises(descent.DivergenceError, match=r"epoch 1, step 7 of 12.*smaller learning rate"):
        fit(model, nn.mse, opt, (x, y), epochs=3, batch_size=1, shuffle=False, sync_every=5, progress=False)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_exploding_learning_rate_raises_divergence():
    x, y = blobs(n=64)
    target = np.asarray(np.eye(3, dtype=np.float32)[y] * 1e3)
    model = mlp()
    opt = descent.SGD(model.parameters(), lr=1e3)
    with pytest.raises(descent.DivergenceError) as info:
        fit(model, nn.mse, opt, (x, target), epochs=5, batch_size=8, progress=False)
    assert info.value.lr == 1e3 and "epoch 1" in str(info.value)


# -- evaluate and predict --------------------------------------------------------------------------


def test_evaluate_and_predict_restore_each_module_mode_and_record_no_graph():
    x, y = blobs(n=30)
    model = mlp()
    model.train()
    model[1].eval()  # a mixed state must come back as it was
    scores = evaluate(model, (x, y), ["accuracy", "cost"], cost=nn.cross_entropy, batch_size=7)
    assert set(scores) == {"accuracy", "cost"} and 0.0 <= scores["accuracy"] <= 1.0
    out = predict(model, x, batch_size=7)
    assert [m.training for m in model.modules()] == [True, True, False, True]
    assert all(p.grad is None for p in model.parameters())
    whole = predict(model, x, batch_size=1000)
    np.testing.assert_allclose(out, whole, rtol=1e-6)
    model.eval()
    predict(model, x)
    assert not any(m.training for m in model.modules())


def test_evaluate_needs_metrics_and_cost_for_cost():
    x, y = blobs(n=10)
    with pytest.raises(ValueError, match="'cost' needs the cost function"):
        evaluate(mlp(), (x, y), ["cost"])
    with pytest.raises(ValueError, match="no metrics"):
        evaluate(mlp(), (x, y), [])
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        evaluate(mlp(), (x, y), ["f1"])


# -- metrics --------------------------------------------------------------------------------------


def test_accuracy_on_logits_one_hot_and_binary():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]], np.float32)
    labels = np.array([0, 1, 1, 2])
    assert float(accuracy(logits, labels)) == 0.5
    assert float(accuracy(logits, np.eye(3, dtype=np.float32)[labels])) == 0.5
    binary = np.array([[1.5], [-0.5], [0.2]], np.float32)
    assert float(accuracy(binary, np.array([[1.0], [1.0], [1.0]], np.float32))) == pytest.approx(2 / 3)
    with pytest.raises(TypeError, match="integer class labels"):
        accuracy(logits, labels.astype(np.float32))
    with pytest.raises(gdbp.ShapeError, match="do not pair"):
        accuracy(logits, labels[:, None, None])


def test_callable_and_named_metrics():
    x, y = blobs(n=40)
    model = mlp()

    def error_rate(pred, target):
        return 1.0 - accuracy(pred, target)

    history = fit(model, nn.cross_entropy, adam(model), (x, y), epochs=2, metrics={"err": error_rate,
                  "acc": "accuracy"}, val_data=(x, y), progress=False)
    for prefix in ("", "val_"):
        assert history[prefix + "err"] == pytest.approx([1 - a for a in history[prefix + "acc"]], abs=1e-6)

    def per_sample(pred, target):
        return pred.sum(axis=-1)

    with pytest.raises(ValueError, match="returned shape"):
        fit(model, nn.cross_entropy, adam(model), (x, y), metrics=[per_sample], progress=False)


# -- callbacks ------------------------------------------------------------------------------------


class Recorder(Callback):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def on_train_begin(self, run):
        self.log.append((self.name, "train_begin"))

    def on_epoch_begin(self, run, epoch):
        self.log.append((self.name, "epoch_begin", epoch))

    def on_step_end(self, run, step):
        self.log.append((self.name, "step", step))

    def on_epoch_end(self, run, epoch, logs):
        self.log.append((self.name, "epoch_end", epoch, tuple(logs), run.optimizer.lr))

    def on_train_end(self, run):
        self.log.append((self.name, "train_end"))


def test_callbacks_run_in_order_after_the_schedule():
    x, y = blobs(n=10)
    model = mlp()
    opt = adam(model, lr=0.1)
    log = []
    fit(model, nn.cross_entropy, opt, (x, y), epochs=2, batch_size=5, val_data=(x, y),
        callbacks=[Recorder("a", log), Recorder("b", log)], schedule=descent.StepLR(opt, step_size=1, gamma=0.5),
        progress=False)
    keys = ("cost", "val_cost", "lr", "seconds")
    expected = [("a", "train_begin"), ("b", "train_begin")]
    for epoch, lr_after in ((0, 0.05), (1, 0.025)):
        expected += [("a", "epoch_begin", epoch), ("b", "epoch_begin", epoch)]
        for step in (0, 1):
            expected += [("a", "step", step), ("b", "step", step)]
        expected += [("a", "epoch_end", epoch, keys, lr_after), ("b", "epoch_end", epoch, keys, lr_after)]
    expected += [("a", "train_end"), ("b", "train_end")]
    assert log == expected


def test_early_stopping_stops_and_restores_the_best_weights():
    x, y = blobs(n=40)
    model = mlp()
    snapshots = {}

    class Snapshot(Callback):
        def on_epoch_end(self, run, epoch, logs):
            snapshots[epoch] = host_state(run.model)

    # The training cost falls every epoch; monitored in "max" mode, epoch 0 stays the best.
    stop = EarlyStopping(monitor="cost", mode="max", patience=2)
    history = fit(model, nn.cross_entropy, adam(model), (x, y), epochs=20, callbacks=[Snapshot(), stop],
                  progress=False)
    assert history.epochs == [0, 1, 2, 3]
    assert stop.best_epoch == 0 and stop.stopped_epoch == 3 and stop.best == history["cost"][0]
    for k, v in host_state(model).items():
        assert np.array_equal(v, snapshots[0][k])
        assert not np.array_equal(v, snapshots[3][k])


def test_early_stopping_on_improving_metric_runs_to_the_end_and_validates_monitor():
    x, y = blobs(n=40)
    model = mlp()
    stop = EarlyStopping(monitor="cost", patience=0, min_delta=0.0)
    history = fit(model, nn.cross_entropy, adam(model), (x, y), epochs=3, callbacks=[stop], progress=False)
    assert len(history) == 3 and stop.stopped_epoch is None and stop.best_epoch == 2
    with pytest.raises(KeyError, match=r"monitor='val_cost' is not logged.*val_data"):
        fit(model, nn.cross_entropy, adam(model), (x, y), callbacks=[EarlyStopping()], progress=False)


def test_best_and_model_checkpoints(tmp_path):
    x, y = blobs(n=40)
    model = mlp()
    best = BestCheckpoint(tmp_path / "best.safetensors", monitor="cost", mode="max")
    every = ModelCheckpoint(tmp_path / "ckpt-{epoch}.safetensors")
    fit(model, nn.cross_entropy, adam(model), (x, y), epochs=3, callbacks=[best, every], progress=False)
    assert best.saved == [str(tmp_path / "best.safetensors")]  # only epoch 0 was "best" in max mode
    assert every.saved == [str(tmp_path / f"ckpt-{e}.safetensors") for e in (1, 2, 3)]
    ckpt = gdbp.load(tmp_path / "best.safetensors")
    assert ckpt.epoch == 1 and ckpt.shuffle_seed == 0 and set(ckpt.extra["logs"]) >= {"cost", "lr"}
    last = gdbp.load(tmp_path / "ckpt-3.safetensors")
    for k, v in host_state(model).items():
        assert np.array_equal(to_numpy(last.state_dict[k]), v)


def test_reduce_lr_on_plateau_gets_the_monitored_value():
    x, y = blobs(n=40)
    model = mlp()
    opt = adam(model, lr=0.1)
    # mode "max" on the falling cost: every epoch is a plateau, so the lr halves after each one.
    plateau = descent.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=0)
    history = fit(model, nn.cross_entropy, opt, (x, y), epochs=3, schedule=plateau, progress=False)
    assert history["lr"] == pytest.approx([0.1, 0.1, 0.05])
    assert plateau.best == pytest.approx(history["cost"][0])


def test_lr_schedule_per_step():
    calls = []

    class Counting:
        def step(self, metric=None):
            calls.append(metric)

    x, y = blobs(n=20)
    model = mlp()
    fit(model, nn.cross_entropy, adam(model), (x, y), epochs=2, batch_size=8,
        callbacks=[LRSchedule(Counting(), per="step")], progress=False)
    assert calls == [None] * 6
    with pytest.raises(ValueError, match="per must be"):
        LRSchedule(Counting(), per="batch")


def test_history_plot_writes_a_png(tmp_path):
    history = History()
    for epoch in range(3):
        history.append(epoch, {"cost": 1.0 / (epoch + 1), "accuracy": 0.5 + 0.1 * epoch, "val_cost": 1.2 / (epoch + 1),
                               "lr": 0.1, "seconds": 0.01})
    history.plot(tmp_path / "plots" / "loss.png")
    data = (tmp_path / "plots" / "loss.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    fig = gdbp.train.plot_history(history, tmp_path / "again.png")
    assert [ax.get_title() for ax in fig.axes] == ["cost", "accuracy"]
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 1  # train + validation cost; train accuracy
    with pytest.raises(ValueError, match="empty"):
        History().plot(tmp_path / "empty.png")


def test_plot_without_matplotlib_is_a_clear_import_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    history = History()
    history.append(0, {"cost": 1.0})
    with pytest.raises(ImportError, match=r"pip install 'gdbp\[plot\]'"):
        history.plot(tmp_path / "x.png")
