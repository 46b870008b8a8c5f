"""The GPU check's driver: what ``benchmarks/gpu_check.sh`` runs once the carried wheels are installed.

``python -m benchmarks.gpu_check OUT_DIR [--quick] [benchmarks.gpu arguments]``

Each step writes into OUT_DIR as it goes, and the first that fails decides the exit status:

1. the imports gdbp and its tests need, looked up before gdbp is imported, so that a
   missing one is named with how to carry it (exit 3);
2. ``nvidia-smi`` (its output only: it may be absent);
3. the CUDA probe, :func:`gdbp.backends.probe_cuda`: its reason is printed and written
   to ``probe.txt``, and a failed probe stops the check (exit 4), since every gpu test
   would be skipped and pytest would pass;
4. the gpu tests, ``pytest -m gpu`` (``pytest_gpu.log``, ``pytest_gpu.xml``): they fail
   when a test fails or errs, when the step runs out of time, or when no gpu test ran
   (all skipped: their reasons are printed) (exit 1, or pytest's own status);
5. the GPU benchmark, ``python -m benchmarks.gpu`` (``gpu.md``, ``gpu.json``, plots):
   each case catches its own failure and the results so far are rewritten as it goes.

``--quick`` fits a cold GPU in about five minutes (CuPy compiles each kernel on first
use): the tests of :data:`QUICK_TESTS` only, stopping at the first failure (``-x``), each
test limited to :data:`TEST_TIMEOUT_S` seconds (pytest-timeout), the step to
:data:`QUICK_STEP_S`; and the benchmark's own ``--quick`` within :data:`QUICK_BENCH_S`.
A step that runs out of time is sent SIGINT first, so that pytest and the benchmark
write what they have, then killed.
"""

from __future__ import annotations

import importlib.util
import shutil
import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

#: Module -> the wheel that provides it: what gdbp, its tests and the quick mode import.
#: The GPU machine has numpy, pytest, hypothesis, torch, tqdm, safetensors and pytest-timeout;
#: benchmarks/fetch_wheels.sh fetches every one that is not part of its image.
NEEDS = {
    "numpy": "numpy",
    "array_api_compat": "array-api-compat",
    "array_api_strict": "array-api-strict",
    "pytest": "pytest",
    "hypothesis": "hypothesis",
    "torch": "torch",
    "safetensors": "safetensors",
    "tqdm": "tqdm",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
    "einops": "einops",
    "array_api_extra": "array-api-extra",
}
QUICK_NEEDS = {"pytest_timeout": "pytest-timeout"}
#: The gpu tests of the quick mode: the GPU readiness checks, then the backend layer's.
QUICK_TESTS = ("tests/test_gpu_readiness.py", "tests/test_backends.py")
TEST_TIMEOUT_S = 120
QUICK_STEP_S = 180
QUICK_BENCH_S = 90
FULL_STEP_S = 3000
EXIT_MISSING, EXIT_PROBE, EXIT_NO_TESTS = 3, 4, 1


def log(msg: str) -> None:
    print(msg, flush=True)


def missing(needs: dict) -> list[str]:
    """The modules of ``needs`` that cannot be imported here, each with its wheel."""
    return [f"{module} (wheel {wheel})" for module, wheel in needs.items() if importlib.util.find_spec(module) is None]


