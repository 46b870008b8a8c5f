"""xp.fft, the standard's fft extension: values, gradients, dtypes, backends and errors.

The table (op_cases_complex.py) runs every transform through the
finite-difference, backend-parity and float32/complex64 tests. Here: each
transform's gradient against torch.autograd (torch.fft, through
array-api-compat's torch namespace, on the same array-API function) over
lengths, axes and norms; forward values that are the backend's own; the
adjoints the rules are built on; second derivatives; the creation functions;
signatures and errors.
"""

from __future__ import annotations

import inspect
import itertools

import array_api_compat
import numpy as np
import pytest
import torch

import gdbp
from conftest import to_numpy
from gdbp.backprop import ops
from gdbp.backprop.namespace import namespace_for
from gdbp.testing import check_grad

NORMS = ("backward", "ortho", "forward")
ONE_AXIS = ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft")
N_AXES = ("fftn", "ifftn", "rfftn", "irfftn")
REAL_IN = ("rfft", "ihfft", "rfftn")  # the transforms that take real input only
TRANSFORMS = ONE_AXIS + N_AXES + ("fftshift", "ifftshift")
STANDARD = TRANSFORMS + ("fftfreq", "rfftfreq")


def xp_of(*arrays):
    return array_api_compat.array_namespace(*arrays)


def _input(rng, name, shape, real=None):
    real = name in REAL_IN if real is None else real
    x = rng.normal(size=shape)
    return x if real else x + 1j * rng.normal(size=shape)


def _real_cost(f):
    """A real cost of f's output that weighs real and imaginary parts differently (a conj slip shows)."""

    def cost(x):
        y = f(x)
        xp = xp_of(y)
        if xp.isdtype(y.dtype, "complex floating"):
            return xp.sum(xp.real(y) * 0.7 - xp.imag(y) * 1.3 + xp.abs(y) ** 2)
        return xp.sum(y * 0.7 + y ** 2)

    return cost


def _against_torch(cost, x):
    """gdbp's gradient of cost at x, and torch.autograd's of the same function."""
    mine = gdbp.grad(cost)(x)
    t = torch.tensor(x, requires_grad=True)
    cost(t).backward()
    return mine, t.grad.resolve_conj().numpy()


# --- gradients against torch.autograd -------------------------------------------------------------


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("n", [None, 1, 4, 5, 8, 9])
@pytest.mark.parametrize("name", ONE_AXIS)
def test_one_axis_transforms_match_torch(name, n, norm, rng):
    # Input length 6 along axis 0: n pads (8, 9), trims (1, 4, 5) or keeps it; even and odd lengths.
    x = _input(rng, name, (6, 3))
    if n == 1 and name in ("irfft", "hfft"):
        n = 2  # one output point has no Hermitian pair: torch refuses it
    f = lambda a: getattr(xp_of(a).fft, name)(a, n=n, axis=0, norm=norm)
    mine, theirs = _against_torch(_real_cost(f), x)
    assert mine.dtype == x.dtype and mine.shape == x.shape
    np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("s, axes", [(None, None), (None, (0, 2)), ((4, 3), (1, 0)), ((2, 5, 7), (2, 0, 1)),
                                     ((6,), (-1,)), ((3, 4), (0, 1))])
@pytest.mark.parametrize("name", N_AXES)
def test_n_axis_transforms_match_torch(name, s, axes, norm, rng):
    x = _input(rng, name, (3, 4, 5))
    f = lambda a: getattr(xp_of(a).fft, name)(a, s=s, axes=axes, norm=norm)
    mine, theirs = _against_torch(_real_cost(f), x)
    assert mine.dtype == x.dtype and mine.shape == x.shape
    np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["fft", "ifft", "irfft", "hfft", "fftn", "ifftn", "irfftn"])
def test_real_inputs_of_complex_transforms_get_real_gradients(name, rng):
    # The standard asks for complex input; a real one is cast, and its gradient is the real part.
    x = rng.normal(size=(4, 5))
    f = lambda a: getattr(xp_of(a).fft, name)(a)
    mine, theirs = _against_torch(_real_cost(f), x)
    assert mine.dtype == np.float64
    np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-10)
    check_grad(f, x)


@pytest.mark.parametrize("name", ["fftshift", "ifftshift"])
@pytest.mark.parametrize("axes", [None, 0, (1,), (1, 0)])
def test_shifts_match_torch(name, axes, rng):
    x = _input(rng, "fft", (5, 4))
    f = lambda a: getattr(xp_of(a).fft, name)(a, axes=axes)
    mine, theirs = _against_torch(_real_cost(f), x)
    np.testing.assert_allclose(mine, theirs, rtol=1e-12)


