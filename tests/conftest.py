"""Shared fixtures and helpers of the gdbp test suite.

Every test that runs on more than one backend takes its parameters from
:func:`backend_params`, the one generator of backends: ``"numpy"``,
``"array_api_strict"`` and ``"torch"`` (CPU) always, and ``"cupy"`` marked
``gpu`` and skipped, with the reason :func:`gdbp.backends.probe_cuda` gives,
where no CUDA device answers.

Fixtures
--------
backend
    Parametrised over :func:`backend_params`; the resolved
    :class:`gdbp.backends.Backend` (use ``backend.name``, ``backend.xp``,
    ``backend.spec``, ``backend.device``).
float_dtype
    Parametrised over ``"float32"`` and ``"float64"`` (dtype names, as
    :func:`random_array` takes them).
rng
    A ``numpy.random.Generator`` seeded from the test's node id, so that each
    test draws its own numbers and a rerun draws the same ones.
make
    ``make(shape, dtype="float64", low=-1.0, high=1.0)``: a random array on
    the ``backend`` fixture's backend, drawn from ``rng``.

Helpers (``from conftest import ...``)
--------------------------------------
backend_params(include=BACKEND_NAMES)
    The ``pytest.param`` list behind the ``backend`` fixture; pass it to
    ``pytest.mark.parametrize`` to parametrise over backend names directly.
random_array(rng, shape, backend="numpy", dtype="float64", low=-1.0, high=1.0)
    Uniform random numbers in ``[low, high)`` as an array of ``backend``.
random_ints(rng, shape, high, backend="numpy")
    Integers in ``[0, high)`` (int64) as an array of ``backend``.
to_numpy(x)
    A host NumPy array of x (an array of any backend or a gdbp Tensor).
"""

from __future__ import annotations

import os
import zlib

# scipy reads this once, when it is first imported: scipy's array-API dispatch (and scikit-learn's, which
# needs it) must see gdbp's namespace in tests/test_clients.py, whichever test imports scipy first.
os.environ["SCIPY_ARRAY_API"] = "1"

import numpy as np
import pytest

import gdbp
from gdbp import backends

BACKEND_NAMES = ("numpy", "array_api_strict", "torch", "cupy")
CPU_BACKENDS = ("numpy", "array_api_strict", "torch")

_cuda_ok, _cuda_why = backends.probe_cuda()


def backend_params(include=BACKEND_NAMES):
    """Backend names as pytest parameters; ``cupy`` is marked ``gpu`` and skipped without a CUDA device.

    Parameters
    ----------
    include : iterable of str
        The backend names wanted, among :data:`BACKEND_NAMES`.

    Returns
    -------
    list of pytest.param
    """
    params = []
    for name in include:
        if name not in BACKEND_NAMES:
            raise ValueError(f"unknown backend {name!r}: choose among {BACKEND_NAMES}")
        if name == "cupy":
            marks = [pytest.mark.gpu, pytest.mark.skipif(not _cuda_ok, reason=_cuda_why)]
            params.append(pytest.param(name, marks=marks, id=name))
        else:
            params.append(pytest.param(name, id=name))
    return params


def random_array(rng, shape, backend="numpy", dtype="float64", low=-1.0, high=1.0):
    """Uniform random numbers in ``[low, high)`` as an array of ``backend`` in ``dtype``.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple of int
    backend : str or gdbp.backends.Backend
    dtype : {"float32", "float64"}
    low, high : float
    """
    host = np.asarray(rng.uniform(low, high, size=shape), dtype=np.dtype(dtype))
    return backends.transfer(host, backend)


def random_ints(rng, shape, high, backend="numpy"):
    """Integers in ``[0, high)`` (int64) as an array of ``backend``."""
    host = np.asarray(rng.integers(0, high, size=shape), dtype=np.int64)
    return backends.transfer(host, backend)


def to_numpy(x):
    """A host NumPy array of x (an array of any backend or a gdbp Tensor)."""
    if isinstance(x, gdbp.Tensor):
        x = x.data
    return np.asarray(backends.to_numpy(x))


@pytest.fixture(params=backend_params())
def backend(request):
    """The resolved :class:`gdbp.backends.Backend` of each backend parameter."""
    return backends.resolve(request.param)


@pytest.fixture(params=["float32", "float64"])
def float_dtype(request):
    """A floating dtype name."""
    return request.param


@pytest.fixture
def rng(request):
    """A numpy Generator seeded from the test's node id (reproducible, distinct per test)."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture
def make(backend, rng):
    """``make(shape, dtype="float64", low=-1.0, high=1.0)``: a random array on ``backend``."""

    def make(shape, dtype="float64", low=-1.0, high=1.0):
        return random_array(rng, shape, backend, dtype, low, high)

    return make
