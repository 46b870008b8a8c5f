"""Data-parallel benchmark: ``python -m benchmarks.distributed`` (``make bench-distributed``).

One training step of the MLP 784-256-256-10 (ReLU, softmax cross-entropy,
SGD with ``flat=True``) at a fixed batch per rank, as ``fit(distributed=comm)``
takes it (each rank's part of the batch, gradients summed over the ranks in
buckets started from grad-ready hooks, then the optimizer step), on 1 and on
2 processes launched with mpiexec, each process with one BLAS thread. Per
setting it records:

- the step (median over interleaved blocks of steps, rank 0's clock: the
  all-reduce makes the ranks keep step);
- the all-reduce alone: the same buckets reduced with nothing to overlap;
- the wait: what is left of the all-reduce after the backward pass, i.e.
  the time ``finish()`` waits before the optimizer step. The fraction of the
  communication hidden behind the backward pass is ``1 - wait / alone``.

Two bucketings: one flat buffer in one bucket (the default of 25 MB holds
this whole 1 MB model, so its all-reduce starts when the backward pass ends
and nothing is hidden), and buckets of 128 KB, which start while the sweep
is still in the earlier layers. Results: benchmarks/results/distributed.md
and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUCKETS = {"one bucket (25 MB)": 25 * 2**20, "buckets of 128 KB": 2**17}
ROOT = Path(__file__).resolve().parents[1]


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", default="32,256", help="batch per rank, comma-separated (default: %(default)s)")
    p.add_argument("--ranks", default="1,2", help="job sizes, comma-separated (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=12, help="interleaved rounds (default: %(default)s)")
    p.add_argument("--steps", type=int, default=20, help="steps per block (default: %(default)s)")
    p.add_argument("--mpiexec", default=str(Path(sys.executable).with_name("mpiexec")))
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--quick", action="store_true", help="2 rounds of 3 steps, output to a temporary folder")
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # where a job's rank 0 writes its numbers
    args = p.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",") if b]
    args.ranks = [int(r) for r in args.ranks.split(",") if r]
    if args.quick:
        args.rounds, args.steps = 2, 3
    return args


# -- inside a job ----------------------------------------------------------------------------


class Setting:
    """One model, optimizer and data-parallel wrapper, at one batch per rank and one bucket size."""

    def __init__(self, comm, batch: int, bucket_bytes: int):
        import numpy as np

        from gdbp import backends, descent, nn
        from gdbp.distributed import DataParallel

        from .problems import mlp

        self.batch = batch
        problem = mlp(batch * comm.size)
        stream = backends.host_rng(0)
        sizes = problem["sizes"]
        layers = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out, rng=stream), nn.ReLU()]
        self.model = nn.Sequential(*layers[:-1])
        self.opt = descent.SGD(self.model.parameters(), lr=problem["lr"], flat=True)
        self.dp = DataParallel(comm, self.model, self.opt, bucket_bytes=bucket_bytes)
        self.dp.broadcast_state()
        a, b = self.dp.part(0, batch * comm.size)
        self.x = np.ascontiguousarray(problem["x"][a:b])
        self.y = np.ascontiguousarray(problem["y"][a:b])
        self.cost = nn.cross_entropy
        self.steps, self.waits, self.alone = [], [], []

    def step(self) -> None:
        from gdbp import Tensor

        self.model.zero_grad()
        self.opt.zero_grad()
        self.dp.begin_step()
        c = self.cost(self.model(Tensor(self.x)), Tensor(self.y))
        c.backward(self.dp.seed(c, self.batch, self.batch * self.dp.size))
        self.dp.finish_step()
        self.opt.step()

    def block(self, steps: int) -> None:
        reducer = self.dp.reducer
        for _ in range(steps):
            waited = reducer.wait_seconds if reducer is not None else 0.0
            started = time.perf_counter()
            self.step()
            self.steps.append(time.perf_counter() - started)
            reducer = self.dp.reducer
            self.waits.append(reducer.wait_seconds - waited)

    def reduce_alone(self, times: int) -> None:
        """The step's communication with nothing to overlap: every bucket, and the flags of reached gradients."""
        comm, buckets = self.dp.comm, self.dp.reducer.buckets
        flags = [1.0] * sum(len(b.params) for b in buckets)
        for _ in range(times):
            started = time.perf_counter()
            pending = [comm.start_allreduce(b.buffer(), "sum") for b in buckets]
            if comm.size > 1:
                comm.allgather_floats(flags)
            comm.wait(pending)
            self.alone.append(time.perf_counter() - started)


