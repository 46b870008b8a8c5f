"""Checkpoint files on disk: leftovers of killed saves, permissions, symbolic links, forged headers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from train_helpers import adam, blobs, mlp

import gdbp
from gdbp import backends, nn
from gdbp.train import CheckpointError, fit

ROOT = Path(__file__).resolve().parents[1]


def _model():
    model = nn.Sequential(nn.Linear(3, 4, backend="numpy", seed=0), nn.Dropout(0.5, seed=1),
                          nn.Linear(4, 2, backend="numpy", seed=2))
    return model


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- (a) temporary files of killed saves --------------------------------------------------------

KILLED_SAVE = textwrap.dedent(
    """
    import os, sys, time
    import gdbp
    from gdbp import nn

    def hang(src, dst):  # the temporary file is written in full: be killed before the rename
        print("written", flush=True)
        time.sleep(600)

    os.replace = hang
    gdbp.save(sys.argv[1], nn.Linear(200, 300, backend="numpy", seed=0))
    """
)


def _killed_save(tmp_path, target):
    script = tmp_path / "killed_save.py"
    script.write_text(KILLED_SAVE)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(script), str(target)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "written"
    return proc


def test_the_next_save_removes_what_a_killed_save_left(tmp_path):
    target = tmp_path / "m.safetensors"
    gdbp.save(target, _model())
    proc = _killed_save(tmp_path, target)
    left = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and left[0].name.startswith(f".m.safetensors.{proc.pid}.")

    # While its process lives, the temporary file is a save in progress: left alone.
    _age(left[0], 120)
    gdbp.save(target, _model())
    assert left[0].exists()

    proc.kill()
    proc.wait()
    proc.stdout.close()
    _age(left[0], 120)
    gdbp.save(target, _model())
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "killed_save.py") == ["m.safetensors"]
    gdbp.load(target, _model())


def test_which_temporary_files_are_stale(tmp_path):
    target = tmp_path / "m.safetensors"
    dead, alive = _dead_pid(), os.getppid()
    files = {
        "dead_old": (f".m.safetensors.{dead}.0123abcd.tmp", 120),
        "dead_fresh": (f".m.safetensors.{dead}.0123abce.tmp", 0),  # maybe another machine's save, just begun
        "alive_old": (f".m.safetensors.{alive}.0123abcf.tmp", 120),  # a concurrent save of another process
        "mine": (f".m.safetensors.{os.getpid()}.0123abd0.tmp", 120),  # another thread's save
        "alive_ancient": (f".m.safetensors.{alive}.0123abd1.tmp", 3600),  # its pid was reused long after
        "other_target": (f".n.safetensors.{dead}.0123abd2.tmp", 3600),
        "not_ours": (f".m.safetensors.{dead}.notatoken.tmp", 3600),
        "longer_name": (f".m.safetensors.1.{dead}.0123abd3.tmp", 3600),  # of the target "m.safetensors.1"
    }
    for name, age in files.values():
        (tmp_path / name).write_bytes(b"partial")
        _age(tmp_path / name, age)
    gdbp.save(target, _model())
    kept = {key for key, (name, _) in files.items() if (tmp_path / name).exists()}
    assert kept == {"dead_fresh", "alive_old", "mine", "other_target", "not_ours", "longer_name"}


def test_two_processes_saving_one_target_both_succeed(tmp_path):
    target = tmp_path / "m.safetensors"
    script = tmp_path / "saver.py"
    script.write_text(textwrap.dedent(
        """
        import sys
        import gdbp
        from gdbp import nn
        for i in range(15):
            gdbp.save(sys.argv[1], nn.Linear(64, 64, backend="numpy", seed=i), epoch=i)
        """
    ))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, str(script), str(target)], env=env, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert gdbp.load(target).epoch == 14
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# -- (b) permissions, (c) symbolic links ---------------------------------------------------------


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_re_saving_keeps_the_file_mode(tmp_path):
    target = gdbp.save(tmp_path / "m.safetensors", _model())
    os.chmod(target, 0o600)
    gdbp.save(target, _model(), epoch=2)
    assert target.stat().st_mode & 0o777 == 0o600
    os.chmod(target, 0o640)
    gdbp.save(target, _model(), epoch=3)
    assert target.stat().st_mode & 0o777 == 0o640 and gdbp.load(target).epoch == 3


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_a_symbolic_link_is_written_through(tmp_path):
    real_dir = tmp_path / "store"
    real_dir.mkdir()
    real = gdbp.save(real_dir / "run-7.safetensors", _model(), epoch=1)
    link = tmp_path / "latest.safetensors"
    link.symlink_to(real)
    assert gdbp.save(link, _model(), epoch=2) == link
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert gdbp.load(real).epoch == 2 and gdbp.load(link).epoch == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.safetensors", "store"]

    dangling = tmp_path / "next.safetensors"
    dangling.symlink_to(real_dir / "run-8.safetensors")
    gdbp.save(dangling, _model(), epoch=3)
    assert dangling.is_symlink() and gdbp.load(real_dir / "run-8.safetensors").epoch == 3


# -- (d) forged files, checksum recomputed, are refused with CheckpointError -----------------------


def forge(path: Path, edit) -> None:
    """Rewrite the header with ``edit(header, doc) -> doc`` and recompute the checksum, as a forger would."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    payload = data[8 + n :]
    meta = header["__metadata__"]
    meta.pop("sha256")
    doc = edit(header, json.loads(meta["gdbp"]))
    if doc is not None:
        meta["gdbp"] = doc if isinstance(doc, str) else json.dumps(doc)
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    meta["sha256"] = hashlib.sha256(canonical + payload).hexdigest()
    text = json.dumps(header, separators=(",", ":")).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + payload)


