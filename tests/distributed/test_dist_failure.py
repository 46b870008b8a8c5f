"""A rank that fails makes the others stop within seconds, with an error that names it: never a hang.

Each case launches its own job (``mpiexec -n 2``), since a failed rank ends its
job: so these tests run in the single-process pytest run, and are skipped
inside a job.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from dist_helpers import under_mpiexec

ROOT = Path(__file__).resolve().parents[2]
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")

pytestmark = [
    pytest.mark.skipif(under_mpiexec(), reason="launches its own mpiexec job: runs in the single-process pytest run"),
    pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec: pip install 'gdbp[mpi]' (mpi4py and mpich)"),
]

SCRIPT = """
import sys, time
import numpy as np
from gdbp import descent, distributed, nn, train

comm = distributed.init()
assert comm.size == 2, comm
rng = np.random.default_rng(0)
x = rng.normal(size=(400, 5)).astype(np.float32)
y = (x[:, 0] > 0).astype(np.int64)
model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
WHERE, RANK = sys.argv[1], int(sys.argv[2])

class Fail(train.Callback):
    def on_step_end(self, run, step):
        if WHERE == "callback" and comm.rank == RANK and run.step == 7:
            raise ValueError("a deliberate failure")

def cost(pred, target):
    if WHERE == "cost" and comm.rank == RANK and cost.calls == 3:
        raise RuntimeError("the cost failed on purpose")
    cost.calls += 1
    return nn.cross_entropy(pred, target)
cost.calls = 0

started = time.perf_counter()
try:
    train.fit(model, cost, descent.Adam(model.parameters()), (x, y), epochs=1000, batch_size=2,
              progress=False, distributed=comm, callbacks=[Fail()])
finally:
    print(f"rank {comm.rank} left fit after {time.perf_counter() - started:.2f} s", flush=True)
"""


def _job(tmp_path, where, rank):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_", "MPI_LOCAL"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = "1"
    started = time.perf_counter()
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script), where, str(rank)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    return done, time.perf_counter() - started


@pytest.mark.parametrize("where, rank", [("callback", 1), ("cost", 0)])
def test_a_failed_rank_stops_the_job_with_an_error_naming_it(tmp_path, where, rank):
    done, seconds = _job(tmp_path, where, rank)
    out = done.stdout + done.stderr
    other = 1 - rank
    assert done.returncode != 0, out
    # The failed rank's own error, with its traceback...
    assert f"gdbp.distributed: rank {rank} of 2 failed" in out, out
    assert ("ValueError: a deliberate failure" if where == "callback" else "RuntimeError: the cost failed") in out
    # ...and the other rank's, naming it, raised where it waited.
    assert f"RankFailedError: rank {rank} of 2 failed" in out and f"rank {other} stopped while waiting" in out, out
    assert f"rank {other} left fit after" in out, out
    # Seconds, not a hang: the job (Python and gdbp's imports included) ends well within the timeout.
    assert seconds < 30, (seconds, out)

