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


# -- integers of any kind (operator.index), never bools or floats ------------------------------------


def test_numpy_integers_are_accepted_everywhere_an_int_is_asked_for(tmp_path):
    from gdbp.train import EarlyStopping, ModelCheckpoint

    x, y = blobs(n=20)

    def run(**kw):
        model = mlp()
        ckpt = ModelCheckpoint(tmp_path / "{epoch}.safetensors")
        fit(model, nn.cross_entropy, adam(model), (x, y), batch_size=np.int32(8), progress=False,
            callbacks=[ckpt, EarlyStopping(monitor="cost", patience=np.int64(3))], **kw)
        return model

    with_numpy = run(epochs=np.int64(2), seed=np.int64(3))
    with_python = run(epochs=2, seed=3)
    loaded = gdbp.load(tmp_path / "2.safetensors")
    assert type(loaded.shuffle_seed) is int and loaded.shuffle_seed == 3 and type(loaded.epoch) is int
    for k, v in with_python.state_dict().items():
        assert np.array_equal(with_numpy.state_dict()[k], v)

    model = mlp()
    path = gdbp.save(tmp_path / "m.safetensors", model, epoch=np.int64(1), shuffle_seed=np.uint8(2))
    assert (gdbp.load(path).epoch, gdbp.load(path).shuffle_seed) == (1, 2)
    history = fit(model, nn.cross_entropy, adam(model), (x, y), epochs=np.int16(3), initial_epoch=np.int64(2),
                  progress=False)
    assert history.epochs == [2] and type(history.epochs[0]) is int


@pytest.mark.parametrize("name, value, error", [
    ("epoch", True, TypeError), ("epoch", 1.0, TypeError), ("epoch", "1", TypeError), ("epoch", -1, ValueError),
    ("shuffle_seed", np.float64(2.0), TypeError), ("shuffle_seed", -3, ValueError),
])
def test_save_refuses_what_is_not_an_integer(tmp_path, name, value, error):
    with pytest.raises(error, match=f"save: {name} must be an int >= 0"):
        gdbp.save(tmp_path / "m.safetensors", mlp(), **{name: value})
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("value, error", [(1.5, TypeError), ("a", TypeError), (-1, ValueError), (True, TypeError),
                                          (None, TypeError)])
def test_fit_names_a_bad_seed(value, error):
    with pytest.raises(error, match=rf"fit: seed must be an int >= 0, got .*{value!r}"[:60]):
        _fit(seed=value)


def test_early_stopping_patience_must_be_an_integer():
    from gdbp.train import EarlyStopping

    with pytest.raises(TypeError, match="patience must be an int >= 0"):
        EarlyStopping(patience=2.5)
    with pytest.raises(ValueError, match="patience must be an int >= 0"):
        EarlyStopping(patience=-1)


# -- data that is not finite -------------------------------------------------------------------------


@pytest.mark.parametrize("where, bad", [("x", np.nan), ("x", np.inf), ("y", -np.inf), ("val x", np.nan)])
def test_data_that_is_not_finite_is_refused_before_training(where, bad):
    x, y = blobs(n=20)
    x = np.array(x)
    target = np.eye(3, dtype=np.float32)[y]
    val = (x.copy(), target.copy())
    if where == "x":
        x[5, 2] = bad
    elif where == "y":
        target[7, 1] = bad
    else:
        val[0][3, 0] = bad
    model = mlp()
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    what = {"x": r"train_data x", "y": r"train_data y", "val x": r"val_data x"}[where]
    position = {"x": r"\(5, 2\)", "y": r"\(7, 1\)", "val x": r"\(3, 0\)"}[where]
    with pytest.raises(ValueError, match=rf"fit: {what} is not finite: -?(nan|inf) at position {position}") as info:
        fit(model, nn.mse, adam(model), (x, target), val_data=val, progress=False)
    assert not isinstance(info.value, descent.DivergenceError)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("backend", ["array_api_strict", "torch"])
def test_data_that_is_not_finite_is_refused_on_every_backend(backend):
    x, y = blobs(n=20)
    x = np.array(x)
    x[0, 0] = np.nan
    model = mlp(backend=backend)
    with pytest.raises(ValueError, match=r"train_data x is not finite: nan at position \(0, 0\)"):
        fit(model, nn.cross_entropy, adam(model), (backends.transfer(x, backend), backends.transfer(y, backend)),
            progress=False)
