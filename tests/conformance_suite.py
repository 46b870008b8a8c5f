"""The official array API conformance suite, run against gdbp's namespace and array_api_compat.numpy.

The suite (data-apis/array-api-tests with the 2024.12 spec, a copy kept in
``../shared/conformance`` beside the repository, or where ``GDBP_CONFORMANCE``
points) is run by its own ``run.sh``, which fixes the settings (20 examples,
hypothesis seed 0). Its per-test outcomes are read from pytest-json-report's
file, which the suite requires anyway.

``python tests/conformance_suite.py`` (what ``make conformance`` runs) runs
both namespaces, prints both summary lines, and exits 1 when gdbp fails a
test that ``tests/conformance_known_failures.txt`` does not list, or when a
listed one passes (delete its line then). tests/test_conformance_suite.py
makes the same check on gdbp alone, inside ``make test``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KNOWN_FAILURES = Path(__file__).resolve().parent / "conformance_known_failures.txt"
#: gdbp's differentiable namespace over NumPy, in the form the suite's MODULE argument takes.
GDBP = "exec('import gdbp; xp = gdbp.backprop.namespace_for(gdbp.backends.resolve(\"numpy\"))')"
COMPAT = "array_api_compat.numpy"
#: gdbp's passes in the latest run (the README gives it): fewer means tests stopped running, not that they pass.
MIN_PASSED = 1366


def suite_dir() -> Path:
    """Where the suite is: ``$GDBP_CONFORMANCE``, else ``../shared/conformance`` beside the repository."""
    return Path(os.environ.get("GDBP_CONFORMANCE") or ROOT.parent / "shared" / "conformance")


def missing() -> str | None:
    """Why the suite cannot run here, or None."""
    script = suite_dir() / "run.sh"
    if not script.is_file():
        return (f"the array API conformance suite is not at {script} (a copy of data-apis/array-api-tests "
                "kept in ../shared/conformance beside the repository); set GDBP_CONFORMANCE to its folder")
    return None


@dataclasses.dataclass
class Run:
    """One run of the suite against one namespace."""

    module: str
    summary: str  #: pytest's last line, "N failed, M passed, K skipped in T s"
    counts: dict  #: outcome -> number of tests (passed, failed, skipped, error...)
    failed: dict  #: node id -> the first line of its failure
    seconds: float
    output: str  #: everything the suite printed


def run(module: str, python: str = sys.executable, timeout: float = 1800) -> Run:
    """Run the suite against ``module`` with ``python`` (which must have pytest, hypothesis, ndindex, pytest-json-report)."""
    why = missing()
    if why:
        raise FileNotFoundError(why)
    env = dict(os.environ)
    # This checkout's gdbp, whatever the environment has installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        start = time.perf_counter()
        proc = subprocess.run(
            ["bash", str(suite_dir() / "run.sh"), python, module, "--json-report", f"--json-report-file={report}",
             "--json-report-omit", "collectors", "keywords", "log", "traceback", "streams"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
        )
        seconds = time.perf_counter() - start
        lines = proc.stdout.strip().splitlines()
        if not report.is_file():
            raise RuntimeError(f"the conformance suite did not run (exit {proc.returncode}):\n" + "\n".join(lines[-30:]))
        data = json.loads(report.read_text())
    counts = {k: v for k, v in data["summary"].items() if k not in ("total", "collected")}
    failed = {}
    for t in data["tests"]:
        if t["outcome"] in ("failed", "error"):
            stage = t.get("call") if t["outcome"] == "failed" else t.get("setup")
            text = str((stage or {}).get("longrepr") or (stage or {}).get("crash", {}).get("message") or "")
            failed[t["nodeid"]] = next((ln.strip() for ln in text.splitlines() if ln.startswith("E ")), "")[:200]
    return Run(module, lines[-1] if lines else "", counts, failed, seconds, proc.stdout)


def known_failures(path: Path = KNOWN_FAILURES) -> dict:
    """The listed failures: node id -> reason (each line ``NODE_ID  # reason``; ``#`` lines are comments)."""
    known = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        nodeid, sep, reason = line.partition("  # ")
        if not sep or not reason.strip():
            raise ValueError(f"{path.name}:{n}: each known failure needs its reason: 'NODE_ID  # why it fails'")
        known[nodeid.strip()] = reason.strip()
    return known


def compare(r: Run, known: dict) -> tuple[list, list]:
    """(failures the list does not have, listed failures that passed)."""
    return sorted(set(r.failed) - set(known)), sorted(set(known) - set(r.failed))


def main() -> int:
    why = missing()
    if why:
        print(f"make conformance: {why}", file=sys.stderr)
        return 1
    runs = [run(GDBP), run(COMPAT)]
    logs = ROOT / "runs" / "conformance"
    logs.mkdir(parents=True, exist_ok=True)
    for name, r in zip(("gdbp", "array_api_compat.numpy"), runs):
        (logs / f"{name}.log").write_text(r.output)
    print(f"full output in {logs}/")
    for name, r in zip(("gdbp (numpy)", "array_api_compat.numpy"), runs):
        print(f"{name:>24}: {r.summary}   [{r.seconds:.0f} s wall]")
    new, fixed = compare(runs[0], known_failures())
    few = runs[0].counts.get("passed", 0) < MIN_PASSED
    if few:
        print(f"gdbp passes {runs[0].counts.get('passed', 0)} tests, fewer than the {MIN_PASSED} of the latest run")
    for nodeid in new:
        print(f"gdbp fails a test not in {KNOWN_FAILURES.name}: {nodeid}\n    {runs[0].failed[nodeid]}")
    for nodeid in fixed:
        print(f"gdbp now passes {nodeid}: delete its line from {KNOWN_FAILURES.name}")
    return 1 if new or fixed or few else 0


if __name__ == "__main__":
    sys.exit(main())
