"""The Tensor as a conforming array object, its in-place operations, and its graph bookkeeping.

Every test runs on every backend (the ``backend`` fixture of conftest.py).
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
import torch

import gdbp
from gdbp import GradRequirementError, GraphFreedError, InPlaceError, backends

from conftest import to_numpy


def arr(backend, values, dtype="float64"):
    """An array of ``backend`` holding ``values`` (via a host NumPy array)."""
    return backends.transfer(np.asarray(values, dtype=dtype), backend)


def ten(backend, values, dtype="float64", requires_grad=False):
    return gdbp.tensor(arr(backend, values, dtype), requires_grad=requires_grad)


def grid(backend, requires_grad=False, dtype="float64"):
    """A 3 x 4 Tensor holding 0 .. 11."""
    return ten(backend, np.arange(12.0).reshape(3, 4), dtype, requires_grad)


def same(t, expected, dtype=None):
    """t is a Tensor whose values equal ``expected``."""
    assert isinstance(t, gdbp.Tensor), type(t)
    got = to_numpy(t)
    np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-6, atol=1e-12)
    assert got.shape == np.shape(expected)
    if dtype is not None:
        assert got.dtype == np.dtype(dtype)


# --- the array object: attributes ----------------------------------------------------------


def test_attributes(backend):
    x = grid(backend)
    xp = backend.xp
    assert x.shape == (3, 4) and type(x.shape) is tuple
    assert x.dtype == xp.float64
    assert x.device == backend.device
    assert x.ndim == 2
    assert x.size == 12
    assert x.backend is backend
    assert isinstance(x.data, backend.array_type)
    same(x.T, np.arange(12.0).reshape(3, 4).T)
    same(x.mT, np.arange(12.0).reshape(3, 4).T)


def test_mT_of_a_stack_and_T_of_a_stack(backend):
    x = ten(backend, np.arange(24.0).reshape(2, 3, 4))
    same(x.mT, np.swapaxes(np.arange(24.0).reshape(2, 3, 4), -1, -2))
    with pytest.raises(ValueError, match="2-D"):
        x.T


def test_float32_stays_float32(backend):
    x = grid(backend, requires_grad=True, dtype="float32")
    y = (x * 2.0 + 1) / 3.0 - x ** 2
    assert y.dtype == backend.xp.float32
    y.sum().backward()
    assert x.grad.dtype == backend.xp.float32


def test_to_device_on_the_same_device(backend):
    x = grid(backend, requires_grad=True)
    y = x.to_device(x.device)
    assert isinstance(y, gdbp.Tensor) and y.backend is backend and y.device == x.device
    same(y, np.arange(12.0).reshape(3, 4))
    (y * 3).sum().backward()
    same(x.grad, np.full((3, 4), 3.0))


def test_dlpack_round_trip_to_numpy_and_torch(backend):
    if backend.is_gpu:
        pytest.skip("numpy and CPU torch cannot import GPU memory")
    x = grid(backend)
    assert x.__dlpack_device__() == x.data.__dlpack_device__()
    np.testing.assert_array_equal(np.from_dlpack(x), np.arange(12.0).reshape(3, 4))
    t = torch.from_dlpack(x)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    np.testing.assert_array_equal(t.numpy(), np.arange(12.0).reshape(3, 4))
    back = backend.xp.from_dlpack(t)
    np.testing.assert_array_equal(to_numpy(back), np.arange(12.0).reshape(3, 4))


def test_python_scalar_conversions(backend):
    f = ten(backend, 2.75)
    assert float(f) == 2.75 and type(float(f)) is float
    assert int(f) == 2
    assert bool(f) is True
    assert bool(ten(backend, 0.0)) is False
    i = ten(backend, 3, dtype="int64")
    assert operator.index(i) == 3
    assert ["a", "b", "c", "d"][i] == "d"
    assert f.item() == 2.75 and i.item() == 3


def test_item_needs_one_element(backend):
    with pytest.raises(ValueError, match=r"single-element.*\(3, 4\)"):
        grid(backend).item()


def test_len_and_iteration(backend):
    x = grid(backend, requires_grad=True)
    assert len(x) == 3
    rows = list(x)
    assert len(rows) == 3
    for i, row in enumerate(rows):
        same(row, np.arange(12.0).reshape(3, 4)[i])
    (rows[0] + 2 * rows[2]).sum().backward()  # rows are differentiable views
    same(x.grad, [[1.0] * 4, [0.0] * 4, [2.0] * 4])
    with pytest.raises(TypeError, match="0-d"):
        len(ten(backend, 1.0))


def test_repr(backend):
    r = repr(grid(backend))
    assert r.startswith("Tensor(") and f"backend={backend.spec!r}" in r and "11" in r
    assert "requires_grad" not in r
    assert "requires_grad=True" in repr(grid(backend, requires_grad=True))


def test_numpy_and_tolist(backend):
    x = grid(backend)
    assert isinstance(x.numpy(), np.ndarray)
    assert x.tolist() == np.arange(12.0).reshape(3, 4).tolist()


# --- operators ------------------------------------------------------------------------------

BINARY = [
    ("add", operator.add),
    ("sub", operator.sub),
    ("mul", operator.mul),
    ("truediv", operator.truediv),
    ("pow", operator.pow),
]


@pytest.mark.parametrize("name, op", BINARY, ids=[n for n, _ in BINARY])
def test_operators_with_scalars_on_either_side(backend, name, op):
    values = np.asarray([[0.5, 1.0, 2.0], [3.0, 1.5, 0.25]])
    x = ten(backend, values, "float32")
    for left, right, expected in ((x, 2.0, op(values, 2.0)), (2.0, x, op(2.0, values)),
                                  (x, 3, op(values, 3)), (3, x, op(3, values))):
        out = op(left, right)
        same(out, expected.astype(np.float32), dtype="float32")  # a Python scalar never promotes
        assert out.backend is backend


@pytest.mark.parametrize("name, op", BINARY, ids=[n for n, _ in BINARY])
def test_operators_with_raw_arrays_on_either_side(backend, name, op):
    a_values = np.asarray([[0.5, 1.0, 2.0], [3.0, 1.5, 0.25]])
    b_values = np.asarray([1.5, 2.0, 0.5])
    x = ten(backend, a_values, requires_grad=True)
    raw = arr(backend, b_values)
    same(op(x, raw), op(a_values, b_values))
    if backend.name == "array_api_strict":
        pytest.skip("array_api_strict arrays raise TypeError for any operand that is not theirs (no NotImplemented)")
    out = op(raw, x)
    same(out, op(b_values, a_values))
    assert out.requires_grad


def test_numpy_array_times_tensor_is_a_tensor():
    a = np.asarray([1.0, 2.0, 3.0])
    x = gdbp.tensor(np.asarray([4.0, 5.0, 6.0]), requires_grad=True)
    for out in (a * x, a + x, a - x, a / x, a ** x, a @ x, a == x, a < x):
        assert isinstance(out, gdbp.Tensor), type(out)
        assert out.dtype != np.dtype(object)
    y = a * x
    y.sum().backward()
    same(x.grad, a)


def test_matmul_with_raw_arrays(backend):
    w_values = np.arange(6.0).reshape(2, 3)
    v_values = np.asarray([1.0, -1.0, 2.0])
    w = ten(backend, w_values, requires_grad=True)
    same(w @ arr(backend, v_values), w_values @ v_values)
    if backend.name != "array_api_strict":
        same(arr(backend, v_values[:2]) @ w, v_values[:2] @ w_values)


def test_unary_operators(backend):
    values = np.asarray([-1.5, 0.0, 2.0])
    x = ten(backend, values)
    same(-x, -values)
    same(+x, values)
    same(abs(x), np.abs(values))
    i = ten(backend, [1, 2, 6], "int64")
    same(~i, ~np.asarray([1, 2, 6]))
    same(i // 4, [0, 0, 1])
    same(i % 4, [1, 2, 2])
    same((i & 3) | 8, [9, 10, 10])
    same(i << 1, [2, 4, 12])


@pytest.mark.parametrize(
    "op", [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne],
    ids=["lt", "le", "gt", "ge", "eq", "ne"],
)
def test_comparisons(backend, op):
    a = np.asarray([1.0, 2.0, 3.0])
    b = np.asarray([3.0, 2.0, 1.0])
    x = ten(backend, a, requires_grad=True)
    for out, expected in ((op(x, ten(backend, b)), op(a, b)), (op(x, 2.0), op(a, 2.0)),
                          (op(x, arr(backend, b)), op(a, b))):
        same(out, expected, dtype="bool")
        assert not out.requires_grad and out._node is None


def test_a_tensor_is_hashable_and_eq_is_elementwise(backend):
    x = ten(backend, [1.0, 2.0])
    assert len({x, x}) == 1
    same(x == x, [True, True])


# --- indexing ---------------------------------------------------------------------------------

# Keys every conforming backend accepts (array_api_strict rejects the others).
KEYS = {
    "rows": (slice(1, 3), slice(None)),
    "steps": (slice(None, None, 2), slice(1, None)),
    "negative": (-1, -2),
    "int-ellipsis": (1, ...),
    "ellipsis-int": (..., 2),
    "none": (None, 1, slice(None)),
    "none-middle": (slice(None), None, 1),
    "int-array-int": ("i", 0),
    "int-arrays": ("i", "j"),
    "mask": "mask",
    "row-mask": "row_mask",
}


def _key(backend, key, as_tensor):
    i = np.asarray([2, 0, 2])
    j = np.asarray([1, 1, 3])
    host = {"i": i, "j": j, "mask": np.arange(12.0).reshape(3, 4) > 4.5,
            "row_mask": np.asarray([True, False, True])}

    def one(k):
        if isinstance(k, str):
            a = backends.transfer(host[k], backend)
            return gdbp.tensor(a) if as_tensor else a
        return k

    device_key = tuple(one(k) for k in key) if isinstance(key, tuple) else one(key)
    host_key = tuple(host[k] if isinstance(k, str) else k for k in key) if isinstance(key, tuple) else host[key]
    return device_key, host_key


@pytest.mark.parametrize("name", list(KEYS))
@pytest.mark.parametrize("as_tensor", [False, True], ids=["raw-index", "tensor-index"])
def test_indexing_values_and_gradients(backend, name, as_tensor):
    base = np.arange(12.0).reshape(3, 4)
    key, host_key = _key(backend, KEYS[name], as_tensor)
    x = grid(backend, requires_grad=True)
    y = x[key]
    same(y, base[host_key])
    weights = np.arange(1.0, 1.0 + base[host_key].size).reshape(base[host_key].shape)
    (y * arr(backend, weights)).sum().backward()
    expected = np.zeros_like(base)
    np.add.at(expected, host_key, weights)  # a repeated index adds up
    same(x.grad, expected)


def test_list_index_is_refused(backend):
    with pytest.raises(TypeError, match="list"):
        grid(backend)[[0, 1]]


# --- in place ------------------------------------------------------------------------------------

INPLACE = [
    ("iadd", operator.iadd, np.add),
    ("isub", operator.isub, np.subtract),
    ("imul", operator.imul, np.multiply),
    ("itruediv", operator.itruediv, np.divide),
]


@pytest.mark.parametrize("name, iop, ref", INPLACE, ids=[n for n, _, _ in INPLACE])
def test_inplace_under_no_grad_writes_in_place(backend, name, iop, ref):
    values = np.asarray([1.0, 2.0, 4.0])
    x = ten(backend, values.copy(), requires_grad=True)  # (a NumPy array is wrapped, not copied)
    before = x.data
    with gdbp.no_grad():
        out = iop(x, 2.0)
        out = iop(out, ten(backend, [1.0, 2.0, 4.0]))
        out = iop(out, arr(backend, [1.0, 1.0, 2.0]))
    assert out is x
    expected = ref(ref(ref(values, 2.0), values), [1.0, 1.0, 2.0])
    same(x, expected)
    assert x.is_leaf and x.requires_grad
    if backend.mutable:
        assert x.data is before  # the same buffer, written in place
        np.testing.assert_allclose(to_numpy(before), expected)


def test_setitem_under_no_grad_writes_in_place(backend):
    x = grid(backend, requires_grad=True)
    before = x.data
    with gdbp.no_grad():
        x[0, :] = 0.0
        x[1, 2] = ten(backend, -1.0)
        x[(slice(None), 3)] = arr(backend, [7.0, 8.0, 9.0])
        x[x > 9.5] = 100.0
    expected = np.arange(12.0).reshape(3, 4)
    expected[0, :] = 0.0
    expected[1, 2] = -1.0
    expected[:, 3] = [7.0, 8.0, 9.0]
    expected[expected > 9.5] = 100.0
    same(x, expected)
    if backend.mutable:
        assert x.data is before
        np.testing.assert_array_equal(to_numpy(before), expected)


def test_setitem_on_a_tensor_that_needs_no_grad(backend):
    x = grid(backend)
    x[2, ...] = 5.0
    assert x._node is None and not x.requires_grad
    assert to_numpy(x)[2].tolist() == [5.0] * 4


def test_inplace_on_a_non_leaf_records_correct_gradients(backend):
    values = np.asarray([1.0, 2.0, 3.0])
    x = ten(backend, values, requires_grad=True)
    y = x * 2.0
    y += x          # 3x
    y *= x          # 3x^2
    y -= 1.0        # 3x^2 - 1
    y /= 2.0        # (3x^2 - 1) / 2
    y **= 2         # ((3x^2 - 1) / 2)^2
    same(y, ((3 * values ** 2 - 1) / 2) ** 2)
    assert not y.is_leaf
    y.sum().backward()
    # d/dx ((3x^2 - 1) / 2)^2 = 2 * (3x^2 - 1) / 2 * 3x = 3x (3x^2 - 1)
    same(x.grad, 3 * values * (3 * values ** 2 - 1))


def test_recorded_inplace_leaves_values_saved_earlier_intact(backend):
    values = np.asarray([0.5, 1.0, 2.0])
    x = ten(backend, values, requires_grad=True)
    xp = x.__array_namespace__()
    y = xp.exp(x)          # exp saves its output y ...
    z = y * y              # ... and multiply saves y too
    y += 1.0               # recorded out of place: the saved buffer is untouched
    y[0] = 0.0
    (z + y).sum().backward()
    e = np.exp(values)
    same(x.grad, 2 * e * e + np.asarray([0.0, 1.0, 1.0]) * e)


def test_a_stale_output_after_a_recorded_inplace_op_is_caught(backend):
    x = ten(backend, [0.5, 1.0], requires_grad=True)
    y = x * 1.0
    y **= 3                # pow's gradient reads its output: now y's buffer
    with gdbp.no_grad():
        y += 1.0           # ... which this changes
    with pytest.raises(InPlaceError, match="pow"):
        y.sum().backward()


def test_setitem_on_a_non_leaf_records_correct_gradients(backend):
    xv = np.asarray([1.0, 2.0, 3.0, 4.0])
    vv = np.asarray([10.0, 20.0])
    x = ten(backend, xv, requires_grad=True)
    v = ten(backend, vv, requires_grad=True)
    y = x * x
    y[1:3] = v * 3.0        # overwritten: no gradient to x there; v gets 3 * weight
    y[3] = v[0]
    same(y, [1.0, 30.0, 60.0, 10.0])
    (y * arr(backend, [1.0, 2.0, 3.0, 4.0])).sum().backward()
    same(x.grad, [2.0, 0.0, 0.0, 0.0])
    same(v.grad, [3.0 * 2.0 + 4.0, 3.0 * 3.0])


def test_setitem_on_a_tensor_not_requiring_grad_with_a_value_that_does(backend):
    v = ten(backend, [2.0], requires_grad=True)
    y = ten(backend, [0.0, 0.0, 0.0])
    y[0:1] = v * 5.0
    assert y.requires_grad and not y.is_leaf
    y.sum().backward()
    same(v.grad, [5.0])


@pytest.mark.parametrize("what", ["iadd", "imul", "setitem", "setitem-tensor"])
def test_inplace_on_a_leaf_requiring_grad_while_recording_raises(backend, what):
    x = ten(backend, [1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(InPlaceError, match="leaf Tensor that requires grad"):
        if what == "iadd":
            x += 1.0
        elif what == "imul":
            x *= ten(backend, [2.0, 2.0, 2.0])
        elif what == "setitem":
            x[0] = 5.0
        else:
            x[0:1] = ten(backend, [5.0], requires_grad=True)
    same(x, [1.0, 2.0, 3.0])  # nothing was written
    assert x.is_leaf


def test_inplace_shape_and_dtype_changes_are_refused(backend):
    x = ten(backend, [1.0, 2.0], requires_grad=True)
    y = x * 1.0
    with pytest.raises(gdbp.ShapeError, match=r"\(2,\).*\(2, 2\)"):
        y += ten(backend, [[1.0, 1.0], [1.0, 1.0]])


# --- version counters: stale saved values are caught ---------------------------------------------


def test_inplace_change_of_a_saved_output_is_caught(backend):
    x = ten(backend, [0.5, 1.0], requires_grad=True)
    xp = x.__array_namespace__()
    y = xp.exp(x)                     # exp's gradient reads its output
    with gdbp.no_grad():
        y += 1
    with pytest.raises(InPlaceError, match=r"exp.*changed in place"):
        y.sum().backward()


def test_parameter_changed_under_no_grad_before_backward_is_caught(backend):
    w = ten(backend, [1.0, 2.0, 3.0], requires_grad=True)
    cost = (w * w).sum()
    with gdbp.no_grad():
        w -= 0.1                       # an optimizer step between forward and backward
    with pytest.raises(InPlaceError, match="multiply"):
        cost.backward()


def test_parameter_changed_through_a_view_is_caught(backend):
    w = ten(backend, [1.0, 2.0, 3.0], requires_grad=True)
    cost = (w * w).sum()
    view = w[0:2]
    with gdbp.no_grad():
        view -= 0.1
    with pytest.raises(InPlaceError):
        cost.backward()


def test_view_of_a_parameter_changed_through_the_parameter_is_caught(backend):
    w = ten(backend, [1.0, 2.0, 3.0], requires_grad=True)
    head = w[0:2]
    cost = (head * head).sum()
    with gdbp.no_grad():
        w[0:2] -= 0.1
    with pytest.raises(InPlaceError):
        cost.backward()


def test_write_behind_the_back_then_bump_version_is_caught(backend):
    w = ten(backend, [1.0, 2.0], requires_grad=True)
    cost = (w ** 3).sum()
    w.data = w.data * 2          # what an optimizer with its own kernels does ...
    w.mark_changed()            # ... and then says so
    with pytest.raises(InPlaceError):
        cost.backward()


def test_changes_the_backward_pass_does_not_need_are_allowed(backend):
    a = ten(backend, [1.0, 2.0], requires_grad=True)
    b = ten(backend, [3.0, 4.0], requires_grad=True)
    c = a + b                          # add's gradient does not read its inputs
    d = (c * 2.0).sum()
    with gdbp.no_grad():
        a += 10.0
        b[0] = -1.0
    d.backward()
    same(a.grad, [2.0, 2.0])
    same(b.grad, [2.0, 2.0])


def test_changes_after_backward_are_allowed(backend):
    w = ten(backend, [1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    with gdbp.no_grad():
        w -= 0.5 * w.grad
    same(w, [0.0, 0.0])
    (w * w).sum().backward()  # a fresh graph on the updated value
    same(w.grad, [2.0, 4.0])


# --- requires_grad, no_grad, detach ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_requires_grad_needs_a_floating_dtype(backend, dtype):
    values = [1, 0, 1]
    with pytest.raises(GradRequirementError, match=f"real floating-point.*{dtype}"):
        ten(backend, values, dtype, requires_grad=True)
    t = ten(backend, values, dtype)
    with pytest.raises(GradRequirementError):
        t.requires_grad = True
    with pytest.raises(GradRequirementError):
        t.requires_grad_()
    assert not t.requires_grad


def test_requires_grad_cannot_be_turned_off_on_a_computed_tensor(backend):
    y = ten(backend, [1.0], requires_grad=True) * 2.0
    with pytest.raises(GradRequirementError, match="detach"):
        y.requires_grad = False


def test_requires_grad_flag(backend):
    x = ten(backend, [1.0, 2.0])
    assert not x.requires_grad and x.is_leaf
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad = False
    assert not x.requires_grad


def test_no_graph_when_nothing_requires_grad(backend):
    x = ten(backend, [1.0, 2.0])
    y = (x * 2.0).sum() + x[0]
    assert y._node is None and not y.requires_grad and y.is_leaf


def test_no_graph_under_no_grad(backend):
    x = ten(backend, [1.0, 2.0], requires_grad=True)
    with gdbp.no_grad():
        assert not gdbp.is_grad_enabled()
        y = (x * 2.0).sum()
        with gdbp.enable_grad():
            z = x * 3.0
    assert gdbp.is_grad_enabled()
    assert y._node is None and not y.requires_grad
    assert z._node is not None and z.requires_grad


def test_no_grad_as_a_decorator_restores_on_exception(backend):
    x = ten(backend, [1.0], requires_grad=True)

    @gdbp.no_grad()
    def step():
        assert (x * 2.0)._node is None
        raise KeyError("boom")

    with pytest.raises(KeyError):
        step()
    assert gdbp.is_grad_enabled()
    assert (x * 2.0)._node is not None


def test_detach(backend):
    x = ten(backend, [1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    d = y.detach()
    assert d._node is None and not d.requires_grad and d.is_leaf
    same(d, [1.0, 4.0, 9.0])
    (x * d).sum().backward()       # no gradient flows through the detached factor
    same(x.grad, [1.0, 4.0, 9.0])


def test_detach_shares_the_version_counter(backend):
    x = ten(backend, [1.0, 2.0], requires_grad=True)
    y = x.__array_namespace__().exp(x)
    with gdbp.no_grad():
        y.detach()[0] = 0.0  # an in-place write through the detached alias
    with pytest.raises(InPlaceError):
        y.sum().backward()


# --- backward: accumulation and graph freeing ---------------------------------------------------------


def test_grad_is_a_tensor_of_the_leafs_backend_shape_and_dtype(backend):
    x = ten(backend, [[1.0, 2.0]], "float32", requires_grad=True)
    (x * x).sum().backward()
    assert isinstance(x.grad, gdbp.Tensor)
    assert x.grad.backend is backend and x.grad.shape == (1, 2) and x.grad.dtype == backend.xp.float32
    assert not x.grad.requires_grad
    same(x.grad, [[2.0, 4.0]])


def test_gradients_accumulate_across_backward_calls(backend):
    x = ten(backend, [1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()      # a second, separate graph
    same(x.grad, [2.0 + 3.0, 4.0 + 3.0])


def test_a_value_used_twice_gets_both_contributions(backend):
    x = ten(backend, [1.0, 2.0], requires_grad=True)
    y = x * x
    (y + y * x).sum().backward()    # x^2 + x^3
    same(x.grad, [2.0 + 3.0, 4.0 + 12.0])


def test_only_leaves_get_grad(backend):
    x = ten(backend, [1.0, 2.0], requires_grad=True)
    y = x * 2.0
    (y * y).sum().backward()
    assert y.grad is None
    same(x.grad, [8.0, 16.0])


def test_backward_twice_on_one_graph_raises(backend):
    x = ten(backend, [1.0, 2.0], requires_grad=True)
    cost = (x * x).sum()
    cost.backward()
    with pytest.raises(GraphFreedError, match="retain_graph=True"):
        cost.backward()


def test_backward_twice_with_retain_graph(backend):
    x = ten(backend, [1.0, 2.0], requires_grad=True)
    cost = (x * x).sum()
    cost.backward(retain_graph=True)
    cost.backward()
    same(x.grad, [4.0, 8.0])


@pytest.mark.parametrize("seed_kind", ["raw", "tensor"])
def test_backward_with_a_seed(backend, seed_kind):
    x = ten(backend, [1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    seed = arr(backend, [1.0, 0.5, -1.0])
    y.backward(seed if seed_kind == "raw" else gdbp.tensor(seed))
    same(x.grad, [2.0, 2.0, -6.0])


def test_backward_of_a_leaf(backend):
    x = ten(backend, 3.0, requires_grad=True)
    x.backward()
    same(x.grad, 1.0)


def test_astype_between_floats_passes_the_gradient_back_in_the_leafs_dtype(backend):
    xp = backend.xp
    x = ten(backend, [1.0, 2.0], "float32", requires_grad=True)
    y = x.astype(xp.float64)
    assert y.dtype == xp.float64
    (y * y).sum().backward()
    assert x.grad.dtype == xp.float32
    same(x.grad, [2.0, 4.0])


@pytest.mark.parametrize("target", ["numpy", "torch", "array_api_strict"])
def test_to_another_backend_is_differentiable(backend, target):
    x = ten(backend, [1.0, 2.0], requires_grad=True)
    y = x.to(target)
    assert y.backend is backends.resolve(target)
    (y * y).sum().backward()
    assert x.grad.backend is backend
    same(x.grad, [2.0, 4.0])


# --- making Tensors ----------------------------------------------------------------------------------


def test_tensor_of_lists_and_floats_is_float32_on_the_default_backend(backend):
    with gdbp.use(backend):
        t = gdbp.tensor([[1.0, 2.0], [3.0, 4.0]])
        s = gdbp.tensor(2.5)
        i = gdbp.tensor([1, 2])
    assert t.backend is backend and t.dtype == backend.xp.float32 and t.shape == (2, 2)
    assert s.dtype == backend.xp.float32 and s.shape == ()
    assert backend.xp.isdtype(i.dtype, "integral")
    d = gdbp.tensor([1.0, 2.0], backend=backend, dtype=backend.xp.float64)
    assert d.dtype == backend.xp.float64


def test_tensor_wraps_an_array_without_a_copy(backend):
    a = arr(backend, [1.0, 2.0])
    t = gdbp.tensor(a)
    assert t.data is a and t.dtype == backend.xp.float64


def test_tensor_constructor_refuses_non_arrays():
    with pytest.raises(TypeError, match="gdbp.tensor"):
        gdbp.Tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="detach"):
        gdbp.Tensor(gdbp.tensor(np.ones(2)))
