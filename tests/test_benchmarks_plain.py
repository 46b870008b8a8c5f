"""The benchmark suite's plain-code programs, in process: compiled steps replay what eager steps do.

The suite's own check (tests/test_benchmarks_smoke.py) compares one step of
each implementation with hand-written NumPy; these follow several steps, so
that the replays of a compiled step (not only its trace) meet the eager ones.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import impl_gdbp, impl_numpy, problems  # noqa: E402

STEPS = 4


def _after(bench, steps=STEPS):
    for _ in range(steps):
        bench.step()
    return bench.result()


@pytest.mark.parametrize("task", ["plain", "attention"])
@pytest.mark.parametrize("impl", ["gdbp-compile", "gdbp-compile-vg"])
def test_a_compiled_step_replays_what_the_eager_step_does_step_after_step(task, impl):
    start = problems.make(task, 4, 0)
    eager = _after(impl_gdbp.BENCHES[(task, "gdbp-plain")](problems.make(task, 4, 0)))
    bench = impl_gdbp.BENCHES[(task, impl)](problems.make(task, 4, 0))
    assert bench.products == {"traces": 1}  # traced when built, on copies of the weights
    compiled = _after(bench)
    assert bench.products == {"traces": 1}  # then only replayed
    # Each replay wrote the bench's own arrays (had it not, they would still hold the start).
    assert problems.compare(start, eager, compiled) == []


def test_the_hand_written_attention_step_agrees_with_gdbp_step_after_step():
    start = problems.attention()
    by_hand = _after(impl_numpy.HandAttention(problems.attention()))
    assert problems.compare(start, by_hand, _after(impl_gdbp.BENCHES[("attention", "gdbp-plain")](
        problems.attention()))) == []


@pytest.mark.parametrize("impl", ["gdbp-plain", "gdbp-compile", "gdbp-plain-compile"])
def test_the_tiny_graph_gives_the_by_hand_value_and_gradients_at_every_call(impl):
    ref = _after(impl_numpy.TinyByHand(problems.tiny()), 1)
    bench = impl_gdbp.BENCHES[("tiny", impl)](problems.tiny())
    for _ in range(3):
        bench.step()
        assert problems.compare({}, ref, bench.result()) == []
    if impl != "gdbp-plain":
        assert bench.products == {"traces": 1}


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
@pytest.mark.parametrize("task", ["plain", "attention"])
def test_torch_on_the_mirrored_code_follows_gdbp_step_after_step(task):
    from benchmarks import impl_torch

    start = problems.make(task, 4, 0)
    eager = _after(impl_gdbp.BENCHES[(task, "gdbp-plain")](problems.make(task, 4, 0)))
    assert problems.compare(start, eager, _after(impl_torch.BENCHES[(task, "torch-plain")](
        problems.make(task, 4, 0)))) == []
