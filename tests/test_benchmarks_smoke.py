"""The benchmark suite's smoke run: all implementations agree at batch 4, one short round is timed, tables come out."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

# benchmarks/ is a folder of the repository, not part of the installed package.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import problems, run  # noqa: E402
from benchmarks.suite import TASK_IMPLS  # noqa: E402


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The whole suite at batch 4: checked, then timed for one round of one step per case, then written out."""
    out = tmp_path_factory.mktemp("bench")
    argv = ["--quick", "--batches", "4", "--rounds", "1", "--block-ms", "1", "--out", str(out)]
    args = run.parse(argv)
    args.argv = argv
    outcomes, workers_info, failures = run.run(args)
    data = run.results_json(args, outcomes, workers_info) if not failures else None
    if data is not None:
        run.write_outputs(args, data)
    return outcomes, workers_info, failures, data, out


@pytest.fixture(scope="module")
def checked(smoke_run):
    outcomes, workers_info, failures, _, _ = smoke_run
    return {(c.task, c.impl): o for c, o in outcomes.items()}, workers_info, failures


def test_all_implementations_agree_on_loss_and_updated_weights(checked):
    outcomes, _, failures = checked
    assert failures == []
    assert {o.status for o in outcomes.values()} <= {"ok", "skip", "unchecked"}
    # Every part of the suite, every implementation it names, was asked for.
    assert set(outcomes) == {(task, impl) for task, impls in TASK_IMPLS.items() for impl in impls}


def test_gdbp_and_the_installed_frameworks_were_checked_not_skipped(checked):
    outcomes, _, _ = checked
    for task in ("mlp", "tiny"):
        assert outcomes[(task, "gdbp")].status == "ok", outcomes[(task, "gdbp")].detail
        assert outcomes[(task, "numpy")].status == "ok"
    for task, impls in (("plain", ("gdbp-plain", "gdbp-compile", "gdbp-compile-vg")),
                        ("attention", ("gdbp-plain", "gdbp-compile", "gdbp-compile-vg")),
                        ("tiny", ("gdbp-plain", "gdbp-compile", "gdbp-plain-compile"))):
        for impl in ("numpy",) + impls:
            assert outcomes[(task, impl)].status == "ok", f"{task}/{impl}: {outcomes[(task, impl)].detail}"
    assert outcomes[("mlp", "floor")].status == "unchecked"
    if importlib.util.find_spec("torch") is not None:
        for task in ("mlp", "tiny", "adam"):
            assert outcomes[(task, "torch")].status == "ok", outcomes[(task, "torch")].detail
        for task in ("plain", "attention"):
            assert outcomes[(task, "torch-plain")].status == "ok", outcomes[(task, "torch-plain")].detail
    if importlib.util.find_spec("autograd") is not None:
        assert outcomes[("mlp", "autograd")].status == "ok"


def test_skips_say_why(checked):
    outcomes, _, _ = checked
    for (task, impl), outcome in outcomes.items():
        if outcome.status == "skip":
            assert len(outcome.detail) > 10, f"{task}/{impl} skipped without a reason"


def test_workers_share_one_thread_setting(checked):
    _, workers_info, _ = checked
    settings = {info["env"]["OPENBLAS_NUM_THREADS"] for info in workers_info.values()}
    assert len(settings) == 1


def test_every_checked_case_was_timed_and_the_compiled_ones_only_replayed(smoke_run):
    _, _, failures, data, _ = smoke_run
    assert failures == [] and data is not None
    timed = {(r["task"], r["impl"]) for r in data["results"]}
    assert timed == {(t, i) for t, impls in TASK_IMPLS.items() for i in impls} - {
        tuple(k.split("/")) for k in data["skipped"]}
    compiled = [r for r in data["results"] if "compile" in r["impl"]]
    assert {r["task"] for r in compiled} == {"plain", "attention", "tiny"}
    for r in compiled:  # traced once when built: every step checked or timed was a replay
        assert r["products"] == {"traces": 1}, (r["task"], r["impl"], r["products"])
        assert r["n"] >= 1 and r["median"] > 0


