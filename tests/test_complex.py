"""Complex values through the graph, under PyTorch's convention.

For a real cost L of a complex input z = x + iy, the gradient gdbp reports is
the one torch reports: dL/dx + i dL/dy, twice the conjugate Wirtinger
derivative dL/d(conj z), the direction of steepest ascent. A real input of a
complex computation gets the real part. The table (op_cases_complex.py) runs
each op's complex case through finite differences, the backends and
complex64; here: compositions against torch.autograd, the functional and
object faces, check_grad itself, second derivatives, and what stays real-only.
"""

from __future__ import annotations

import inspect

import array_api_compat
import numpy as np
import pytest
import torch

import gdbp
from gdbp import backends
from gdbp.backprop import GradRequirementError, ops
from gdbp.backprop.primitive import conj
from gdbp.testing import check_grad



def xp_of(*arrays):
    return array_api_compat.array_namespace(*arrays)


# Real costs of inputs of shape (3, 2): complex arguments are named z and w, real ones x.


def squared_modulus(z):
    xp = xp_of(z)
    return xp.sum(xp.abs(z) ** 2)


def square_then_parts(z):
    xp = xp_of(z)
    w = z * z
    return xp.sum(xp.real(w) * 2.0 - xp.imag(w) * 3.0)


def exp_log_sqrt(z):
    xp = xp_of(z)
    return xp.sum(xp.real(xp.exp(z)) + xp.imag(xp.log(z + 2.0)) + xp.abs(xp.sqrt(z + 2.0)) ** 3)


def modulus_and_angle(z):
    # An angle composed as atan2(imag, real): only real functions past the complex parts.
    xp = xp_of(z)
    return xp.sum(xp.atan2(xp.imag(z), xp.real(z) + 2.0) * xp.abs(z))


def products_and_quotients(z, w):
    xp = xp_of(z, w)
    q = (z * xp.conj(w) + 1.0) / (w + 3.0) - z ** 2 * (1.0 - 2.0j)
    return xp.sum(xp.abs(q)) + xp.sum(xp.real(xp.reciprocal(q + 4.0)))


def real_input_in_a_complex_computation(z, x):
    xp = xp_of(z, x)
    return xp.sum(xp.abs(z * x + xp.exp(1j * x)) ** 2)


def trig_and_hyperbolic(z):
    xp = xp_of(z)
    s = xp.sin(z) * xp.cosh(z) + xp.tanh(z) - xp.atan(z * 0.5) + xp.asinh(z * 0.5)
    return xp.sum(xp.real(s) + xp.imag(s * xp.conj(s)) + xp.abs(s))


def matmul_and_sums(z, w):
    xp = xp_of(z, w)
    m = xp.matrix_transpose(z) @ w
    return xp.sum(xp.abs(m) ** 2) + xp.real(xp.sum(xp.prod(z, axis=0)))


def sign_and_unit_phase(z):
    xp = xp_of(z)
    return xp.sum(xp.real(xp.sign(z) * (1 + 2j)) + xp.abs(z) * xp.imag(xp.sign(z)))


def cumulative_and_means(z):
    xp = xp_of(z)
    return xp.sum(xp.abs(xp.cumulative_sum(z, axis=0)) ** 2) + xp.real(xp.mean(z * z))


COMPOSITIONS = [squared_modulus, square_then_parts, exp_log_sqrt, modulus_and_angle, products_and_quotients,
                real_input_in_a_complex_computation, trig_and_hyperbolic, matmul_and_sums, sign_and_unit_phase,
                cumulative_and_means]


def _args(f, rng):
    out = []
    for name in inspect.signature(f).parameters:
        x = rng.uniform(-1, 1, size=(3, 2))
        out.append(x if name == "x" else x + 1j * rng.uniform(-1, 1, size=(3, 2)))
    return out


