"""NumPy and scipy.special ufuncs on Tensors (``Tensor.__array_ufunc__``).

A ufunc that gdbp has a rule for goes to the differentiable op (values as
NumPy's, gradients against finite differences); ``ndarray OP tensor`` stays
differentiable; the ufunc methods go to reductions, scans and broadcasts or
are refused; ``out=`` names a Tensor or is refused; any other ufunc raises
NotDifferentiableError naming it and showing how to write a rule.
"""

from __future__ import annotations

import operator
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.special as sp

import gdbp
from gdbp import backends
from gdbp.backprop import NotDifferentiableError, ops
from gdbp.backprop.primitive import NAMESPACE
from gdbp.testing import check_grad
from op_cases import BINARY_DOMAINS, SPECIAL_BINARY_DOMAINS, SPECIAL_DOMAINS, UNARY_DOMAINS, host_args, Float, Case

ROOT = Path(__file__).resolve().parents[1]


def naked(fn):
    """The ufunc itself: with SCIPY_ARRAY_API=1 (set in conftest) scipy.special's public name wraps it."""
    u = getattr(fn, "__wrapped__", fn)
    assert isinstance(u, np.ufunc), f"{fn!r} is not a ufunc"
    return u


def numpy_ufuncs():
    """(ufunc, name in gdbp's namespace) for every public NumPy ufunc that has a standard name."""
    found = {}
    for name, value in vars(np).items():
        if isinstance(value, np.ufunc) and name in NAMESPACE:
            found.setdefault(value, name)
    return sorted(found.items(), key=lambda item: item[1])


def draw(rng, spec):
    return host_args(Case("x", None, (Float((2, 3), **spec),)), rng)[0]


# --- NumPy's ufuncs with a standard name -------------------------------------------------------------


def test_numpy_ufuncs_are_found_under_their_standard_names():
    found = dict((name, u) for u, name in numpy_ufuncs())
    # NumPy's own spellings of the standard's names are one ufunc each.
    assert found["acos"] is np.arccos and found["pow"] is np.power and found["divide"] is np.true_divide
    assert found["abs"] is np.absolute and found["bitwise_invert"] is np.invert and found["conj"] is np.conjugate
    assert len(found) >= 60


@pytest.mark.parametrize("ufunc, name", [u for u in numpy_ufuncs() if u[1] in UNARY_DOMAINS],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_unary_numpy_ufunc_is_the_differentiable_op(ufunc, name, rng):
    x = draw(rng, UNARY_DOMAINS[name])
    out = ufunc(gdbp.tensor(x))
    assert isinstance(out, gdbp.Tensor)
    np.testing.assert_allclose(out.numpy(), ufunc(x), rtol=1e-12)
    check_grad(lambda t: ufunc(t), x)


@pytest.mark.parametrize("ufunc, name", [u for u in numpy_ufuncs() if u[1] in BINARY_DOMAINS],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_binary_numpy_ufunc_is_the_differentiable_op(ufunc, name, rng):
    dx, dy = BINARY_DOMAINS[name]
    x, y = draw(rng, dx), draw(rng, dy)[0]  # y broadcasts along the rows
    out = ufunc(gdbp.tensor(x), gdbp.tensor(y))
    np.testing.assert_allclose(out.numpy(), ufunc(x, y), rtol=1e-12)
    check_grad(lambda a, b: ufunc(a, b), x, y)
    check_grad(lambda b: ufunc(x, b), y)  # a NumPy array first: NumPy hands the call to the Tensor


@pytest.mark.parametrize("ufunc, name", [u for u in numpy_ufuncs() if u[1] not in UNARY_DOMAINS
                                         and u[1] not in BINARY_DOMAINS and u[1] not in ("matmul", "vecdot")],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_numpy_ufuncs_without_a_gradient_give_numpys_values(ufunc, name):
    ints = np.array([[3, -2, 5], [0, 7, 1]])
    args = [ints, np.array([1, 2, 1])][: ufunc.nin]
    if name.startswith("logical"):
        args = [a > 1 for a in args]
    elif name.startswith(("is", "sign", "floor", "ceil", "trunc", "nextafter")):
        args = [a * 0.7 for a in args]
    out = ufunc(*[gdbp.tensor(a) for a in args])
    assert isinstance(out, gdbp.Tensor) and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), ufunc(*args))


def test_matmul_and_vecdot_ufuncs(rng):
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    check_grad(lambda x, y: np.matmul(x, y), a, b)
    check_grad(lambda y: a @ y, b)  # ndarray @ Tensor
    c = rng.normal(size=(3, 4))
    check_grad(lambda x, y: np.vecdot(x, y), a, c)
    check_grad(lambda x, y: np.vecdot(x, y, axis=0), a, c)


OPERATORS = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
    "pow": operator.pow, "mod": operator.mod,
}