def _set(key, value):
    def edit(header, doc):
        doc[key] = value
        return doc
    return edit


def _meta(key, value):
    def edit(header, doc):
        header["__metadata__"][key] = value
    return edit


FORGERIES = {
    "doc is a list": lambda h, d: [],
    "doc is a number": lambda h, d: "3",
    "doc is not JSON": lambda h, d: "{not json",
    "gdbp metadata missing": lambda h, d: h["__metadata__"].pop("gdbp") and None,
    "epoch a string": _set("epoch", "3"),
    "epoch negative": _set("epoch", -1),
    "epoch a bool": _set("epoch", True),
    "epoch a float": _set("epoch", 1.5),
    "seed a list": _set("shuffle_seed", [1]),
    "rng a list": _set("rng", [1, 2]),
    "rng a number": _set("rng", 0),
    "rng an empty list": _set("rng", []),
    "rng keyed by numbers": _set("rng", {"__dict__": [[1, None]]}),
    "unhashable dict key": _set("extra", {"__dict__": [[["a"], 1]]}),
    "dict entry not a pair": _set("extra", {"__dict__": [[1]]}),
    "dict body not a list": _set("extra", {"__dict__": "abc"}),
    "tuple body not a list": _set("extra", {"__tuple__": 5}),
    "unknown tag": _set("extra", {"__pickle__": "os.system"}),
    "two tags": _set("extra", {"__tensor__": "model/0.weight", "__tuple__": []}),
    "missing array": _set("extra", {"__tensor__": "nowhere"}),
    "array name not a string": _set("extra", {"__tensor__": ["model/0.weight"]}),
    "deep extra": lambda h, d: json.dumps(d)[:-1] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "deep rng": lambda h, d: json.dumps(d)[:-1] + ', "rng": ' + '{"__tuple__": [' * 900 + "]}" * 900 + "}",
    "optimizer a list": _set("optimizer", []),
    "schedule a string": _set("schedule", "StepLR"),
    "run state a list": _set("run", [1]),
    "run state without callbacks": _set("run", {"__dict__": [["stop_training", False]]}),
    "run state stop not a bool": _set("run", {"__dict__": [["stop_training", 1], ["callbacks", {"__dict__": []}]]}),
    "callback states a list": _set("run", {"__dict__": [["stop_training", False], ["callbacks", [1]]]}),
    "version a number": _set("gdbp_version", 1),
    "format_version a word": _meta("format_version", "one"),
    "format_version a superscript": _meta("format_version", "\u00b2"),
    "format_version zero": _meta("format_version", "0"),
    "format_version a list": _meta("format_version", ["1"]),
    "sha256 a number": lambda h, d: None,  # replaced below
    "infinite data offset": lambda h, d: h["model/0.weight"].__setitem__("data_offsets", [0, 1e400]),
    "string data offset": lambda h, d: h["model/0.weight"].__setitem__("data_offsets", [0, "x"]),
    "entry not a dict": lambda h, d: h.__setitem__("model/0.weight", 5),
    "bad dtype": lambda h, d: h["model/0.weight"].__setitem__("dtype", "F7"),
    "shape that does not fit": lambda h, d: h["model/0.weight"].__setitem__("shape", [5, 5]),
}


