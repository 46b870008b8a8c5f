"""Learning-rate schedules against torch.optim.lr_scheduler, their state, and their input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gdbp import backends
from gdbp.descent import (
    SGD,
    ConstantLR,
    CosineAnnealingLR,
    ExponentialLR,
    LinearWarmup,
    ReduceLROnPlateau,
    StepLR,
)
from gdbp.nn import Parameter

from conftest import backend_params

SCHEDULES = [
    (ConstantLR, "ConstantLR", dict(factor=0.25, total_iters=4)),
    (ConstantLR, "ConstantLR", dict()),
    (StepLR, "StepLR", dict(step_size=3, gamma=0.5)),
    (ExponentialLR, "ExponentialLR", dict(gamma=0.9)),
    (CosineAnnealingLR, "CosineAnnealingLR", dict(T_max=10, eta_min=0.01)),
    (LinearWarmup, "LinearLR", dict(start_factor=0.1, end_factor=1.0, total_iters=6)),
    (LinearWarmup, "LinearLR", dict(start_factor=0.5, end_factor=0.2, total_iters=4)),
]
IDS = [f"{cls.__name__}-{i}" for i, (cls, _, _) in enumerate(SCHEDULES)]


def gdbp_optimizer(lr=0.5):
    return SGD([Parameter(np.zeros(2))], lr=lr)


def torch_optimizer(lr=0.5):
    return torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=lr)


@pytest.mark.parametrize("cls, torch_name, kw", SCHEDULES, ids=IDS)
def test_matches_torch(cls, torch_name, kw):
    opt, topt = gdbp_optimizer(), torch_optimizer()
    sched = cls(opt, **kw)
    tsched = getattr(torch.optim.lr_scheduler, torch_name)(topt, **kw)
    lrs, tlrs = [opt.lr], [topt.param_groups[0]["lr"]]
    for _ in range(25):  # beyond T_max: the cosine climbs back, as torch's does
        topt.step()
        tsched.step()
        sched.step()
        lrs.append(opt.lr)
        tlrs.append(topt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-12, atol=1e-15)
    assert len(set(lrs)) > 1 or cls is ConstantLR  # the schedule did change the learning rate
    assert sched.lr == opt.lr


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(mode="max", factor=0.5, patience=2, threshold=0.1, threshold_mode="abs", cooldown=2, min_lr=0.02),
        dict(mode="min", factor=0.3, patience=1, threshold=0.05, threshold_mode="rel", cooldown=1),
        dict(mode="min", factor=0.5, patience=0, min_lr=0.1),
    ],
)
def test_reduce_on_plateau_matches_torch(kw, rng):
    opt, topt = gdbp_optimizer(), torch_optimizer()
    sched = ReduceLROnPlateau(opt, **kw)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    # A metric that improves, stalls, wobbles and improves again (and once is NaN).
    metrics = list(np.linspace(1.0, 0.5, 6)) + [0.5] * 14 + list(rng.uniform(0.4, 0.6, 20)) + [math.nan, 0.3, 0.2]
    lrs, tlrs = [], []
    for m in metrics:
        topt.step()
        tsched.step(m)
        sched.step(m)
        lrs.append(opt.lr)
        tlrs.append(topt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-12)
    assert min(lrs) < 0.5  # it did reduce


@pytest.mark.parametrize("name", backend_params(("numpy", "array_api_strict", "torch")))
def test_reduce_on_plateau_takes_a_backend_scalar(name):
    opt = gdbp_optimizer()
    sched = ReduceLROnPlateau(opt, patience=0)
    xp = backends.resolve(name).xp
    sched.step(xp.asarray(1.0))
    sched.step(xp.asarray(2.0))
    assert opt.lr == pytest.approx(0.05)


@pytest.mark.parametrize("cls, torch_name, kw", SCHEDULES, ids=IDS)
def test_state_dict_resumes_exactly(cls, torch_name, kw):
    opt = gdbp_optimizer()
    sched = cls(opt, **kw)
    for _ in range(5):
        sched.step()
    saved_opt, saved = opt.state_dict(), sched.state_dict()
    expected = []
    for _ in range(8):
        sched.step()
        expected.append(opt.lr)

    opt2 = gdbp_optimizer(lr=9.0)
    sched2 = cls(opt2, **kw)  # base_lr 9.0 here; the state brings back 0.5
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved)
    got = []
    for _ in range(8):
        sched2.step()
        got.append(opt2.lr)
    assert got == expected


def test_reduce_on_plateau_state_dict_resumes():
    metrics = [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    opt = gdbp_optimizer()
    sched = ReduceLROnPlateau(opt, patience=2, cooldown=1)
    for m in metrics[:4]:
        sched.step(m)
    saved_opt, saved = opt.state_dict(), sched.state_dict()
    for m in metrics[4:]:
        sched.step(m)
    opt2 = gdbp_optimizer()
    sched2 = ReduceLROnPlateau(opt2)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved)
    for m in metrics[4:]:
        sched2.step(m)
    assert opt2.lr == opt.lr < 0.5
    assert sched2.state_dict() == sched.state_dict()


def test_load_state_dict_of_another_schedule_fails():
    saved = StepLR(gdbp_optimizer(), step_size=2).state_dict()
    with pytest.raises(ValueError, match="StepLR"):
        ExponentialLR(gdbp_optimizer(), gamma=0.9).load_state_dict(saved)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda o: StepLR(o, step_size=0), "step_size"),
        (lambda o: StepLR(o, step_size=2, gamma=-0.1), "gamma"),
        (lambda o: ExponentialLR(o, gamma=math.nan), "gamma"),
        (lambda o: CosineAnnealingLR(o, T_max=0), "T_max"),
        (lambda o: CosineAnnealingLR(o, T_max=5, eta_min=-1.0), "eta_min"),
        (lambda o: ConstantLR(o, factor=1.5), "factor"),
        (lambda o: LinearWarmup(o, start_factor=0.0), "start_factor"),
        (lambda o: LinearWarmup(o, total_iters=0), "total_iters"),
        (lambda o: ReduceLROnPlateau(o, mode="lowest"), "mode"),
        (lambda o: ReduceLROnPlateau(o, factor=1.0), "factor"),
        (lambda o: ReduceLROnPlateau(o, patience=-1), "patience"),
        (lambda o: ReduceLROnPlateau(o, threshold_mode="relative"), "threshold_mode"),
    ],
)
def test_bad_settings_are_named(make, name):
    with pytest.raises(ValueError, match=name):
        make(gdbp_optimizer())


def test_plateau_needs_the_metric():
    with pytest.raises(TypeError, match="metric"):
        ReduceLROnPlateau(gdbp_optimizer()).step()


def test_schedule_needs_an_optimizer():
    with pytest.raises(TypeError, match="lr"):
        StepLR(object(), step_size=2)
