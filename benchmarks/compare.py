"""Two versions of gdbp side by side in one run: ``python -m benchmarks.compare OLD_TREE [NEW_TREE]``.

A change that should not slow gdbp down (a refactor) is measured here: each
tree (a checkout, e.g. ``git worktree add /tmp/old HEAD~3``) gets its own
worker process, importing its own gdbp and its own ``benchmarks.impl_gdbp``;
both build the same problems, check that they give the same loss and
weights, then time interleaved blocks of steps in a random order, so that
machine noise hits both alike. Printed: median time per step of each, and
new / old with the interquartile range of the per-block ratios.
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CASES = [
    ("mlp", 1, "GdbpMLP"), ("mlp", 16, "GdbpMLP"), ("mlp", 128, "GdbpMLP"), ("mlp", 1024, "GdbpMLP"),
    ("mlp", 1, "GdbpSequentialMLP"), ("mlp", 16, "GdbpSequentialMLP"), ("mlp", 128, "GdbpSequentialMLP"),
    ("mlp", 1024, "GdbpSequentialMLP"),
    ("tiny", None, "GdbpTiny"), ("adam", None, "GdbpAdam"), ("adam", None, "GdbpAdamFlat"),
]
#: Plain array-API code (benchmarks/plain.py), eager and compiled: implementations named as in impl_gdbp.BENCHES.
PLAIN_CASES = [
    *[("plain", b, impl) for impl in ("gdbp-plain", "gdbp-compile") for b in (1, 16, 128, 1024)],
    ("attention", None, "gdbp-plain"), ("attention", None, "gdbp-compile"),
    ("tiny", None, "gdbp-plain"), ("tiny", None, "gdbp-plain-compile"),
]
SETS = {"nn": CASES, "plain": PLAIN_CASES, "all": CASES + PLAIN_CASES}

_CHILD = r"""
import pickle, sys, time
sys.path.insert(0, sys.argv[1])
from benchmarks import impl_gdbp, problems
benches = {}
read, write = sys.stdin.buffer, sys.stdout.buffer
while True:
    try:
        kind, case, arg = pickle.load(read)
    except EOFError:
        break
    if kind == "make":
        task, size, name = case
        make = impl_gdbp.BENCHES[(task, name)] if "-" in name else getattr(impl_gdbp, name)
        bench = make(problems.make(task, size, 0))
        bench.step()
        out = bench.result()
        benches[case] = make(problems.make(task, size, 0))
    else:
        step = benches[case].step
        times = []
        for _ in range(arg):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        out = times
    pickle.dump(out, write)
    write.flush()
"""


class Worker:
    def __init__(self, tree: Path, threads: int):
        env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(tree)], cwd=tree, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def ask(self, kind, case, arg=None):
        pickle.dump((kind, case, arg), self.proc.stdin)
        self.proc.stdin.flush()
        return pickle.load(self.proc.stdout)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return np.allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("old", type=Path, help="the tree of the version to compare against")
    p.add_argument("new", type=Path, nargs="?", default=Path(__file__).resolve().parents[1],
                   help="the tree of the new version (default: this checkout)")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--block-ms", type=float, default=100.0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--cases", choices=sorted(SETS), default="nn",
                   help="nn: the Tensor and nn paths (default); plain: plain array-API code, eager and compiled")
    args = p.parse_args(argv)
    cases = SETS[args.cases]
    workers = {"old": Worker(args.old.resolve(), args.threads), "new": Worker(args.new.resolve(), args.threads)}
    try:
        for case in cases:
            results = {k: w.ask("make", case) for k, w in workers.items()}
            if not _same(results["old"], results["new"]):
                raise SystemExit(f"{case}: the two versions give different results; nothing is timed")
        steps = {}
        for case in cases:  # steps per block, from a short warm-up of the old version
            t = statistics.median(workers["old"].ask("time", case, 5))
            steps[case] = max(1, int(args.block_ms / 1e3 / t))
        times = {(k, c): [] for k in workers for c in cases}
        ratios = {c: [] for c in cases}
        rng = random.Random(0)
        for r in range(args.rounds):
            order = [(k, c) for c in cases for k in workers]
            rng.shuffle(order)
            block = {}
            for k, c in order:
                ts = workers[k].ask("time", c, steps[c])
                times[(k, c)] += ts
                block[(k, c)] = statistics.median(ts)
            for c in cases:
                ratios[c].append(block[("new", c)] / block[("old", c)])
            print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for w in workers.values():
            w.close()
    print(f"| case | old | new | new / old (IQR of per-round ratios) |\n| --- | ---: | ---: | ---: |")
    for c in cases:
        task, size, name = c
        label = f"{name} {task}" + (f" batch {size}" if size else "")
        old, new = statistics.median(times[("old", c)]), statistics.median(times[("new", c)])
        q = statistics.quantiles(ratios[c], n=4)
        print(f"| {label} | {old * 1e6:.1f} µs | {new * 1e6:.1f} µs | {statistics.median(ratios[c]):.3f} "
              f"({q[0]:.3f}-{q[2]:.3f}) |")


if __name__ == "__main__":
    main()
