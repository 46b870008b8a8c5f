"""Class labels and embedding indices outside their range are refused, naming the value and its position."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CPU_BACKENDS, backend_params, to_numpy
from train_helpers import adam, blobs, host_state, mlp

from gdbp import backends, nn
from gdbp.nn import functional as F
from gdbp.train import fit

cpu = pytest.mark.parametrize("backend", backend_params(CPU_BACKENDS), indirect=True)


def _on(backend, value, dtype=np.int64):
    return backends.transfer(np.asarray(value, dtype=dtype), backend)


def _logits(backend, shape=(4, 3)):
    return _on(backend, np.linspace(-1, 1, int(np.prod(shape))).reshape(shape), np.float64)


COSTS = {
    "cross_entropy": lambda z, y: nn.cross_entropy(z, y),
    "F.cross_entropy": lambda z, y: F.cross_entropy(z, y, 0.1),
    "CrossEntropyLoss": lambda z, y: nn.CrossEntropyLoss(reduction="sum")(z, y),
    "nll": lambda z, y: nn.nll(z, y),
    "F.nll_loss": lambda z, y: F.nll_loss(z, y, "none"),
    "NLLLoss": lambda z, y: nn.NLLLoss()(z, y),
}


@cpu
@pytest.mark.parametrize("cost", sorted(COSTS))
@pytest.mark.parametrize("labels, value, position", [
    ([0, 1, -1, 1], -1, "(2,)"), ([0, 3, 1, 1], 3, "(1,)"), ([-5, 7, 0, 0], -5, "(0,)"),
])
def test_costs_refuse_labels_outside_the_classes(backend, cost, labels, value, position):
    with pytest.raises(IndexError, match=rf"label {value} at position \{position[:-1]}\) .*\[0, 3\)"):
        COSTS[cost](_logits(backend), _on(backend, labels))


@cpu
def test_labels_in_range_still_give_the_cost(backend):
    z = _logits(backend)
    y = _on(backend, [0, 2, 1, 2])
    logp = to_numpy(z) - np.log(np.exp(to_numpy(z)).sum(-1, keepdims=True))
    assert np.allclose(to_numpy(nn.cross_entropy(z, y)), -logp[np.arange(4), [0, 2, 1, 2]].mean())


@cpu
def test_labels_of_more_dimensions_name_the_whole_position(backend):
    z = _logits(backend, (2, 3, 4))
    with pytest.raises(IndexError, match=r"label 4 at position \(1, 2\) .*\[0, 4\)"):
        nn.cross_entropy(z, _on(backend, [[0, 1, 2], [3, 0, 4]]))


@cpu
@pytest.mark.parametrize("indices, value, position", [
    ([[1, 2], [10, 3]], 10, r"\(1, 0\)"), ([[1, -1], [0, 3]], -1, r"\(0, 1\)"),
])
def test_embedding_refuses_indices_outside_the_table(backend, indices, value, position):
    emb = nn.Embedding(10, 4, backend=backend, seed=0)
    with pytest.raises(IndexError, match=rf"index {value} at position {position} .*\[0, 10\)"):
        emb(_on(backend, indices))
    with pytest.raises(IndexError, match=rf"index {value} at position {position}"):
        F.embedding(_on(backend, indices), emb.weight)
    assert tuple(emb(_on(backend, [[9, 0]])).shape) == (1, 2, 4)


@pytest.mark.parametrize("backend", backend_params(), indirect=True)
def test_fit_checks_the_labels_once_before_the_first_step(backend):
    x, _ = blobs(n=20, backend=backend)
    y = backends.transfer(np.full(20, -1, dtype=np.int64), backend)
    model = mlp(backend=backend)
    before = host_state(model)
    with pytest.raises(IndexError, match=r"fit: train_data y holds label -1 at position \(0,\).*3 class"):
        fit(model, nn.cross_entropy, adam(model), (x, y), progress=False)
    assert all(np.array_equal(v, host_state(model)[k]) for k, v in before.items())  # no step was taken


@pytest.mark.parametrize("backend", backend_params(), indirect=True)
def test_fit_checks_the_validation_labels_too(backend):
    x, y = blobs(n=20, backend=backend)
    bad = backends.transfer(np.array([0, 1, 2] * 6 + [3, 0], dtype=np.int64), backend)
    model = mlp(backend=backend)
    with pytest.raises(IndexError, match=r"fit: val_data y holds label 3 at position \(18,\)"):
        fit(model, nn.NLLLoss(), adam(model), (x, y), val_data=(x, bad), progress=False)


def test_fit_checks_costs_that_declare_class_labels():
    import functools

    x, _ = blobs(n=20)
    y = np.array([5] * 20)
    model = mlp()
    smoothed = functools.partial(nn.cross_entropy, label_smoothing=0.1)
    with pytest.raises(IndexError, match="fit: train_data y holds label 5"):
        fit(model, smoothed, adam(model), (x, y), progress=False)

    def own(pred, target):
        return nn.cross_entropy(pred, target)

    own.takes_class_labels = True
    with pytest.raises(IndexError, match="fit: train_data y holds label 5"):
        fit(model, own, adam(model), (x, y), progress=False)


# -- the GPU paths, with a stand-in backend (no device needed) --------------------------------------


class _FakeGPU:
    """A NumPy backend that says it is a GPU, to follow the code paths taken for one."""

    is_gpu = True

    def __init__(self):
        import array_api_compat.numpy as xp

        self.xp = xp


def test_on_a_gpu_the_range_check_copies_two_numbers_unless_one_is_bad(monkeypatch):
    from gdbp.backends import _host

    copied = []
    real = _host.to_numpy

    def counting(x):
        copied.append(np.shape(x))
        return real(x)

    monkeypatch.setattr(_host, "backend_of", lambda x: _FakeGPU())
    monkeypatch.setattr(_host, "to_numpy", counting)
    assert backends.out_of_range(np.array([[0, 2], [1, 1]]), 0, 3) is None
    assert copied == [(2,)]
    assert backends.out_of_range(np.array([[0, 2], [3, 1]]), 0, 3) == ((1, 0), 3)
    assert copied == [(2,), (2,), (2, 2)]
    copied.clear()
    assert backends.first_not_finite(np.array([1.0, 2.0])) is None and copied == [()]
    position, value = backends.first_not_finite(np.array([1.0, np.inf, np.nan]))
    assert position == (1,) and value == np.inf


def test_the_cost_functions_do_not_read_labels_on_a_gpu():
    from gdbp.nn._util import refuse_out_of_range

    refuse_out_of_range("cross_entropy", "label", np.array([-1]), 3, "", backend=_FakeGPU())  # no error, no read
    with pytest.raises(IndexError, match="label -1 at position"):
        refuse_out_of_range("cross_entropy", "label", np.array([-1]), 3, "")
