"""Run the CPU benchmark suite: ``python -m benchmarks.run`` (``make bench``, ``gdbp bench``).

1. Correctness first: every implementation takes one step from the same
   weights and data; loss and updated weights must match hand-written NumPy
   to float32 tolerances, or nothing is timed.
2. Then timing, interleaved: each framework lives in its own worker process
   (same thread settings for all), and every round runs one block of steps
   of every case in a random order, so that machine noise hits all alike.
   Medians and interquartile ranges are taken over all timed steps.
3. Output: a markdown table (printed, and written as ``latest.md``), a JSON
   file with the machine's description, and a log-log plot.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from . import problems, report
from .suite import IMPLS, REFERENCE, TASKS, Outcome, cases, check, hello, log, time_rounds
from .worker import WorkerError, Workers

DEFAULT_BATCHES = (1, 16, 128, 1024)


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="a short smoke run: few, short rounds; output to a temporary folder")
    p.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)),
                   help="batch sizes of the MLP tasks (mlp, plain), comma-separated (default: %(default)s)")
    p.add_argument("--impls", default=",".join(IMPLS),
                   help=f"implementations, comma-separated (default: all of {','.join(IMPLS)}); "
                        f"{REFERENCE} always runs, as the reference")
    p.add_argument("--parts", default=",".join(TASKS), help="parts of the suite (default: %(default)s)")
    p.add_argument("--rounds", type=int, help="timing rounds (default: 20; 3 with --quick)")
    p.add_argument("--block-ms", type=float,
                   help="milliseconds of steps per case per round (default: 120; 15 with --quick)")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="BLAS/OpenMP threads for every framework (default: the number of cores, %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights, data and the order of blocks")
    p.add_argument("--check-only", action="store_true", help="run the correctness check only, no timing")
    p.add_argument("--out", type=Path, help="output folder (default: benchmarks/results; a temporary one with --quick)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the plot")
    args = p.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",") if b]
    args.impls = [i for i in args.impls.split(",") if i]
    args.parts = [t for t in args.parts.split(",") if t]
    for name in args.impls:
        if name not in IMPLS:
            p.error(f"unknown implementation {name!r}: choose from {', '.join(IMPLS)}")
    for task in args.parts:
        if task not in TASKS:
            p.error(f"unknown part {task!r}: choose from {', '.join(TASKS)}")
    if any(b < 1 for b in args.batches):
        p.error("batch sizes must be positive")
    if args.rounds is None:
        args.rounds = 3 if args.quick else 20
    if args.block_ms is None:
        args.block_ms = 15.0 if args.quick else 120.0
    return args


def run(args) -> tuple[dict, dict, list]:
    """Check, then time; returns (outcomes by case, worker info, check failures)."""
    outcomes = {c: Outcome(c) for c in cases(args.parts, args.impls, args.batches)}
    families = sorted({c.family for c in outcomes})
    args.load_start = os.getloadavg()
    if args.load_start[0] > 0.5 * os.cpu_count():
        log(f"warning: the machine is busy (load average {args.load_start[0]:.1f} on {os.cpu_count()} cores); "
            "timings will be noisier than usual")
    with Workers(families, args.threads) as workers:
        workers_info = hello(workers)
        for case, outcome in outcomes.items():
            error = workers_info[case.family].get("error")
            if error:
                outcome.status, outcome.detail = "skip", f"its worker failed to start: {error.strip().splitlines()[-1]}"
        live = {c: o for c, o in outcomes.items() if o.status == "pending"}
        log("correctness check (one step from the same start; Adam: three)")
        failures = check(workers, live, args.seed)
        for case, outcome in outcomes.items():
            mark = {"skip": "skipped", "fail": "FAILED", "unchecked": "timing only"}.get(outcome.status, outcome.status)
            size = "" if case.size is None else f" batch {case.size}"
            log(f"  {case.task + size:<20} {case.label:<48} {mark}{': ' + outcome.detail if outcome.detail else ''}")
        if failures or args.check_only:
            return outcomes, workers_info, failures
        time_rounds(workers, outcomes, args.seed, args.rounds, args.block_ms / 1e3, warm_s=0.02 if args.quick else 0.3)
    return outcomes, workers_info, failures


def results_json(args, outcomes, workers_info) -> dict:
    ref = {(c.task, c.size): o.stats() for c, o in outcomes.items() if c.impl == REFERENCE}
    rows, skipped = [], {}
    for case, outcome in outcomes.items():
        stats = outcome.stats()
        if outcome.status == "skip":
            skipped[f"{case.task}/{case.impl}"] = outcome.detail
        if stats is None:
            continue
        base = ref.get((case.task, case.size))
        rows.append(dict(task=case.task, impl=case.impl, label=case.label, batch=case.size, check=outcome.status,
                         ratio=stats["median"] / base["median"] if base else None,
                         steps_per_block=outcome.block[1], products=outcome.products, **stats))
    return dict(
        date=report.now(),
        command="python -m benchmarks.run " + " ".join(args.argv),
        settings=dict(rounds=args.rounds, block_ms=args.block_ms, threads=args.threads, seed=args.seed,
                      quick=args.quick, batches=args.batches, lr=problems.LR),
        problems=dict(
            mlp=dict(sizes=problems.MLP_SIZES, cost="softmax cross-entropy from integer labels", update="SGD"),
            plain=("the MLP step written as plain array-API code (benchmarks/plain.py: xp.maximum for the ReLU, "
                   "a log-sum-exp of xp.max, xp.exp, xp.sum and xp.log, the labels by xp.take_along_axis), "
                   "differentiated by value_and_grad, then W -= lr * dW on the arrays"),
            attention=("SGD step of {} attention-like blocks of {} tokens, width {}, keys of width {}: "
                       "cost = mean over blocks of |softmax(Q K^T / sqrt(H)) V Wo - Y|^2, "
                       "Q = X Wq, K = X Wk, V = X Wv, "
                       "written as plain array-API code (matmul over 3-D stacks)").format(
                           *problems.ATTENTION_SHAPE, problems.ATTENTION_KEY),
            tiny="forward and backward pass of sum(relu(x @ W + b)), x 4x8, W 8x8",
            adam="Adam step over {} tensors of {}x{}".format(problems.ADAM_COUNT, *problems.ADAM_SHAPE),
        ),
        machine=dict(report.machine_info(), load_average=dict(start=args.load_start, end=os.getloadavg())),
        workers=workers_info,
        results=rows,
        skipped=skipped,
    )


def markdown(data: dict, plot_name: str | None) -> str:
    """The README-ready report: machine, MLP tables, tiny-graph and Adam tables, skips, plot."""
    m, s, rows = data["machine"], data["settings"], data["results"]
    versions = {k: v for w in data["workers"].values() for k, v in w.items() if k in ("gdbp", "torch", "autograd")}
    out = [
        "## Benchmarks (CPU)",
        "",
        f"{m['cpu']}, {m['cores']} cores, {s['threads']} BLAS/OpenMP thread(s) for every framework; "
        f"NumPy {m['numpy']} with {m['numpy_blas']}; Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + f". {data['date'][:10]}.",
        "",
        f"Median over {s['rounds']} interleaved rounds, each framework in its own process; "
        "all implementations first checked to give the same loss and updated weights (float32). "
        f"Load average {m['load_average']['start'][0]:.1f} at the start and {m['load_average']['end'][0]:.1f} "
        f"at the end, on {m['cores']} cores: other jobs share the machine.",
    ]
    mlp = [r for r in rows if r["task"] == "mlp"]
    if mlp:
        sizes = "-".join(map(str, data["problems"]["mlp"]["sizes"]))
        out += ["", f"### MLP {sizes} training step", "",
                "One whole step: forward, softmax cross-entropy, backward, SGD update.", ""]
        out += report.batch_tables(mlp, REFERENCE_LABELS["mlp"])
    plain = [r for r in rows if r["task"] == "plain"]
    if plain:
        out += ["", "### The MLP step as plain array-API code", "",
                f"One whole step, {data['problems']['plain']}: gdbp eagerly and through gdbp.compile (traced "
                "once, then replayed), PyTorch autograd on the same code in torch's functions, and the "
                "hand-written NumPy step of the table above, timed again as this table's reference.", ""]
        out += report.batch_tables(plain, REFERENCE_LABELS["plain"], also=ALSO.get("plain"))
    for task, title in (("attention", "Batched matrix products: attention-like blocks"),
                        ("tiny", "Framework overhead: a tiny graph"), ("adam", "Optimizer step alone: Adam")):
        task_rows = [r for r in rows if r["task"] == task]
        if task_rows:
            what = data["problems"][task]
            out += ["", f"### {title}", "", f"Median time of one {what}, relative to {REFERENCE_LABELS[task]}:", ""]
            out.append(report.single_table(task_rows, also=ALSO.get(task)))
    if data["skipped"]:
        out += ["", "Skipped:", ""] + [f"- {name}: {why}" for name, why in data["skipped"].items()]
    if plot_name:
        out += ["", f"![time per MLP training step against batch size]({plot_name})"]
    out += ["", f"Reproduce with `make bench` (`{data['command'].strip()}`).", ""]
    return "\n".join(out)


REFERENCE_LABELS = {task: IMPLS[REFERENCE].labels[task] for task in TASKS}
# The second yardstick of a table: PyTorch on the same program.
ALSO = {"plain": IMPLS["torch-plain"].labels["plain"], "attention": IMPLS["torch-plain"].labels["attention"],
        "tiny": IMPLS["torch"].labels["tiny"]}


def write_outputs(args, data) -> Path:
    out = args.out or (Path(tempfile.mkdtemp(prefix="gdbp-bench-")) if args.quick else report.RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    plot_name = None
    series = {task: {} for task in problems.BATCHED_TASKS}
    for r in data["results"]:
        if r["task"] in series:
            series[r["task"]].setdefault(r["label"], []).append((r["batch"], r))
    titles = {"mlp": "MLP training step (CPU)", "plain": "the MLP step as plain array-API code (CPU)"}
    groups = [(series[task], titles[task], REFERENCE_LABELS[task]) for task in series if series[task]]
    if groups and not args.no_plot:
        why = report.plot(out / "latest.png", *groups[0], more=groups[1:])
        if why:
            log(why)
        else:
            plot_name = "latest.png"
    text = markdown(data, plot_name)
    report.write_json(out / "latest.json", data)
    report.write_text(out / "latest.md", text)
    print(text)
    log(f"results written to {out}/latest.md, latest.json" + (", latest.png" if plot_name else ""))
    return out


def main(argv=None) -> int:
    """Entry point of ``python -m benchmarks.run`` and ``gdbp bench``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    args.argv = argv
    try:
        outcomes, workers_info, failures = run(args)
    except WorkerError as exc:
        log(f"benchmark aborted: {exc}")
        return 1
    if failures:
        log("correctness check FAILED; nothing was timed:")
        for f in failures:
            log(f"  {f}")
        return 1
    if args.check_only:
        log("correctness check passed")
        return 0
    write_outputs(args, results_json(args, outcomes, workers_info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
