"""Property: any mutation of a valid checkpoint loads to the same values or raises CheckpointError, nothing else."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from train_helpers import adam, blobs

import gdbp
from gdbp import backends, descent, nn
from gdbp.train import Checkpoint, CheckpointError, fit

SETTINGS = settings(max_examples=120, deadline=None, database=None, derandomize=True)


def _model():
    return nn.Sequential(nn.Linear(3, 4, backend="numpy", seed=0), nn.Dropout(0.5, seed=1),
                         nn.Linear(4, 2, backend="numpy", seed=2))


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    x, y = blobs(n=12, features=3, classes=2)
    model = _model()
    opt = adam(model)
    schedule = descent.StepLR(opt, step_size=1, gamma=0.5)
    fit(model, nn.cross_entropy, opt, (x, y), epochs=1, batch_size=4, progress=False, schedule=schedule)
    extra = {"note": "x", "scale": np.array(0.5), "pair": (1, [2.5, None]), 7: np.arange(3)}
    path = gdbp.save(tmp_path_factory.mktemp("fuzz") / "m.safetensors", model, opt, extra=extra, epoch=1,
                     schedule=schedule, shuffle_seed=3, run_state={"stop_training": False, "callbacks": {"EarlyStopping:0": {"wait": 1, "best": np.array(0.5)}}})
    return path.read_bytes(), gdbp.load(path)


def _same(a, b) -> bool:
    if isinstance(a, Checkpoint):
        fields = ("state_dict", "optimizer_state", "schedule_state", "epoch", "shuffle_seed", "rng_states", "extra",
                  "run_state", "gdbp_version", "format_version")
        return isinstance(b, Checkpoint) and all(_same(getattr(a, f), getattr(b, f)) for f in fields)
    if backends.is_array(a) or backends.is_array(b):
        a, b = np.asarray(backends.to_numpy(a)), np.asarray(backends.to_numpy(b))
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _write(tmp: Path, data: bytes) -> Path:
    path = tmp / "mutated.safetensors"
    path.write_bytes(data)
    return path


# -- raw bytes: flipped, cut, inserted, deleted -------------------------------------------------------

mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**9), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, 10**9)),
    st.tuples(st.just("insert"), st.integers(0, 10**9), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 10**9), st.integers(1, 64)),
)


def _mutate(data: bytes, m) -> bytes:
    at = m[1] % (len(data) + 1)
    if m[0] == "flip":
        at = min(at, len(data) - 1)
        return data[:at] + bytes([data[at] ^ (1 << m[2])]) + data[at + 1:]
    if m[0] == "truncate":
        return data[:min(at, len(data) - 1)]
    if m[0] == "insert":
        return data[:at] + m[2] + data[at:]
    return data[:at] + data[at + m[2]:]


@SETTINGS
@given(m=mutations)
def test_a_mutated_file_loads_the_same_or_raises_checkpoint_error(original, tmp_path_factory, m):
    data, expected = original
    path = _write(tmp_path_factory.getbasetemp(), _mutate(data, m))
    try:
        got = gdbp.load(path)
    except CheckpointError:
        return
    assert _same(expected, got)


@SETTINGS
@given(m=mutations)
def test_a_mutated_file_loads_into_a_model_the_same_or_changes_nothing(original, tmp_path_factory, m):
    data, expected = original
    path = _write(tmp_path_factory.getbasetemp(), _mutate(data, m))
    model = _model()
    opt = adam(model)
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    try:
        gdbp.load(path, model, opt)
    except CheckpointError:
        assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items()) and opt.step_count == 0
        return
    assert _same(expected.state_dict, model.state_dict()) and opt.step_count == expected.optimizer_state["step"]


# -- the header edited, checksum recomputed (a forger's file) -------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**65) | st.floats(allow_nan=True) | st.text(max_size=8)
    | st.sampled_from(["F32", "F64", "I64", "BOOL", "__tensor__", "__dict__", "__tuple__", "model/0.weight",
                       "optimizer/state/0/exp_avg", "1"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["__tensor__", "__dict__", "__tuple__", "seed", "stream", "step", "state", "x"]), inner,
        max_size=3),
    max_leaves=12,
)


def _locations(value, out, parent=None, key=None):
    """Every (container, key) in a JSON value, so that one place can be replaced."""
    if parent is not None:
        out.append((parent, key))
    if isinstance(value, dict):
        for k in list(value):
            _locations(value[k], out, value, k)
    elif isinstance(value, list):
        for i in range(len(value)):
            _locations(value[i], out, value, i)
    return out


def _forge(data: bytes, where: int, replacement, in_doc: bool) -> bytes:
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    payload = data[8 + n:]
    meta = header["__metadata__"]
    meta.pop("sha256")
    doc = json.loads(meta["gdbp"])
    places = _locations(doc if in_doc else header, [])
    container, key = places[where % len(places)]
    container[key] = replacement
    if in_doc:
        meta["gdbp"] = json.dumps(doc)
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if isinstance(header.get("__metadata__"), dict):
        header["__metadata__"]["sha256"] = hashlib.sha256(canonical + payload).hexdigest()
    text = json.dumps(header, separators=(",", ":")).encode()
    return len(text).to_bytes(8, "little") + text + payload


@SETTINGS
@given(where=st.integers(0, 10**6), replacement=json_values, in_doc=st.booleans())
def test_a_forged_header_loads_or_raises_checkpoint_error(original, tmp_path_factory, where, replacement, in_doc):
    data, _ = original
    path = _write(tmp_path_factory.getbasetemp(), _forge(data, where, replacement, in_doc))
    try:
        got = gdbp.load(path)
    except CheckpointError:
        return
    # A forger can change any value; what loads is still a well-typed Checkpoint.
    assert isinstance(got.state_dict, dict) and all(backends.is_array(v) for v in got.state_dict.values())
    assert got.epoch is None or (type(got.epoch) is int and got.epoch >= 0)
    assert isinstance(got.rng_states, dict) and isinstance(got.gdbp_version, str)


@SETTINGS
@given(where=st.integers(0, 10**6), replacement=json_values)
def test_a_forged_document_loads_into_objects_or_raises_checkpoint_error(original, tmp_path_factory, where,
                                                                        replacement):
    data, _ = original
    path = _write(tmp_path_factory.getbasetemp(), _forge(data, where, replacement, in_doc=True))
    model = _model()
    opt = adam(model)
    schedule = descent.StepLR(opt, step_size=1, gamma=0.5)
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    try:
        gdbp.load(path, model, opt, schedule=schedule)
    except CheckpointError:
        assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
        assert opt.step_count == 0 and schedule.last_step == 0
