"""Every differentiable function's VJP against central finite differences, in float64.

The table of cases (op_cases.py) covers each function once or more, with
broadcasting, size-1 and 0-d inputs where the function allows; hypothesis
varies the shapes of the elementwise functions, the reductions, matmul and
basic indexing.
"""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gdbp
from gdbp.backprop import ops
from gdbp.testing import GradCheckReport, check_grad
from op_cases import (
    BINARY_DOMAINS, CASES, NO_GRADIENT, UNARY_DOMAINS, Float, differentiable_names, host_args, ns, raw,
)

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vjp_matches_finite_differences(case, rng):
    args = host_args(case, rng)
    report = check_grad(case.fn, *args, argnums=case.float_argnums(), **case.fd)
    assert report.n_checks == 3 * len(case.float_argnums())


def test_every_differentiable_function_has_a_case():
    covered = {c.name for c in CASES}
    missing = sorted(differentiable_names() - covered)
    assert not missing, f"differentiable functions without a finite-difference case: {missing}"


TWO_ARGUMENTS = {"bitwise_and", "bitwise_left_shift", "bitwise_or", "bitwise_right_shift", "bitwise_xor", "equal",
                 "floor_divide", "greater", "greater_equal", "less", "less_equal", "logical_and", "logical_or",
                 "logical_xor", "nextafter", "not_equal"}


@pytest.mark.parametrize("name", NO_GRADIENT)
def test_functions_without_a_gradient_give_outputs_that_do_not_require_it(name):
    x = gdbp.tensor(np.array([0.5, -1.5, 2.0]), requires_grad=True)
    y = x * 2.0
    if name.startswith("bitwise"):
        y = gdbp.tensor(np.array([1, 2, 3]))
    elif name.startswith("logical"):
        y = y > 0
    fn = getattr(x.__array_namespace__(), name)
    out = fn(y, y) if name in TWO_ARGUMENTS else fn(y)
    assert not out.requires_grad


# --- hypothesis: shapes ------------------------------------------------------------------------


def _draw(rng, shape, low=-1.0, high=1.0, pm=False):
    x = rng.uniform(low, high, size=shape)
    return x * rng.choice([-1.0, 1.0], size=shape) if pm else np.asarray(x)


@SETTINGS
@given(name=st.sampled_from(sorted(UNARY_DOMAINS)), shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3),
       seed=st.integers(0, 2**16))
def test_unary_any_shape(name, shape, seed):
    x = _draw(np.random.default_rng(seed), shape, **UNARY_DOMAINS[name])
    check_grad(lambda a: getattr(ns(a), name)(a), x, n_directions=2)


@SETTINGS
@given(name=st.sampled_from(sorted(BINARY_DOMAINS)),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       seed=st.integers(0, 2**16))
def test_binary_broadcasting(name, shapes, seed):
    rng = np.random.default_rng(seed)
    dx, dy = BINARY_DOMAINS[name]
    x, y = _draw(rng, shapes.input_shapes[0], **dx), _draw(rng, shapes.input_shapes[1], **dy)
    check_grad(lambda a, b: getattr(ns(a, b), name)(a, b), x, y, n_directions=2)


@st.composite
def shape_and_axis(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
    axes = draw(st.lists(st.integers(0, len(shape) - 1), unique=True, max_size=len(shape)))
    axis = None if not axes else (axes[0] - len(shape) if len(axes) == 1 else tuple(axes))
    return shape, axis


@SETTINGS
@given(name=st.sampled_from(["sum", "mean", "prod", "max", "min", "var", "std", "logsumexp"]),
       shape_axis=shape_and_axis(), keepdims=st.booleans(), seed=st.integers(0, 2**16))
def test_reductions_any_axes(name, shape_axis, keepdims, seed):
    shape, axis = shape_axis
    x = _draw(np.random.default_rng(seed), shape, 0.3, 1.0, pm=True)
    check_grad(lambda a: getattr(ns(a), name)(a, axis=axis, keepdims=keepdims), x, n_directions=2)


@st.composite
def matmul_shapes(draw):
    m, k, n = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=2))
    left = (k,) if draw(st.booleans()) else batch.input_shapes[0] + (m, k)
    right = (k,) if draw(st.booleans()) else batch.input_shapes[1] + (k, n)
    return left, right


