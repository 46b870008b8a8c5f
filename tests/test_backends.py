"""The backend layer: spec parsing, the default backend, moving and identifying arrays, the report."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import array_api_compat
import array_api_compat.numpy
import array_api_compat.torch
import array_api_strict
import numpy as np
import pytest
import torch

import gdbp
import gdbp.backends._default as default_module
from gdbp import backends
from gdbp.backends import BackendError, BackendMismatchError, BackendUnavailableError

from conftest import CPU_BACKENDS

CUDA_OK, CUDA_WHY = backends.probe_cuda()
CUPY_INSTALLED = importlib.util.find_spec("cupy") is not None
no_cuda = pytest.mark.skipif(CUDA_OK, reason="this machine has a working CUDA device: cupy is available")
needs_cuda = [pytest.mark.gpu, pytest.mark.skipif(not CUDA_OK, reason=CUDA_WHY)]


@pytest.fixture
def fresh_default(monkeypatch):
    """The default backend forgotten (as at import time) and restored afterwards."""
    monkeypatch.setattr(default_module, "_default", None)
    monkeypatch.delenv("GDBP_BACKEND", raising=False)


def host(x):
    return np.asarray(backends.to_numpy(x))


# --- resolve: every spec ------------------------------------------------------------------


def test_resolve_numpy():
    b = backends.resolve("numpy")
    assert b.name == "numpy" and b.spec == "numpy"
    assert b.xp is array_api_compat.numpy
    assert b.device == "cpu"
    assert b.mutable is True
    assert b.array_type is np.ndarray
    assert b.version == np.__version__
    assert not b.is_gpu
    assert repr(b) == "Backend('numpy')" and str(b) == "numpy"


def test_resolve_torch():
    b = backends.resolve("torch")
    assert b.name == "torch" and b.spec == "torch"
    assert b.xp is array_api_compat.torch
    assert b.device == torch.device("cpu")
    assert b.array_type is torch.Tensor
    assert b.mutable and not b.is_gpu


def test_resolve_array_api_strict():
    b = backends.resolve("array_api_strict")
    assert b.name == "array_api_strict" and b.spec == "array_api_strict"
    assert b.xp is array_api_strict
    assert b.array_type is type(array_api_strict.asarray([1.0]))
    assert b.device == array_api_strict.Device("CPU_DEVICE")
    assert backends.resolve("array-api-strict") is b
    assert backends.resolve("strict") is b


def test_resolve_auto_picks_cupy_only_where_a_gpu_answers():
    chosen, why = backends.auto()
    assert backends.resolve("auto") is chosen
    assert why.startswith("auto: ")
    if CUDA_OK:
        assert chosen.name == "cupy"
    else:
        assert chosen.name == "numpy"
        assert "cupy" in why  # the reason names what is missing


def test_resolve_none_is_the_current_default():
    with gdbp.use("torch"):
        assert backends.resolve(None) is backends.resolve("torch")
    with gdbp.use("numpy"):
        assert backends.resolve(None) is backends.resolve("numpy")


def test_resolve_is_case_and_space_insensitive():
    assert backends.resolve("  NumPy ") is backends.resolve("numpy")
    assert backends.resolve("TORCH") is backends.resolve("torch")


def test_resolve_a_backend_returns_it():
    b = backends.resolve("torch")
    assert backends.resolve(b) is b


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_spec_round_trips(name):
    b = backends.resolve(name)
    assert backends.resolve(b.spec) is b


@pytest.mark.parametrize(
    "module, name",
    [
        (np, "numpy"),
        (array_api_compat.numpy, "numpy"),
        (torch, "torch"),
        (array_api_compat.torch, "torch"),
        (array_api_strict, "array_api_strict"),
    ],
    ids=["numpy", "compat.numpy", "torch", "compat.torch", "array_api_strict"],
)
def test_resolve_a_namespace_module(module, name):
    assert backends.resolve(module) is backends.resolve(name)


def test_resolve_a_non_namespace_object_fails():
    with pytest.raises(BackendError, match="not an array namespace"):
        backends.resolve(object())


@pytest.mark.parametrize("spec", ["jax", "numpy:1", "cupy:one", "strict:0", ""])
def test_unknown_spec_is_an_error_listing_the_valid_ones(spec):
    with pytest.raises(BackendError) as info:
        backends.resolve(spec)
    assert not isinstance(info.value, BackendUnavailableError)
    message = str(info.value)
    assert repr(spec) in message
    for valid in ("'auto'", "'numpy'", "'cupy'", "'cupy:N'", "'torch'", "'array_api_strict'"):
        assert valid in message


def test_env_var_sets_the_default(fresh_default, monkeypatch):
    monkeypatch.setenv("GDBP_BACKEND", "torch")
    assert backends.current() is backends.resolve("torch")
    assert gdbp.tensor([1.0, 2.0]).backend is backends.resolve("torch")


def test_env_var_unset_means_auto(fresh_default):
    assert backends.current() is backends.auto()[0]


def test_use_overrides_the_env_var(fresh_default, monkeypatch):
    monkeypatch.setenv("GDBP_BACKEND", "torch")
    with gdbp.use("array_api_strict"):
        assert backends.current().name == "array_api_strict"
    assert backends.current().name == "torch"


def test_env_var_with_a_bad_spec_fails_when_the_default_is_needed(fresh_default, monkeypatch):
    monkeypatch.setenv("GDBP_BACKEND", "tensorflow")
    with pytest.raises(BackendError, match="tensorflow"):
        backends.current()


# --- interning ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_backends_are_interned(name):
    assert backends.resolve(name) is backends.resolve(name)


def test_interned_across_spellings_and_arrays():
    t = backends.resolve("torch")
    assert backends.resolve("torch:cpu") is t
    assert backends.backend_of(torch.ones(2)) is t
    assert backends.backend_of(np.ones(2)) is backends.resolve("numpy")
    assert backends.backend_of(array_api_strict.ones(2)) is backends.resolve("array_api_strict")


def test_backprop_gives_one_differentiable_namespace_per_backend():
    b = backends.resolve("numpy")
    ns = gdbp.backprop.namespace_for(b)
    assert ns is gdbp.backprop.namespace_for(b)  # one per backend
    assert gdbp.tensor(np.ones(2)).__array_namespace__() is ns
    assert isinstance(ns.exp(np.ones(2)), gdbp.Tensor)


# --- use ---------------------------------------------------------------------------------------


def test_use_as_a_call_stays(fresh_default):
    gdbp.use("torch")
    assert gdbp.current() is backends.resolve("torch")
    assert isinstance(gdbp.tensor([1.0]).data, torch.Tensor)
    gdbp.use("array_api_strict")
    assert gdbp.current() is backends.resolve("array_api_strict")


def test_use_as_a_context_manager_restores(fresh_default):
    gdbp.use("numpy")
    with gdbp.use("torch") as b:
        assert b is backends.resolve("torch")
        assert gdbp.current() is b
        with gdbp.use("array_api_strict"):
            assert gdbp.current().name == "array_api_strict"
        assert gdbp.current() is b
    assert gdbp.current() is backends.resolve("numpy")


def test_use_restores_even_after_an_exception(fresh_default):
    gdbp.use("numpy")
    with pytest.raises(ZeroDivisionError):
        with gdbp.use("torch"):
            assert gdbp.current().name == "torch"
            1 / 0
    assert gdbp.current() is backends.resolve("numpy")


@no_cuda
def test_a_failed_use_leaves_the_default_alone(fresh_default):
    gdbp.use("torch")
    with pytest.raises(BackendUnavailableError):
        gdbp.use("cupy")
    assert gdbp.current() is backends.resolve("torch")


def test_use_repr():
    with gdbp.use("numpy") as b:
        assert b.spec == "numpy"
    assert repr(gdbp.use("numpy")) == "use('numpy')"


# --- unavailable backends ------------------------------------------------------------------


@no_cuda
@pytest.mark.parametrize("spec", ["cupy", "cupy:0", "cupy:3", " CuPy:1 "])
def test_cupy_unavailable_names_cupy_and_how_to_get_it(spec):
    with pytest.raises(BackendUnavailableError) as info:
        backends.resolve(spec)
    message = str(info.value)
    assert "cupy" in message
    if not CUPY_INSTALLED:
        assert "not installed" in message
        assert "pip install" in message and "gdbp[cuda12]" in message and "gdbp[cuda13]" in message
    else:
        assert "CUDA device" in message


@no_cuda
def test_probe_cuda_says_why():
    ok, why = backends.probe_cuda()
    assert ok is False
    assert "cupy" in why and why == CUDA_WHY


@pytest.mark.skipif(torch.cuda.is_available(), reason="torch sees a CUDA device here")
def test_torch_cuda_unavailable_says_so():
    with pytest.raises(BackendUnavailableError, match=r"torch:cuda.*no CUDA device"):
        backends.resolve("torch:cuda")


@pytest.mark.parametrize("ignored", [pytest.param(None, marks=needs_cuda)])
def test_cupy_backends_when_a_gpu_answers(ignored):
    import cupy

    b = backends.resolve("cupy")
    assert b is backends.resolve("cupy:0") and b.name == "cupy" and b.is_gpu
    assert b.device.id == 0
    assert backends.backend_of(cupy.ones(2)) is b
    n = cupy.cuda.runtime.getDeviceCount()
    with pytest.raises(BackendUnavailableError, match=f"cupy:{n}"):
        backends.resolve(f"cupy:{n}")


# --- identifying arrays ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: np.ones(3), "numpy"),
        (lambda: np.float32(1.0), "numpy"),
        (lambda: torch.ones(3), "torch"),
        (lambda: array_api_strict.ones(3), "array_api_strict"),
    ],
    ids=["ndarray", "numpy-scalar", "torch", "strict"],
)
def test_backend_of_arrays(make, name):
    x = make()
    assert backends.backend_of(x) is backends.resolve(name)
    assert backends.is_array(x)


@pytest.mark.parametrize("value", [1.0, 3, True, [1.0, 2.0], (1, 2), "numpy", None])
def test_backend_of_non_arrays_is_none(value):
    assert backends.backend_of(value) is None
    assert not backends.is_array(value)


def test_a_tensor_is_not_a_backend_array():
    t = gdbp.tensor(np.ones(2))
    assert backends.backend_of(t) is None
    assert t.backend is backends.resolve("numpy")


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_namespace_of_arrays(name):
    b = backends.resolve(name)
    x = b.xp.ones(3)
    assert backends.namespace(x) is b.xp
    assert backends.namespace(x, 2.0, x) is b.xp  # scalars are ignored
    assert backends.same_backend(x, x) is b
    assert backends.device_of(x) == b.device


def test_namespace_needs_an_array():
    with pytest.raises(TypeError, match="no arrays given"):
        backends.namespace(1.0, 2)


@pytest.mark.parametrize(
    "a, b, names",
    [
        (lambda: np.ones(2), lambda: torch.ones(2), ("numpy", "torch")),
        (lambda: torch.ones(2), lambda: array_api_strict.ones(2), ("torch", "array_api_strict")),
        (lambda: array_api_strict.ones(2), lambda: np.ones(2), ("array_api_strict", "numpy")),
    ],
    ids=["numpy-torch", "torch-strict", "strict-numpy"],
)
def test_same_backend_mismatch_names_both(a, b, names):
    for fn in (backends.same_backend, backends.namespace):
        with pytest.raises(BackendMismatchError) as info:
            fn(a(), 1.0, b())
        message = str(info.value)
        assert names[0] in message and names[1] in message
        assert "gdbp.transfer" in message
    assert issubclass(BackendMismatchError, TypeError)


# --- to_numpy and transfer ------------------------------------------------------------------------


@pytest.mark.parametrize("name", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_to_numpy(name, dtype):
    values = np.asarray([[0, 1, 2], [3, 4, 5]]).astype(dtype)
    b = backends.resolve(name)
    x = b.xp.asarray(values, dtype=getattr(b.xp, dtype))
    out = backends.to_numpy(x)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, values)
    np.testing.assert_array_equal(backends.to_numpy(gdbp.tensor(x)), values)


def test_to_numpy_of_a_numpy_array_is_that_array():
    a = np.arange(3.0)
    assert backends.to_numpy(a) is a


def test_to_numpy_of_a_tensor_requiring_grad():
    t = gdbp.tensor(torch.ones(2, dtype=torch.float64), requires_grad=True) * 3
    np.testing.assert_array_equal(backends.to_numpy(t), [3.0, 3.0])
    np.testing.assert_array_equal(t.numpy(), [3.0, 3.0])


@pytest.mark.parametrize("source", CPU_BACKENDS)
@pytest.mark.parametrize("target", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_transfer_keeps_values_and_dtype(source, target, dtype):
    values = np.asarray([[1.5, -2.0, 3.25], [0.0, 7.0, -1.0]]).astype(dtype)
    src = backends.resolve(source)
    x = src.xp.asarray(values, dtype=getattr(src.xp, dtype))
    y = backends.transfer(x, target)
    tgt = backends.resolve(target)
    assert backends.backend_of(y) is tgt
    assert y.dtype == getattr(tgt.xp, dtype)
    assert tuple(y.shape) == values.shape
    np.testing.assert_array_equal(host(y), values)
    if source == target:
        assert y is x  # nothing to move


@pytest.mark.parametrize("source, target", [(s, t) for s in CPU_BACKENDS for t in CPU_BACKENDS if s != t])
def test_transfer_is_a_copy(source, target):
    src = backends.resolve(source)
    x = src.xp.asarray([1.0, 2.0, 3.0], dtype=src.xp.float64)
    y = backends.transfer(x, target)
    y[0] = 100.0  # writing the copy ...
    np.testing.assert_array_equal(host(x), [1.0, 2.0, 3.0])  # ... leaves the source alone
    x[1] = -5.0
    np.testing.assert_array_equal(host(y), [100.0, 2.0, 3.0])


def test_transfer_of_a_non_contiguous_array():
    x = np.arange(12.0).reshape(3, 4)[:, ::2]
    y = backends.transfer(x, "torch")
    np.testing.assert_array_equal(y.numpy(), x)


def test_transfer_accepts_a_backend_object():
    y = backends.transfer(np.ones(2), backends.resolve("torch"))
    assert isinstance(y, torch.Tensor)


def test_transfer_needs_an_array():
    with pytest.raises(TypeError, match="transfer expects an array, got list"):
        backends.transfer([1.0, 2.0], "torch")


def test_transfer_is_exported_at_the_top():
    assert gdbp.transfer is backends.transfer


# --- the report and `gdbp info` ---------------------------------------------------------------------


def _check_report(text: str):
    lines = text.splitlines()
    assert lines[0].startswith("backend: ")
    chosen = backends.auto()[0]
    assert lines[0].startswith(f"backend: {chosen.spec}  (auto: ")
    assert "probed:" in lines
    body = "\n".join(lines[lines.index("probed:") + 1:])
    for name, version in (("numpy", np.__version__), ("array_api_strict", array_api_strict.__version__),
                          ("torch", torch.__version__)):
        row = next(line for line in body.splitlines() if line.split()[1:2] == [name])
        assert row.split()[0] == "ok" and version in row
    cupy_row = next(line for line in body.splitlines() if " cupy " in line)
    if CUDA_OK:
        assert cupy_row.split()[0] == "ok" and "cupy:0" in cupy_row
    else:
        assert cupy_row.split()[0] == "--"
        assert CUDA_WHY in cupy_row  # why it is not used
        assert "NumPy, because" in lines[0]


def test_report_content(fresh_default):
    _check_report(backends.report())


def test_report_names_the_env_var(fresh_default, monkeypatch):
    monkeypatch.setenv("GDBP_BACKEND", "torch")
    assert backends.report().splitlines()[0] == "backend: torch  (GDBP_BACKEND=torch)"


@no_cuda
def test_report_with_an_unavailable_env_backend(fresh_default, monkeypatch):
    monkeypatch.setenv("GDBP_BACKEND", "cupy")
    first = backends.report().splitlines()[0]
    assert first.startswith("backend: unavailable (") and "cupy" in first


def test_probe_rows():
    rows = {row["backend"]: row for row in backends.probe()}
    assert set(rows) == {"numpy", "array_api_strict", "torch", "cupy"}
    assert rows["numpy"]["ok"] and rows["numpy"]["devices"] == ["cpu"]
    assert rows["cupy"]["ok"] is CUDA_OK


def test_cli_info(fresh_default, capsys):
    from gdbp.cli import main

    assert main(["info"]) == 0
    _check_report(capsys.readouterr().out)


def test_python_dash_m_gdbp_info():
    env = {k: v for k, v in os.environ.items() if k != "GDBP_BACKEND"}
    done = subprocess.run([sys.executable, "-m", "gdbp", "info"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    _check_report(done.stdout)


def test_importing_gdbp_imports_no_optional_library():
    # Type checks look in sys.modules: asking about a NumPy array must not import torch or cupy.
    code = (
        "import sys, numpy, gdbp\n"
        "gdbp.backends.backend_of(numpy.ones(2))\n"
        "gdbp.tensor(numpy.ones(2), requires_grad=True).sum().backward()\n"
        "print(sorted(m for m in ('torch', 'cupy', 'array_api_strict') if m in sys.modules))\n"
    )
    env = dict(os.environ, GDBP_BACKEND="numpy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