def test_the_report_has_a_table_for_every_task_with_a_row_per_implementation(smoke_run):
    _, _, _, data, out = smoke_run
    text = (out / "latest.md").read_text()
    assert (out / "latest.json").exists()
    for title in ("### MLP 784-256-256-10 training step", "### The MLP step as plain array-API code",
                  "### Batched matrix products: attention-like blocks", "### Framework overhead: a tiny graph",
                  "### Optimizer step alone: Adam"):
        assert title in text
    plain_section = text.split("### The MLP step as plain array-API code")[1].split("###")[0]
    for r in data["results"]:
        section = text.split({"plain": "### The MLP step", "attention": "### Batched", "tiny": "### Framework",
                              "adam": "### Optimizer", "mlp": "### MLP"}[r["task"]])[1].split("###")[0]
        assert f"| {r['label']} | " in section, (r["task"], r["label"])
    if ("plain", "torch-plain") in {(r["task"], r["impl"]) for r in data["results"]}:
        assert "Time relative to PyTorch autograd, same code in torch functions:" in plain_section
        assert "| vs PyTorch |" in text.split("### Batched")[1].split("###")[0]
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "latest.png").stat().st_size > 10_000  # two rows of panels: mlp and plain


# --- the comparison itself must be able to fail ------------------------------------------------


def _mlp_step_by_hand(batch=4):
    from benchmarks.impl_numpy import HandMLP

    start = problems.mlp(batch)
    bench = HandMLP(problems.mlp(batch))
    bench.step()
    return start, bench.result()


def test_compare_accepts_the_reference_itself():
    start, ref = _mlp_step_by_hand()
    assert problems.compare(start, ref, ref) == []


def _attention_step_by_hand():
    from benchmarks.impl_numpy import HandAttention

    bench = HandAttention(problems.attention())
    bench.step()
    return problems.attention(), bench.result()


@pytest.mark.parametrize("by_hand, k", [(_mlp_step_by_hand, 2), (_attention_step_by_hand, 1)])  # W2; Wk
def test_compare_catches_a_small_error_in_one_gradient_entry(by_hand, k):
    start, ref = by_hand()
    wrong = {"loss": ref["loss"], "params": [p.copy() for p in ref["params"]]}
    update = wrong["params"][k] - start["params"][k]  # the weight's change, -lr * its gradient
    i = np.unravel_index(np.argmax(np.abs(update)), update.shape)
    wrong["params"][k][i] -= 0.01 * update[i]  # that entry's step off by 1%
    problems_found = problems.compare(start, ref, wrong)
    assert len(problems_found) == 1 and problems_found[0].startswith(f"params[{k}]")


def test_compare_catches_float64_wrong_shapes_and_a_wrong_loss():
    start, ref = _mlp_step_by_hand()
    promoted = {"loss": ref["loss"], "params": [p.astype(np.float64) for p in ref["params"]]}
    assert any("float64" in p for p in problems.compare(start, ref, promoted))
    transposed = {"loss": ref["loss"], "params": [p.T.copy() for p in ref["params"]]}
    assert any("shape" in p for p in problems.compare(start, ref, transposed))
    off = {"loss": ref["loss"] * np.float32(1.001), "params": ref["params"]}
    assert [p.split(":")[0] for p in problems.compare(start, ref, off)] == ["loss"]


# --- the GPU suite: its error path here, its driver logic on CPU stand-ins -------------------------


def test_gpu_suite_without_cuda_says_what_is_missing(tmp_path, capsys):
    from benchmarks import gpu
    from gdbp.backends import probe_cuda

    if probe_cuda()[0]:
        pytest.skip("a CUDA device answers here: the no-GPU message cannot be seen")
    assert gpu.main(["--out", str(tmp_path / "gpu"), "--quick"]) == 2
    message = capsys.readouterr().err
    assert "NVIDIA GPU" in message and "cupy" in message.lower()
    assert not (tmp_path / "gpu").exists()  # nothing written


