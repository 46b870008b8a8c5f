"""Importing gdbp on Linux with glibc tunes malloc so that an eager step's temporaries reuse memory.

The decision (tune, or leave the process's choice alone) and the calls are
checked with a stand-in C library; the effect is checked by counting page
faults (not time) in a fresh process: temporaries of a few hundred KiB, made
and freed at every step, fault their memory in again at every step unless
the freed heap is kept.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from gdbp.backends import _memory


@pytest.fixture(autouse=True)
def _keep_what_import_did(monkeypatch):
    monkeypatch.setattr(_memory, "TUNED", _memory.TUNED)  # the calls below would overwrite gdbp info's line


class FakeLibc:
    def __init__(self, answer=1):
        self.calls, self.answer = [], answer

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return self.answer


def test_glibc_gets_both_thresholds():
    libc = FakeLibc()
    said = _memory.tune_allocator(environ={}, platform="linux", libc=libc)
    assert libc.calls == [(_memory.M_MMAP_THRESHOLD, 4 << 20), (_memory.M_TRIM_THRESHOLD, 64 << 20)]
    assert "4 MiB" in said and "64 MiB" in said and "GDBP_MALLOC=system" in said


@pytest.mark.parametrize("environ, why", [
    ({"GDBP_MALLOC": "system"}, "GDBP_MALLOC=system"),
    ({"MALLOC_TRIM_THRESHOLD_": "1000"}, "MALLOC_TRIM_THRESHOLD_"),
    ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"}, "GLIBC_TUNABLES"),
])
def test_a_process_that_chose_is_left_alone(environ, why):
    libc = FakeLibc()
    said = _memory.tune_allocator(environ=environ, platform="linux", libc=libc)
    assert libc.calls == [] and why in said and said.startswith("left as it is")


def test_other_platforms_and_refusals_are_said_plainly():
    assert "darwin" in _memory.tune_allocator(environ={}, platform="darwin", libc=FakeLibc())
    assert "refused" in _memory.tune_allocator(environ={}, platform="linux", libc=FakeLibc(answer=0))


_STEPS = r"""
import resource, sys
import numpy as np
import gdbp
from gdbp.backends import _memory
def step():  # 20 temporaries of 320 KB, alive together, then freed: an eager step's pattern
    live = [np.ones(40_000) for _ in range(20)]
    return sum(float(a[0]) for a in live)
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, _memory.TUNED)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the tuning is for glibc's malloc, on Linux")
def test_after_import_the_temporaries_of_a_step_do_not_fault_their_memory_in_again():
    out = subprocess.run([sys.executable, "-c", _STEPS], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"}).stdout.split(maxsplit=1)
    faults, said = int(out[0]), out[1]
    if not said.startswith("glibc malloc"):
        pytest.skip(f"malloc was not tuned here: {said}")
    pages = 50 * 20 * 40_000 * 8 // 4096  # what the steps would fault in if every array were fresh memory
    assert faults < pages // 20, f"{faults} page faults in 50 steps ({pages} pages allocated): {said}"


def test_any_malloc_variable_counts_as_the_process_choosing():
    said = _memory.tune_allocator(environ={"MALLOC_ARENA_MAX": "2", "MALLOC_TOP_PAD_": "0"}, platform="linux",
                                  libc=FakeLibc())
    assert said == "left as it is: the environment sets MALLOC_ARENA_MAX, MALLOC_TOP_PAD_"
