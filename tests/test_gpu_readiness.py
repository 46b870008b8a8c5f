"""What would break or stall on the first CUDA run, checked here with stand-ins that behave as CuPy does.

Each stand-in copies CuPy 14 and array-api-compat 1.16 at one point: an
array without ``__index__`` or implicit host conversion; creation functions
that ignore ``device=`` and make arrays on a current device; a cupy module
whose ``ElementwiseKernel`` compiles the CUDA source for the host (g++),
whose ``add.at``, ``matmul(out=)`` and ``sum(out=)`` are NumPy's. The tests
marked gpu check the same points on CuPy itself, where a CUDA device answers
(``benchmarks/gpu_check.sh --quick`` runs them first).
"""

from __future__ import annotations

import ctypes
import math
import operator
import shutil
import subprocess
import warnings
from types import SimpleNamespace

import array_api_compat.numpy as xnp
import array_api_compat.torch as xtorch
import numpy as np
import pytest
import torch

import gdbp
from gdbp import backends, descent, nn
from gdbp.backends import _arrays, _philox
from gdbp.backends._backend import Backend
from gdbp.backends._cupy import PHILOX_KERNEL, CupyKernels
from gdbp.backends._kernels import Kernels
from gdbp.backends._scatter import generic_scatter_add
from gdbp.backprop import ops
from gdbp.backprop.namespace import namespace_for
from gdbp.backprop.tensor import make
from gdbp.train.metrics import RunningMean, sync_all

from conftest import to_numpy

CUDA_OK, CUDA_WHY = backends.probe_cuda()
gpu = [pytest.mark.gpu, pytest.mark.skipif(not CUDA_OK, reason=CUDA_WHY)]


def stand_in(kernels, xp=xnp, device="cpu", is_gpu=True, name="stand-in"):
    return Backend(name, xp, device, True, np.ndarray, "0", name, is_gpu, kernels)


# --- a stand-in cupy module -----------------------------------------------------------------------


class Device:
    """cupy.cuda.Device: a context that makes a device current (where CuPy creates arrays)."""

    current = "gpu0"

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        self.previous, Device.current = Device.current, self.device

    def __exit__(self, *exc):
        Device.current = self.previous


def made_on(record, create):
    def wrapped(*args, **kwargs):
        record.append(Device.current)
        return create(*args, **kwargs)

    return wrapped


