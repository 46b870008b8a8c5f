"""gdbp.save / gdbp.load: round trips, atomic writes, damaged files, exact resumption."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import backend_params, to_numpy
from train_helpers import adam, blobs, mlp

import gdbp
from gdbp import descent, nn
from gdbp.train import CheckpointError, fit

ROOT = Path(__file__).resolve().parents[1]


def _trained(steps=3, seed=0):
    x, y = blobs(n=24)
    model = mlp(seed=seed)
    opt = adam(model)
    fit(model, nn.cross_entropy, opt, (x, y), epochs=steps, batch_size=8, progress=False)
    return model, opt


def _assert_same_state(a: dict, b: dict):
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(to_numpy(a[k]), to_numpy(b[k])), k


def test_round_trip_of_weights_optimizer_and_metadata(tmp_path):
    model, opt = _trained()
    extra = {"note": "run 1", "pair": (1, 2.5), 3: [None, True], "mask": np.array([True, False])}
    path = gdbp.save(tmp_path / "sub" / "m.safetensors", model, opt, extra=extra, epoch=3, shuffle_seed=7)
    assert path == tmp_path / "sub" / "m.safetensors"

    fresh = mlp(seed=1)
    fresh_opt = adam(fresh, lr=0.5)
    ckpt = gdbp.load(path, fresh, fresh_opt)
    _assert_same_state(fresh.state_dict(), model.state_dict())
    assert fresh_opt.lr == opt.lr and fresh_opt.step_count == opt.step_count == 9
    saved, restored = opt.state_dict(), fresh_opt.state_dict()
    assert restored["hyperparameters"] == saved["hyperparameters"]
    for i, entry in saved["state"].items():
        for k, v in entry.items():
            assert np.array_equal(to_numpy(restored["state"][i][k]), to_numpy(v)), (i, k)
    assert ckpt.epoch == 3 and ckpt.shuffle_seed == 7 and ckpt.gdbp_version == gdbp.__version__
    assert ckpt.extra["note"] == "run 1" and ckpt.extra["pair"] == (1, 2.5) and ckpt.extra[3] == [None, True]
    assert to_numpy(ckpt.extra["mask"]).tolist() == [True, False]


def test_round_trip_of_a_schedule(tmp_path):
    model, opt = _trained(steps=1)
    plateau = descent.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    plateau.step(1.0)
    plateau.step(2.0)
    path = gdbp.save(tmp_path / "m.safetensors", model, opt, schedule=plateau)
    fresh_opt = adam(model)
    fresh = descent.ReduceLROnPlateau(fresh_opt, factor=0.5, patience=1)
    gdbp.load(path, optimizer=fresh_opt, schedule=fresh)
    assert fresh.state_dict() == plateau.state_dict() and fresh.num_bad_steps == 1
    with pytest.raises(CheckpointError, match="no schedule state"):
        gdbp.load(gdbp.save(tmp_path / "n.safetensors", model, opt), schedule=fresh)


def test_permissions_follow_the_umask(tmp_path):
    model, _ = _trained(steps=1)
    old = os.umask(0o022)
    try:
        path = gdbp.save(tmp_path / "m.safetensors", model)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_the_file_is_safetensors_with_json_metadata(tmp_path):
    from safetensors import safe_open

    model, opt = _trained(steps=1)
    path = gdbp.save(tmp_path / "m.safetensors", model, opt, epoch=1)
    with safe_open(str(path), framework="numpy") as f:
        names = set(f.keys())
        meta = f.metadata()
    assert {"model/0.weight", "model/0.bias", "model/2.weight", "model/2.bias"} <= names
    assert {"optimizer/state/0/exp_avg", "optimizer/state/3/exp_avg_sq"} <= names
    assert meta["format"] == "gdbp.checkpoint" and meta["format_version"] == "1" and len(meta["sha256"]) == 64
    doc = json.loads(meta["gdbp"])
    assert doc["epoch"] == 1 and doc["gdbp_version"] == gdbp.__version__
    assert b"pickle" not in path.read_bytes()


@pytest.mark.parametrize("backend", backend_params(("array_api_strict", "torch", "cupy")), indirect=True)
def test_load_onto_another_backend(tmp_path, backend):
    model, opt = _trained()
    path = gdbp.save(tmp_path / "m.safetensors", model, opt, epoch=3)
    ckpt = gdbp.load(path, backend=backend)
    assert all(type(v) is backend.array_type for v in ckpt.state_dict.values())

    there = mlp(seed=5, backend=backend)
    there_opt = adam(there)
    gdbp.load(path, there, there_opt)
    assert there.backend is backend
    _assert_same_state(there.state_dict(), model.state_dict())
    assert type(there_opt.state[0]["exp_avg"]) is backend.array_type


def test_a_crash_before_the_rename_keeps_the_old_file(tmp_path, monkeypatch):
    old_model, _ = _trained(steps=1)
    path = gdbp.save(tmp_path / "m.safetensors", old_model, epoch=1)
    new_model, _ = _trained(steps=2)

    def crash(src, dst):
        assert Path(src).stat().st_size > 0  # the temporary file was written in full
        raise OSError("simulated crash between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        gdbp.save(path, new_model, epoch=2)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # the temporary file is gone
    fresh = mlp(seed=9)
    assert gdbp.load(path, fresh).epoch == 1
    _assert_same_state(fresh.state_dict(), old_model.state_dict())


@pytest.fixture
def saved(tmp_path):
    model, opt = _trained(steps=1)
    return gdbp.save(tmp_path / "m.safetensors", model, opt, epoch=1)


@pytest.mark.parametrize("keep", [5, 40, -1, -100])
def test_a_truncated_file_is_refused(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[:keep])
    with pytest.raises(CheckpointError, match="truncated") as info:
        gdbp.load(saved)
    assert str(saved) in str(info.value)


def test_a_flipped_payload_byte_is_refused(saved):
    data = bytearray(saved.read_bytes())
    data[-3] ^= 0x01
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"checksum mismatch.*modified or corrupted") as info:
        gdbp.load(saved, mlp())
    assert str(saved) in str(info.value)


def test_edited_metadata_is_refused(saved):
    data = saved.read_bytes()
    edited = data.replace(b'\\"epoch\\": 1', b'\\"epoch\\": 7')
    assert edited != data and len(edited) == len(data)
    saved.write_bytes(edited)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        gdbp.load(saved)


def test_a_removed_checksum_is_refused(saved):
    data = saved.read_bytes()
    start = data.index(b'"sha256":"')
    edited = data[:start] + b'"sha000":"' + data[start + 10:]
    saved.write_bytes(edited)
    with pytest.raises(CheckpointError, match="no sha256 checksum"):
        gdbp.load(saved)


def test_other_files_are_refused(tmp_path):
    from safetensors.numpy import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(plain))
    with pytest.raises(CheckpointError, match="not a gdbp checkpoint"):
        gdbp.load(plain)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes((12).to_bytes(8, "little") + b"not json at all")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        gdbp.load(junk)
    with pytest.raises(FileNotFoundError):
        gdbp.load(tmp_path / "missing.safetensors")


def test_asking_for_state_the_file_lacks_is_an_error(tmp_path):
    model, _ = _trained(steps=1)
    path = gdbp.save(tmp_path / "m.safetensors", model)
    with pytest.raises(CheckpointError, match="no optimizer state"):
        gdbp.load(path, mlp(), adam(mlp()))
    with pytest.raises(nn.StateDictError, match="missing keys"):
        gdbp.load(path, nn.Sequential(nn.Linear(4, 16, backend="numpy")))


def test_missing_safetensors_is_a_clear_import_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"pip install 'gdbp\[train\]'"):
        gdbp.save(tmp_path / "m.safetensors", mlp())


def test_importing_gdbp_imports_no_optional_dependency():
    optional = ("tqdm", "safetensors", "matplotlib", "sklearn")
    code = f"import sys, gdbp; print(sorted(m for m in {optional!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


# -- resuming in a new process is bit for bit -------------------------------------------------

RESUME_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, sys
    import numpy as np
    import gdbp
    from gdbp import backends, descent, nn
    from gdbp.train import ModelCheckpoint, fit

    mode, path, dropout = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 6)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    stream = backends.host_rng(1 if mode != "resume" else 2)   # the resumed run starts from other weights
    layers = [nn.Linear(6, 32, backend="numpy", rng=stream), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(0.2, seed=5))
    model = nn.Sequential(*layers, nn.Linear(32, 3, backend="numpy", rng=stream))
    opt = descent.Adam(model.parameters(), lr=0.01)
    schedule = descent.StepLR(opt, step_size=1, gamma=0.7)
    kw = dict(batch_size=16, val_data=(x, y), metrics=["accuracy"], progress=False, seed=11, schedule=schedule)
    if mode == "full":
        history = fit(model, nn.cross_entropy, opt, (x, y), epochs=2, **kw)
    elif mode == "first":
        history = fit(model, nn.cross_entropy, opt, (x, y), epochs=1, callbacks=[ModelCheckpoint(path)], **kw)
    else:
        kw["seed"] = 0  # the checkpoint's seed wins
        history = fit(model, nn.cross_entropy, opt, (x, y), epochs=2, resume=path, **kw)
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode() + np.ascontiguousarray(value).tobytes())
    for entry in opt.state_dict()["state"].values():
        for name, value in sorted(entry.items()):
            digest.update(name.encode() + np.ascontiguousarray(value).tobytes())
    print(json.dumps({"digest": digest.hexdigest(), "epochs": history.epochs, "cost": history["cost"],
                      "val_cost": history["val_cost"], "lr": opt.lr, "steps": opt.step_count}))
    """
)


