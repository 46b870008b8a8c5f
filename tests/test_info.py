"""The inspection namespace, ``xp.__array_namespace_info__()``, as the 2024.12 standard defines it.

It reflects the backend the namespace is bound to: its device is the
default, its library's devices and dtypes are listed, and every dtype and
device it lists can make an array through the namespace.
"""

from __future__ import annotations

import numpy as np
import pytest

import gdbp
from gdbp.backprop.namespace import namespace_for

KINDS = ["bool", "signed integer", "unsigned integer", "integral", "real floating", "complex floating", "numeric"]


@pytest.fixture
def xp(backend):
    return namespace_for(backend)


def test_version(xp, backend):
    assert xp.__array_api_version__ == "2024.12"
    t = gdbp.tensor(backend.xp.ones(2, device=backend.device))
    assert t.__array_namespace__(api_version="2024.12") is xp


def test_capabilities(xp):
    caps = xp.__array_namespace_info__().capabilities()
    assert set(caps) == {"boolean indexing", "data-dependent shapes", "max dimensions"}
    assert caps["boolean indexing"] is True and caps["data-dependent shapes"] is True
    assert caps["max dimensions"] is None or caps["max dimensions"] >= 8


def test_capabilities_hold(xp, backend):
    # Boolean indexing with a gradient, and a function of data-dependent shape, as capabilities() says.
    x = gdbp.tensor(backend.xp.asarray([1.0, -2.0, 3.0], device=backend.device), requires_grad=True)
    picked = x[x > 0]
    assert picked.shape == (2,)
    picked.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 1.0])
    assert xp.unique_values(x.detach()).shape == (3,)


def test_devices_and_the_default(xp, backend):
    info = xp.__array_namespace_info__()
    devices = info.devices()
    assert isinstance(devices, list) and devices
    assert info.default_device() == backend.device and info.default_device() in devices


def test_default_dtypes_are_what_creation_gives(xp, backend):
    info = xp.__array_namespace_info__()
    for device in info.devices()[:2]:
        defaults = info.default_dtypes(device=device)
        assert {"real floating", "complex floating", "integral", "indexing"} <= set(defaults)
    defaults = info.default_dtypes()
    assert xp.asarray(1.0).dtype == defaults["real floating"]
    assert xp.asarray(1).dtype == defaults["integral"]
    assert xp.argmax(xp.asarray([1.0, 3.0])).dtype == defaults["indexing"]


@pytest.mark.parametrize("kind", KINDS + [None, ("bool", "real floating")])
def test_dtypes_of_a_kind(xp, kind):
    info = xp.__array_namespace_info__()
    found = info.dtypes(kind=kind)
    assert found
    for name, dtype in found.items():
        assert getattr(xp, name) == dtype  # the namespace exposes each one under its name
        assert xp.empty(1, dtype=dtype, device=info.default_device()).dtype == dtype
        if kind is not None:
            assert xp.isdtype(dtype, kind)
    assert "float32" in info.dtypes(kind="real floating") and "float64" in info.dtypes(kind="real floating")


def test_a_device_that_is_not_one_is_refused_by_name(xp):
    info = xp.__array_namespace_info__()
    with pytest.raises(ValueError, match=r"device 'gpu9' is not a device of gdbp's namespace .*choose among"):
        info.dtypes(device="gpu9")
    with pytest.raises(ValueError, match="gpu9"):
        info.default_dtypes(device="gpu9")
