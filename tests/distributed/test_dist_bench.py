"""The data-parallel benchmark (``make bench-distributed``) runs its jobs of one and two processes and reports.

It launches its own jobs, so it runs in the single-process pytest run and is skipped inside a job.
"""

from __future__ import annotations

import sys

import pytest
from test_dist_failure import MPIEXEC, ROOT, pytestmark  # noqa: F401  (the same skips)

if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not part of the package
    sys.path.insert(0, str(ROOT))

from benchmarks import distributed as bench  # noqa: E402


def test_the_benchmark_times_one_and_two_processes():
    args = bench.parse(["--quick", "--batches", "8", "--mpiexec", str(MPIEXEC)])
    rows = bench.launch(args)
    assert [(r["ranks"], r["batch"]) for r in rows] == [(1, 8), (1, 8), (2, 8), (2, 8)]
    assert all(r["step_s"] > 0 and r["alone_s"] >= 0 and r["wait_s"] >= 0 for r in rows)
    assert [r["bucket_count"] for r in rows[:2]] == [1, 4]  # the flat buffer whole, and buckets of 128 KB
    text = bench.report(rows, args)
    assert "| 2 | 8 | buckets of 128 KB (4) |" in text and "hidden" in text


def test_the_benchmark_says_how_to_get_mpiexec():
    with pytest.raises(FileNotFoundError, match=r"pip install 'gdbp\[mpi\]'"):
        bench.launch(bench.parse(["--quick", "--mpiexec", "/nonexistent/mpiexec"]))