class HostElementwiseKernel:
    """cupy.ElementwiseKernel with scalar inputs, run on the host: the same CUDA C source, built by g++."""

    libraries: dict = {}
    folder = None

    def __init__(self, in_params, out_params, operation, name, preamble=""):
        self.params = [p.split() for p in in_params.split(",")]
        self.out = out_params.split()[1]  # "T name": one output, of the output array's type
        self.source = (preamble, operation, name)

    def _library(self, ctype):
        key = (self.source, self.out, ctype)
        if key not in self.libraries:
            preamble, operation, name = self.source
            types = {"uint64": "unsigned long long"}
            args = ", ".join(f"{types[t]} {n}" for t, n in self.params)
            src = self.folder / f"{name}_{ctype}.cpp"
            src.write_text(
                "#define __device__\n"
                "static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b)\n"
                "{ return (unsigned long long)(((unsigned __int128)a * b) >> 64); }\n"
                f"typedef {ctype} T;\n{preamble}\n"
                f'extern "C" void run(long long n, {args}, T* out_)\n'
                f"{{ for (long long i = 0; i < n; ++i) {{ T& {self.out} = out_[i]; {operation}; }} }}\n"
            )
            lib = src.with_suffix(".so")
            subprocess.run(["g++", "-O2", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
            self.libraries[key] = ctypes.CDLL(str(lib))
        return self.libraries[key]

    def __call__(self, *args):
        *scalars, out = args
        lib = self._library({"float32": "float", "float64": "double"}[out.dtype.name])
        lib.run(ctypes.c_longlong(out.size), *[ctypes.c_ulonglong(int(a)) for a in scalars],
                out.ctypes.data_as(ctypes.c_void_p))


@pytest.fixture
def fake_cupy(tmp_path_factory):
    made = []
    HostElementwiseKernel.folder = tmp_path_factory.mktemp("kernels")
    cp = SimpleNamespace(cuda=SimpleNamespace(Device=Device), zeros=made_on(made, np.zeros),
                         empty=made_on(made, np.empty), add=np.add, matmul=np.matmul, sum=np.sum,
                         ElementwiseKernel=HostElementwiseKernel, made=made)
    return cp  # no cupy.random: a kernel that asked for CuPy's generator would fail


# --- Tensor.__index__ ------------------------------------------------------------------------------


class NoIndexArray:
    """What a CuPy array is here: no __index__, and no conversion to a host value behind one's back."""

    def __init__(self, a):
        self.a = np.asarray(a)
        self.shape, self.ndim, self.dtype = self.a.shape, self.a.ndim, self.a.dtype

    def _implicit(self, *args):
        raise AssertionError("an implicit host conversion")

    __int__ = __float__ = __bool__ = __array__ = _implicit


class ExplicitReadKernels(Kernels):
    def to_numpy(self, x):
        return x.a  # the explicit copy to the host (CuPy's .get())


def test_a_tensor_of_an_array_without_index_is_an_index():
    assert not hasattr(NoIndexArray, "__index__")
    backend = stand_in(ExplicitReadKernels(xnp))
    i = make(NoIndexArray(np.int64(2)), backend)
    assert operator.index(i) == 2 and [10, 20, 30][i] == 30 and range(5)[i] == 2
    for bad, match in [(np.float32(2), "integer"), (np.array([2]), "0-d"), (np.bool_(True), "integer")]:
        with pytest.raises(TypeError, match=match):
            operator.index(make(NoIndexArray(bad), backend))


def test_a_0d_integer_tensor_is_an_index_on_every_backend(backend):
    i = gdbp.Tensor(backends.transfer(np.asarray(3, dtype=np.int64), backend))
    assert operator.index(i) == 3 and "abcde"[i] == "d"
    with pytest.raises(TypeError, match="integer"):
        operator.index(gdbp.Tensor(backends.transfer(np.asarray(3.0), backend)))


# --- the CuPy kernels, on the stand-in ---------------------------------------------------------------


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler here to build the CUDA source for the host")
@pytest.mark.parametrize("key, counter, n", [(_philox.key_of(5), 0, 1), (_philox.key_of(6), 9, 1001),
                                             (2**128 - 1, 2**64 - 300, 1000)])
def test_cupys_philox_kernel_gives_numpys_bits(fake_cupy, key, counter, n):
    k = CupyKernels(xnp, cp=fake_cupy)
    backend = stand_in(k, device="gpu1")
    want = _philox.host_uniform(key, counter, n)
    assert np.array_equal(k.uniform(key, counter, (n,), "float64", backend), want)
    got = k.uniform(key, counter, (n,), None, backend)
    assert got.dtype == np.float32 and np.array_equal(got, want.astype(np.float32))
    assert np.array_equal(k.uniform(key, counter, (n,), "float16", backend), want.astype(np.float16))
    assert set(fake_cupy.made) == {"gpu1"}  # made on the stream's device, not CuPy's current one


def test_cupys_scatter_add_is_add_at_on_the_gradients_device_and_agrees_with_the_generic(fake_cupy, rng):
    k = CupyKernels(xnp, cp=fake_cupy)
    shape = (4, 3)
    for key in [(np.array([0, 2, 0, 3, 2]),), (np.array([1, 1, 0, 1, 3]), slice(None)),
                (slice(1, 3), np.array([[0], [2]])), (slice(None), 1)]:
        g = rng.normal(size=np.zeros(shape)[key].shape)  # repeated indices must add up
        np.testing.assert_allclose(k.scatter_add(g, key, shape), generic_scatter_add(xnp, g, key, shape))
    assert fake_cupy.made and set(fake_cupy.made) == {"cpu"}  # inside Device(g.device)


def test_cupys_in_place_kernels_write_into_the_buffer(fake_cupy, rng):
    k = CupyKernels(xnp, cp=fake_cupy)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 5))
    out = np.empty((4, 5))
    assert k.matmul_into(a, b, out) is out and np.allclose(out, a @ b)
    total = np.empty(3)
    assert k.sum_into(a, 0, total) is total and np.allclose(total, a.sum(axis=0))
    assert k.reusable(out) and k.memory_of(out) is None
    assert not k.reusable(out.T) and k.memory_of(out[1:]) is out  # views: they share another array's memory
    assert not k.reusable(np.asfortranarray(out))


# --- creation on the backend's device ----------------------------------------------------------------