def work(args) -> None:
    """One job: every setting, in interleaved blocks; rank 0 writes the medians."""
    from gdbp import distributed

    comm = distributed.init()
    settings = {(b, name): Setting(comm, b, size) for b in args.batches for name, size in BUCKETS.items()}
    for s in settings.values():
        s.block(3)  # warm-up: buffers, hooks, BLAS
        s.steps, s.waits = [], []
    order = list(settings)
    for r in range(args.rounds):
        for key in order[r % len(order):] + order[:r % len(order)]:  # the same rotation on every rank
            settings[key].block(args.steps)
            settings[key].reduce_alone(args.steps)
    comm.barrier()
    if comm.rank != 0:
        return
    rows = []
    for (batch, name), s in settings.items():
        step, wait, alone = (statistics.median(v) for v in (s.steps, s.waits, s.alone))
        rows.append(dict(ranks=comm.size, backend=comm.backend, batch=batch, buckets=name,
                         bucket_count=len(s.dp.reducer.buckets), step_s=step, wait_s=wait, alone_s=alone,
                         step_iqr=_iqr(s.steps), samples_per_s=comm.size * batch / step))
    args.worker.write_text(json.dumps(rows))


def _iqr(values) -> float:
    q = statistics.quantiles(values, n=4)
    return (q[2] - q[0]) / statistics.median(values)


# -- the parent: launch the jobs, write the report --------------------------------------------


def launch(args) -> list:
    """Run one job per job size; rank 0 of each writes its rows."""
    mpiexec = shutil.which(args.mpiexec)
    if mpiexec is None:
        raise FileNotFoundError(f"no mpiexec at {args.mpiexec!r}: pip install 'gdbp[mpi]' (mpi4py and mpich), "
                                "or pass --mpiexec PATH")
    args.mpiexec = mpiexec
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    rows = []
    for n in args.ranks:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "rows.json"
            cmd = [args.mpiexec, "-n", str(n), sys.executable, "-m", "benchmarks.distributed", "--worker", str(out),
                   "--batches", ",".join(map(str, args.batches)), "--rounds", str(args.rounds),
                   "--steps", str(args.steps)]
            print(f"running {n} process(es): {' '.join(cmd)}", file=sys.stderr)
            subprocess.run(cmd, env=env, cwd=ROOT, check=True, timeout=1800)
            rows += json.loads(out.read_text())
    return rows


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.0f} µs"


def report(rows, args) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    lines = [
        "## Data-parallel benchmark (CPU, MPI)", "",
        f"{cpu}, {os.cpu_count()} cores, one BLAS thread per process; Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d')}; load average at the end {os.getloadavg()[0]:.1f}.", "",
        "MLP 784-256-256-10 training step (forward, softmax cross-entropy, backward with the gradient all-reduce "
        "in buckets, SGD flat=True) at a fixed batch per process. Medians over "
        f"{args.rounds} interleaved rounds of {args.steps} steps; rank 0's clock.", "",
        "| processes | batch per process | buckets | step (IQR) | samples/s | all-reduce alone | wait after "
        "backward | hidden |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if r["ranks"] == 1:
            comm, hidden = "-", "-"
            wait = "-"
        else:
            comm = _ms(r["alone_s"])
            wait = _ms(r["wait_s"])
            hidden = f"{max(0.0, min(1.0, 1 - r['wait_s'] / r['alone_s'])):.0%}"
        lines.append(f"| {r['ranks']} | {r['batch']} | {r['buckets']} ({r['bucket_count']}) | {_ms(r['step_s'])} "
                     f"({r['step_iqr']:.0%}) | {r['samples_per_s']:,.0f} | {comm} | {wait} | {hidden} |")
    lines += ["", "hidden = 1 - wait / all-reduce alone: the share of the communication that ran while the "
              "backward pass was still computing. On one process the reduction is the identity (no MPI). The wait "
              "also holds the time a rank waits for the other to finish its own backward pass: on a machine "
              "whose cores are busy with other work (a load average above its core count), a rank that loses "
              "its core makes the other wait, and the wait then measures that, not the communication."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.worker is not None:
        work(args)
        return 0
    rows = launch(args)
    out = Path(tempfile.mkdtemp()) if args.quick else args.out
    out.mkdir(parents=True, exist_ok=True)
    text = report(rows, args)
    (out / "distributed.md").write_text(text)
    (out / "distributed.json").write_text(json.dumps(rows, indent=1))
    print(text)
    print(f"written: {out / 'distributed.md'}, {out / 'distributed.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