@pytest.mark.parametrize("symbol", sorted(OPERATORS))
def test_ndarray_operator_tensor_is_differentiable(symbol, rng):
    op = OPERATORS[symbol]
    a = rng.uniform(0.5, 2.0, size=(2, 3))
    x = rng.uniform(0.5, 2.0, size=(3,))
    out = op(a, gdbp.tensor(x))
    assert isinstance(out, gdbp.Tensor)
    np.testing.assert_allclose(out.numpy(), op(a, x), rtol=1e-12)
    check_grad(lambda t: op(a, t), x)
    check_grad(lambda t: op(np.float64(1.5), t), x)  # a NumPy scalar first


@pytest.mark.parametrize("op", [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne,
                                operator.floordiv, operator.and_, operator.or_, operator.xor, operator.lshift,
                                operator.rshift], ids=lambda f: f.__name__)
def test_ndarray_operator_tensor_without_a_gradient(op):
    a, b = np.array([1, 4, 6]), np.array([2, 4, 1])
    out = op(a, gdbp.tensor(b))
    assert isinstance(out, gdbp.Tensor)
    np.testing.assert_array_equal(out.numpy(), op(a, b))


def test_ndarray_tensor_of_another_backend_is_refused(rng):
    t = gdbp.tensor(backends.transfer(np.ones(3), "torch"))
    with pytest.raises(backends.BackendMismatchError, match="numpy.*torch|torch.*numpy"):
        np.ones(3) * t


# --- the ufunc methods ------------------------------------------------------------------------------


@pytest.mark.parametrize("call, same", [
    (lambda t: np.add.reduce(t), lambda xp, t: xp.sum(t, axis=0)),
    (lambda t: np.add.reduce(t, axis=None), lambda xp, t: xp.sum(t)),
    (lambda t: np.multiply.reduce(t, axis=1, keepdims=True), lambda xp, t: xp.prod(t, axis=1, keepdims=True)),
    (lambda t: np.maximum.reduce(t, axis=-1), lambda xp, t: xp.max(t, axis=-1)),
    (lambda t: np.minimum.reduce(t), lambda xp, t: xp.min(t, axis=0)),
    (lambda t: np.logaddexp.reduce(t, axis=1), lambda xp, t: xp.logsumexp(t, axis=1)),
    (lambda t: np.add.accumulate(t), lambda xp, t: xp.cumulative_sum(t, axis=0)),
    (lambda t: np.multiply.accumulate(t, axis=1), lambda xp, t: xp.cumulative_prod(t, axis=1)),
    (lambda t: np.multiply.outer(t, t[0, ...]), lambda xp, t: xp.reshape(t, (3, 4, 1)) * t[0, ...]),
    (lambda t: np.subtract.outer(t[:, 0], t[0, ...]), lambda xp, t: xp.reshape(t[:, 0], (3, 1)) - t[0, ...]),
], ids=["add.reduce", "add.reduce-all", "multiply.reduce", "maximum.reduce", "minimum.reduce",
        "logaddexp.reduce", "add.accumulate", "multiply.accumulate", "multiply.outer", "subtract.outer"])