def run_step(cmd: list, log_path: Path, timeout: float) -> tuple[int, bool]:
    """Run ``cmd``, its output both printed and written to ``log_path``; (exit status, timed out).

    Past ``timeout`` seconds the command is sent SIGINT (pytest and the
    benchmark then write what they have), and killed 20 seconds later.
    """
    with open(log_path, "w") as out:
        # SIGINT restored in the child: a shell without job control starts background jobs with it ignored,
        # and a Python started so ignores it too (it would then be killed, writing nothing).
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                preexec_fn=_default_sigint)

        def copy():
            for line in proc.stdout:
                sys.stdout.write(line)
                out.write(line)
            sys.stdout.flush()

        reader = threading.Thread(target=copy, daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(10)
    return proc.returncode, timed_out


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def junit_counts(path: Path) -> dict:
    """tests, failures, errors, skipped of a pytest JUnit XML report, and the skip reasons."""
    counts = dict(tests=0, failures=0, errors=0, skipped=0, reasons=[])
    if not path.exists():
        return counts
    root = ET.parse(path).getroot()
    for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        for key in ("tests", "failures", "errors", "skipped"):
            counts[key] += int(suite.get(key, 0))
        for case in suite.iter("testcase"):
            for skip in case.iter("skipped"):
                counts["reasons"].append(skip.get("message", ""))
    return counts


def pytest_command(python: str, xml: Path, quick: bool) -> list:
    cmd = [python, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "-rs", f"--junitxml={xml}"]
    if quick:
        cmd += ["-x", f"--timeout={TEST_TIMEOUT_S}", *QUICK_TESTS]
    return cmd


def tests_verdict(status: int, timed_out: bool, counts: dict, limit: float) -> tuple[int, str]:
    """The tests step's exit status and a line saying why."""
    ran = counts["tests"] - counts["skipped"]
    bad = counts["failures"] + counts["errors"]
    if timed_out:
        return 1, f"the gpu tests ran out of time ({limit:.0f} s): {ran} ran, {bad} failed before that"
    if ran <= 0:
        reasons = sorted(set(counts["reasons"])) or ["no gpu test was collected"]
        return EXIT_NO_TESTS, "no gpu test ran (a pass would be false); skipped because: " + "; ".join(reasons)
    if status != 0 or bad:
        return status or 1, f"the gpu tests FAILED: {bad} of {ran} failed or erred (pytest exit {status})"
    return 0, f"the gpu tests passed: {ran} ran, {counts['skipped']} skipped"


def probe() -> tuple[bool, str]:
    from gdbp.backends import probe_cuda

    return probe_cuda()


def main(argv=None, *, probe=probe, run=run_step, python=sys.executable) -> int:
    """Run the GPU check; returns the exit status (0 only when every step passed)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        log("usage: python -m benchmarks.gpu_check OUT_DIR [--quick] [benchmarks.gpu arguments]")
        return 2
    out = Path(argv[0]).resolve()
    rest = argv[1:]
    quick = "--quick" in rest
    out.mkdir(parents=True, exist_ok=True)

    lacking = missing({**NEEDS, **(QUICK_NEEDS if quick else {})})
    if lacking:
        log(f"== missing here: {', '.join(lacking)}. This machine cannot fetch them: run "
            "benchmarks/fetch_wheels.sh where there is network, and carry .whl/ with the checkout "
            "(benchmarks/gpu_check.sh installs it)")
        return EXIT_MISSING

    if shutil.which("nvidia-smi"):
        run(["nvidia-smi"], out / "nvidia-smi.txt", 60)

    ok, why = probe()
    (out / "probe.txt").write_text(why + "\n")
    log(f"== CUDA probe: {why}")
    if not ok:
        log("== the CUDA probe FAILED: every gpu test would be skipped, so the check stops here")
        return EXIT_PROBE

    xml = out / "pytest_gpu.xml"
    limit = QUICK_STEP_S if quick else FULL_STEP_S
    cmd = pytest_command(python, xml, quick)
    log("== " + " ".join(cmd))
    status, timed_out = run(cmd, out / "pytest_gpu.log", limit)
    tests, why = tests_verdict(status, timed_out, junit_counts(xml), limit)
    log(f"== {why}")

    cmd = [python, "-m", "benchmarks.gpu", "--out", str(out), *rest]
    log("== " + " ".join(cmd))
    bench, bench_timed_out = run(cmd, out / "bench_gpu.log", QUICK_BENCH_S if quick else FULL_STEP_S)
    if bench_timed_out:
        log("== the benchmark ran out of time: gpu.md holds the cases measured until then")
        bench = bench or 1
    log(f"== tests {tests}, benchmark {bench}; results in {out}")
    return tests or bench


if __name__ == "__main__":
    sys.exit(main())
