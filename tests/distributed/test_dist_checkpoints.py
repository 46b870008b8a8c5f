"""Checkpoints of a data-parallel run: written by rank 0 only, resumed exactly on every rank; and the demo."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from dist_helpers import comm, gathered, shared_dir  # noqa: F401  (fixtures)
from train_helpers import blobs, host_state

from gdbp import backends, descent, nn, train


def _data():
    """Training and validation blobs in float64 (from the shared helpers)."""
    return [tuple(np.asarray(a, dtype=np.float64) if i == 0 else a for i, a in enumerate(blobs(n, 5, 2, seed)))
            for n, seed in ((45, 5), (19, 6))]


class _Run:
    """One run's objects, built afresh as a new job would build them."""

    def __init__(self, folder, tag, init_seed=0):
        stream = backends.host_rng(init_seed)
        self.model = nn.Sequential(nn.Linear(5, 16, rng=stream, dtype="float64"), nn.ReLU(),
                                   nn.Linear(16, 2, rng=stream, dtype="float64"))
        self.opt = descent.Adam(self.model.parameters(), lr=0.05, flat=True)
        self.schedule = descent.StepLR(self.opt, step_size=2, gamma=0.5)
        self.every = train.ModelCheckpoint(os.path.join(folder, f"{tag}-{{epoch}}.safetensors"))
        self.stop = train.EarlyStopping(monitor="val_cost", patience=2)
        self.best = train.BestCheckpoint(os.path.join(folder, f"{tag}-best.safetensors"))
        self.callbacks = [self.every, self.stop, self.best]

    def fit(self, comm, epochs, **kw):
        data, val = _data()
        return train.fit(self.model, nn.cross_entropy, self.opt, data, epochs=epochs, batch_size=4, val_data=val,
                         callbacks=self.callbacks, schedule=self.schedule, progress=False, seed=2,
                         distributed=comm, **kw)


def test_rank_0_writes_and_every_rank_resumes_exactly(comm, shared_dir):
    full = _Run(shared_dir, "full")
    full_history = full.fit(comm, 6)
    first = _Run(shared_dir, "part")
    first.fit(comm, 3)
    names = [os.path.join(shared_dir, f"part-{e}.safetensors") for e in (1, 2, 3)]
    # Rank 0 wrote every file; the others wrote none, and see rank 0's once fit has returned.
    assert first.every.saved == (names if comm.rank == 0 else [])
    assert all(os.path.exists(p) for p in names)
    assert (first.best.saved != []) == (comm.rank == 0)

    resumed = _Run(shared_dir, "part", init_seed=11)  # other weights: everything comes from the file
    history = resumed.fit(comm, 6, resume=names[-1])
    assert history.epochs == full_history.epochs[3:]
    assert history["val_cost"] == full_history["val_cost"][3:] and history["lr"] == full_history["lr"][3:]
    assert (resumed.stop.best_epoch, resumed.stop.wait, resumed.stop.best) == (
        full.stop.best_epoch, full.stop.wait, full.stop.best)
    want, got = host_state(full.model), host_state(resumed.model)
    assert all(np.array_equal(got[k], v) for k, v in want.items())
    rows = gathered(comm, [float(np.sum(v)) for v in got.values()])
    assert all(row == rows[0] for row in rows)


def test_the_demo_on_n_ranks_matches_one_process_with_n_times_the_batch(comm, shared_dir):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    from gdbp.train.demo import run_demo

    together = run_demo(backend="numpy", epochs=3, batch_size=16, out=shared_dir, progress=False, verbose=False,
                        distributed=comm)
    with tempfile.TemporaryDirectory() as alone_dir:
        alone = run_demo(backend="numpy", epochs=3, batch_size=16 * comm.size, out=alone_dir, progress=False,
                         verbose=False)
    assert together["ranks"] == comm.size
    # float32: the same weights up to summation order, so the same predictions on the 450 test images.
    assert together["test_accuracy"] == pytest.approx(alone["test_accuracy"], abs=1.5 / 450)
    assert together["test_cost"] == pytest.approx(alone["test_cost"], rel=1e-4)
    assert together["history"].epochs == alone["history"].epochs
    assert os.path.exists(together["checkpoint"])
