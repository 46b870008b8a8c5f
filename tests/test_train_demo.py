"""The digits demo: an MLP reaches >= 97% accuracy on the held-out 25%."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import gdbp
from gdbp.train import demo, evaluate


@pytest.mark.slow
def test_demo_reaches_97_percent_on_held_out_digits(tmp_path, capsys):
    result = demo.run_demo(backend="numpy", out=tmp_path / "demo", progress=False, seed=0)
    assert result["test_accuracy"] >= 0.97
    assert result["backend"] == "numpy" and result["epochs"] == 30
    printed = capsys.readouterr().out
    assert "backend: numpy" in printed
    assert f"test accuracy: {result['test_accuracy']:.2%}" in printed
    assert "time per epoch:" in printed
    assert str(tmp_path / "demo" / "model.safetensors") in printed
    assert str(tmp_path / "demo" / "loss.png") in printed
    assert (tmp_path / "demo" / "loss.png").read_bytes()[:4] == b"\x89PNG"

    # The checkpoint holds the trained model: loaded into a fresh one, it scores the same.
    x_train, y_train, x_test, y_test = demo._digits(gdbp.backends.resolve("numpy"))
    assert x_test.shape == (450, 64) and x_train.dtype == np.float32 and y_test.dtype == np.int64
    from sklearn.datasets import load_digits

    per_class = np.bincount(load_digits().target)
    assert np.all(np.abs(np.bincount(y_test) - per_class / 4) <= 1)  # stratified: each class held out in proportion
    assert abs(float(np.mean(x_train))) < 1e-5
    fresh = demo._model("numpy", seed=1, hidden=128)
    ckpt = gdbp.load(result["checkpoint"], fresh)
    assert ckpt.epoch == 30 and ckpt.extra["test_accuracy"] == result["test_accuracy"]
    assert evaluate(fresh, (x_test, y_test), ["accuracy"])["accuracy"] == result["test_accuracy"]


def test_demo_without_scikit_learn_is_a_clear_import_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r"sklearn.*pip install 'gdbp\[demo\]'"):
        demo.run_demo(out=tmp_path, progress=False)


def test_demo_rejects_an_unknown_optimizer(tmp_path):
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        demo.run_demo(optimizer="lbfgs", out=tmp_path, progress=False)
