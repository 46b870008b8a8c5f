"""What the official array API conformance suite found, each as a regular test of gdbp's namespace.

The suite itself (../shared/conformance, run by ``make conformance`` and by
tests/test_conformance_suite.py) draws its cases at random; here each finding
is pinned down on every backend: copies of boolean and integer Tensors,
vecdot's dtype and shapes, finfo's Python numbers, ``__dlpack__``'s keywords,
floor_divide at infinities (out of place and in place), complex expm1 at
zero and at infinities and complex tanh at infinite real parts, with
gradients where the function has one.
"""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pytest
import torch

import gdbp
from gdbp import backends
from gdbp.backprop import namespace_for
from gdbp.testing import check_grad

from conftest import to_numpy

inf, nan = math.inf, math.nan


def on(backend, values, dtype):
    return gdbp.Tensor(backends.transfer(np.asarray(values, dtype=dtype), backend))


def same_floats(actual, expected):
    """Equal values, NaN where NaN, and the sign of every zero (and infinity) as expected."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    np.testing.assert_array_equal(actual, expected)
    signed = ~np.isnan(expected)  # a NaN's sign bit means nothing
    np.testing.assert_array_equal(np.signbit(actual)[signed], np.signbit(expected)[signed])


# --- asarray(x, copy=True): every dtype, a real copy, the gradient passes --------------------------


@pytest.mark.parametrize("dtype", ["bool", "int16", "uint8", "float32"])
def test_asarray_copy_copies_every_dtype(backend, dtype):
    xp = namespace_for(backend)
    x = on(backend, [1, 0, 1], dtype)
    y = xp.asarray(x, copy=True)
    assert y.dtype == x.dtype and y is not x
    y[0] = False if dtype == "bool" else 0  # written through the copy only
    assert to_numpy(x)[0] == 1 and to_numpy(y)[0] == 0


def test_asarray_copy_passes_the_gradient(backend):
    x = backends.transfer(np.array([0.5, -2.0, 3.0]), backend)
    g = gdbp.grad(lambda x: (x.__array_namespace__().asarray(x, copy=True) ** 2).sum())(x)
    np.testing.assert_allclose(to_numpy(g), 2 * to_numpy(x))
    check_grad(lambda x: x.__array_namespace__().asarray(x, copy=True) * x, x)


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int32"])
@pytest.mark.parametrize("name", ["__iand__", "__ior__", "__ixor__"])
def test_inplace_bitwise_operators_on_a_copy(backend, dtype, name):
    xp = namespace_for(backend)
    a, b = np.array([1, 0, 1, 0], dtype=dtype), np.array([1, 1, 0, 0], dtype=dtype)
    x = xp.asarray(on(backend, a, dtype), copy=True)
    out = getattr(x, name)(on(backend, b, dtype))
    assert out is x and x.dtype == on(backend, a, dtype).dtype
    np.testing.assert_array_equal(to_numpy(x), getattr(a.copy(), name)(b))
    y = xp.asarray(on(backend, a, dtype), copy=True)
    getattr(y, name)(True if dtype == "bool" else 1)  # a Python scalar on the right
    np.testing.assert_array_equal(to_numpy(y), getattr(a.copy(), name)(True if dtype == "bool" else 1))


def test_setitem_and_boolean_mask_setitem_on_copies_of_bool_tensors(backend):
    xp = namespace_for(backend)
    x = xp.asarray(on(backend, [False, True, False], "bool"), copy=True)
    x[0] = True
    mask = on(backend, [False, True, True], "bool")
    x[mask] = False
    np.testing.assert_array_equal(to_numpy(x), [True, False, False])
    empty = xp.asarray(on(backend, np.zeros(0, dtype=bool), "bool"), copy=True)
    empty[on(backend, np.zeros(0, dtype=bool), "bool")] = False
    assert empty.shape == (0,)


# --- vecdot: the product's dtype; vectors of two lengths are an error ------------------------------


def test_vecdot_keeps_an_integer_dtype(backend):
    xp = namespace_for(backend)
    x = on(backend, [200, 100, 1], "uint8")
    y = on(backend, [1, 1, 1], "uint8")
    for vecdot in (xp.vecdot, xp.linalg.vecdot):
        out = vecdot(x, y)
        assert out.dtype == x.dtype  # sum alone would widen uint8 to the default unsigned integer
        assert int(out) == (200 + 100 + 1) % 256  # modular, as uint8 arithmetic is


def test_vecdot_refuses_vectors_of_two_lengths(backend):
    xp = namespace_for(backend)
    x, y = on(backend, np.ones((2, 3)), "float64"), on(backend, np.ones(1), "float64")
    with pytest.raises(ValueError, match=r"lengths 3 and 1 along axis -1; the lengths must be equal"):
        xp.vecdot(x, y)
    with pytest.raises(ValueError, match="lengths"):
        xp.linalg.vecdot(on(backend, np.ones((3, 2)), "float64"), on(backend, np.ones((1, 2)), "float64"), axis=-2)


def test_vecdot_gradients_broadcast_over_the_other_axes(rng):
    x, y = rng.normal(size=(4, 3, 2)), rng.normal(size=(3, 1))
    check_grad(lambda x, y: x.__array_namespace__().vecdot(x, y, axis=-2), x, y)
    # second derivatives: vecdot is composed of differentiable ops
    check_grad(lambda x: gdbp.grad(lambda x: (x.__array_namespace__().vecdot(x, x * x, axis=-2) ** 2).sum())(x),
               rng.normal(size=(3, 2)))
    mine = gdbp.grad(lambda x, y: x.__array_namespace__().vecdot(x, y, axis=-2).sum(), argnums=(0, 1))(x, y)
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    torch.linalg.vecdot(tx, ty, dim=-2).sum().backward()
    np.testing.assert_allclose(mine[0], tx.grad.numpy())
    np.testing.assert_allclose(mine[1], ty.grad.numpy())


# --- finfo: Python numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype, real", [("float32", "float32"), ("float64", "float64"),
                                         ("complex64", "float32"), ("complex128", "float64")])
def test_finfo_gives_python_numbers_and_the_real_dtype(backend, dtype, real):
    xp = namespace_for(backend)
    for arg in (getattr(xp, dtype), on(backend, [1.0], dtype)):
        fi = xp.finfo(arg)
        assert type(fi.bits) is int and fi.bits == np.finfo(real).bits
        for field in ("eps", "max", "min", "smallest_normal"):
            assert type(getattr(fi, field)) is float
            assert getattr(fi, field) == float(getattr(np.finfo(real), field))
        assert fi.dtype == getattr(xp, real) and not isinstance(fi.dtype, str)
    eps = xp.finfo(xp.float32).eps * 10.0
    assert type(eps) is float  # no NumPy float32 scalar leaking into Python arithmetic


# --- __dlpack__: the standard's keywords ---------------------------------------------------------


def test_dlpack_takes_the_standards_keywords():
    params = inspect.signature(gdbp.Tensor.__dlpack__).parameters
    assert [(n, p.kind, p.default) for n, p in list(params.items())[1:]] == [
        (n, inspect.Parameter.KEYWORD_ONLY, None) for n in ("stream", "max_version", "dl_device", "copy")
    ]
    t = gdbp.Tensor(np.arange(3.0))
    assert t.__dlpack__(max_version=(1, 0)) is not None
    copied = np.from_dlpack(t, copy=True)
    copied[0] = 7.0
    assert to_numpy(t)[0] == 0.0  # copy=True reached NumPy: the original is untouched
    np.testing.assert_array_equal(np.from_dlpack(t), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(torch.from_dlpack(t).numpy(), [0.0, 1.0, 2.0])


# --- floor_divide at infinities: the quotient, as the standard (IEEE 754) says ------------------

X = [inf, inf, -inf, -inf, 1.0, -1.0, 1.0, -1.0, inf, 0.0, 7.0, -7.0, nan]
Y = [2.0, -2.0, 2.0, -2.0, -inf, inf, inf, -inf, inf, 0.0, 2.0, 2.0, 1.0]
FLOOR = [inf, -inf, -inf, inf, -0.0, -0.0, 0.0, 0.0, nan, nan, 3.0, -4.0, nan]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_floor_divide_at_infinities(backend, dtype):
    xp = namespace_for(backend)
    x, y = on(backend, X, dtype), on(backend, Y, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0 // 0 and inf // inf are NaN, and NumPy says so
        for out in (xp.floor_divide(x, y), x // y, xp.floor_divide(x.data, y.data)):
            assert out.dtype == x.dtype
            same_floats(to_numpy(out), np.asarray(FLOOR, dtype=dtype))
        same_floats(to_numpy(x // 2.0), np.asarray([inf, inf, -inf, -inf, 0.0, -1.0, 0.0, -1.0, inf, 0.0, 3.0, -4.0, nan], dtype))
        same_floats(to_numpy(1.0 // y), np.asarray([0.0, -1.0, 0.0, -1.0, -0.0, 0.0, 0.0, -0.0, 0.0, inf, 0.0, 0.0, 1.0], dtype))
        z = xp.asarray(x, copy=True)
        z //= y
        same_floats(to_numpy(z), np.asarray(FLOOR, dtype=dtype))


def test_floor_divide_in_place_writes_through_a_view():
    base = np.array([9.0, inf, 1.0, -1.0])
    view = gdbp.Tensor(base)[1:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        view //= gdbp.Tensor(np.array([2.0, -inf, inf]))
    same_floats(base, [9.0, inf, -0.0, -0.0])  # the caller's buffer, not a rebound copy


def test_floor_divide_of_integers_is_unchanged(backend):
    xp = namespace_for(backend)
    x, y = on(backend, [7, -7, 7, -7], "int64"), on(backend, [2, 2, -2, -2], "int64")
    np.testing.assert_array_equal(to_numpy(xp.floor_divide(x, y)), [3, -4, -4, 3])
    x //= y
    np.testing.assert_array_equal(to_numpy(x), [3, -4, -4, 3])


def test_floor_divide_has_a_zero_gradient_and_remainder_keeps_its_own(rng):
    x, y = rng.uniform(1, 5, size=4), rng.uniform(1, 2, size=4)
    np.testing.assert_array_equal(gdbp.grad(lambda x: (x // 0.7).sum())(x), np.zeros(4))
    check_grad(lambda x, y: x % y, x, y)  # its rule -floor(x / y) uses floor_divide


# --- complex expm1 at 0 and at infinities ----------------------------------------------------

# The standard's special cases (b = +0 and b = -0 by expm1(conj z) = conj(expm1 z)), and values near 0.
Z = [complex(-0.0, 0.0), complex(0.0, 0.0), complex(-0.0, -0.0), complex(inf, 0.0), complex(-inf, inf),
     complex(inf, inf), complex(-inf, nan), complex(inf, nan), complex(nan, 0.0), complex(-inf, 1.0),
     complex(1.0, inf), complex(1e-9, 1e-8)]
EXPM1 = [complex(0.0, 0.0), complex(0.0, 0.0), complex(0.0, -0.0), complex(inf, 0.0), complex(-1.0, 0.0),
         complex(inf, nan), complex(-1.0, 0.0), complex(inf, nan), complex(nan, 0.0),
         complex(-1.0, 0.0), complex(nan, nan), complex(1e-9 + 0.5e-18 - 0.5e-16, 1e-8 + 1e-17)]


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_expm1_special_cases(backend, dtype):
    xp = namespace_for(backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = xp.expm1(on(backend, Z, dtype))
    assert out.dtype == getattr(xp, dtype)
    got, want = to_numpy(out), np.asarray(EXPM1, dtype=dtype)
    exact = slice(0, -1)
    same_floats(got.real[exact], want.real[exact])
    np.testing.assert_array_equal(np.isnan(got.imag[exact]), np.isnan(want.imag[exact]))
    finite = np.isfinite(want.imag[exact])
    np.testing.assert_array_equal(got.imag[exact][finite], want.imag[exact][finite])
    # near 0 no cancellation: relative accuracy of the precise formula, not of exp(z) - 1
    np.testing.assert_allclose(got[-1], want[-1], rtol=1e-6 if dtype == "complex64" else 1e-12)


def test_complex_expm1_gradient(rng):
    z = rng.normal(size=(3, 2)) + 1j * rng.normal(size=(3, 2))
    check_grad(lambda z: z.__array_namespace__().expm1(z), z)
    small = 1e-3 * z
    check_grad(lambda z: z.__array_namespace__().expm1(z), small)
    tz = torch.tensor(z, requires_grad=True)
    torch.abs(torch.expm1(tz)).sum().backward()
    mine = gdbp.grad(lambda z: z.__array_namespace__().abs(z.__array_namespace__().expm1(z)).sum())(z)
    np.testing.assert_allclose(mine, tz.grad.numpy(), rtol=1e-10)


# --- complex tanh at infinite real parts: +-1 + 0j, the zero signed as the imaginary part --------


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_tanh_at_infinite_real_parts(backend, dtype):
    xp = namespace_for(backend)
    # b = 2 and 3 have sin(2b) < 0, where C99 (NumPy, torch) gives 1 - 0j; the 2024.12 standard says 1 + 0j.
    b = [0.5, 2.0, 3.0, -2.0, -0.5, 0.0, -0.0]
    z = [complex(inf, v) for v in b] + [complex(-inf, v) for v in b]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = to_numpy(xp.tanh(on(backend, z, dtype)))
    assert got.dtype == np.dtype(dtype)
    same_floats(got.real, [1.0] * 7 + [-1.0] * 7)
    same_floats(got.imag, [math.copysign(0.0, v) for v in b] * 2)
    finite = np.array([0.3 + 0.2j, -1.5 + 4.0j], dtype=dtype)
    np.testing.assert_allclose(to_numpy(xp.tanh(on(backend, finite, dtype))), np.tanh(finite), rtol=1e-6)


def test_complex_tanh_gradient(rng):
    z = rng.normal(size=(3, 2)) + 1j * rng.normal(size=(3, 2))
    check_grad(lambda z: z.__array_namespace__().tanh(z), z)
    tz = torch.tensor(z, requires_grad=True)
    torch.abs(torch.tanh(tz)).sum().backward()
    mine = gdbp.grad(lambda z: z.__array_namespace__().abs(z.__array_namespace__().tanh(z)).sum())(z)
    np.testing.assert_allclose(mine, tz.grad.numpy(), rtol=1e-10)
