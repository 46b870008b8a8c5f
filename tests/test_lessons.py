"""gdbp lesson descent | backprop: what they compute, print and draw, and that their checks can fail."""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from gdbp import backends, cli
from gdbp.descent import DivergenceError
from gdbp.lessons import backprop as backprop_lesson
from gdbp.lessons import descent as descent_lesson

from conftest import to_numpy

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path):
    return path.exists() and path.stat().st_size > 10_000 and path.read_bytes()[:8] == PNG


@pytest.fixture(scope="module")
def descent_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("descent")
    text = io.StringIO()
    start = time.perf_counter()
    lesson = descent_lesson.run(out=out, stream=text)
    return lesson, text.getvalue(), time.perf_counter() - start, out


@pytest.fixture(scope="module")
def backprop_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("backprop")
    text = io.StringIO()
    start = time.perf_counter()
    lesson = backprop_lesson.run(out=out, stream=text)
    return lesson, text.getvalue(), time.perf_counter() - start, out


# --- descent -----------------------------------------------------------------------------------


def test_the_good_rate_stops_at_the_minimum_for_the_gradient_reason(descent_run):
    lesson, *_ = descent_run
    for spec in descent_lesson.COSTS:
        good = next(r for r in lesson.costs[spec["name"]]["runs"] if r.role == "good")
        assert good.path.stop == "tol" and good.path.grad_norm[-1] <= descent_lesson.TOL
        # The smallest curvature is 1 or more, so |w - w*| <= |grad| <= tol.
        assert good.distance <= descent_lesson.TOL
        np.testing.assert_allclose(to_numpy(good.path.w[-1]), spec["minimum"], atol=descent_lesson.TOL)
        assert good.overshoots <= good.path.steps // 10


def test_each_rate_does_what_its_role_says(descent_run):
    lesson, *_ = descent_run
    for name, found in lesson.costs.items():
        runs = {r.role: r for r in found["runs"]}
        small, good, large, wild = runs["too small"], runs["good"], runs["too large"], runs["diverges"]
        assert small.path.stop == "max_steps" and small.distance > 0.1  # still far after every step it had
        assert large.path.stop == "tol" and large.overshoots > large.path.steps // 2  # zigzags in
        assert large.path.steps > good.path.steps
        assert wild.path.stop == "diverged" and isinstance(wild.error, DivergenceError)
        assert wild.error.path is wild.path and wild.factor > 1.0 > large.factor
        assert found["limit"] == pytest.approx(2.0 / max(found["curvatures"]))
        assert large.lr < found["limit"] < wild.lr
    assert lesson.costs["1-D"]["curvatures"] == pytest.approx([2.0])
    assert lesson.costs["2-D"]["curvatures"] == pytest.approx([1.0, 10.0])


def test_the_descent_table_is_printed_from_the_runs(descent_run):
    lesson, text, seconds, out = descent_run
    sections = dict(zip(lesson.costs, text.split("\n2-D: ")))
    for name, found in lesson.costs.items():
        for r in found["runs"]:
            pattern = rf"^\s+{r.lr:g}\s+{r.role}\s+(\S+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\d+)\s"
            row = re.search(pattern, sections[name], flags=re.M)
            assert row, f"no table row for lr={r.lr:g}"
            assert float(row.group(1)) == pytest.approx(r.factor, rel=1e-2)
            assert int(row.group(2)) == r.path.steps and int(row.group(5)) == r.overshoots
            assert float(row.group(3)) == pytest.approx(r.path.cost[-1], rel=1e-2)
    prose = " ".join(text.split())  # the paragraphs are wrapped
    for found in lesson.costs.values():
        wild = found["runs"][-1]
        assert f"DivergenceError at step {wild.path.steps}: {wild.error}" in prose
    assert "lr < 2 / 10 = 0.2" in prose and "lr < 2 / 2 = 1" in prose


def test_the_descent_lesson_is_quick_and_writes_its_pictures(descent_run):
    lesson, text, seconds, out = descent_run
    assert seconds < 20  # a few seconds on a laptop; room for a shared test machine
    assert [f.name for f in lesson.files] == ["descent-1d.png", "descent-2d.png"]
    assert all(is_png(f) and f.parent == out for f in lesson.files)
    assert all(f"wrote {f}" in text for f in lesson.files)


# --- backprop ----------------------------------------------------------------------------------


def test_the_walked_gradients_equal_gdbp_grad_and_finite_differences(backprop_run):
    lesson, *_ = backprop_run
    assert set(lesson.walked) == set(backprop_lesson.WEIGHTS)
    for k in backprop_lesson.WEIGHTS:
        walked = to_numpy(lesson.walked[k])
        assert walked.dtype == np.float64
        np.testing.assert_allclose(walked, to_numpy(lesson.by_grad[k]), rtol=0, atol=1e-12)
        np.testing.assert_allclose(walked, to_numpy(lesson.by_fd[k]), rtol=1e-6, atol=1e-9)
    assert lesson.worst["exact"] <= 1e-12 and lesson.worst["fd"] <= 1e-6 and lesson.worst["local"] <= 1e-6


