"""The command line: ``gdbp info | demo | check | bench | lesson`` (also ``python -m gdbp ...``)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _info(args) -> int:
    from .backends import report

    print(report())
    return 0


def _demo(args) -> int:
    from .train.demo import run_demo

    run_demo(
        backend=args.backend,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        seed=args.seed,
        out=args.out,
        progress=not args.no_progress,
        distributed=args.distributed,
    )
    return 0


def _check(args) -> int:
    from .check import run_check

    return run_check(args.backends)


def _lesson(args) -> int:
    if args.name == "descent":
        from .lessons.descent import run
    else:
        from .lessons.backprop import run
    try:
        run(out=args.out, backend=args.backend)
    except ImportError as exc:  # matplotlib missing: the lesson's text is printed, its pictures need it
        print(f"gdbp lesson {args.name}: {exc}", file=sys.stderr)
        return 1
    return 0


def _bench(argv) -> int:
    # The benchmarks live beside the package in a source checkout, not inside it.
    import os

    if os.path.isfile(os.path.join("benchmarks", "run.py")) and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        from benchmarks.run import main as bench_main
    except ImportError:
        print(
            "gdbp bench runs the benchmarks/ folder of a source checkout: "
            "run it from the repository root (or use `make bench`)",
            file=sys.stderr,
        )
        return 2
    return bench_main(argv) or 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gdbp", description="Backpropagation and gradient descent on any array-API backend.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("info", help="the chosen backend, why, and every backend probed").set_defaults(run=_info)

    demo = sub.add_parser("demo", help="train an MLP on the handwritten digits data set")
    demo.add_argument("--backend", default="auto", help="auto, numpy, cupy, cupy:N, torch, ... (default: auto)")
    demo.add_argument("--epochs", type=int, default=None)
    demo.add_argument("--batch-size", type=int, default=None)
    demo.add_argument("--lr", type=float, default=None)
    demo.add_argument("--optimizer", default=None, help="sgd, momentum, adam, adamw, rmsprop, adagrad")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="runs/demo", help="folder for the checkpoint and the loss-curve PNG")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.add_argument("--distributed", action="store_true",
                      help="train on every process of an MPI job (mpiexec -n N gdbp demo --distributed); "
                           "--batch-size is then each process's share of the global batch")
    demo.set_defaults(run=_demo)

    check = sub.add_parser("check", help="cross-check gradients between this machine's backends")
    check.add_argument("--backends", nargs="*", default=None, help="backends to check (default: all available)")
    check.set_defaults(run=_check)

    lesson = sub.add_parser(
        "lesson",
        help="descent: learning rates too small, good, too large, diverging; backprop: a backward pass walked",
        description="The two ideas gdbp is named after, shown from real runs. descent: gradient descent with four "
                    "learning rates on a 1-D and a 2-D cost, a table and the paths drawn. backprop: a 2-2-1 network's "
                    "backward sweep node by node, every number checked, and its graph drawn with the gradients.")
    lesson.add_argument("name", choices=["descent", "backprop"], help="which lesson")
    lesson.add_argument("--out", default="runs/lessons", help="folder for the PNGs (default: runs/lessons)")
    lesson.add_argument("--backend", default="numpy", help="numpy, cupy, torch, ... (default: numpy; float64)")
    lesson.set_defaults(run=_lesson)

    sub.add_parser("bench", help="run the benchmarks (from a source checkout; --help for its options)", add_help=False)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])  # every option after `bench` belongs to the benchmark's own parser
    args = _parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
