"""The MLP training step on an NVIDIA GPU: gdbp on CuPy, hand-written CuPy, PyTorch CUDA.

``python -m benchmarks.gpu --out DIR`` (``benchmarks/gpu_check.sh DIR`` runs it
with the GPU tests). Two nets, 784-256-256-10 and a wide 4096-4096-4096-10,
at batch 128, 1024 and 8192. Correctness first (one step from the same start
agrees with hand-written CuPy, float32 tolerances), then interleaved rounds:
each round times one block of steps of every case, in a random order.
A block is timed on the host clock between two device synchronisations
(``cudaDeviceSynchronize``), so it counts everything a user waits for:
Python overhead, kernel launches and the kernels themselves.

This module imports without CuPy; running it without a CUDA device fails
with a message that says what is missing.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from . import problems, report

NETS = {"standard": (784, 256, 256, 10), "wide": (4096, 4096, 4096, 10)}
DEFAULT_BATCHES = (128, 1024, 8192)
REFERENCE = "cupy"
LABELS = {
    "cupy": "hand-written CuPy",
    "floor": "floor: the matrix products only",
    "gdbp": "gdbp on CuPy (Tensors + ops, SGD by hand)",
    "gdbp-nn": "gdbp nn.Sequential + descent.SGD on CuPy",
    "torch": "PyTorch CUDA eager (raw tensors, SGD by hand)",
    "torch-nn": "PyTorch CUDA nn.Sequential + optim.SGD",
}


class GPUUnavailable(RuntimeError):
    """No CUDA device answers through CuPy."""


def require_cuda():
    """CuPy, once a CUDA device has answered; else GPUUnavailable saying why."""
    from gdbp.backends import probe_cuda

    ok, why = probe_cuda()
    if not ok:
        raise GPUUnavailable(
            f"benchmarks.gpu needs an NVIDIA GPU with CuPy and a working CUDA driver, and found none: {why}. "
            "Run the CPU suite instead: python -m benchmarks.run"
        )
    import cupy

    return cupy


def factories(cupy) -> dict:
    """Implementation name -> function(problem) building its step on the GPU (may raise Skip)."""
    from .impl_gdbp import GdbpMLP, GdbpSequentialMLP
    from .impl_numpy import Floor, HandMLP
    from .impl_torch import TorchMLP, TorchSequentialMLP

    def torch_cuda(cls):
        def make(problem):
            import torch

            if not torch.cuda.is_available():
                raise problems.Skip(f"torch {torch.__version__} sees no CUDA device (a CPU-only build?)")
            return cls(problem, device="cuda")

        return make

    return {
        "cupy": lambda p: HandMLP(p, xp=cupy),
        "floor": lambda p: Floor(p, xp=cupy),
        "gdbp": lambda p: GdbpMLP(p, backend="cupy"),
        "gdbp-nn": lambda p: GdbpSequentialMLP(p, backend="cupy"),
        "torch": torch_cuda(TorchMLP),
        "torch-nn": torch_cuda(TorchSequentialMLP),
    }


def gpu_info(cupy) -> dict:
    props = cupy.cuda.runtime.getDeviceProperties(0)
    info = dict(
        gpu=props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"]),
        gpu_memory_gib=round(props["totalGlobalMem"] / 2**30, 1),
        cuda_runtime=cupy.cuda.runtime.runtimeGetVersion(),
        cuda_driver=cupy.cuda.runtime.driverGetVersion(),
        cupy=cupy.__version__,
    )
    try:
        import torch

        info.update(torch=torch.__version__, torch_cuda=torch.version.cuda)
    except ImportError:
        info["torch"] = None
    import gdbp

    info["gdbp"] = gdbp.__version__
    return info


def _time_block(bench, n: int, sync) -> float:
    """Mean seconds per step over n steps, between two device synchronisations."""
    sync()
    t0 = time.perf_counter()
    for _ in range(n):
        bench.step()
    sync()
    return (time.perf_counter() - t0) / n


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=report.RESULTS / "gpu", help="output folder (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a short smoke run")
    p.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)), help="batch sizes (default: %(default)s)")
    p.add_argument("--nets", default=",".join(NETS), help=f"nets among {', '.join(NETS)} (default: all)")
    p.add_argument("--impls", default=",".join(LABELS), help=f"implementations among {', '.join(LABELS)}")
    p.add_argument("--rounds", type=int, help="timing rounds (default: 15; 3 with --quick)")
    p.add_argument("--block-ms", type=float, help="milliseconds per block (default: 100; 20 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",") if b]
    args.nets = [n for n in args.nets.split(",") if n]
    args.impls = [i for i in args.impls.split(",") if i]
    for n in args.nets:
        if n not in NETS:
            p.error(f"unknown net {n!r}: choose among {', '.join(NETS)}")
    for i in args.impls:
        if i not in LABELS:
            p.error(f"unknown implementation {i!r}: choose among {', '.join(LABELS)}")
    # The reference runs first: the others are checked against it.
    args.impls = [REFERENCE] + [i for i in args.impls if i != REFERENCE]
    args.rounds = args.rounds or (3 if args.quick else 15)
    args.block_ms = args.block_ms or (20.0 if args.quick else 100.0)
    return args


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(args, make: dict, sync, progress=None) -> tuple[list, dict, list]:
    """Check and time every (net, batch, implementation); returns (rows, skipped, failures).

    ``make`` is :func:`factories`' table, ``sync`` waits for the device
    (``cupy.cuda.runtime.deviceSynchronize``). Each case catches its own
    failure: an implementation that raises, or whose step disagrees with the
    reference, is listed in ``failures`` and left out of the timing, and the
    other cases go on. ``progress(rows, skipped, failures)``, when given, is
    called after each (net, batch) is checked and after each timing round,
    with what there is so far (so that a run cut short still leaves results).
    """
    live, skipped, failures = [], {}, []

    def report_progress():
        if progress is not None:
            progress(_rows(live, args), dict(skipped), list(failures))

    for net in args.nets:
        for batch in args.batches:
            start = problems.mlp(batch, args.seed, sizes=NETS[net])
            ref = None
            for impl in args.impls:
                where = f"{LABELS[impl]} ({net}, batch {batch})"
                try:
                    case = _check(impl, make, start, ref, args, sync)
                except problems.Skip as exc:
                    skipped[impl] = str(exc)
                    continue
                except Exception as exc:  # one implementation's bug must not lose the others' results
                    failures.append(f"{where}: {type(exc).__name__}: {exc}"[:500])
                    log(f"  check {net:<8} batch {batch:<5} {LABELS[impl]:<46} FAILED: {type(exc).__name__}: {exc}")
                    continue
                if impl == REFERENCE:
                    ref = case.pop("result")
                if case["wrong"]:
                    failures.append(f"{where}: {'; '.join(case['wrong'])}")
                status = case["check"]
                log(f"  check {net:<8} batch {batch:<5} {LABELS[impl]:<46} {status}")
                if not case["wrong"]:
                    live.append(dict(net=net, batch=batch, impl=impl, bench=case["bench"], n=case["n"], times=[],
                                     check=status))
            report_progress()
    order = random.Random(args.seed)
    log(f"timing {len(live)} cases x {args.rounds} rounds")
    for r in range(args.rounds):
        order.shuffle(live)
        for case in list(live):
            try:
                case["times"].append(_time_block(case["bench"], case["n"], sync))
            except Exception as exc:  # e.g. out of memory at a large batch: the other cases go on
                failures.append(f"{LABELS[case['impl']]} ({case['net']}, batch {case['batch']}): timing: "
                                f"{type(exc).__name__}: {exc}"[:500])
                live.remove(case)
        log(f"  round {r + 1}/{args.rounds} done")
        report_progress()
    return _rows(live, args), skipped, failures


def _check(impl, make, start, ref, args, sync) -> dict:
    """Build one case, check one step against the reference, warm it up and size its blocks."""
    checked = make[impl](start)
    got = None
    if impl != "floor":
        checked.step()
        got = checked.result()
    del checked
    bench = make[impl](start)
    wrong = []
    if impl == REFERENCE:
        status = "ok"
    elif impl == "floor":
        status = "timing only"
    elif ref is None:
        status = "unchecked (the reference failed)"
    else:
        wrong = problems.compare(start, ref, got, rtol=1e-3)
        status = "FAILED: " + "; ".join(wrong) if wrong else "ok"
    n = 0
    if not wrong:
        # Warm up (allocator pools, cuBLAS handles, kernel caches), then size the blocks.
        estimate = _time_block(bench, 3, sync)
        n_warm = max(3, int((0.02 if args.quick else 0.2) / max(estimate, 1e-6)))
        estimate = _time_block(bench, min(n_warm, 200), sync)
        n = max(1, min(10_000, round(args.block_ms / 1e3 / estimate)))
    return dict(bench=bench, n=n, check=status, wrong=wrong, result=got)


def _rows(live, args) -> list:
    """The result rows of the cases timed at least once, with ratios to the reference's median."""
    timed = [c for c in live if c["times"]]
    ref_median = {}
    for case in timed:
        case["stats"] = report.summarize(case["times"])
        if case["impl"] == REFERENCE:
            ref_median[(case["net"], case["batch"])] = case["stats"]["median"]
    rows = []
    for case in sorted(timed, key=lambda c: (c["net"], args.impls.index(c["impl"]), c["batch"])):
        base = ref_median.get((case["net"], case["batch"]))
        rows.append(dict(net=case["net"], sizes=NETS[case["net"]], batch=case["batch"], impl=case["impl"],
                         label=LABELS[case["impl"]], steps_per_block=case["n"], check=case["check"],
                         ratio=case["stats"]["median"] / base if base else None, **case["stats"]))
    return rows


