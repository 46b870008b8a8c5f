"""In-place updates inside the functional face: grad, value_and_grad and vjp record them.

The Tensors that f receives are gdbp's own: ``x[i] = v``, ``x += 1`` and
array-api-extra's ``at(x)[i].set(v)`` / ``.add(v)`` are recorded and
differentiated (against torch.autograd, which needs explicit clones), and the
caller's arrays are never written, differentiated or not, nor copied when
nothing writes. The object face keeps PyTorch's rule for user-made leaves.
"""

from __future__ import annotations

import array_api_extra as xpx
import numpy as np
import pytest
import torch
from array_api_compat import array_namespace

import gdbp
from gdbp import backends

from conftest import to_numpy


def arr(backend, values):
    return backends.transfer(np.asarray(values, dtype=np.float64), backend)


def updates(x, y):
    """Every kind of in-place update on both arguments (the same program in torch, with clones, below)."""
    xp = array_namespace(x, y)
    x[0] = 10.0 * x[1]            # setitem, recorded
    x += 1.0                      # an in-place operator, recorded
    x *= y                        # with the other argument
    y -= 1.0                      # an argument that may not be differentiated
    y[1:] = 0.5 * y[1:]
    return xp.sum(x * x) + xp.sum(y * x)


def updates_torch(x, y):
    x, y = x.clone(), y.clone()
    x[0] = 10.0 * x[1]
    x = x + 1.0
    x = x * y
    y = y - 1.0
    y[1:] = 0.5 * y[1:].clone()
    return (x * x).sum() + (y * x).sum()


XV, YV = [1.0, 2.0, 3.0], [0.5, -1.5, 2.0]


def torch_grads(argnums):
    tx, ty = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (XV, YV))
    value = updates_torch(tx, ty)
    value.backward()
    return value.item(), [(tx, ty)[i].grad.numpy() for i in argnums]


@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_value_and_grad_records_in_place_updates(backend, argnums):
    x, y = arr(backend, XV), arr(backend, YV)
    value, grads = gdbp.value_and_grad(updates, argnums=argnums)(x, y)
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    want_value, want = torch_grads(nums)
    np.testing.assert_allclose(to_numpy(value), want_value, rtol=1e-12)
    grads = grads if isinstance(argnums, tuple) else (grads,)
    for g, w in zip(grads, want):
        np.testing.assert_allclose(to_numpy(g), w, rtol=1e-12)
    # the caller's arrays are as they were, the differentiated one and the other alike
    np.testing.assert_array_equal(to_numpy(x), XV)
    np.testing.assert_array_equal(to_numpy(y), YV)


def test_grad_and_vjp_record_in_place_updates():
    x, y = np.asarray(XV), np.asarray(YV)
    g = gdbp.grad(updates)(x, y)
    np.testing.assert_allclose(g, torch_grads((0,))[1][0], rtol=1e-12)

    def doubled(x):
        x[1] = 3.0 * x[2]
        x -= 1.0
        return x * x

    out, vjp_fn = gdbp.vjp(doubled, x)
    np.testing.assert_allclose(out, [0.0, 64.0, 4.0])
    (gx,) = vjp_fn(np.ones(3))
    np.testing.assert_allclose(gx, [0.0, 0.0, 2 * 8.0 * 3.0 + 2 * 2.0])
    np.testing.assert_array_equal(x, XV)


