"""What the CPU suite runs: the implementations, the cases, the correctness check and the timed rounds."""

from __future__ import annotations

import random
import statistics
import sys
from dataclasses import dataclass, field

from . import problems
from .report import summarize
from .worker import WorkerError, Workers, blocks

REFERENCE = "numpy"


@dataclass(frozen=True)
class Impl:
    name: str
    family: str  # the worker process it runs in
    labels: dict  # task -> label in tables and plots
    checked: bool = True  # False: computes no cost or update, nothing to compare (the floor)


IMPLS = {
    i.name: i
    for i in (
        Impl("numpy", "numpy", {"mlp": "hand-written NumPy", "plain": "hand-written NumPy",
                                "attention": "hand-written NumPy", "tiny": "by hand (NumPy)",
                                "adam": "hand-written NumPy, per tensor"}),
        Impl("floor", "numpy", {"mlp": "floor: the 8 matrix products only"}, checked=False),
        Impl("gdbp", "gdbp", {"mlp": "gdbp (Tensors + ops, SGD by hand)", "tiny": "gdbp",
                              "adam": "gdbp.descent.Adam"}),
        Impl("gdbp-nn", "gdbp", {"mlp": "gdbp nn.Sequential + descent.SGD"}),
        Impl("gdbp-flat", "gdbp", {"adam": "gdbp.descent.Adam(flat=True)"}),
        Impl("gdbp-plain", "gdbp", {"plain": "gdbp eager: value_and_grad, SGD on the arrays",
                                    "attention": "gdbp eager: value_and_grad, SGD on the arrays",
                                    "tiny": "gdbp eager, plain code: value_and_grad"}),
        Impl("gdbp-compile", "gdbp", {"plain": "gdbp.compile, whole step (value_and_grad + SGD)",
                                      "attention": "gdbp.compile, whole step (value_and_grad + SGD)",
                                      "tiny": "gdbp.compile(value_and_grad), ops.relu"}),
        Impl("gdbp-compile-vg", "gdbp", {"plain": "gdbp.compile(value_and_grad), SGD outside",
                                         "attention": "gdbp.compile(value_and_grad), SGD outside"}),
        Impl("gdbp-plain-compile", "gdbp", {"tiny": "gdbp.compile(value_and_grad), plain code"}),
        Impl("torch", "torch", {"mlp": "PyTorch eager (raw tensors, SGD by hand)", "tiny": "PyTorch",
                                "adam": "PyTorch optim.Adam (foreach)"}),
        Impl("torch-nn", "torch", {"mlp": "PyTorch nn.Sequential + optim.SGD"}),
        Impl("torch-plain", "torch", {"plain": "PyTorch autograd, same code in torch functions",
                                      "attention": "PyTorch autograd, same code in torch functions",
                                      "tiny": "PyTorch, plain code in torch functions (torch.maximum)"}),
        Impl("autograd", "autograd", {"mlp": "HIPS autograd", "tiny": "HIPS autograd"}),
        Impl("numpy-flat", "numpy", {"adam": "hand-written NumPy, one flat buffer"}),
    )
}

TASKS = ("mlp", "plain", "attention", "tiny", "adam")
TASK_IMPLS = {task: [name for name, impl in IMPLS.items() if task in impl.labels] for task in TASKS}


@dataclass(frozen=True)
class Case:
    task: str
    impl: str
    size: int | None  # the batch size for the tasks of problems.BATCHED_TASKS

    @property
    def key(self):
        return (self.task, self.impl, self.size)

    @property
    def family(self):
        return IMPLS[self.impl].family

    @property
    def label(self):
        return IMPLS[self.impl].labels[self.task]


def cases(parts, impls, batches) -> list[Case]:
    """Every (task, implementation, size) asked for; the reference always joins, for the ratios."""
    chosen = set(impls) | {REFERENCE}
    out = []
    for task in parts:
        sizes = list(batches) if task in problems.BATCHED_TASKS else [None]
        for impl in TASK_IMPLS[task]:
            if impl in chosen:
                out += [Case(task, impl, size) for size in sizes]
    return out