def test_ufunc_methods_are_reductions_scans_and_broadcasts(call, same, rng):
    x = rng.uniform(0.5, 1.5, size=(3, 4))
    t = gdbp.tensor(x)
    np.testing.assert_allclose(call(t).numpy(), same(t.__array_namespace__(), t).numpy(), rtol=1e-12)
    check_grad(call, x)


def test_ufunc_method_values_are_numpys(rng):
    x = rng.uniform(0.5, 1.5, size=(3, 4))
    t = gdbp.tensor(x)
    for u, method, kw in [(np.add, "reduce", {}), (np.maximum, "reduce", {"axis": 1}), (np.add, "accumulate", {})]:
        np.testing.assert_allclose(getattr(u, method)(t, **kw).numpy(), getattr(u, method)(x, **kw), rtol=1e-12)
    np.testing.assert_allclose(np.multiply.outer(t, t).numpy(), np.multiply.outer(x, x), rtol=1e-12)


def test_reduce_of_a_ufunc_without_a_reduction_is_refused():
    with pytest.raises(TypeError, match=r"np.subtract.reduce on a gdbp Tensor.*only for np.add"):
        np.subtract.reduce(gdbp.tensor(np.ones(3)))


def test_ufunc_at_is_refused_with_the_out_of_place_way():
    t = gdbp.tensor(np.zeros(3))
    with pytest.raises(TypeError, match=r"np.add.at .*in place.*index_add"):
        np.add.at(t, np.array([0, 0]), 1.0)
    with pytest.raises(TypeError, match=r"reduceat"):
        np.add.reduceat(t, np.array([0, 2]))


def test_the_out_of_place_way_for_add_at_is_right():
    x, v, key = np.zeros(3), np.array([1.0, 2.0, 3.0]), np.array([0, 0, 2])
    expected = x.copy()
    np.add.at(expected, key, v)
    out = gdbp.tensor(x) + ops.index_add(gdbp.tensor(v), key=(key,), shape=x.shape)
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("kw", [{"where": np.array([True, False, True])}, {"dtype": np.float32},
                                {"casting": "unsafe"}])
def test_ufunc_options_gdbp_does_not_take_are_refused(kw):
    key = next(iter(kw))
    with pytest.raises(TypeError, match=rf"np.exp\(\.\.\., {key}=\.\.\.\) on a gdbp Tensor"):
        np.exp(gdbp.tensor(np.ones(3)), **kw)


def test_out_may_be_a_tensor_and_the_write_is_recorded():
    x = gdbp.tensor(np.array([0.5, 1.0]), requires_grad=True)
    y = x * 1.0
    returned = np.exp(x, out=y)
    assert returned is y
    np.testing.assert_allclose(y.numpy(), np.exp([0.5, 1.0]))
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.5, 1.0]))


def test_out_a_leaf_requiring_grad_keeps_pytorchs_rule():
    x = gdbp.tensor(np.array([0.5, 1.0]), requires_grad=True)
    with pytest.raises(gdbp.InPlaceError, match="leaf Tensor"):
        np.exp(x, out=x)


def test_out_with_another_dtype_is_refused():
    y = gdbp.tensor(np.zeros(2, dtype=np.float32))
    with pytest.raises(TypeError, match="dtype float64 is not out's float32"):
        np.add(gdbp.tensor(np.ones(2)), 1.0, out=y)


def test_out_a_numpy_array_is_refused_and_the_array_is_left_alone():
    a = np.ones(3)
    with pytest.raises(TypeError, match=r"out=ndarray.*gradient would be lost.*a = a \+ t"):
        a += gdbp.tensor(np.arange(3.0))
    np.testing.assert_array_equal(a, np.ones(3))
    with pytest.raises(TypeError, match="out=ndarray"):
        np.multiply(gdbp.tensor(np.ones(3)), 2.0, out=a)