def test_the_walk_follows_the_sweep_and_prints_computed_numbers(backprop_run):
    lesson, text, *_ = backprop_run
    g = lesson.graph
    names = [g.nodes[i].name for i in g.order]
    assert names == ["C", "s", "e2", "e", "y", "a2", "h", "z1", "a1"]
    steps = re.findall(r"^\[(\d+)\] (\w+) = (\w+): the gradient that arrived", text, flags=re.M)
    assert [(int(k), n) for k, n, _ in steps] == list(enumerate(names, 1))
    # The printed weight gradients are the walk's numbers (to the 6 digits printed).
    for k in backprop_lesson.WEIGHTS:
        row = re.search(rf"dC/d{k}\s+walk\s+(.+)", text).group(1)
        printed = [float(v) for v in re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", row)]
        np.testing.assert_allclose(printed, to_numpy(lesson.by_grad[k]).ravel(), rtol=1e-5)
    sigmoid = g.node("h")
    local = re.search(r"local derivative dh/dz1 = elementwise \[(\S+), (\S+)\]", text)
    h = to_numpy(sigmoid.value)
    np.testing.assert_allclose([float(local.group(1)), float(local.group(2))], h * (1 - h), rtol=1e-3)
    assert text.count("checks (largest difference)") == len(names)


def test_one_step_with_the_walked_gradients_lowers_the_cost(backprop_run):
    lesson, text, *_ = backprop_run
    ex = backprop_lesson.EXAMPLE
    p = {k: np.asarray(ex[k]) - backprop_lesson.LR * to_numpy(lesson.walked[k]) for k in backprop_lesson.WEIGHTS}

    def cost(p):  # the network, by hand in NumPy
        h = 1 / (1 + np.exp(-(p["W1"] @ np.asarray(ex["x"]) + p["b1"])))
        return 0.5 * float(np.sum((p["W2"] @ h + p["b2"] - np.asarray(ex["t"])) ** 2))

    assert lesson.cost_before == pytest.approx(cost({k: np.asarray(ex[k]) for k in backprop_lesson.WEIGHTS}))
    assert lesson.cost_after == pytest.approx(cost(p), rel=1e-12)
    assert lesson.cost_after < lesson.cost_before
    assert f"The cost went from {lesson.cost_before:.6g} to {lesson.cost_after:.6g}" in text


def test_the_backprop_lesson_is_quick_and_draws_the_graph(backprop_run):
    lesson, text, seconds, out = backprop_run
    assert seconds < 20
    assert [f.name for f in lesson.files] == ["backprop-graph.png"] and is_png(lesson.files[0])


def test_a_wrong_gradient_stops_the_lesson(monkeypatch, tmp_path):
    """The checks can fail: a VJP rule off by one part in a billion is caught."""
    import importlib

    graph_module = importlib.import_module("gdbp.backprop.graph")  # gdbp.backprop.graph is the function

    real = graph_module._pull_back

    def slightly_wrong(op, g):
        return [None if gi is None else gi * (1 + 1e-9) for gi in real(op, g)]

    monkeypatch.setattr(graph_module, "_pull_back", slightly_wrong)
    with pytest.raises(backprop_lesson.LessonCheckError, match="differs by"):
        backprop_lesson.run(out=tmp_path, stream=io.StringIO(), plot=False)


def test_the_lessons_run_on_another_backend(tmp_path):
    lesson = backprop_lesson.run(out=tmp_path, backend="torch", stream=io.StringIO(), plot=False)
    assert backends.backend_of(lesson.walked["W1"]).name == "torch"
    assert lesson.worst["exact"] <= 1e-12
    found = descent_lesson.run(out=tmp_path, backend="array_api_strict", stream=io.StringIO(), plot=False)
    assert [r.path.stop for r in found.costs["2-D"]["runs"]] == ["max_steps", "tol", "tol", "diverged"]


# --- the command line --------------------------------------------------------------------------


def test_gdbp_help_lists_the_lessons(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "lesson" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["lesson", "--help"])
    help_text = capsys.readouterr().out
    assert "descent" in help_text and "backprop" in help_text and "--out" in help_text


def test_gdbp_lesson_writes_into_out(tmp_path, capsys):
    assert cli.main(["lesson", "backprop", "--out", str(tmp_path)]) == 0
    assert is_png(tmp_path / "backprop-graph.png")
    assert "Backward pass" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["lesson", "gradients"])  # not a lesson: argparse names the choices
    assert "descent" in capsys.readouterr().err