def test_array_api_extra_at_set_and_add(backend):
    def f(x, v):
        xp = array_namespace(x, v)
        z = xpx.at(x)[1].set(v[0] * x[2])
        z = xpx.at(z)[0:2].add(v)
        return xp.sum(z ** 2)

    x, v = arr(backend, XV), arr(backend, [0.25, 4.0])
    gx, gv = gdbp.grad(f, argnums=(0, 1))(x, v)
    tx, tv = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (XV, [0.25, 4.0]))
    z = tx.clone()
    z[1] = tv[0] * tx[2]
    z[0:2] = z[0:2] + tv
    (z ** 2).sum().backward()
    np.testing.assert_allclose(to_numpy(gx), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(gv), tv.grad.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(to_numpy(x), XV)


def test_at_writes_in_place_on_what_f_receives():
    # array-api-extra writes into an array it deems writeable: the Tensor f gets is, and the write is recorded.
    seen = {}

    def f(x):
        out = xpx.at(x)[0].set(5.0)
        seen["same"] = out is x
        return (out * out).sum()

    np.testing.assert_allclose(gdbp.grad(f)(np.asarray(XV)), [0.0, 4.0, 6.0])
    assert seen["same"]


def test_writes_under_no_grad_inside_f_copy_first():
    x, y = np.asarray(XV), np.asarray(YV)

    def f(x, y):
        with gdbp.no_grad():
            x += 1.0                  # not recorded: the Tensor takes a copy of its own before writing
            y[0] = 7.0
        view = y[1:]                  # a view of an argument that is not differentiated ...
        view += 2.0                   # ... writes into a copy, too
        return (x * x).sum() + y[0] + view.sum()

    g = gdbp.grad(f)(x, y)
    # as in PyTorch: the write is not recorded (d(x + 1)/dx is taken as 1), the value it wrote is used
    np.testing.assert_allclose(g, 2 * (np.asarray(XV) + 1.0))
    np.testing.assert_array_equal(x, XV)
    np.testing.assert_array_equal(y, YV)


def test_nothing_is_copied_when_nothing_writes():
    x, y = np.asarray(XV), np.asarray(YV)
    seen = []

    def f(a, b):
        seen.extend([a.data, b.data])
        return (a * b).sum()

    gdbp.grad(f)(x, y)
    assert seen[0] is x and seen[1] is y


def test_nested_grad_with_in_place_updates():
    def inner(x):
        x[0] = x[1] * x[2]
        x **= 2
        return x.sum()

    def outer(x):
        g = gdbp.grad(inner)(x)
        g[2] = 0.0
        return (g * g).sum()

    x = np.asarray(XV)
    got = gdbp.grad(outer)(x)
    tx = torch.tensor(XV, dtype=torch.float64, requires_grad=True)
    t = torch.stack([tx[1] * tx[2], tx[1], tx[2]])
    (gt,) = torch.autograd.grad((t ** 2).sum(), tx, create_graph=True)
    gt = gt.clone()
    gt[2] = 0.0
    (gt * gt).sum().backward()
    np.testing.assert_allclose(got, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(x, XV)


def test_a_callers_tensor_is_not_written_either():
    w = gdbp.tensor(np.asarray(XV))

    def f(a):
        a[0] = 0.0
        return a.sum()

    g = gdbp.grad(f)(w)
    np.testing.assert_array_equal(g.numpy(), [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(w.numpy(), XV)


def test_the_object_face_keeps_pytorchs_rule_for_user_leaves():
    w = gdbp.tensor(np.asarray(XV), requires_grad=True)
    with pytest.raises(gdbp.InPlaceError, match="leaf Tensor that requires grad"):
        w[0] = 1.0
    with pytest.raises(gdbp.InPlaceError, match="leaf Tensor that requires grad"):
        w += 1.0
    np.testing.assert_array_equal(w.numpy(), XV)


def test_aux_shows_the_updated_argument_and_the_gradient_is_for_the_received_one():
    # f gets grad's own leaf for the array: updated in place, it takes the new value and node, while the
    # gradient stays the one with respect to the value f received.
    def f(x):
        x *= 3.0
        x[0] = 0.0
        return (x * x).sum(), x

    x = np.asarray(XV)
    (value, aux), g = gdbp.value_and_grad(f, has_aux=True)(x)
    np.testing.assert_allclose(aux, [0.0, 6.0, 9.0])
    np.testing.assert_allclose(value, 36.0 + 81.0)
    np.testing.assert_allclose(g, [0.0, 2 * 6.0 * 3.0, 2 * 9.0 * 3.0])
    np.testing.assert_array_equal(x, XV)


def test_a_callers_tensor_that_requires_grad_is_not_rebound():
    w = gdbp.tensor(np.asarray(XV), requires_grad=True)

    def f(a):
        a += 1.0
        return (a * a).sum()

    g = gdbp.grad(f)(w)
    np.testing.assert_allclose(g.numpy(), 2 * (np.asarray(XV) + 1.0))
    assert w.is_leaf and w.requires_grad and w.grad is None
    np.testing.assert_array_equal(w.numpy(), XV)


def test_an_outer_transforms_leaf_keeps_its_identity_inside_a_nested_grad():
    # Inside an outer grad, the inner one gets the outer Tensor: its in-place update goes on an alias.
    def inner(x):
        x -= 2.0
        return (x ** 3).sum()

    def outer(x):
        g = gdbp.grad(inner)(x)
        return (g * x).sum()

    got = gdbp.grad(outer)(np.asarray(XV))
    tx = torch.tensor(XV, dtype=torch.float64, requires_grad=True)
    (gt,) = torch.autograd.grad(((tx - 2.0) ** 3).sum(), tx, create_graph=True)
    (gt * tx).sum().backward()
    np.testing.assert_allclose(got, tx.grad.numpy(), rtol=1e-12)


def test_compiled_grad_of_a_closed_over_array_updated_in_place():
    # The leaf grad makes for a closed-over array is that array at each replay, not a parameter of the plan.
    a = np.asarray(XV)

    def step(y):
        def f(x):
            x += y
            return (x * x).sum()
        return gdbp.grad(f)(a)

    compiled = gdbp.compile(step)
    for shift in (1.0, 2.0, -0.5):
        y = np.full(3, shift)
        np.testing.assert_array_equal(compiled(y), 2 * (a + shift))
        a[1] += 1.0  # a closed-over array is used as it is at each replay
    assert compiled.traces == 1
    np.testing.assert_array_equal(a, np.asarray(XV) + [0.0, 3.0, 0.0])


def test_compiled_writes_under_no_grad_copy_the_array_at_every_replay():
    # The copy a write into a lent array takes is a step of the plan: a replay copies the array as it is then.
    a = np.asarray(XV)

    def step(y):
        def f(x):
            with gdbp.no_grad():
                x += y
                x[1] = 2.0 * x[2]
            return (x * x).sum()
        return gdbp.grad(f)(a)

    compiled = gdbp.compile(step)
    for shift in (1.0, 2.0, -3.0):
        y = np.full(3, shift)
        np.testing.assert_array_equal(compiled(y), step(y))
        a[0] += 10.0  # a closed-over array is read as it is at each call; the writes never reach it
    np.testing.assert_array_equal(a, np.asarray(XV) + [30.0, 0.0, 0.0])
    assert compiled.traces == 1