@pytest.mark.parametrize("f", COMPOSITIONS, ids=lambda f: f.__name__)
def test_gradients_match_torch_autograd(f, rng):
    args = _args(f, rng)
    argnums = tuple(range(len(args)))
    value, grads = gdbp.value_and_grad(f, argnums=argnums)(*args)
    targs = [torch.tensor(a, requires_grad=True) for a in args]
    tvalue = f(*targs)
    tvalue.backward()
    np.testing.assert_allclose(value, tvalue.detach().numpy(), rtol=1e-12)
    for g, a, t in zip(grads, args, targs):
        assert g.dtype == a.dtype and g.shape == a.shape  # a real input's gradient is real
        np.testing.assert_allclose(g, t.grad.resolve_conj().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("f", COMPOSITIONS, ids=lambda f: f.__name__)
def test_compositions_against_finite_differences(f, rng):
    check_grad(f, *_args(f, rng))


@pytest.mark.parametrize("f", COMPOSITIONS, ids=lambda f: f.__name__)
def test_second_derivatives(f, rng):
    args = _args(f, rng)
    check_grad(gdbp.grad(f, argnums=tuple(range(len(args)))), *args, rtol=1e-4)


def test_the_gradient_is_the_steepest_ascent(rng):
    # |z|^2 has gradient 2z (not 2 conj z): a step against it lowers the cost, as descent needs.
    z = rng.normal(size=4) + 1j * rng.normal(size=4)
    g = gdbp.grad(lambda a: xp_of(a).sum(xp_of(a).abs(a) ** 2))(z)
    np.testing.assert_allclose(g, 2 * z, rtol=1e-14)


def test_real_input_gets_the_real_part(rng):
    # cost = sum(re(exp(i x) * c)): d/dx = re(i exp(i x) c), real, in the input's dtype.
    x = rng.normal(size=5).astype(np.float32)
    c = np.complex64(0.5 - 2j)
    g = gdbp.grad(lambda a: xp_of(a).sum(xp_of(a).real(xp_of(a).exp(1j * a) * c)))(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, np.real(1j * np.exp(1j * x) * c), rtol=1e-5)


def test_complex64_in_complex64_out_and_no_promotion(rng):
    z = (rng.normal(size=3) + 1j * rng.normal(size=3)).astype(np.complex64)
    x = rng.normal(size=3).astype(np.float32)
    value, (gz, gx) = gdbp.value_and_grad(lambda a, b: xp_of(a).sum(xp_of(a).abs(a * b + a * a) ** 2),
                                          argnums=(0, 1))(z, x)
    assert value.dtype == np.float32 and gz.dtype == np.complex64 and gx.dtype == np.float32


# --- the faces: functional and object ---------------------------------------------------------------


def test_complex_tensors_require_grad_and_backward_gives_complex_grad():
    z = gdbp.tensor(np.array([1 + 2j, -0.5j]), requires_grad=True)
    xp = z.__array_namespace__()
    cost = xp.sum(xp.real(z * z))
    cost.backward()
    assert z.grad.dtype == np.complex128
    np.testing.assert_allclose(z.grad.numpy(), 2 * np.conj(np.array([1 + 2j, -0.5j])))


def test_backward_of_a_complex_scalar_needs_a_real_cost():
    z = gdbp.tensor(np.array([1 + 2j]), requires_grad=True)
    with pytest.raises(GradRequirementError, match="complex Tensor.*reduce it to a real cost"):
        (z * z).sum().backward()


def test_grad_of_a_complex_valued_function_is_refused():
    with pytest.raises(TypeError, match="must return a real scalar.*complex128.*xp.real"):
        gdbp.grad(lambda a: xp_of(a).sum(a * a))(np.array([1 + 1j]))


def test_vjp_with_a_complex_cotangent(rng):
    # f(z) = z^2 elementwise: the VJP of v is v * conj(2z), PyTorch's.
    z = rng.normal(size=3) + 1j * rng.normal(size=3)
    v = rng.normal(size=3) + 1j * rng.normal(size=3)
    out, pullback = gdbp.vjp(lambda a: a * a, z)
    (back,) = pullback(v)
    t = torch.tensor(z, requires_grad=True)
    (t * t).backward(torch.tensor(v))
    np.testing.assert_allclose(out, z * z)
    np.testing.assert_allclose(back, t.grad.resolve_conj().numpy(), rtol=1e-14)
    np.testing.assert_allclose(back, v * np.conj(2 * z), rtol=1e-14)


def test_grad_of_a_python_complex():
    g = gdbp.grad(lambda a: xp_of(a).abs(a * a))(1.0 + 1.0j)
    np.testing.assert_allclose(g, 2 * np.sqrt(2) * (1 + 1j) / np.sqrt(2))


@pytest.mark.parametrize("backend_name", ["numpy", "array_api_strict", "torch"])
def test_complex_gradients_on_each_backend(backend_name, rng):
    z = gdbp.transfer(rng.normal(size=(2, 3)) + 1j * rng.normal(size=(2, 3)), backend_name)
    g = gdbp.grad(lambda a: xp_of(a).sum(xp_of(a).abs(xp_of(a).conj(a) * a + a) ** 2))(z)
    assert type(g) is type(z) and g.dtype == z.dtype
    host = backends.to_numpy(z)
    check_grad(lambda a: xp_of(a).conj(a) * a + a, z)
    want = gdbp.grad(lambda a: xp_of(a).sum(xp_of(a).abs(xp_of(a).conj(a) * a + a) ** 2))(host)
    np.testing.assert_allclose(backends.to_numpy(g), want, rtol=1e-12)


def test_a_recycled_real_gradient_buffer_meets_a_complex_gradient(rng):
    # zero_grad_ lends w's gradient buffer to the next sweep; a complex input makes the product complex.
    w = gdbp.tensor(rng.normal(size=(5, 3)), requires_grad=True)
    b = gdbp.tensor(rng.normal(size=(5,)), requires_grad=True)
    x = gdbp.tensor(rng.normal(size=(4, 3)) + 1j * rng.normal(size=(4, 3)))
    grads = []
    for _ in range(2):
        (abs(ops.linear(x, w, b)) ** 2).sum().backward()
        grads.append((w.grad.numpy().copy(), b.grad.numpy().copy()))
        w.zero_grad_()
        b.zero_grad_()
    want = gdbp.grad(lambda w, b: (abs(ops.linear(x.data, w, b)) ** 2).sum(), argnums=(0, 1))(w.data, b.data)
    for gw, gb in grads:
        assert gw.dtype == np.float64
        np.testing.assert_allclose(gw, want[0], rtol=1e-12)
        np.testing.assert_allclose(gb, want[1], rtol=1e-12)


# --- edge cases: the values PyTorch gives ----------------------------------------------------------------


# array-api-compat's sign divides by |z| before it writes 0 at z = 0 (NumPy warns; the values are right).
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_abs_and_sign_at_zero_have_zero_gradient():
    z = np.array([0j, 1 + 1j])
    g_abs = gdbp.grad(lambda a: xp_of(a).sum(xp_of(a).abs(a)))(z)
    g_sign = gdbp.grad(lambda a: xp_of(a).sum(xp_of(a).real(xp_of(a).sign(a)) + xp_of(a).imag(xp_of(a).sign(a))))(z)
    t = torch.tensor(z, requires_grad=True)
    (t.abs().sum() + 0 * t.sgn().real.sum()).backward()
    ts = torch.tensor(z, requires_grad=True)
    (ts.sgn().real.sum() + ts.sgn().imag.sum()).backward()
    np.testing.assert_allclose(g_abs, t.grad.resolve_conj().numpy())
    np.testing.assert_allclose(g_sign, ts.grad.resolve_conj().numpy(), atol=1e-15)
    assert g_abs[0] == 0 and g_sign[0] == 0


def test_imag_of_a_real_array_has_zero_gradient():
    # NumPy gives zeros for imag of a real array (the standard wants complex input): nothing flows back.
    x = np.array([1.0, -2.0])
    g = gdbp.grad(lambda a: xp_of(a).sum(xp_of(a).imag(a) + a))(x)
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, np.ones(2))