@dataclass
class Outcome:
    """What happened to one case: its check, skip reason, and timings."""

    case: Case
    status: str = "pending"  # ok, skip, fail, unchecked
    detail: str = ""
    block: tuple | None = None
    times: list = field(default_factory=list)
    products: dict | None = None

    def stats(self):
        return summarize(self.times) if self.times else None


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def check(workers: Workers, outcomes: dict, seed: int) -> list[str]:
    """Run each case's problem for a step (three for Adam) and compare with the reference.

    Every worker works through its own queue of checks, all workers at once.
    Returns the failures (empty when all agree); statuses go into outcomes.
    """
    asked = []
    for case, outcome in outcomes.items():
        if IMPLS[case.impl].checked:
            asked.append(case)
        else:
            outcome.status, outcome.detail = "unchecked", "it computes no cost or update"
    for case in asked:
        workers.send(case.family, "check", case.task, case.impl, case.size, seed, problems.check_steps(case.task))
    answers = {case: workers.receive(case.family) for case in asked}  # each worker answers in the order asked
    errors = [f"{case.label}: {value}" for case, (status, value) in answers.items() if status == "error"]
    if errors:
        raise WorkerError("a worker failed during the correctness check:\n" + "\n".join(errors))
    failures = []
    for case in asked:
        outcome = outcomes[case]
        status, value = answers[case]
        if status == "skip":
            outcome.status, outcome.detail = "skip", value
            continue
        if case.impl == REFERENCE:
            outcome.status = "ok"
            continue
        _, ref = answers[Case(case.task, REFERENCE, case.size)]
        wrong = problems.compare(problems.make(case.task, case.size, seed), ref, value)
        outcome.status = "fail" if wrong else "ok"
        outcome.detail = "; ".join(wrong)
        if wrong:
            where = case.task if case.size is None else f"{case.task}, batch {case.size}"
            failures.append(f"{case.label} ({where}): {outcome.detail}")
    return failures


def time_rounds(workers: Workers, outcomes: dict, seed: int, rounds: int, block_s: float, warm_s: float) -> None:
    """Interleaved timing: every round visits every worker, in a fresh random order.

    A worker times one block of each of its cases (in random order) per
    visit; block sizes follow the median step time measured so far, so that
    each block lasts about block_s.
    """
    live = [c for c, o in outcomes.items() if o.status in ("ok", "unchecked")]
    for case in live:
        outcome = outcomes[case]
        status, value = workers.call(case.family, "build", case.key, seed, warm_s)
        if status == "skip":
            outcome.status, outcome.detail = "skip", value
            continue
        outcome.block = blocks(value, block_s)
        _, outcome.products = workers.call(case.family, "info", case.key)
    by_family = {}
    for case in live:
        if outcomes[case].status != "skip":
            by_family.setdefault(case.family, []).append(case)
    per_round = sum(len(group) for group in by_family.values()) * block_s * 1.05 + 0.15 * len(by_family)
    log(f"timing {sum(map(len, by_family.values()))} cases x {rounds} rounds (about {rounds * per_round:.0f} s)")
    order = random.Random(seed)
    families = list(by_family)
    for r in range(rounds):
        order.shuffle(families)
        for family in families:
            group = by_family[family]
            order.shuffle(group)
            _, results = workers.call(family, "time_many", [(c.key, *outcomes[c].block) for c in group])
            for case, times in zip(group, results):
                outcome = outcomes[case]
                outcome.times += times
                outcome.block = blocks(statistics.median(outcome.times), block_s)
        log(f"  round {r + 1}/{rounds} done")
    for group in by_family.values():
        for case in group:
            workers.call(case.family, "drop", case.key)


def hello(workers: Workers) -> dict:
    """Ask every worker, all at once, for its versions and thread pools (they import in parallel)."""
    for family in workers.procs:
        workers.send(family, "hello")
    out = {}
    for family in workers.procs:
        status, value = workers.receive(family)
        out[family] = value if status == "ok" else {"error": value}
    return out
