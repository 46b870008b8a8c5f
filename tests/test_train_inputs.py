"""Bad input to gdbp.train: each a clear error naming the problem."""

from __future__ import annotations

import math

import numpy as np
import pytest
from train_helpers import adam, blobs, mlp

import gdbp
from gdbp import backends, descent, nn
from gdbp.train import evaluate, fit, predict


def _fit(model=None, data=None, **kw):
    model = mlp() if model is None else model
    data = blobs(n=20) if data is None else data
    kw.setdefault("progress", False)
    return fit(model, nn.cross_entropy, adam(model), data, **kw)


def test_labels_of_the_wrong_dtype():
    x, y = blobs(n=20)
    with pytest.raises(TypeError, match="integer class labels.*float32"):
        _fit(data=(x, y.astype(np.float32)))


def test_labels_of_the_wrong_shape():
    x, y = blobs(n=20)
    with pytest.raises(gdbp.ShapeError, match=r"\(20, 1\)|\(8, 1\)|shape"):
        _fit(data=(x, y[:, None]), batch_size=8)


def test_mismatched_numbers_of_samples():
    x, y = blobs(n=20)
    with pytest.raises(gdbp.ShapeError, match="train_data has 20 samples in x but 19 in y"):
        _fit(data=(x, y[:19]))
    with pytest.raises(gdbp.ShapeError, match="val_data has 20 samples in x but 5 in y"):
        _fit(val_data=(x, y[:5]))
    with pytest.raises(gdbp.ShapeError, match="data has 20 samples in x but 3 in y"):
        evaluate(mlp(), (x, y[:3]), ["accuracy"])


@pytest.mark.parametrize("lr", [-0.1, math.nan, math.inf])
@pytest.mark.parametrize("optimizer", [descent.SGD, descent.Adam])
def test_negative_or_nan_learning_rate(lr, optimizer):
    with pytest.raises(ValueError, match="learning rate lr=.*finite number >= 0"):
        optimizer(mlp().parameters(), lr=lr)


def test_data_on_another_backend_than_the_parameters():
    x, y = blobs(n=20)
    xt, yt = backends.transfer(x, "torch"), backends.transfer(y, "torch")
    with pytest.raises(backends.BackendMismatchError) as info:
        _fit(data=(xt, yt))
    message = str(info.value)
    assert "torch" in message and "numpy" in message
    assert "model.to('torch')" in message and "gdbp.transfer(x, 'numpy')" in message
    with pytest.raises(backends.BackendMismatchError, match="val_data y lives on torch"):
        _fit(val_data=(x, yt))
    with pytest.raises(backends.BackendMismatchError, match=r"predict: x lives on torch.*gdbp.transfer\(x, 'numpy'\)"):
        predict(mlp(), xt)


def test_a_parameter_on_another_backend_than_the_rest():
    model = mlp()
    model[2].to("array_api_strict")
    with pytest.raises(backends.BackendMismatchError, match=r"two backends.*numpy.*array_api_strict.*model.to"):
        fit(model, nn.cross_entropy, descent.SGD(list(model.parameters())[:2], lr=0.1), blobs(n=20),
            progress=False)


@pytest.mark.parametrize("name, value, error", [
    ("epochs", 0, ValueError), ("epochs", -2, ValueError), ("epochs", 1.5, TypeError), ("epochs", True, TypeError),
    ("batch_size", 0, ValueError), ("batch_size", -8, ValueError), ("batch_size", "32", TypeError),
    ("sync_every", 0, ValueError),
])
def test_epochs_and_batch_size_must_be_positive_ints(name, value, error):
    with pytest.raises(error, match=f"fit: {name} must be a positive int"):
        _fit(**{name: value})


def test_data_must_be_a_pair_of_arrays():
    x, y = blobs(n=20)
    with pytest.raises(TypeError, match="train_data must be a pair"):
        _fit(data=x)
    with pytest.raises(TypeError, match=r"train_data x must be an array .* got list.*gdbp.tensor"):
        _fit(data=(x.tolist(), y))
    with pytest.raises(ValueError, match="holds no samples"):
        _fit(data=(x[:0], y[:0]))


def test_initial_epoch_must_be_a_non_negative_int():
    with pytest.raises(ValueError, match="initial_epoch must be an int >= 0"):
        _fit(initial_epoch=-1)


def test_a_cost_that_is_not_a_scalar():
    x, y = blobs(n=20)
    model = mlp()

    def per_sample(pred, target):
        return nn.cross_entropy(pred, target, reduction="none")

    with pytest.raises(TypeError, match="cost must return a Tensor holding one value.*reduction='mean'"):
        fit(model, per_sample, adam(model), (x, y), progress=False)


def test_a_model_without_parameters():
    with pytest.raises(ValueError, match="no parameters"):
        fit(nn.ReLU(), nn.mse, None, blobs(n=4), progress=False)
