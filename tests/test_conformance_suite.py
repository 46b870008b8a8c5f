"""gdbp's namespace over NumPy against the official array API conformance suite (about 20 s).

The suite is the copy in ../shared/conformance beside the repository (see
tests/conformance_suite.py); where it is absent the test is skipped with the
reason. gdbp may fail only the tests listed, each with its reason, in
tests/conformance_known_failures.txt; a listed test that passes must leave
the list, so that the list stays the truth. ``make conformance`` runs the
same check and array_api_compat.numpy beside it.
"""

from __future__ import annotations

import pytest

import conformance_suite as suite


def test_known_failures_each_have_a_reason():
    known = suite.known_failures()
    assert all(nodeid.startswith("array_api_tests/") and "::" in nodeid for nodeid in known)
    assert all(reason for reason in known.values())


def test_known_failures_reject_a_line_without_reason(tmp_path):
    listed = tmp_path / "known.txt"
    listed.write_text("array_api_tests/test_x.py::test_y\n")
    with pytest.raises(ValueError, match="needs its reason"):
        suite.known_failures(listed)


def test_gdbp_fails_only_the_known_failures():
    why = suite.missing()
    if why:
        pytest.skip(why)
    r = suite.run(suite.GDBP)
    new, fixed = suite.compare(r, suite.known_failures())
    assert not new, "gdbp fails conformance tests not in conformance_known_failures.txt:\n" + "\n".join(
        f"{nodeid}\n    {r.failed[nodeid]}" for nodeid in new)
    assert not fixed, f"these now pass: delete their lines from conformance_known_failures.txt: {fixed}"
    assert r.counts.get("passed", 0) >= suite.MIN_PASSED, (
        f"{r.summary}: fewer passes than the {suite.MIN_PASSED} of the latest run (did a test module stop running?)")