@pytest.fixture
def valid(tmp_path):
    x, y = blobs(n=12, features=3, classes=2)
    model = _model()
    opt = adam(model)
    fit(model, nn.cross_entropy, opt, (x, y), epochs=1, batch_size=4, progress=False)
    return gdbp.save(tmp_path / "m.safetensors", model, opt, extra={"note": "x"}, epoch=1)


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_a_forged_self_consistent_file_raises_checkpoint_error(valid, name):
    if name == "sha256 a number":
        data = valid.read_bytes()
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + n])
        header["__metadata__"]["sha256"] = 12345
        text = json.dumps(header).encode()
        valid.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n:])
    else:
        forge(valid, FORGERIES[name])
    with pytest.raises(CheckpointError):
        gdbp.load(valid)


STATE_FORGERIES = {
    "optimizer state a bare dict": _set("optimizer", {"__dict__": []}),
    "optimizer per-parameter state a list": lambda h, d: _put(d["optimizer"], "state", []),
    "optimizer step a string": lambda h, d: _put(d["optimizer"], "step", "many"),
    "optimizer hyperparameters a list": lambda h, d: _put(d["optimizer"], "hyperparameters", [1]),
    "generator state a number": _set("rng", {"__dict__": [["1", 7]]}),
    "generator seed negative": _set("rng", {"__dict__": [["1", {"__dict__": [["seed", -4], ["stream", None]]}]]}),
    "generator stream garbage": _set("rng", {"__dict__": [["1", {"__dict__": [["seed", 4], ["stream", [1, 300]]]}]]}),
    "generator stream a word": _set("rng", {"__dict__": [["1", {"__dict__": [["seed", 4], ["stream", "abc"]]}]]}),
    "generator stream of another generator": _set("rng", {"__dict__": [["1", {"__dict__": [
        ["seed", 4], ["stream", {"__dict__": [["bit_generator", "MT19937"], ["state", 5]]}]]}]]}),
}


def _put(encoded_dict, key, value):
    for item in encoded_dict["__dict__"]:
        if item[0] == key:
            item[1] = value


@pytest.mark.parametrize("name", sorted(STATE_FORGERIES))
def test_forged_states_raise_checkpoint_error_and_change_nothing(valid, name):
    forge(valid, lambda h, d: (STATE_FORGERIES[name](h, d), d)[1])
    model = _model()
    opt = adam(model)
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    rng = model[1].rng_state()
    with pytest.raises(CheckpointError):
        gdbp.load(valid, model, opt)
    assert all(np.array_equal(before[k], backends.to_numpy(v)) for k, v in model.state_dict().items())
    assert model[1].rng_state() == rng and opt.step_count == 0 and opt.state == {}


def test_a_deeply_nested_header_raises_checkpoint_error(tmp_path):
    text = b'{"__metadata__": {"format": "gdbp.checkpoint", "format_version": "1"}, "x": ' + b"[" * 100_000
    text += b"]" * 100_000 + b"}"
    path = tmp_path / "deep.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text)
    with pytest.raises(CheckpointError):
        gdbp.load(path)


def test_a_shape_forged_to_fit_another_model_is_a_shape_error(valid):
    # A well-formed file whose weights do not fit the model is the model's mismatch, named as such.
    with pytest.raises(gdbp.ShapeError, match="0.weight"):
        gdbp.load(valid, nn.Sequential(nn.Linear(3, 5, backend="numpy"), nn.Dropout(0.5),
                                       nn.Linear(5, 2, backend="numpy")))