def test_real_sign_still_has_no_gradient():
    x = gdbp.tensor(np.array([0.5, -1.0]), requires_grad=True)
    assert not x.__array_namespace__().sign(x).requires_grad


# --- real code pays nothing ----------------------------------------------------------------------------


def test_conj_of_a_real_array_is_the_array_itself():
    # A conjugate of a real array is a copy in NumPy: the rules skip it, by a cached dtype check.
    x = np.ones(3)
    xp = backends.resolve("numpy").xp
    assert conj(xp, x) is x and conj(xp, 2.0) == 2.0
    z = np.array([1 + 1j])
    np.testing.assert_array_equal(conj(xp, z), np.conj(z))
    assert conj(xp, 1 + 2j) == 1 - 2j


# --- check_grad on complex inputs ------------------------------------------------------------------------


def test_check_grad_catches_a_missing_conjugate(rng):
    # g * f'(z) instead of g * conj(f'(z)): right for real inputs, wrong for complex ones.
    cube = gdbp.custom_vjp(lambda z: z * z * z)
    cube.defvjp(lambda g, ans, z: (g * 3 * z * z,))
    x = rng.normal(size=(2, 2))
    check_grad(cube, x)
    z = x + 1j * rng.normal(size=(2, 2))
    with pytest.raises(AssertionError, match=r"argument 0 \(shape \(2, 2\)\), direction \d \((real|imaginary|complex)\)"
                                             r".*worst element: index"):
        check_grad(cube, z)


def test_check_grad_probes_real_and_imaginary_directions(rng):
    z = rng.normal(size=3) + 1j * rng.normal(size=3)
    report = check_grad(lambda a: xp_of(a).exp(a), z, n_directions=3)
    assert report.n_checks == 3
    seen = []
    check_grad(lambda a: (seen.append(a.dtype), a * a)[1], z.astype(np.complex64))
    assert all(d == np.complex128 for d in seen)  # complex64 is checked in complex128


def test_check_grad_fails_on_a_nan_gradient():
    f = gdbp.custom_vjp(lambda x: x * 2.0)
    f.defvjp(lambda g, ans, x: (g * float("nan"),))
    with pytest.raises(AssertionError, match="disagrees"):
        check_grad(f, np.ones(2))


# --- what stays real: descent --------------------------------------------------------------------------------


def test_optimizers_and_parameters_stay_real():
    z = gdbp.tensor(np.array([1 + 1j]), requires_grad=True)
    with pytest.raises(TypeError, match="complex128"):
        gdbp.descent.SGD([z], lr=0.1)
    with pytest.raises(TypeError, match="complex128"):
        gdbp.nn.Parameter(np.array([1 + 1j]))
