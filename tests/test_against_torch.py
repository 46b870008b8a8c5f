"""gdbp against an independent implementation: PyTorch's autograd.

Each composition is a small cost function written once against the array API
standard (``xp = array_namespace(...)``). It runs once on gdbp Tensors (through
``gdbp.grad``, NumPy float64 arrays in and out) and once on torch tensors that
require grad (torch's autograd, through array-api-compat's torch namespace);
the values and the gradients must agree to a relative error below 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from array_api_compat import array_namespace

import gdbp
from op_cases import Const, Float

REL = 1e-6
COMPOSITIONS = []


def composition(*inputs):
    """Register f(*args) -> scalar with its inputs (Float: differentiated; Const: not)."""

    def register(f):
        COMPOSITIONS.append(pytest.param(f, inputs, id=f.__name__))
        return f

    return register


LABELS = Const(np.array([2, 0, 1, 2, 1, 0]))
ONEHOT = Const(np.eye(3)[[2, 0, 1, 2, 1, 0]])
MASK = Const(np.array([[True, False, True], [False, True, True], [True, True, False], [False, False, True]]))


# --- networks and cost functions -------------------------------------------------------------


@composition(Float((4, 3)), Float((4,)), Float((3, 4)), Float((3,)), Float((6, 3)), ONEHOT)
def mlp_tanh_mse(w1, b1, w2, b2, x, y):
    xp = array_namespace(w1, b1, w2, b2, x, y)
    h = xp.tanh(x @ xp.matrix_transpose(w1) + b1)
    out = h @ w2.mT + b2
    return xp.mean((out - y) ** 2)


@composition(Float((5, 3)), Float((5,)), Float((3, 5)), Float((6, 3), -2.0, 2.0), LABELS)
def mlp_relu_softmax_cross_entropy(w1, b1, w2, x, labels):
    xp = array_namespace(w1, b1, w2, x, labels)
    h = xp.maximum(x @ w1.mT + b1, 0.0)  # relu
    logits = h @ w2.mT
    m = xp.max(logits, axis=-1, keepdims=True)
    logp = logits - m - xp.log(xp.sum(xp.exp(logits - m), axis=-1, keepdims=True))
    picked = xp.take_along_axis(logp, xp.reshape(labels, (-1, 1)), axis=-1)
    return -xp.mean(picked)


@composition(Float((4, 5), -3.0, 3.0))
def logsumexp_rows(x):
    xp = array_namespace(x)
    m = xp.max(x, axis=1, keepdims=True)
    return xp.sum(xp.log(xp.sum(xp.exp(x - m), axis=1)) + m[:, 0])


@composition(Float((3, 4)), Float((4,)))
def softmax_weighted(x, w):
    xp = array_namespace(x, w)
    e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
    p = e / xp.sum(e, axis=-1, keepdims=True)
    return xp.sum(p * w)


@composition(Float((6,), -4.0, 4.0), Const(np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])))
def binary_cross_entropy_with_logits(z, y):
    xp = array_namespace(z, y)
    return xp.mean(xp.log1p(xp.exp(-xp.abs(z))) + xp.maximum(z, 0.0) - z * y)


@composition(Float((4, 3)), Float((3,), 0.5, 1.5), Float((3,)))
def layer_norm(x, gamma, beta):
    xp = array_namespace(x, gamma, beta)
    mu = xp.mean(x, axis=-1, keepdims=True)
    var = xp.var(x, axis=-1, keepdims=True)
    y = (x - mu) / xp.sqrt(var + 1e-5) * gamma + beta
    return xp.sum(y * y * xp.arange(3, dtype=y.dtype))


@composition(Float((5, 2)), Float((2,)), Float(()), Const(np.array([0.3, -1.0, 2.0, 0.5, 0.0])))
def linear_regression(x, w, b, y):
    xp = array_namespace(x, w, b, y)
    return xp.sum((x @ w + b - y) ** 2) / 5


# --- indexing ------------------------------------------------------------------------------------


@composition(Float((4, 3)), Const(np.array([1, 3, 1, 1, 0])))
def index_rows_with_repeats(x, i):
    xp = array_namespace(x, i)
    return xp.sum(xp.sin(x[i, :]) * xp.arange(3, dtype=x.dtype))


@composition(Float((3, 4)), Const(np.array([[2, 2], [0, 3]])))
def index_columns_2d(x, i):
    xp = array_namespace(x, i)
    return xp.sum(x[:, i] ** 3)


@composition(Float((4, 3)), MASK)
def boolean_mask(x, m):
    xp = array_namespace(x, m)
    return xp.sum(xp.exp(x[m]))


@composition(Float((3, 4, 5)))
def slices_ellipsis_none(x):
    xp = array_namespace(x)
    return xp.sum(x[..., 1:4, None] * x[None, 0, :, :3, None] + x[-1, 2, 4])


@composition(Float((4, 3)), Const(np.array([[0, 2], [1, 1], [2, 0], [2, 2]])))
def take_along_axis_repeats(x, i):
    xp = array_namespace(x, i)
    return xp.sum(xp.take_along_axis(x, i, axis=1) ** 2)


@composition(Float((5, 2)), Const(np.array([4, 4, 0, 2])))
def take_axis0(x, i):
    xp = array_namespace(x, i)
    return xp.sum(xp.tanh(xp.take(x, i, axis=0)))


@composition(Float((3, 4)), Float((4,)))
def where_chosen_branch(x, y):
    xp = array_namespace(x, y)
    return xp.sum(xp.where(x > y, x * y, xp.sin(x)))


@composition(Float((3, 5)), Float((5,)))
def sort_weighted(x, w):
    xp = array_namespace(x, w)
    return xp.sum(xp.sort(x, axis=-1) * w) + xp.sum(xp.sort(x, axis=0, descending=True)[0] * w)


# --- linear algebra --------------------------------------------------------------------------------


@composition(Float((2, 1, 3, 4)), Float((5, 4, 2)))
def batch_matmul_broadcast(a, b):
    xp = array_namespace(a, b)
    return xp.sum(xp.sin(a @ b))


@composition(Float((4,)), Float((4, 3)), Float((3,)))
def matmul_1d_cases(v, m, w):
    xp = array_namespace(v, m, w)
    return xp.sum((v @ m) * w) + (m @ w) @ v + xp.sum(v @ v) + xp.sum(w @ m.mT)


@composition(Float((4,)), Float((2, 4, 3)))
def matmul_vector_batch(v, m):
    xp = array_namespace(v, m)
    return xp.sum(xp.exp(v @ m)) + xp.sum(m @ v[:3])


@composition(Float((2, 3, 4)), Float((3, 4, 2)))
def tensordot_two_axes(a, b):
    xp = array_namespace(a, b)
    return xp.sum(xp.tensordot(a, b, axes=2) ** 2) + xp.sum(xp.tensordot(a, b, axes=((1,), (0,))))


@composition(Float((3, 4)), Float((4,)))
def vecdot_broadcast(a, b):
    xp = array_namespace(a, b)
    return xp.sum(xp.vecdot(a, b) ** 2)


@composition(Float((3, 3)))
def triangles(x):
    xp = array_namespace(x)
    return xp.sum(xp.tril(x) @ xp.triu(x, k=1)) + xp.sum(xp.triu(x) ** 2)


# --- reductions and scans ---------------------------------------------------------------------------


@composition(Float((3, 4), zeros=(1,)))
def prod_with_a_zero(x):
    xp = array_namespace(x)
    return xp.sum(xp.prod(x, axis=1)) + xp.prod(x[1:, :])


@composition(Float((3, 4), 0.5, 1.5))
def prod_all_and_keepdims(x):
    xp = array_namespace(x)
    return xp.prod(x) + xp.sum(xp.prod(x, axis=0, keepdims=True) * x)


@composition(Float((3, 4)))
def cumulative_sums(x):
    xp = array_namespace(x)
    c = xp.cumulative_sum(x, axis=1)
    d = xp.cumulative_sum(x, axis=0, include_initial=True)
    return xp.sum(c ** 2) + xp.sum(xp.sin(d))


@composition(Float((2, 4), 0.5, 1.5))
def cumulative_products(x):
    xp = array_namespace(x)
    return xp.sum(xp.cumulative_prod(x, axis=1)) + xp.sum(xp.cumulative_prod(x, axis=0, include_initial=True))


@composition(Float((4, 3)))
def var_std_with_correction(x):
    xp = array_namespace(x)
    return (xp.sum(xp.var(x, axis=0, correction=1)) + xp.sum(xp.std(x, axis=1, correction=1, keepdims=True))
            + xp.std(x))


@composition(Float((3, 4, 2)))
def max_min_over_axes(x):
    xp = array_namespace(x)
    return xp.sum(xp.max(x, axis=1) ** 2) + xp.sum(xp.min(x, axis=(0, 2))) + xp.max(x)


@composition(Float((2, 3, 4)))
def mean_sum_keepdims(x):
    xp = array_namespace(x)
    return xp.sum(x / xp.mean(x ** 2, axis=(1, 2), keepdims=True)) + xp.sum(xp.sum(x, axis=0) ** 3)


# --- shape manipulation --------------------------------------------------------------------------------


@composition(Float((2, 3)), Float((1, 3)))
def concat_and_stack(x, y):
    xp = array_namespace(x, y)
    c = xp.concat([x, y, x], axis=0)
    s = xp.stack([x[0], y[0]], axis=1)
    return xp.sum(c * xp.arange(3, dtype=c.dtype)) + xp.sum(s ** 2)


@composition(Float((2, 3)))
def tile_and_repeat(x):
    xp = array_namespace(x)
    t = xp.tile(x, (2, 2))
    r = xp.repeat(x, 3, axis=1)
    return xp.sum(t * xp.cos(t)) + xp.sum(r ** 2 * xp.arange(9, dtype=r.dtype))


@composition(Float((3, 2)), Const(np.array([2, 0, 1])))
def repeat_uneven(x, reps):
    xp = array_namespace(x, reps)
    return xp.sum(xp.repeat(x, reps, axis=0) ** 3)


@composition(Float((2, 3, 4)))
def permute_reshape_moveaxis(x):
    xp = array_namespace(x)
    p = xp.reshape(xp.permute_dims(x, (2, 0, 1)), (4, 6))
    m = xp.moveaxis(x, 0, -1)
    return xp.sum(p * xp.arange(6, dtype=p.dtype)) + xp.sum(m[..., 0] * m[..., 1])


@composition(Float((3, 4)))
def flip_and_roll(x):
    xp = array_namespace(x)
    return xp.sum(xp.flip(x, axis=1) * x) + xp.sum(xp.roll(x, 1, axis=0) * xp.roll(x, (1, -2), axis=(0, 1)) * x)


@composition(Float((3,)), Float((2, 1)))
def expand_squeeze_broadcast(x, y):
    xp = array_namespace(x, y)
    a = xp.expand_dims(x, axis=0) * y
    b = xp.broadcast_to(xp.squeeze(y, axis=1), (3, 2))
    u, v = xp.broadcast_arrays(x, y)
    return xp.sum(a ** 2) + xp.sum(b * xp.arange(2, dtype=b.dtype)) + xp.sum(u * v * v)


@composition(Float((3, 5)))
def diff_twice(x):
    xp = array_namespace(x)
    return xp.sum(xp.diff(x, axis=1) ** 2) + xp.sum(xp.diff(x, n=2, axis=0))


@composition(Float((3, 2)))
def unstack_products(x):
    xp = array_namespace(x)
    a, b, c = xp.unstack(x)
    return xp.sum(a * b * c) + xp.sum(xp.unstack(x, axis=1)[1] ** 2)


# --- elementwise ----------------------------------------------------------------------------------------


@composition(Float((3, 4)))
def clip_and_extremes(x):
    xp = array_namespace(x)
    return xp.sum(xp.clip(x, min=-0.5, max=0.4) ** 2) + xp.sum(xp.maximum(x, xp.roll(x, 1, axis=0)) * xp.minimum(x, 0.1))


@composition(Float((3, 4), 0.5, 2.0), Float((4,), -1.5, 1.5))
def power_with_array_exponent(x, p):
    xp = array_namespace(x, p)
    return xp.sum(x ** p) + xp.sum(xp.pow(p, 2)) + xp.sum(xp.sqrt(x) * xp.square(p))


@composition(Float((3,), 0.2, 1.0), Float((2, 1), 0.2, 1.0))
def hypot_atan2(x, y):
    xp = array_namespace(x, y)
    return xp.sum(xp.hypot(x, y) + xp.atan2(x, y) * xp.atan2(-y, x))


@composition(Float((4,)), Float((4,)))
def logaddexp_expm1_log1p(x, y):
    xp = array_namespace(x, y)
    return xp.sum(xp.logaddexp(x, y) * xp.expm1(x)) + xp.sum(xp.log1p(xp.abs(y)))


@composition(Float((5,), 0.2, 1.0), Float((5,), -0.9, 0.9), Float((5,), 1.2, 3.0))
def inverse_trig_hyperbolic(a, b, c):
    xp = array_namespace(a, b, c)
    return xp.sum(xp.asin(b) * xp.acos(b) + xp.atan(a) + xp.asinh(b) * xp.acosh(c) + xp.atanh(b))


@composition(Float((2, 3)))
def trig_hyperbolic(x):
    xp = array_namespace(x)
    return xp.sum(xp.sin(x) * xp.cos(x) + xp.tan(x) + xp.sinh(x) * xp.cosh(x) + xp.tanh(x) ** 2)


@composition(Float((3, 2), 0.3, 1.0), Float((2,), 0.3, 1.0))
def divide_reciprocal_logs(x, y):
    xp = array_namespace(x, y)
    return xp.sum(x / y + xp.reciprocal(x) + xp.log(x) * xp.log2(y) + xp.log10(x + y) + xp.negative(x))


@composition(Float((4,), -3.0, 3.0), Float((4,), 0.5, 1.5))
def remainder_both_sides(x, y):
    xp = array_namespace(x, y)
    return xp.sum(xp.remainder(x, y) ** 2)


@composition(Float((4,), 0.2, 1.0), Float((4,), -1.0, 1.0))
def copysign_abs(x, y):
    xp = array_namespace(x, y)
    y = xp.where(xp.abs(y) < 0.2, y + 0.5, y)
    return xp.sum(xp.copysign(x, y) * x) + xp.sum(xp.abs(y) ** 3)


@composition(Float((2, 4), -1.0, -0.2, zeros=(1, 2, 5, 6)), Float((4,)))
def ties_and_boundaries(x, w):
    # Exact ties (two zeros per row) and points on clip's bounds: the subgradient conventions
    # (ties share evenly, clip's bounds pass, |x|'(0) = 0) must be torch's.
    xp = array_namespace(x, w)
    return (xp.sum(xp.max(x, axis=1)) + xp.sum(xp.min(-x, axis=1) * 2.0) + xp.max(x)
            + xp.sum((xp.maximum(x, 0.0) + 3.0 * xp.minimum(x, 0.0)) * w)
            + xp.sum((xp.clip(x, min=0.0) + xp.clip(x, max=0.0) * 0.5) * w) + xp.sum(xp.abs(x) * w))


@composition(Float((3, 4)))
def dtype_round_trip(x):
    xp = array_namespace(x)
    return xp.sum(xp.astype(xp.astype(x, xp.float64) * 2.0, x.dtype) ** 2)


@composition(Float((3, 4)), Float((3, 4)))
def operators_mixed(x, y):
    xp = array_namespace(x, y)
    z = (2.0 * x - y / 3.0) * (1.0 + y) - (-x) ** 2 + abs(y) + (+x)
    return xp.sum(z * z)


# --- the runners --------------------------------------------------------------------------------------


def _args(inputs, rng):
    args, argnums = [], []
    for i, spec in enumerate(inputs):
        if isinstance(spec, Const):
            args.append(np.asarray(spec.value))
            continue
        x = rng.uniform(spec.low, spec.high, size=spec.shape)
        if spec.zeros:
            x.reshape(-1)[list(spec.zeros)] = 0.0
        args.append(np.asarray(x, dtype=np.float64))
        argnums.append(i)
    return args, tuple(argnums)


def _relative_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(b).max(initial=0.0), 1e-12)
    return np.abs(a - b).max(initial=0.0) / scale


def test_at_least_forty_compositions():
    assert len(COMPOSITIONS) >= 40


@pytest.mark.parametrize("f, inputs", COMPOSITIONS)
def test_gradients_match_torch_autograd(f, inputs, rng):
    assert_matches_torch(f, inputs, rng)


def assert_matches_torch(f, inputs, rng, rel=REL):
    """f's value and gradients by gdbp (NumPy float64) and by torch.autograd agree to ``rel``."""
    args, argnums = _args(inputs, rng)

    value, grads = gdbp.value_and_grad(f, argnums=argnums)(*args)

    targs = [torch.from_numpy(a.copy()) for a in args]
    for i in argnums:
        targs[i].requires_grad_(True)
    tvalue = f(*targs)
    tvalue.backward()

    assert type(value) is np.ndarray and value.dtype == np.float64
    assert _relative_error(value, tvalue.detach().numpy()) < rel
    for i, g in zip(argnums, grads):
        assert type(g) is np.ndarray and g.dtype == np.float64 and g.shape == args[i].shape
        expected = targs[i].grad.numpy()
        assert np.abs(expected).max() > 0 or np.abs(g).max() == 0  # a gradient that vanishes must vanish in both
        err = _relative_error(g, expected)
        assert err < rel, f"argument {i}: relative error {err:.3e} against torch"