def test_a_convolution_through_the_spectrum_matches_torch(rng):
    # Circular convolution by rfft/irfft, a spectral power and shifted frequencies: one real program.
    x, k = rng.normal(size=(2, 9)), rng.normal(size=(9,))

    def cost(x, k):
        xp = xp_of(x, k)
        conv = xp.fft.irfft(xp.fft.rfft(x) * xp.fft.rfft(k), n=9)
        power = xp.abs(xp.fft.fftshift(xp.fft.fft(x, norm="ortho"), axes=1)) ** 2
        return xp.sum(conv ** 2) + xp.sum(power * xp.arange(9, dtype=power.dtype))

    mine = gdbp.grad(cost, argnums=(0, 1))(x, k)
    tx, tk = torch.tensor(x, requires_grad=True), torch.tensor(k, requires_grad=True)
    cost(tx, tk).backward()
    np.testing.assert_allclose(mine[0], tx.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(mine[1], tk.grad.numpy(), rtol=1e-10)
    check_grad(cost, x, k)


# --- the adjoints the rules are made of ------------------------------------------------------------


@pytest.mark.parametrize("norm, scale", [("backward", 8.0), ("ortho", 8.0 ** 0.5), ("forward", 1.0)])
def test_the_adjoint_of_fft_is_n_times_ifft(norm, scale, rng):
    # fft(norm="backward") is F; its adjoint F^H is n * ifft (ortho: sqrt(n) ifft; forward: ifft).
    x, g = _input(rng, "fft", (8,)), _input(rng, "fft", (8,))
    _, pullback = gdbp.vjp(lambda a: xp_of(a).fft.fft(a, norm=norm), x)
    (back,) = pullback(g)
    np.testing.assert_allclose(back, scale * np.fft.ifft(g), rtol=1e-12)


@pytest.mark.parametrize("n", [5, 6])
def test_rfft_adjoint_weighs_the_mirrored_bins(n, rng):
    # <rfft(x), g> = <x, rfft^T g> with the real inner product; the bins 1..(n-1)//2 stand for two.
    x, g = rng.normal(size=(n,)), _input(rng, "fft", (n // 2 + 1,))
    _, pullback = gdbp.vjp(lambda a: xp_of(a).fft.rfft(a), x)
    (back,) = pullback(g)
    lhs = np.real(np.vdot(g, np.fft.rfft(x)))
    assert back.dtype == np.float64
    np.testing.assert_allclose(np.dot(back, x), lhs, rtol=1e-12)
    full = np.zeros(n, complex)
    full[: n // 2 + 1] = g
    np.testing.assert_allclose(back, np.real(n * np.fft.ifft(full)), rtol=1e-12, atol=1e-12)


# --- second derivatives ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TRANSFORMS)
def test_second_derivatives(name, rng):
    x = _input(rng, name, (4, 5))

    def cost(a):
        xp = xp_of(a)
        y = getattr(xp.fft, name)(a)
        return xp.sum(xp.abs(y) ** 3) if xp.isdtype(y.dtype, "complex floating") else xp.sum(y ** 3)

    check_grad(gdbp.grad(cost), x)


# --- forward values: the backend's own ---------------------------------------------------------------


@pytest.mark.parametrize("backend_name", ["numpy", "array_api_strict", "torch"])
@pytest.mark.parametrize("name", ONE_AXIS)
def test_values_are_the_backends_own(name, backend_name, rng):
    backend = gdbp.backends.resolve(backend_name)
    x = gdbp.transfer(_input(rng, name, (6, 3)), backend)
    mine = getattr(namespace_for(backend).fft, name)(gdbp.tensor(x), n=5, axis=0, norm="ortho")
    theirs = getattr(backend.xp.fft, name)(x, n=5, axis=0, norm="ortho")
    assert type(mine.data) is backend.array_type
    np.testing.assert_array_equal(to_numpy(mine), to_numpy(theirs))


def test_every_transform_on_every_backend(backend, rng):
    # CuPy joins here (marked gpu) where a CUDA device answers: values against NumPy's, gradients' dtypes.
    xp = namespace_for(backend)
    for name in TRANSFORMS:
        for dtype in ("float32", "float64"):
            host = _input(rng, name, (4, 6), real=name in REAL_IN or name.endswith("shift"))
            host = host.astype(np.dtype(dtype) if np.isrealobj(host) else np.dtype(f"complex{2 * int(dtype[-2:])}"))
            x = gdbp.tensor(gdbp.transfer(host, backend), requires_grad=True)
            y = getattr(xp.fft, name)(x)
            want = getattr(np.fft, name)(host)
            tol = 1e-4 if dtype == "float32" else 1e-12
            np.testing.assert_allclose(to_numpy(y), want, rtol=tol, atol=tol * 10)
            cost = xp.sum(xp.real(y)) if xp.isdtype(y.dtype, "complex floating") else xp.sum(y)
            cost.backward()
            assert x.grad.dtype == x.dtype and type(x.grad.data) is backend.array_type


# --- the creation functions ----------------------------------------------------------------------------


@pytest.mark.parametrize("n, d", [(1, 1.0), (6, 0.5), (7, 2.0)])
def test_fftfreq_and_rfftfreq(backend, n, d):
    xp = namespace_for(backend)
    for dtype in (xp.float32, xp.float64):
        f, r = xp.fft.fftfreq(n, d=d, dtype=dtype), xp.fft.rfftfreq(n, d=d, dtype=dtype, device=backend.device)
        for mine, want in ((f, np.fft.fftfreq(n, d=d)), (r, np.fft.rfftfreq(n, d=d))):
            assert isinstance(mine, gdbp.Tensor) and type(mine.data) is backend.array_type
            assert mine.dtype == dtype and not mine.requires_grad
            np.testing.assert_allclose(to_numpy(mine), want, rtol=1e-6)


@pytest.mark.parametrize("n", [0, -2, 2.5, True])
def test_fftfreq_refuses_a_bad_length(n):
    xp = namespace_for(gdbp.backends.resolve("numpy"))
    with pytest.raises(ValueError, match="positive integer"):
        xp.fft.fftfreq(n)


# --- the standard's names and signatures ------------------------------------------------------------------

SIGNATURES = {
    **{name: "(x, /, *, n=None, axis=-1, norm='backward')" for name in ONE_AXIS},
    **{name: "(x, /, *, s=None, axes=None, norm='backward')" for name in N_AXES},
    "fftshift": "(x, /, *, axes=None)",
    "ifftshift": "(x, /, *, axes=None)",
    "fftfreq": "(n, /, *, d=1.0, dtype=None, device=None)",
    "rfftfreq": "(n, /, *, d=1.0, dtype=None, device=None)",
}


@pytest.mark.parametrize("name", STANDARD)
def test_the_standards_signatures(name):
    xp = namespace_for(gdbp.backends.resolve("numpy"))
    assert str(inspect.signature(getattr(xp.fft, name))) == SIGNATURES[name]


def test_ops_fft_holds_the_transforms():
    for name in TRANSFORMS:
        assert getattr(ops.fft, name) is getattr(namespace_for(gdbp.backends.resolve("numpy")).fft, name)


# --- errors ---------------------------------------------------------------------------------------------------


def _t(x):
    return gdbp.tensor(np.asarray(x))


@pytest.mark.parametrize("call, error, match", [
    (lambda: ops.fft.fft(_t([1.0, 2.0]), norm="ortogonal"), ValueError, "norm='ortogonal'.*'backward', 'ortho'"),
    (lambda: ops.fft.fft(_t([1.0, 2.0]), n=0), ValueError, "n=0 points"),
    (lambda: ops.fft.ifft(_t([1.0, 2.0]), n=2.0), TypeError, "n must be an integer"),
    (lambda: ops.fft.irfft(_t([1.0 + 0j])), ValueError, "irfft: n=0 points"),
    (lambda: ops.fft.rfft(_t([1.0 + 1j, 2.0])), TypeError, "rfft: the input must be real.*use fft.fft"),
    (lambda: ops.fft.ihfft(_t([1.0 + 1j])), TypeError, "ihfft.*use fft.ifft"),
    (lambda: ops.fft.rfftn(_t([[1j]])), TypeError, "rfftn.*use fft.fftn"),
    (lambda: ops.fft.fft(_t([1, 2, 3])), TypeError, "fft.fft: the input has dtype int64.*astype"),
    (lambda: ops.fft.fft(_t(1.0 + 0j)), ValueError, "0-d"),
    (lambda: ops.fft.fft(_t([1.0, 2.0]), axis=1), ValueError, "axis 1 is out of range"),
    (lambda: ops.fft.fftn(_t(np.ones((2, 2))), s=(2, 2, 2), axes=(0, 1)), ValueError, "s has 3 entries for 2 axes"),
    (lambda: ops.fft.fftn(_t(np.ones((2, 2))), axes=(0, 0)), ValueError, "repeated axis"),
    (lambda: ops.fft.fftn(_t(np.ones((2, 2))), axes=()), ValueError, "names no axis"),
])
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_s_without_axes_takes_the_last_axes_and_minus_one_the_whole_axis(rng):
    # The standard wants axes with s; NumPy, torch and JAX take the last len(s) axes: so does gdbp.
    x = _input(rng, "fft", (3, 4, 5))
    np.testing.assert_allclose(to_numpy(ops.fft.fftn(_t(x), s=(6, -1))), np.fft.fftn(x, s=(6, 5), axes=(1, 2)))
    np.testing.assert_allclose(to_numpy(ops.fft.irfftn(_t(x), s=(-1,), axes=(0,))), np.fft.irfftn(x, s=(4,), axes=(0,)))


def test_complex64_stays_complex64_through_every_transform(rng):
    for name, (n, axis) in itertools.product(ONE_AXIS, [(None, -1), (7, 0)]):
        x = _input(rng, name, (4, 3)).astype(np.float32 if name in REAL_IN else np.complex64)
        f = lambda a: getattr(xp_of(a).fft, name)(a, n=n, axis=axis)
        y = f(gdbp.tensor(x))
        assert y.dtype in (np.float32, np.complex64)
        assert gdbp.grad(_real_cost(f))(x).dtype == x.dtype