def markdown(data) -> str:
    g, s = data["gpu"], data["settings"]
    out = ["## Benchmarks (GPU)", "",
           f"{g['gpu']} ({g['gpu_memory_gib']} GiB), CUDA runtime {g['cuda_runtime']}, driver {g['cuda_driver']}; "
           f"CuPy {g['cupy']}, PyTorch {g.get('torch')} (CUDA {g.get('torch_cuda')}), gdbp {g['gdbp']}; "
           f"host {data['machine']['cpu']}. {data['date'][:10]}.", "",
           f"Median over {s['rounds']} interleaved rounds of the mean time per step in a block of steps "
           "timed between two device synchronisations.", ""]
    for net in s["nets"]:
        rows = [r for r in data["results"] if r["net"] == net]
        if not rows:
            continue
        out += [f"### MLP {'-'.join(map(str, NETS[net]))} training step", ""]
        out += report.batch_tables(rows, LABELS[REFERENCE]) + [""]
    if data["skipped"]:
        out += ["Skipped:", ""] + [f"- {k}: {v}" for k, v in data["skipped"].items()] + [""]
    if data.get("failures"):
        out += ["Failed (left out of the timing):", ""] + [f"- {f}" for f in data["failures"]] + [""]
    if data.get("complete") is False:
        out += ["*Partial: the run was cut short; these are the cases measured until then.*", ""]
    out.append(f"Reproduce with `benchmarks/gpu_check.sh OUT_DIR` (`{data['command']}`).")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    """Entry point of ``python -m benchmarks.gpu``; returns the exit status.

    0: every case checked and timed; 1: some case failed (the others'
    results are written all the same); 2: no GPU; 130: interrupted (what was
    measured until then is written).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    try:
        cupy = require_cuda()
    except GPUUnavailable as exc:
        log(str(exc))
        return 2
    info = gpu_info(cupy)
    log(f"GPU: {info['gpu']}, CuPy {info['cupy']}, PyTorch {info.get('torch')}")

    def save(rows, skipped, failures, complete):
        data = dict(date=report.now(), command="python -m benchmarks.gpu " + " ".join(argv),
                    settings=dict(rounds=args.rounds, block_ms=args.block_ms, seed=args.seed, batches=args.batches,
                                  nets=args.nets, lr=problems.LR, quick=args.quick),
                    machine=report.machine_info(), gpu=info, results=rows, skipped=skipped, failures=failures,
                    complete=complete)
        return write_outputs(args.out, data)

    def keep(rows, skipped, failures):
        save(rows, skipped, failures, complete=False)

    try:
        rows, skipped, failures = run(args, factories(cupy), cupy.cuda.runtime.deviceSynchronize, progress=keep)
    except KeyboardInterrupt:  # a time limit's SIGINT: what was measured so far is on disk already
        log(f"interrupted; the results so far are in {args.out}")
        return 130
    print(save(rows, skipped, failures, complete=True))
    log(f"results written to {args.out}")
    if failures:
        log("some cases FAILED (the others were timed):")
        for f in failures:
            log(f"  {f}")
        return 1
    return 0


def write_outputs(out: Path, data: dict) -> str:
    """gpu.md, gpu.json and one plot per net into out; returns the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(data)
    report.write_json(out / "gpu.json", data)
    report.write_text(out / "gpu.md", text)
    for net in data["settings"]["nets"]:
        series = {}
        for r in data["results"]:
            if r["net"] == net:
                series.setdefault(r["label"], []).append((r["batch"], r))
        if series:
            why = report.plot(out / f"gpu-{net}.png", series, title=f"MLP {'-'.join(map(str, NETS[net]))} step (GPU)",
                              reference=LABELS[REFERENCE])
            if why:
                log(why)
    return text


if __name__ == "__main__":
    sys.exit(main())
