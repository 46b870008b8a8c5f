"""The guarantee: N ranks with batch_size=b train the weights one process trains with batch_size=N*b.

Every rank trains with ``distributed=comm`` and, alone, the reference (one
process, ``distributed=None``, the global batch); in float64 the two agree to
1e-12 after several epochs, shuffled or not, with a last batch that is uneven
or leaves a rank without samples, with Adam and SGD with momentum, flat or
not. Size 1 (the main pytest run) checks the same code path with one rank.
"""

from __future__ import annotations

import numpy as np
import pytest
from dist_helpers import comm, gathered  # noqa: F401  (comm is a fixture)
from train_helpers import host_state

from gdbp import backends, descent, distributed, nn, train

B = 4  # the batch of one rank


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    y = (x[:, 0] - x[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(np.int64) + (x[:, 2] > 1)
    return x, y


def _model(seed=0, batchnorm=False):
    stream = backends.host_rng(seed)
    layers = [nn.Linear(5, 12, rng=stream, dtype="float64"), nn.Tanh()]
    if batchnorm:
        layers += [nn.BatchNorm1d(12, dtype="float64")]
    return nn.Sequential(*layers, nn.Linear(12, 3, rng=stream, dtype="float64"))


def _optimizer(name, model, flat):
    if name == "adam":
        return descent.Adam(model.parameters(), lr=0.02, flat=flat)
    return descent.SGD(model.parameters(), lr=0.1, momentum=0.9, flat=flat)


def _train(comm, n, optimizer, flat, shuffle, ranks, epochs=4, init_seed=0, **kw):
    """(weights, history) of one run with the global batch ``ranks * B``: on the ranks of comm, or alone."""
    model = _model(init_seed)
    opt = _optimizer(optimizer, model, flat)
    x, y = _data(n)
    history = train.fit(model, nn.cross_entropy, opt, (x, y), epochs=epochs, batch_size=B if comm else B * ranks,
                        val_data=_data(23, seed=1), metrics=["accuracy"], progress=False, seed=3, shuffle=shuffle,
                        distributed=comm, **kw)
    return host_state(model), history


def _cases(size):
    """Numbers of samples: whole global batches; an uneven last batch; a last batch of one sample."""
    g = size * B
    return {"even": 6 * g, "uneven": 6 * g + g // 2 + 1, "one left": 6 * g + 1}


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
@pytest.mark.parametrize("flat", [False, True], ids=["tensors", "flat"])
@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "in order"])
@pytest.mark.parametrize("case", ["even", "uneven", "one left"])
def test_n_ranks_equal_one_process_with_n_times_the_batch(comm, optimizer, flat, shuffle, case):
    n = _cases(comm.size)[case]
    if case == "one left" and comm.size > 1:
        # The last global batch holds one sample: every rank but rank 0 has none in it.
        assert [distributed.part(n - 1, n, r, comm.size) for r in range(comm.size)][1] == (n, n)
    got, history = _train(comm, n, optimizer, flat, shuffle, comm.size)
    want, reference = _train(None, n, optimizer, flat, shuffle, comm.size)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-12, err_msg=k)
    # The logs are those of the whole data, reduced over the ranks.
    for name in ("cost", "val_cost", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(history[name], reference[name], rtol=1e-12 if "cost" in name else 1e-6)
    # Every rank holds the same weights, bit for bit.
    digest = [float(np.sum(v * np.arange(1, v.size + 1).reshape(v.shape))) for v in got.values()]
    rows = gathered(comm, digest)
    assert all(row == rows[0] for row in rows)


def test_ranks_start_from_rank_0s_weights(comm):
    # Each rank makes other initial weights; the run must still equal one process from rank 0's.
    n = _cases(comm.size)["uneven"]
    got, _ = _train(comm, n, "adam", False, True, comm.size, epochs=2, init_seed=comm.rank)
    want, _ = _train(None, n, "adam", False, True, comm.size, epochs=2)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-12, err_msg=k)


def test_evaluate_reduces_over_the_ranks(comm):
    model = _model()
    data = _data(37, seed=4)
    alone = train.evaluate(model, data, ["accuracy", "cost"], batch_size=5, cost=nn.cross_entropy)
    together = train.evaluate(model, data, ["accuracy", "cost"], batch_size=5, cost=nn.cross_entropy,
                              distributed=comm)
    assert together["accuracy"] == pytest.approx(alone["accuracy"], rel=1e-6)
    assert together["cost"] == pytest.approx(alone["cost"], rel=1e-12)


def test_batchnorm_buffers_are_rank_0s_at_the_end_of_every_epoch(comm):
    model = _model(batchnorm=True)
    opt = descent.SGD(model.parameters(), lr=0.05)
    train.fit(model, nn.cross_entropy, opt, _data(40), epochs=2, batch_size=B, progress=False, distributed=comm)
    buffers = [float(np.sum(np.asarray(b) * np.arange(1, b.size + 1))) for b in model.buffers() if b is not None]
    assert buffers
    rows = gathered(comm, buffers)
    assert all(row == rows[0] for row in rows)


def test_ranks_that_disagree_on_the_settings_fail_together(comm):
    if comm.size == 1:
        pytest.skip("one process cannot disagree with itself: runs under mpiexec -n 2")
    model = _model()
    with pytest.raises(ValueError, match=r"different settings \(seed: rank 0: 0, rank 1: 1"):
        train.fit(model, nn.cross_entropy, descent.SGD(model.parameters(), lr=0.1), _data(16), epochs=1,
                  batch_size=B, progress=False, seed=comm.rank, distributed=comm)
    assert not comm.broken
    comm.barrier()


def test_fit_refuses_a_distributed_that_is_no_communicator():
    model = _model()
    with pytest.raises(TypeError, match="takes a Communicator"):
        train.fit(model, nn.cross_entropy, descent.SGD(model.parameters(), lr=0.1), _data(8), progress=False,
                  distributed="mpi")


class _Stop(train.Callback):
    """Stops the run on one rank only: fit must stop every rank after the same epoch."""

    def __init__(self, rank):
        self.rank = rank

    def on_epoch_end(self, run, epoch, logs):
        if epoch == 1 and run.distributed.rank == self.rank:
            run.stop_training = True


def test_a_stop_on_one_rank_stops_every_rank(comm):
    model = _model()
    history = train.fit(model, nn.cross_entropy, descent.SGD(model.parameters(), lr=0.1), _data(16), epochs=5,
                        batch_size=B, progress=False, distributed=comm, callbacks=[_Stop(comm.size - 1)])
    assert history.epochs == [0, 1]


def test_early_stopping_decides_on_the_reduced_values(comm):
    n = _cases(comm.size)["uneven"]
    stop = train.EarlyStopping(monitor="val_cost", patience=1)
    _, history = _train(comm, n, "adam", False, True, comm.size, epochs=30, callbacks=[stop])
    alone = train.EarlyStopping(monitor="val_cost", patience=1)
    _, reference = _train(None, n, "adam", False, True, comm.size, epochs=30, callbacks=[alone])
    assert stop.stopped_epoch is not None and history.epochs == reference.epochs
    assert (stop.best_epoch, stop.stopped_epoch) == (alone.best_epoch, alone.stopped_epoch)