class DeviceScoped:
    """array-api-compat's CuPy creation functions: ``device=`` ignored, arrays made on the current device."""

    float32, float64, int64 = np.float32, np.float64, np.int64

    def __init__(self):
        self.made = []
        for name in ("zeros", "ones", "empty", "full", "arange", "linspace", "eye", "asarray",
                     "zeros_like", "ones_like", "empty_like", "full_like"):
            setattr(self, name, self._scoped(getattr(np, name)))

    def _scoped(self, create):
        def make_here(*args, device=None, **kwargs):
            self.made.append(Device.current)
            return create(*args, **kwargs)

        return make_here

    def __getattr__(self, name):
        return getattr(xnp, name)


class ScopedKernels(Kernels):
    def creating(self, device):
        return Device(device)


def test_gdbp_creates_arrays_on_the_backends_device_where_creation_ignores_device():
    xp = DeviceScoped()
    b = stand_in(ScopedKernels(xp), xp=xp, device="gpu1", is_gpu=False)
    nn.init.zeros((2, 3), backend=b)
    nn.init.ones((2,), backend=b)
    backends.transfer(np.ones(3), b)  # what the host streams hand over (nn.init's draws)
    backends.host_rng(0).uniform((2, 2), backend=b)
    ns = namespace_for(b)
    ns.zeros(3), ns.full((2,), 1.0), ns.arange(4), ns.eye(2), ns.linspace(0, 1, 3), ns.asarray([1.0])
    ns.ones_like(np.ones(2), device="gpu1")
    assert xp.made == ["gpu1"] * 11 and Device.current == "gpu0"
    ns.zeros_like(np.ones(2))  # a *_like array goes where its model is, not to the current device
    assert xp.made[-1] == "cpu"


# --- DLPack between GPU libraries ---------------------------------------------------------------------


class NoHostKernels(Kernels):
    def to_numpy(self, x):
        raise AssertionError("a round trip through the host")


def test_transfer_between_two_gpu_libraries_goes_through_dlpack_not_the_host(monkeypatch):
    source = stand_in(NoHostKernels(xtorch), xp=xtorch, name="torch-on-a-gpu")
    target = stand_in(NoHostKernels(xnp), name="cupy-like")
    monkeypatch.setattr(_arrays, "backend_of", lambda x: source if isinstance(x, torch.Tensor) else target)
    x = torch.arange(6.0).reshape(2, 3)
    y = backends.transfer(x, target)
    x += 1  # the copy is the target's own
    assert isinstance(y, np.ndarray) and np.array_equal(y, np.arange(6.0).reshape(2, 3))


# --- clip, the metrics' transfers, the flat state ----------------------------------------------------


F32 = np.array([[-2.0, -0.5, np.nan], [0.5, 1.0, 2.0]], np.float32)
I8 = np.array([-100, 0, 7, 100], np.int8)
CLIP_CASES = {  # x, lo, hi: NaN in x or a bound, bounds of another dtype, beyond x's range, lo > hi, broadcast
    "scalars": (F32, -1.0, 1.0), "nan low": (F32, math.nan, 1.0), "nan high": (F32, None, math.nan),
    "float64 bound": (F32, np.full((2, 3), -1.0), None),
    "broadcast bound": (F32, np.array([[-1.0], [0.75]], np.float32), 1.5),
    "nan in a bound": (F32, np.array([math.nan, 0.0, 0.0], np.float32), None), "low above high": (F32, 1.0, -1.0),
    "no bounds": (F32, None, None), "int beyond range": (I8, -1000, 1000), "int": (I8, -5, 50),
    "int array bound": (I8, np.array([0, 1, 2, 3], np.int64), None),
}


@pytest.mark.parametrize("name", ["numpy", "array_api_strict", "torch"])
@pytest.mark.parametrize("case", sorted(CLIP_CASES))
def test_clip_from_minimum_and_maximum_is_the_standards_clip(name, case):
    x, lo, hi = CLIP_CASES[case]
    want = xnp.clip(x, lo, hi)  # array-api-compat's: the standard's dtype and NaN rules
    b = backends.resolve(name)
    move = lambda v: backends.transfer(v, b) if isinstance(v, np.ndarray) else v  # noqa: E731
    moved = move(x)
    got = b.kernels.clip(moved, move(lo), move(hi))
    assert to_numpy(got).dtype == x.dtype and to_numpy(got).shape == want.shape
    np.testing.assert_array_equal(to_numpy(got), want)
    assert got is not moved  # a new array, as the standard's clip gives