@SETTINGS
@given(shapes=matmul_shapes(), seed=st.integers(0, 2**16))
def test_matmul_any_shapes(shapes, seed):
    rng = np.random.default_rng(seed)
    x, y = _draw(rng, shapes[0]), _draw(rng, shapes[1])
    check_grad(lambda a, b: a @ b, x, y, n_directions=2)


@st.composite
def shape_and_basic_index(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    return shape, draw(hnp.basic_indices(shape, allow_newaxis=True))


@SETTINGS
@given(shape_key=shape_and_basic_index(), seed=st.integers(0, 2**16))
def test_getitem_basic_indices(shape_key, seed):
    shape, key = shape_key
    x = _draw(np.random.default_rng(seed), shape)
    check_grad(lambda a: a[key], x, n_directions=2)


@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_getitem_integer_arrays_with_repeats(data, seed):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    axis = data.draw(st.integers(0, len(shape) - 1))
    index = np.asarray(data.draw(st.lists(st.integers(0, shape[axis] - 1), min_size=1, max_size=6)))
    x = _draw(np.random.default_rng(seed), shape)
    key = (slice(None),) * axis + (index,)
    check_grad(lambda a, i: a[(slice(None),) * axis + (i,)], x, index, argnums=0, n_directions=2)
    check_grad(lambda g, i: ops.index_add(g, key=(slice(None),) * axis + (raw(i),), shape=shape), x[key], index,
               argnums=0, n_directions=2)


# --- second order, where cheap -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sin", "exp", "tanh", "log", "sigmoid", "sqrt"])
def test_second_derivative(name, rng):
    x = rng.uniform(0.3, 1.5, size=(4,))
    first = gdbp.grad(lambda a: getattr(ns(a), name)(a).sum())
    check_grad(lambda a: first(a), x)


def test_second_derivative_through_indexing_and_reductions(rng):
    x = rng.uniform(0.3, 1.5, size=(3, 4))
    index = np.array([0, 2, 2])

    def cost(a):
        xp = ns(a)
        return xp.sum(xp.prod(a[index], axis=1) * xp.logsumexp(a, axis=0)[:3])

    check_grad(gdbp.grad(cost), x)


# --- the checker itself --------------------------------------------------------------------------


def test_check_grad_reports_a_wrong_gradient_with_its_place(rng):
    @gdbp.custom_vjp
    def wrong_sin(x):
        return array_api_compat.array_namespace(x).sin(x)

    @wrong_sin.defvjp
    def _(g, ans, x):
        return (g * array_api_compat.array_namespace(x).sin(x),)  # should be cos

    x = rng.uniform(-1, 1, size=(2, 3))
    y = rng.uniform(-1, 1, size=(3,))
    with pytest.raises(AssertionError, match=r"argument 1 \(shape \(3,\)\), direction 0.*worst element: index"):
        check_grad(lambda a, b: a * wrong_sin(b), x, y)


def test_check_grad_passes_and_reports_on_a_right_gradient(rng):
    report = check_grad(lambda a: ns(a).sum(a ** 3), rng.uniform(-1, 1, size=(4,)), n_directions=4)
    assert isinstance(report, GradCheckReport)
    assert report.n_checks == 4
    assert report.worst_rel_error < 1e-6


def test_check_grad_casts_float32_inputs_to_float64(rng):
    seen = []

    def f(a):
        seen.append(a.dtype)
        return ns(a).exp(a)

    check_grad(f, rng.uniform(-1, 1, size=(3,)).astype(np.float32))
    assert all(d == np.float64 for d in seen)


def test_check_grad_refuses_an_integer_argument():
    with pytest.raises(TypeError, match="argument 0"):
        check_grad(lambda a: a * 1.0, np.arange(3), argnums=0)


@pytest.mark.parametrize("backend_name", ["array_api_strict", "torch"])
def test_check_grad_runs_on_other_backends(backend_name, rng):
    x = gdbp.transfer(rng.uniform(0.2, 1.0, size=(2, 3)), backend_name)
    check_grad(lambda a: ns(a).log(a) * a, x)


def test_float_spec_zeros_are_exact():
    (x,) = host_args(type(CASES[0])("prod", None, (Float((2, 3), zeros=(1, 4)),)), np.random.default_rng(0))
    assert x.reshape(-1)[1] == 0.0 and x.reshape(-1)[4] == 0.0