def _run(tmp_path, *args):
    script = tmp_path / "resume_script.py"
    script.write_text(RESUME_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dropout", [False, True])
def test_resume_in_a_new_process_equals_an_uninterrupted_run(tmp_path, dropout):
    path = str(tmp_path / "after-epoch-1.safetensors")
    flag = "1" if dropout else "0"
    full = _run(tmp_path, "full", path, flag)
    first = _run(tmp_path, "first", path, flag)
    resumed = _run(tmp_path, "resume", path, flag)
    assert first["epochs"] == [0] and resumed["epochs"] == [1]
    assert first["cost"] + resumed["cost"] == full["cost"]  # exact float equality
    assert first["val_cost"] + resumed["val_cost"] == full["val_cost"]
    assert resumed["lr"] == full["lr"] and resumed["steps"] == full["steps"] == 12
    assert resumed["digest"] == full["digest"]
    assert first["digest"] != full["digest"]


def test_resume_rejects_a_conflicting_initial_epoch(tmp_path):
    x, y = blobs(n=16)
    model = mlp()
    opt = adam(model)
    fit(model, nn.cross_entropy, opt, (x, y), epochs=1, progress=False,
        callbacks=[gdbp.train.ModelCheckpoint(tmp_path / "c.safetensors")])
    with pytest.raises(ValueError, match="initial_epoch=3 but the checkpoint .* completed 1 epochs"):
        fit(model, nn.cross_entropy, opt, (x, y), epochs=4, resume=tmp_path / "c.safetensors", initial_epoch=3,
            progress=False)
    plain = gdbp.save(tmp_path / "plain.safetensors", model, opt)
    with pytest.raises(CheckpointError, match="records no epoch"):
        fit(model, nn.cross_entropy, opt, (x, y), epochs=2, resume=plain, progress=False)
