"""`gdbp check`: the cross-backend gradient table, and that it reports a wrong gradient."""

import gdbp
import gdbp.cli
from gdbp import check


def test_every_case_agrees_on_every_cpu_backend():
    lines = []
    assert check.run_check(["numpy", "array_api_strict", "torch"], out=lines.append) == 0
    text = "\n".join(lines)
    for name in check.CASES:
        assert name in text
    assert "all backends agree" in text and "FAILED" not in text


def test_a_wrong_gradient_fails_the_check(monkeypatch):
    @gdbp.custom_vjp
    def cube(x):
        return x * x * x

    @cube.defvjp
    def cube_vjp(g, ans, x):
        return (g * 2 * x * x,)  # wrong: d/dx x^3 = 3 x^2

    def wrong(x):
        return cube(x).sum()

    host = gdbp.backends.host_rng(0).normal((4,), backend="numpy", dtype="float64")
    monkeypatch.setattr(check, "_host_inputs", lambda seed=0: {"wrong cube": (wrong, (host,))})
    lines = []
    assert check.run_check(["numpy", "torch"], out=lines.append) == 1
    assert "FAILED" in "\n".join(lines)


def test_the_command_line_runs_it(capsys):
    assert gdbp.cli.main(["check", "--backends", "numpy", "torch"]) == 0
    assert "all backends agree" in capsys.readouterr().out