# --- scipy.special's ufuncs ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPECIAL_DOMAINS))
def test_scipy_special_unary_ufunc_is_the_differentiable_op(name, rng):
    u = naked(getattr(sp, name))
    x = draw(rng, SPECIAL_DOMAINS[name])
    out = u(gdbp.tensor(x))
    assert isinstance(out, gdbp.Tensor)
    np.testing.assert_allclose(out.numpy(), u(x), rtol=1e-13)
    check_grad(lambda t: u(t), x)


@pytest.mark.parametrize("name", sorted(SPECIAL_BINARY_DOMAINS))
def test_scipy_special_binary_ufunc_is_the_differentiable_op(name, rng):
    u = naked(getattr(sp, name))
    dx, dy = SPECIAL_BINARY_DOMAINS[name]
    x, y = draw(rng, dx), draw(rng, dy)
    np.testing.assert_allclose(u(gdbp.tensor(x), y).numpy(), u(x, y), rtol=1e-13)
    check_grad(lambda a, b: u(a, b), x, y)


# --- ufuncs without a rule ------------------------------------------------------------------------------


@pytest.mark.parametrize("ufunc, shown", [(np.fmod, "np.fmod"), (np.cbrt, "np.cbrt"), (np.rint, "np.rint"),
                                          (naked(sp.i0), "scipy.special.i0")], ids=["fmod", "cbrt", "rint", "i0"])
def test_a_ufunc_without_a_rule_is_named_with_the_way_to_add_one(ufunc, shown):
    args = [gdbp.tensor(np.array([1.5, 2.0]), requires_grad=True)] + [2.0] * (ufunc.nin - 1)
    with pytest.raises(NotDifferentiableError) as info:
        ufunc(*args)
    assert isinstance(info.value, TypeError)
    text = str(info.value)
    assert text.startswith(f"{shown} was applied to a gdbp Tensor, but gdbp has no gradient rule for it")
    assert "@gdbp.custom_vjp" in text and f"return {shown}(" in text and ".defvjp" in text


def test_the_recipe_in_the_message_gives_a_gradient(rng):
    # What the message for np.cbrt shows, with the derivative filled in: d cbrt(x) = dx / (3 cbrt(x)^2).
    @gdbp.custom_vjp
    def cbrt(x):
        return np.cbrt(x)

    @cbrt.defvjp
    def cbrt_vjp(g, ans, x):
        return (g / (3 * ans * ans),)

    x = rng.uniform(0.5, 2.0, size=(4,))
    check_grad(lambda t: cbrt(t), x)


def test_numpy_ufuncs_on_tensors_never_import_scipy():
    # A fresh interpreter: gdbp, NumPy ufuncs on Tensors, and a refused one, with scipy never imported.
    # Then scipy.special with its plain ufuncs (SCIPY_ARRAY_API unset): each goes to gdbp's primitive.
    script = textwrap.dedent("""
        import sys
        import numpy as np
        import gdbp
        t = gdbp.tensor(np.array([0.25, 0.5]), requires_grad=True)
        y = (np.exp(t) + np.ones(2) * t + np.add.reduce(t)).sum()
        y.backward()
        try:
            np.fmod(t, 2.0)
        except gdbp.NotDifferentiableError:
            pass
        assert "scipy" not in sys.modules, sorted(m for m in sys.modules if m.startswith("scipy"))
        import scipy.special as sp
        assert isinstance(sp.expit, np.ufunc)
        g = gdbp.grad(lambda x: (sp.expit(x) * sp.gammaln(x + 1.0)).sum())(np.array([0.25, 0.5]))
        print([t.grad.numpy().tolist(), g.tolist()])
    """)
    env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    grads, g = eval(done.stdout)
    x = np.array([0.25, 0.5])
    np.testing.assert_allclose(grads, np.exp(x) + 1 + 2, rtol=1e-12)
    s = sp.expit(x)
    np.testing.assert_allclose(g, s * (1 - s) * sp.gammaln(x + 1) + s * sp.digamma(x + 1), rtol=1e-12)
