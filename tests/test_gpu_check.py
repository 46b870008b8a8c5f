"""benchmarks/gpu_check.sh and its driver: no false pass, a quick mode, missing wheels named.

Here there is no GPU: the script itself runs and must stop at the probe;
the later steps run with stand-ins for the probe, pytest and the benchmark.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import gpu_check  # noqa: E402
from gdbp.backends import probe_cuda  # noqa: E402

CUDA_OK, _ = probe_cuda()


def junit(path: Path, passed=0, failed=0, skipped=0, reason="cupy is not installed"):
    cases = ['<testcase name="t%d"/>' % i for i in range(passed)]
    cases += ['<testcase name="f%d"><failure message="boom"/></testcase>' % i for i in range(failed)]
    cases += ['<testcase name="s%d"><skipped message="%s"/></testcase>' % (i, reason) for i in range(skipped)]
    n = passed + failed + skipped
    path.write_text(f'<testsuites><testsuite tests="{n}" failures="{failed}" errors="0" skipped="{skipped}">'
                    + "".join(cases) + "</testsuite></testsuites>")


class StandIns:
    """The probe, pytest and the benchmark as a GPU machine would answer."""

    def __init__(self, probe=(True, "cupy 14.2.0 with 1 CUDA device(s)"), tests=dict(passed=3), test_status=0,
                 bench_status=0, timed_out=()):
        self.answer, self.tests, self.test_status, self.bench_status = probe, tests, test_status, bench_status
        self.timed_out = timed_out
        self.commands = []

    def probe(self):
        return self.answer

    def run(self, cmd, log_path, timeout):
        self.commands.append((cmd, timeout))
        log_path.write_text("output\n")
        if "pytest" in cmd:
            xml = Path(next(c for c in cmd if c.startswith("--junitxml=")).split("=", 1)[1])
            junit(xml, **self.tests)
            return self.test_status, "pytest" in self.timed_out
        if "benchmarks.gpu" in cmd:
            return self.bench_status, "bench" in self.timed_out
        return 0, False

    def check(self, tmp_path, *args):
        return gpu_check.main([str(tmp_path), *args], probe=self.probe, run=self.run, python="python3")


@pytest.mark.skipif(CUDA_OK, reason="a CUDA device answers here: the failed probe cannot be seen")
def test_the_script_stops_at_a_failed_probe_and_prints_its_reason(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(tmp_path), "--quick"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == gpu_check.EXIT_PROBE, done.stdout + done.stderr
    assert "CUDA probe FAILED" in done.stdout and "cupy is not installed" in done.stdout
    assert (tmp_path / "probe.txt").read_text().startswith("cupy is not installed")
    assert not (tmp_path / "pytest_gpu.log").exists()  # no test run that could pass falsely


def test_a_failed_probe_stops_before_the_tests(tmp_path):
    s = StandIns(probe=(False, "cupy is installed but no CUDA device answered: driver too old"))
    assert s.check(tmp_path) == gpu_check.EXIT_PROBE
    assert not any("pytest" in c for c, _ in s.commands)
    assert "driver too old" in (tmp_path / "probe.txt").read_text()


def test_no_gpu_test_run_is_a_failure_that_says_why(tmp_path, capsys):
    s = StandIns(tests=dict(skipped=4, reason="NVRTC headers missing"))
    assert s.check(tmp_path) == gpu_check.EXIT_NO_TESTS
    out = capsys.readouterr().out
    assert "no gpu test ran" in out and "NVRTC headers missing" in out
    assert StandIns(tests=dict(), test_status=5).check(tmp_path / "none") != 0  # none collected


def test_a_failed_test_or_a_step_out_of_time_fails_the_check_and_the_benchmark_still_runs(tmp_path):
    failing = StandIns(tests=dict(passed=2, failed=1), test_status=1)
    assert failing.check(tmp_path / "a") == 1
    assert any("benchmarks.gpu" in c for c, _ in failing.commands)
    assert StandIns(timed_out=("pytest",)).check(tmp_path / "b") == 1
    assert StandIns(timed_out=("bench",), bench_status=130).check(tmp_path / "c") == 130
    assert StandIns(bench_status=1).check(tmp_path / "d") == 1


def test_a_passing_run_passes_and_quick_mode_bounds_every_step(tmp_path):
    full = StandIns()
    assert full.check(tmp_path / "full") == 0
    (tests, _), (bench, _) = [(c, t) for c, t in full.commands if "pytest" in c or "benchmarks.gpu" in c]
    assert "-x" not in tests and "--quick" not in bench
    quick = StandIns()
    assert quick.check(tmp_path / "quick", "--quick") == 0
    (tests, t_limit), (bench, b_limit) = [(c, t) for c, t in quick.commands if "pytest" in c or "benchmarks.gpu" in c]
    assert "-x" in tests and f"--timeout={gpu_check.TEST_TIMEOUT_S}" in tests and "-m" in tests
    assert all(t in tests for t in gpu_check.QUICK_TESTS) and "--quick" in bench
    assert t_limit + b_limit <= 300  # about five minutes, cold


def test_the_quick_tests_exist_and_hold_gpu_tests():
    for name in gpu_check.QUICK_TESTS:
        assert "gpu" in (ROOT / name).read_text()


def test_a_missing_module_is_named_with_its_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(gpu_check.NEEDS, "no_such_module_here", "no-such-wheel")
    s = StandIns()
    assert s.check(tmp_path) == gpu_check.EXIT_MISSING
    out = capsys.readouterr().out
    assert "no_such_module_here (wheel no-such-wheel)" in out and "fetch_wheels.sh" in out and ".whl/" in out
    assert s.commands == []


def test_fetch_wheels_carries_every_needed_module_the_gpu_machine_lacks():
    listed = (ROOT / "benchmarks" / "fetch_wheels.sh").read_text()
    on_the_gpu_machine = {"numpy", "torch", "pytest", "hypothesis", "scipy"}
    for wheel in {**gpu_check.NEEDS, **gpu_check.QUICK_NEEDS}.values():
        if wheel not in on_the_gpu_machine:
            assert f"    {wheel}==" in listed, wheel


def test_junit_counts_reads_pytests_own_report(tmp_path):
    (tmp_path / "test_x.py").write_text(textwrap.dedent("""
        import pytest
        def test_ok(): pass
        @pytest.mark.skip(reason="no CUDA device")
        def test_skipped(): pass
    """))
    xml = tmp_path / "r.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_x.py"),
                    f"--junitxml={xml}"], capture_output=True, cwd=tmp_path, timeout=120)
    counts = gpu_check.junit_counts(xml)
    assert (counts["tests"], counts["skipped"], counts["failures"]) == (2, 1, 0)
    assert counts["reasons"] == ["no CUDA device"]


def test_a_step_out_of_time_is_interrupted_so_that_it_can_write_what_it_has(tmp_path):
    child = ("import sys, time\nprint('started', flush=True)\ntry:\n    time.sleep(60)\n"
             "except KeyboardInterrupt:\n    print('wrote what it had', flush=True)\n    sys.exit(130)\n")
    status, timed_out = gpu_check.run_step([sys.executable, "-c", child], tmp_path / "log", 5)
    assert (status, timed_out) == (130, True)
    assert (tmp_path / "log").read_text().split() == ["started", "wrote", "what", "it", "had"]


def test_every_module_the_tests_import_at_collection_is_one_the_check_looks_for():
    # pytest -m gpu still imports every test module: one import missing on the GPU machine is a collection error.
    import ast

    local = {"gdbp", "benchmarks"} | {p.stem for p in (ROOT / "tests").glob("*.py")}
    roots = set()
    for path in (ROOT / "tests").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                roots |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots.add(node.module.split(".")[0])
    third_party = {r for r in roots if r not in sys.stdlib_module_names and r not in local}
    assert third_party and third_party <= set(gpu_check.NEEDS), third_party - set(gpu_check.NEEDS)