def test_gpu_suite_checks_times_and_reports_with_cpu_stand_ins(tmp_path):
    from benchmarks import gpu, report
    from benchmarks.impl_gdbp import GdbpMLP
    from benchmarks.impl_numpy import Floor, HandMLP

    make = {"cupy": lambda p: HandMLP(p, xp=np), "floor": lambda p: Floor(p, xp=np),
            "gdbp": lambda p: GdbpMLP(p, backend="numpy")}
    args = gpu.parse(["--quick", "--nets", "standard", "--batches", "4", "--rounds", "2", "--block-ms", "1",
                      "--impls", "gdbp,floor"])
    assert args.impls[0] == "cupy"  # the reference is always there, first
    rows, skipped, failures = gpu.run(args, make, sync=lambda: None)
    assert failures == [] and skipped == {}
    assert {(r["impl"], r["check"]) for r in rows} == {("cupy", "ok"), ("gdbp", "ok"), ("floor", "timing only")}
    assert all(r["n"] == 2 and r["median"] > 0 for r in rows)  # one sample per round
    data = dict(date=report.now(), command="test", settings=dict(rounds=2, nets=args.nets),
                machine=report.machine_info(),
                gpu=dict(gpu="stand-in", gpu_memory_gib=0, cuda_runtime=0, cuda_driver=0, cupy="-", gdbp="-"),
                results=rows, skipped=skipped)
    text = gpu.write_outputs(tmp_path, data)
    assert "| gdbp on CuPy" in text and "batch 4" in text
    assert (tmp_path / "gpu.json").exists() and (tmp_path / "gpu.md").read_text() == text


def test_gpu_suite_catches_a_wrong_implementation_and_times_the_others():
    from benchmarks import gpu
    from benchmarks.impl_numpy import HandMLP

    class Wrong(HandMLP):
        def step(self):
            super().step()
            self.W[0] *= np.float32(1.01)  # a wrong update of the first layer

    args = gpu.parse(["--nets", "standard", "--batches", "4", "--impls", "gdbp", "--rounds", "1", "--block-ms", "1"])
    make = {"cupy": lambda p: HandMLP(p, xp=np), "gdbp": lambda p: Wrong(p, xp=np)}
    rows, _, failures = gpu.run(args, make, sync=lambda: None)
    assert len(failures) == 1 and "params[0]" in failures[0]
    assert [r["impl"] for r in rows] == ["cupy"]  # the wrong one is left out of the timing, not the others


def test_each_gpu_case_catches_its_own_failure_and_the_results_so_far_are_kept(tmp_path):
    from benchmarks import gpu, report
    from benchmarks.impl_numpy import HandMLP

    def broken(p):
        raise RuntimeError("CUDA_ERROR_OUT_OF_MEMORY at this batch")

    args = gpu.parse(["--nets", "standard", "--batches", "4,8", "--impls", "gdbp", "--rounds", "2",
                      "--block-ms", "1"])
    make = {"cupy": lambda p: HandMLP(p, xp=np), "gdbp": broken}
    seen = []
    rows, skipped, failures = gpu.run(args, make, sync=lambda: None, progress=lambda *a: seen.append(a))
    assert len(failures) == 2 and all("OUT_OF_MEMORY" in f for f in failures)
    assert {(r["impl"], r["batch"]) for r in rows} == {("cupy", 4), ("cupy", 8)}
    assert len(seen) == 2 + 2  # after each (net, batch) is checked, after each round
    assert seen[1][0] == [] and len(seen[-1][0]) == 2  # nothing timed yet after the checks
    data = dict(date=report.now(), command="test", settings=dict(rounds=2, nets=args.nets),
                machine=report.machine_info(),
                gpu=dict(gpu="stand-in", gpu_memory_gib=0, cuda_runtime=0, cuda_driver=0, cupy="-", gdbp="-"),
                results=seen[2][0], skipped=skipped, failures=failures, complete=False)
    text = gpu.write_outputs(tmp_path, data)
    assert "OUT_OF_MEMORY" in text and "Partial" in text


@pytest.mark.gpu
def test_gpu_suite_on_a_cuda_device_agrees_with_numpy():
    from benchmarks import gpu
    from benchmarks.impl_numpy import HandMLP

    try:
        cupy = gpu.require_cuda()
    except gpu.GPUUnavailable as exc:
        pytest.skip(str(exc))
    start = problems.mlp(8)
    on_host, on_device = HandMLP(problems.mlp(8), xp=np), HandMLP(problems.mlp(8), xp=cupy)
    on_host.step()
    on_device.step()
    assert problems.compare(start, on_host.result(), on_device.result(), rtol=1e-3) == []
    args = gpu.parse(["--quick", "--nets", "standard", "--batches", "8", "--rounds", "1", "--block-ms", "1"])
    rows, skipped, failures = gpu.run(args, gpu.factories(cupy), cupy.cuda.runtime.deviceSynchronize)
    assert failures == []
    assert {"cupy", "floor", "gdbp"} <= {r["impl"] for r in rows}
