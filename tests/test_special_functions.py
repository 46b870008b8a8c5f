"""xp.special, scipy.special's functions made differentiable: against torch.autograd, to second order.

First derivatives against finite differences, on every backend and in
float32, are in the op table (op_cases.py); here: values against scipy,
gradients against torch.special through torch's autograd, second
derivatives (the rules are themselves differentiable) against finite
differences, and the documented edges (xlogy at x = 0, entr at 0).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sp
import torch

import gdbp
from gdbp.testing import check_grad
from op_cases import SPECIAL_BINARY_DOMAINS, SPECIAL_DOMAINS, Case, Float, host_args


def draw(rng, spec, shape=(2, 3)):
    return host_args(Case("x", None, (Float(shape, **spec),)), rng)[0]


def gdbp_special(name):
    return lambda *a: getattr(a[0].__array_namespace__().special, name)(*a)


def torch_rel_entr(x, y):
    return x * torch.log(x / y)  # torch has no rel_entr; x, y > 0 here


TORCH = {name: getattr(torch.special, name, None) for name in (*SPECIAL_DOMAINS, *SPECIAL_BINARY_DOMAINS)}
TORCH["rel_entr"] = torch_rel_entr
TORCH["log_expit"] = torch.nn.functional.logsigmoid


@pytest.mark.parametrize("name", sorted(SPECIAL_DOMAINS) + sorted(SPECIAL_BINARY_DOMAINS))
def test_values_are_scipys_and_gradients_torchs(name, rng):
    if name in SPECIAL_DOMAINS:
        args = [draw(rng, SPECIAL_DOMAINS[name])]
    else:
        dx, dy = SPECIAL_BINARY_DOMAINS[name]
        args = [draw(rng, dx), draw(rng, dy)]
    weights = rng.normal(size=(2, 3))

    def cost(*a):
        return (gdbp_special(name)(*a) * weights).sum()

    value, grads = gdbp.value_and_grad(cost, argnums=tuple(range(len(args))))(*args)
    np.testing.assert_allclose(value, (getattr(sp, name)(*args) * weights).sum(), rtol=1e-12)
    targs = [torch.tensor(a, requires_grad=True) for a in args]
    (TORCH[name](*targs) * torch.tensor(weights)).sum().backward()
    for g, t in zip(grads, targs):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_polygamma_against_torch(rng):
    x = rng.uniform(0.5, 4.0, size=(5,))
    for n in (0, 1, 2):
        g = gdbp.grad(lambda t: t.__array_namespace__().special.polygamma(n, t).sum())(x)
        t = torch.tensor(x, requires_grad=True)
        torch.special.polygamma(n, t).sum().backward()
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-9)


@pytest.mark.parametrize("name", sorted(SPECIAL_DOMAINS) + sorted(SPECIAL_BINARY_DOMAINS) + ["polygamma"])
def test_second_derivatives(name, rng):
    if name == "polygamma":
        f, args = (lambda x: x.__array_namespace__().special.polygamma(1, x)), [draw(rng, SPECIAL_DOMAINS["psi"])]
    elif name in SPECIAL_DOMAINS:
        f, args = gdbp_special(name), [draw(rng, SPECIAL_DOMAINS[name])]
    else:
        dx, dy = SPECIAL_BINARY_DOMAINS[name]
        f, args = gdbp_special(name), [draw(rng, dx), draw(rng, dy)]
    argnums = tuple(range(len(args)))

    def gradient(*a):  # the gradient of sum(f), recorded: its own gradient is f's second derivatives
        grads = gdbp.grad(lambda *b: f(*b).sum(), argnums=argnums)(*a)
        return list(grads)

    check_grad(gradient, *args, rtol=1e-4, atol=1e-7)


def test_second_derivative_of_log_ndtr_against_torch(rng):
    x = rng.uniform(-8.0, 2.0, size=(4,))
    g2 = gdbp.grad(lambda t: gdbp.grad(lambda u: u.__array_namespace__().special.log_ndtr(u).sum())(t).sum())(x)
    t = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad(torch.special.log_ndtr(t).sum(), t, create_graph=True)
    g.sum().backward()
    np.testing.assert_allclose(g2, t.grad.numpy(), rtol=1e-8)


# --- edges ------------------------------------------------------------------------------------------


def test_xlogy_at_x_zero_has_the_derivative_log_y():
    x, y = np.array([0.0, 0.0, 1.0]), np.array([2.0, 0.0, 3.0])
    gx, gy = gdbp.grad(lambda a, b: a.__array_namespace__().special.xlogy(a, b).sum(), argnums=(0, 1))(x, y)
    # log 2 at (0, 2), where the function is smooth in x; 0 at (0, 0), where log y is -inf: both as PyTorch
    np.testing.assert_allclose(gx, [math.log(2.0), 0.0, math.log(3.0)])
    t = torch.tensor(x, requires_grad=True)
    torch.special.xlogy(t, torch.tensor(y)).sum().backward()
    np.testing.assert_array_equal(gx, t.grad.numpy())
    # d/dy of xlogy(0, y) = 0 is 0, at y = 0 too, where PyTorch gives 0 / 0 = nan
    np.testing.assert_allclose(gy, [0.0, 0.0, 1.0 / 3.0])


def test_xlog1py_at_x_zero_and_y_minus_one():
    gx = gdbp.grad(lambda a: a.__array_namespace__().special.xlog1py(a, np.array([1.0, -1.0])).sum())(np.zeros(2))
    np.testing.assert_allclose(gx, [math.log(2.0), 0.0])


def test_entr_at_zero_is_what_torch_gives():
    g = gdbp.grad(lambda a: a.__array_namespace__().special.entr(a).sum())(np.array([0.0, 0.5]))
    t = torch.tensor([0.0, 0.5], dtype=torch.float64, requires_grad=True)
    torch.special.entr(t).sum().backward()
    np.testing.assert_array_equal(g, t.grad.numpy())


def test_log_ndtr_gradient_is_finite_far_in_the_tail():
    x = np.array([-40.0, -20.0])
    g = gdbp.grad(lambda a: a.__array_namespace__().special.log_ndtr(a).sum())(x)
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, -x, rtol=5e-3)  # phi / Phi ~ -x as x -> -inf


def test_float32_stays_float32_where_scipy_would_promote():
    # scipy computes xlogy(float32, 2.0) and polygamma in float64; the forwards cast back.
    x = np.array([0.5, 1.5], dtype=np.float32)
    xp = gdbp.tensor(x).__array_namespace__()
    assert xp.special.xlogy(gdbp.tensor(x), 2.0).dtype == np.float32
    assert xp.special.polygamma(1, gdbp.tensor(x)).dtype == np.float32
    g = gdbp.grad(lambda a: a.__array_namespace__().special.gammaln(a).sum())(x)
    assert g.dtype == np.float32


def test_psi_is_digamma():
    xp = gdbp.tensor(np.ones(1)).__array_namespace__()
    assert xp.special.psi is xp.special.digamma
