"""Flat parameter storage (``flat=True``): the same bits as per-tensor steps, and its safety checks."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from conftest import to_numpy
from train_helpers import blobs, host_state, mlp

import gdbp
from gdbp import backends, nn
from gdbp.descent import SGD, Adagrad, Adam, AdamW, RMSprop
from gdbp.descent.flat import check_backend
from gdbp.nn import Parameter
from gdbp.train import fit

CONFIGS = [
    (SGD, dict(lr=0.1)),
    (SGD, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    (SGD, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    (Adam, dict(lr=0.1)),
    (Adam, dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True)),
    (AdamW, dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    (RMSprop, dict(lr=0.01)),
    (RMSprop, dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1)),
    (Adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2, eps=1e-8)),
]
CONFIG_IDS = [f"{cls.__name__}-{i}" for i, (cls, _) in enumerate(CONFIGS)]

# Two float32 buffers' worth of shapes (a 0-d one among them) and a float64 parameter: two groups.
SHAPES = [((3, 4), "float32"), ((4,), "float32"), ((2, 3, 2), "float32"), ((), "float32"), ((5,), "float64")]
STEPS = 6
NO_GRAD_AT = (2, 1)  # at step 2, parameter 1 has no gradient
REBIND_AT = (4, 0)  # before step 4, parameter 0 is rebound to a new array


def draws(rng):
    """Starting values and a gradient per step for every parameter, as host arrays."""
    start = [rng.normal(size=s).astype(d) for s, d in SHAPES]
    grads = [[rng.normal(size=s).astype(d) for s, d in SHAPES] for _ in range(STEPS)]
    rebound = rng.normal(size=SHAPES[REBIND_AT[1]][0]).astype(SHAPES[REBIND_AT[1]][1])
    return start, grads, rebound


def run(cls, hyper, backend, data, flat, steps=STEPS):
    """Steps with the given gradients; returns the parameters, the optimizer and host snapshots per step."""
    start, grads, rebound = data
    params = [Parameter(backends.transfer(w, backend)) for w in start]
    opt = cls(params, flat=flat, **hyper)
    trace = []
    for k in range(steps):
        opt.zero_grad()
        if k == REBIND_AT[0]:
            params[REBIND_AT[1]].data = backends.transfer(rebound, backend)
        for j, (p, g) in enumerate(zip(params, grads[k])):
            if (k, j) != NO_GRAD_AT:
                p.grad = gdbp.Tensor(backends.transfer(g, backend))
        opt.step()
        trace.append(([to_numpy(p).copy() for p in params], host_state_dict(opt)))
    return params, opt, trace


def host_state_dict(opt) -> dict:
    saved = opt.state_dict()
    saved["state"] = {i: {k: v if isinstance(v, int) else to_numpy(v).copy() for k, v in e.items()}
                      for i, e in saved["state"].items()}
    return saved


def assert_same_state(a: dict, b: dict) -> None:
    """Two host state dicts, bit for bit (and in the same format)."""
    assert a["optimizer"] == b["optimizer"] and a["step"] == b["step"]
    assert a["hyperparameters"] == b["hyperparameters"]
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        assert list(a["state"][i]) == list(b["state"][i]), i
        for k, v in a["state"][i].items():
            w = b["state"][i][k]
            if isinstance(v, int):
                assert type(w) is int and v == w, (i, k)
            else:
                assert v.dtype == w.dtype and v.shape == w.shape and np.array_equal(v, w), (i, k)


# --- the same bits as per-tensor steps ------------------------------------------------------


@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
def test_flat_steps_are_bit_identical(cls, hyper, backend, rng):
    data = draws(rng)
    _, _, flat = run(cls, hyper, backend, data, flat=True)
    _, _, each = run(cls, hyper, backend, data, flat=False)
    for k, ((wf, sf), (we, se)) in enumerate(zip(flat, each)):
        for j, (a, b) in enumerate(zip(wf, we)):
            assert a.dtype == b.dtype and np.array_equal(a, b), f"parameter {j} after step {k + 1}"
        assert_same_state(sf, se)
    assert not np.array_equal(flat[-1][0][2], data[0][2])  # the steps moved the weights


@pytest.mark.parametrize("cls, hyper", [CONFIGS[1], CONFIGS[4]], ids=[CONFIG_IDS[1], CONFIG_IDS[4]])
def test_a_parameter_without_gradient_stays_and_its_state_waits(cls, hyper, backend, rng):
    data = draws(rng)
    step, j = NO_GRAD_AT
    _, _, trace = run(cls, hyper, backend, data, flat=True, steps=step + 1)
    (w_before, s_before), (w_after, s_after) = trace[step - 1], trace[step]
    assert np.array_equal(w_before[j], w_after[j])  # did not move
    assert not np.array_equal(w_before[0], w_after[0])  # the others did
    waiting, moving = s_after["state"][j], s_after["state"][0]
    for k, v in s_before["state"][j].items():  # its state did not advance
        assert np.array_equal(waiting[k], v), k
    if "step" in waiting:
        assert waiting["step"] == step and moving["step"] == step + 1


def test_a_parameter_that_starts_late_gets_fresh_state(backend, rng):
    # SGD's momentum buffer starts at the first gradient, whenever that comes.
    start, grads, _ = draws(rng)

    def sgd(flat):
        params = [Parameter(backends.transfer(w, backend)) for w in start]
        opt = SGD(params, lr=0.1, momentum=0.9, flat=flat)
        for k in range(3):
            for j, (p, g) in enumerate(zip(params, grads[k])):
                p.grad = None if (j == 2 and k < 2) else backends.transfer(g, backend)
            opt.step()
        return [to_numpy(p).copy() for p in params], host_state_dict(opt)

    (w_flat, s_flat), (w_each, s_each) = sgd(True), sgd(False)
    assert_same_state(s_flat, s_each)
    for a, b in zip(w_flat, w_each):
        assert np.array_equal(a, b)


def test_a_rebound_parameter_is_copied_into_the_buffer(backend, rng):
    # (That the copied value is stepped exactly as per tensor, test_flat_steps_are_bit_identical checks.)
    params, opt, _ = run(SGD, dict(lr=0.1), backend, draws(rng), flat=True)
    value = np.full(SHAPES[0][0], 0.5, np.float32)
    caller = backends.transfer(value, backend)
    params[0].data = caller
    params[0].grad = backends.transfer(np.ones(SHAPES[0][0], np.float32), backend)
    opt.step()
    moved = to_numpy(params[0])
    np.testing.assert_allclose(moved, 0.4, rtol=1e-6)  # the new value was stepped...
    assert np.array_equal(to_numpy(caller), value)  # ...in the buffer: the caller's array is not written


def test_rebinding_to_another_shape_or_dtype_is_an_error():
    p = Parameter(np.ones((2, 3), np.float32))
    opt = Adam([p], flat=True)
    p.data = np.ones((3, 2), np.float32)
    with pytest.raises(gdbp.ShapeError, match="make the optimizer again"):
        opt.zero_grad()
    p.data = np.ones((2, 3), np.float64)
    p.grad = np.ones((2, 3), np.float64)
    with pytest.raises(TypeError, match="float64"):
        opt.step()


# --- state dicts across flat and per-tensor optimizers ---------------------------------------


@pytest.mark.parametrize("save_flat", [True, False], ids=["flat-to-tensors", "tensors-to-flat"])
def test_state_dicts_load_across_flat_and_per_tensor(save_flat, backend, rng):
    data = draws(rng)
    grads = data[1]
    hyper = dict(lr=0.05, amsgrad=True)
    params, opt, trace = run(Adam, hyper, backend, data, flat=save_flat, steps=3)
    saved = opt.state_dict()
    other_params = [Parameter(p.data) for p in params]  # a copy of the weights
    other = Adam(other_params, flat=not save_flat, **hyper)
    other.load_state_dict(saved)
    assert_same_state(host_state_dict(other), trace[-1][1])
    for k in range(3, STEPS):  # then the two go on in step
        for p, q, g in zip(params, other_params, grads[k]):
            p.grad = backends.transfer(g, backend)
            q.grad = backends.transfer(g, backend)
        opt.step()
        other.step()
        for p, q in zip(params, other_params):
            assert np.array_equal(to_numpy(p), to_numpy(q))
        assert_same_state(host_state_dict(opt), host_state_dict(other))


def test_a_failed_load_changes_nothing():
    p = Parameter(np.ones(3, np.float32))
    opt = Adam([p], flat=True)
    p.grad = np.ones(3, np.float32)
    opt.step()
    before = host_state_dict(opt)
    with pytest.raises(ValueError):
        opt.load_state_dict({**opt.state_dict(), "state": {5: before["state"][0]}})
    assert_same_state(host_state_dict(opt), before)


# --- with the backward pass, fit and modules -----------------------------------------------


def test_backward_writes_gradients_into_the_flat_buffer():
    model = mlp(seed=1)
    x, y = blobs(n=16)
    opt = Adam(model.parameters(), lr=1e-2, flat=True)
    opt.zero_grad()
    nn.cross_entropy(model(gdbp.Tensor(x)), gdbp.Tensor(y)).backward()
    grads = [p.grad.data for p in model.parameters()]
    base = grads[0].base
    assert base is not None and all(g.base is base for g in grads)  # every gradient: a view of one buffer
    del grads
    opt.step()
    opt.zero_grad()
    nn.cross_entropy(model(gdbp.Tensor(x)), gdbp.Tensor(y)).backward()
    assert all(p.grad.data.base is base for p in model.parameters())  # the buffer is recycled step after step
    # A gradient someone holds across zero_grad is not overwritten by the next backward pass.
    held = model[0].weight.grad
    kept = held.data.copy()
    opt.step()
    opt.zero_grad()
    nn.cross_entropy(model(gdbp.Tensor(x[:8])), gdbp.Tensor(y[:8])).backward()
    assert np.array_equal(held.data, kept)
    assert not np.array_equal(model[0].weight.grad.data, kept)


@pytest.mark.parametrize("cls", [SGD, Adam], ids=["SGD", "Adam"])
def test_fit_with_a_flat_optimizer_is_bit_identical(cls, backend):
    x, y = blobs(backend=backend.spec)
    results = []
    for flat in (False, True):
        model = mlp(seed=2, backend=backend.spec)
        opt = cls(model.parameters(), lr=0.05, flat=flat)
        history = fit(model, nn.cross_entropy, opt, (x, y), epochs=2, batch_size=16, progress=False)
        results.append((host_state(model), history["cost"], host_state_dict(opt)))
    (w0, c0, s0), (w1, c1, s1) = results
    assert c0 == c1 and c0[-1] < c0[0]
    for k in w0:
        assert np.array_equal(w0[k], w1[k]), k
    assert_same_state(s0, s1)


def test_module_load_state_dict_reaches_the_buffer():
    model = mlp(seed=3)
    opt = SGD(model.parameters(), lr=0.1, flat=True)
    target = {k: v + 1.0 for k, v in host_state(model).items()}
    model.load_state_dict(target)
    x, y = blobs(n=8)
    opt.zero_grad()
    nn.cross_entropy(model(gdbp.Tensor(x)), gdbp.Tensor(y)).backward()
    grads = {k: p.grad.data.copy() for k, p in model.named_parameters()}
    opt.step()
    for k, p in model.named_parameters():
        np.testing.assert_array_equal(to_numpy(p), target[k] - np.float32(0.1) * grads[k])


def test_moving_the_model_after_making_a_flat_optimizer_is_an_error():
    model = mlp(seed=4)
    opt = Adam(model.parameters(), flat=True)
    model.to("torch")
    with pytest.raises(backends.BackendMismatchError, match="make the optimizer again"):
        opt.zero_grad()
    with pytest.raises(backends.BackendMismatchError, match="make the optimizer again"):
        opt.step()
    fresh = Adam(model.parameters(), flat=True)  # made again, on the new backend: works
    for p in model.parameters():
        p.grad = p.data * 0 + 1
    fresh.step()


def test_a_copied_flat_optimizer_steps_its_own_copies(backend, rng):
    data = draws(rng)
    params, opt, _ = run(Adam, dict(lr=0.1), backend, data, flat=True, steps=2)
    model_and_opt = copy.deepcopy((params, opt))
    twin_params, twin = model_and_opt
    assert twin.params[0] is twin_params[0]
    before = [to_numpy(p).copy() for p in params]
    for p, q, g in zip(params, twin_params, data[1][2]):
        p.grad = backends.transfer(g, backend)
        q.grad = backends.transfer(g, backend)
    twin.step()
    for p, q, b in zip(params, twin_params, before):
        assert np.array_equal(to_numpy(p), b)  # the original did not move
        assert not np.array_equal(to_numpy(q), b)  # the copy did
    opt.step()
    for p, q in zip(params, twin_params):
        assert np.array_equal(to_numpy(p), to_numpy(q))
    assert_same_state(host_state_dict(opt), host_state_dict(twin))


# --- where flat storage is refused ------------------------------------------------------------


def test_a_backend_without_in_place_views_is_refused():
    immutable = dataclasses.replace(backends.resolve("numpy"), mutable=False)
    with pytest.raises(ValueError, match="flat=False"):
        check_backend(immutable, "Adam")


def test_flat_is_reported():
    p = Parameter(np.ones(2, np.float32))
    assert Adam([p], flat=True).flat and "flat=True" in repr(Adam([p], flat=True))
    assert not Adam([p]).flat and "flat" not in repr(Adam([p]))