def test_clip_needs_no_library_clip(monkeypatch, rng):
    def masked_clip(*a, **k):
        raise AssertionError("array-api-compat's clip: boolean-mask writes, a host sync each on CuPy")

    monkeypatch.setattr(xnp, "clip", masked_clip)
    x = gdbp.Tensor(rng.normal(size=(3, 4)).astype(np.float32), requires_grad=True)
    y = ops.clip(x, -0.5, 0.5)
    y.sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), (np.abs(to_numpy(x)) <= 0.5).astype(np.float32))
    w = nn.Linear(3, 2, backend="numpy")
    (w(gdbp.Tensor(np.ones((4, 3), np.float32))) * 100).sum().backward()
    descent.clip_grad_norm(w.parameters(), 1.0)
    descent.clip_grad_value(w.parameters(), 0.01)
    assert max(float(np.abs(to_numpy(p.grad)).max()) for p in w.parameters()) <= 0.01


def test_the_running_means_come_to_the_host_in_one_transfer(monkeypatch):
    calls = []
    real = backends.to_numpy
    monkeypatch.setattr(backends, "to_numpy", lambda x: calls.append(1) or real(x))
    cost, acc, empty = RunningMean(), RunningMean(), RunningMean()
    for step, (c, a) in enumerate([(0.5, 1.0), (float("inf"), 0.5), (1.5, 0.0)]):
        cost.add(np.asarray(c, np.float32), 2, step)
        acc.add(np.asarray(a), 1, step)
    sync_all([cost, acc, empty])
    assert calls == [1]
    assert cost.first_bad == (1, math.inf) and acc.mean == 0.5 and math.isnan(empty.mean)
    sync_all([cost, acc])  # nothing pending: no transfer
    assert calls == [1]


def test_a_flat_buffers_new_state_is_taken_not_copied_back():
    model = nn.Linear(3, 2, backend="numpy", seed=0)
    opt = descent.Adam(model.parameters(), lr=0.1, flat=True)
    group = opt._storage.groups[0]
    assert len(group.blocks) == 1  # a small buffer is one block, as every buffer is on a GPU
    held = []
    for _ in range(2):
        opt.zero_grad()
        model(gdbp.Tensor(np.ones((4, 3), np.float32))).sum().backward()
        opt.step()
        held.append(group.state["exp_avg"])
    assert held[0] is not held[1]  # the rule's new array became the state: no pass copying it back
    np.testing.assert_array_equal(to_numpy(opt.state[0]["exp_avg"]), to_numpy(held[1][:6]).reshape(2, 3))


# --- the same points on CuPy itself --------------------------------------------------------------


@pytest.fixture
def cupy():
    import cupy

    return cupy


@pytest.mark.parametrize("ignored", [pytest.param(None, marks=gpu)])
def test_on_cupy_philox_dropout_and_resume(cupy, ignored, tmp_path):
    b = backends.resolve("cupy")
    for key, counter, n in [(_philox.key_of(5), 0, 1), (2**128 - 1, 2**64 - 300, 1000)]:
        got = b.kernels.uniform(key, counter, (n,), "float64", b)
        assert np.array_equal(got.get(), _philox.host_uniform(key, counter, n))
    x = np.ones((8, 16), np.float32)
    on_gpu = to_numpy(nn.Dropout(0.3, seed=4)(gdbp.Tensor(cupy.asarray(x))))
    np.testing.assert_array_equal(on_gpu, to_numpy(nn.Dropout(0.3, seed=4)(gdbp.Tensor(x))))
    layer = nn.Sequential(nn.Linear(16, 4, backend="cupy", seed=0), nn.Dropout(0.5, seed=1))
    layer(gdbp.Tensor(cupy.asarray(x)))
    gdbp.save(tmp_path / "d.safetensors", layer)  # CuPy's generator has no state: gdbp's is saved
    again = nn.Sequential(nn.Linear(16, 4, backend="cupy", seed=0), nn.Dropout(0.5, seed=1))
    gdbp.load(tmp_path / "d.safetensors", again)
    np.testing.assert_array_equal(to_numpy(again(gdbp.Tensor(cupy.asarray(x)))),
                                  to_numpy(layer(gdbp.Tensor(cupy.asarray(x)))))


SPIN = r"""
extern "C" __global__ void gdbp_spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) {}
}
"""


