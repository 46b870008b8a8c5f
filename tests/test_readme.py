"""The README's Python examples run as written (on NumPy), so the README cannot drift from the code."""

import pathlib
import re

import numpy as np
import pytest

import gdbp

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_the_examples():
    blocks = _blocks()
    assert len(blocks) >= 4
    assert any("gdbp.grad(cost)" in b for b in blocks)
    assert any("train.fit(" in b for b in blocks)


def test_readme_blocks_run_in_order(tmp_path, monkeypatch):
    """Each block runs after the ones before it (they build on each other), on NumPy."""
    monkeypatch.chdir(tmp_path)  # the training example writes files
    namespace = {}
    ran = 0
    previous = gdbp.current()
    try:
        for index, block in enumerate(_blocks()):
            if '"cupy' in block:
                continue  # the backend-picking block asks for a GPU; test_backends covers those specs
            with gdbp.use("numpy"):
                exec(compile(block, f"README block {index}", "exec"), namespace)
            ran += 1
            if "gdbp.grad(cost)" in block:  # numpy arrays in, numpy arrays of the same dtype out
                assert type(namespace["dw"]) is np.ndarray and namespace["dw"].dtype == namespace["w"].dtype
            if "scipy.stats.entropy" in block:  # H(p) = -sum p log p on the simplex: dH/dp = -(log p + 1) + c
                p = namespace["p"]
                dh = -(np.log(p) + 1)
                np.testing.assert_allclose(namespace["dH"], dh - np.sum(p * dh), rtol=1e-12)
                s = 1 / (1 + np.exp(-namespace["x"]))
                np.testing.assert_allclose(namespace["dx"], s * (1 - s), rtol=1e-12)
                assert namespace["dk"].shape == namespace["x"].shape
    finally:
        gdbp.use(previous)
    assert ran >= 3
    assert (tmp_path / "digits.safetensors").exists() and (tmp_path / "loss.png").exists()
    acc = gdbp.train.evaluate(namespace["model"], (namespace["x_test"], namespace["y_test"]),
                              metrics=["accuracy"])["accuracy"]
    assert float(acc) > 0.9