def assert_no_host_sync(cupy, fn):
    """fn waits for the device nowhere: it runs while a kernel spins, and the spin is still running after."""
    fn()  # first, so that every kernel is compiled (host time, not a wait on the device)
    cupy.cuda.runtime.deviceSynchronize()
    cupy.RawKernel(SPIN, "gdbp_spin")((1,), (1,), (np.int64(4_000_000_000),))  # about two seconds
    fn()
    waited = cupy.cuda.get_current_stream().done
    cupy.cuda.runtime.deviceSynchronize()
    assert not waited, "the host waited for the device (a .get(), a mask's count, a synchronize)"


@pytest.mark.parametrize("ignored", [pytest.param(None, marks=gpu)])
def test_on_cupy_no_host_sync_in_clip_scatter_or_dropout(cupy, ignored, monkeypatch):
    monkeypatch.setattr(cupy.random, "default_rng", lambda *a, **k: pytest.fail("a CuPy generator per call"))
    x = gdbp.Tensor(cupy.linspace(-2, 2, 12, dtype=cupy.float32).reshape(3, 4), requires_grad=True)
    rows = cupy.asarray([0, 0, 2])

    def step():
        x.grad = None
        y = ops.clip(x, -1.0, 1.0) + x[rows, ...].sum() + nn.functional.dropout(x, 0.5)
        y.sum().backward()
        descent.clip_grad_norm([x], 1.0)
        descent.clip_grad_value([x], 0.1)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # cupyx.scatter_add's deprecation warning, on every call
        assert_no_host_sync(cupy, step)
    assert float(abs(x.grad.data).max()) <= 0.1


@pytest.mark.parametrize("ignored", [pytest.param(None, marks=gpu)])
def test_on_cupy_gradient_buffers_are_reused_and_flat_gradients_written_in_place(cupy, ignored):
    model = nn.Linear(32, 8, backend="cupy", seed=0)
    xb = gdbp.Tensor(cupy.ones((4, 32), dtype=cupy.float32))
    ptrs = []
    for _ in range(2):
        model.zero_grad()
        model(xb).sum().backward()
        ptrs.append(model.weight.grad.data.data.ptr)
    assert ptrs[0] == ptrs[1]
    opt = descent.Adam(model.parameters(), lr=0.01, flat=True)
    group = opt._storage.groups[0]
    for _ in range(2):
        opt.zero_grad()
        model(xb).sum().backward()
        assert model.weight.grad.data is group.grad_views[0]  # written into its slice: nothing to gather
        opt.step()


@pytest.mark.parametrize("ignored", [pytest.param(None, marks=gpu)])
def test_on_cupy_dlpack_to_torch_cuda_and_creation_on_the_backends_device(cupy, ignored, monkeypatch):
    if torch.cuda.is_available():
        for b in (backends.resolve("cupy"), backends.resolve("torch:cuda")):
            monkeypatch.setattr(b.kernels, "to_numpy", lambda x: pytest.fail("a host round trip"))
        t = backends.transfer(cupy.arange(5.0), "torch:cuda")
        assert t.is_cuda and torch.equal(t.cpu(), torch.arange(5.0, dtype=torch.float64))
        assert cupy.array_equal(backends.transfer(t, "cupy"), cupy.arange(5.0))
        monkeypatch.undo()
        stream = backends.device_rng(3, "torch:cuda")  # torch's own draws, from gdbp's key and counter
        first, state = stream.random(6), stream.get_state()
        assert first.is_cuda and state["counter"] == 2 and not torch.equal(stream.random(6), first)
    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("one CUDA device: nothing to tell cupy:1 from cupy:0 (DLPack checked)")
    with cupy.cuda.Device(0):
        layer = nn.Linear(4, 3, backend="cupy:1")
        z = namespace_for(backends.resolve("cupy:1")).zeros(3)
    assert layer.weight.data.device.id == 1 and layer.bias.data.device.id == 1 and z.data.device.id == 1


@pytest.mark.parametrize("ignored", [pytest.param(None, marks=gpu)])
def test_on_cupy_metrics_come_back_in_one_transfer(cupy, ignored, monkeypatch):
    calls = []
    k = backends.resolve("cupy").kernels
    real = k.to_numpy
    monkeypatch.setattr(k, "to_numpy", lambda x: calls.append(1) or real(x))
    means = [RunningMean() for _ in range(3)]
    for step in range(5):
        for m in means:
            m.add(cupy.asarray(0.5, dtype=cupy.float32), 1, step)
    sync_all(means)
    assert calls == [1] and [m.mean for m in means] == [0.5] * 3
