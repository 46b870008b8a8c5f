"""Seeded random numbers for every backend.

Two kinds of stream:

- :func:`host_rng` draws on the host with NumPy's PCG64 and hands the values
  to any backend in any dtype. Values are drawn in float64 and rounded to the
  target dtype on the host, so the same seed gives bit-equal arrays on every
  backend (what weight initialisation needs).
- :func:`device_rng` is bound to one backend and draws where its arrays live.
  On CPU backends it is the host stream (so NumPy, torch and array-api-strict
  see the same numbers); on GPU backends (CuPy, torch on CUDA) it is the
  library's own generator on the device, so that a draw per training step
  (a dropout mask) costs no host-to-device copy. A GPU stream is deterministic
  for a given seed, but its numbers differ from the CPU stream's.
"""

from __future__ import annotations

import numpy as np

from . import _arrays, _resolve
from ._backend import Backend

__all__ = ["HostGenerator", "HostStream", "host_rng", "device_rng", "numpy_dtype", "check_seed"]

_NAMES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
          "uint8", "uint16", "uint32", "uint64", "bool")


def numpy_dtype(backend: Backend, dtype):
    """The NumPy dtype with the same name as a backend's dtype (``None``: float32)."""
    if dtype is None:
        return np.dtype(np.float32)
    if isinstance(dtype, str):
        return np.dtype(dtype)
    for name in _NAMES:
        if getattr(backend.xp, name, None) == dtype:
            return np.dtype(name)
    raise TypeError(f"{dtype!r} is not a dtype of backend {backend.spec}")


def _shape(shape) -> tuple:
    return (shape,) if isinstance(shape, int) else tuple(shape)


def check_seed(seed) -> int:
    """A seed as a Python int >= 0, or a TypeError naming it."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TypeError(f"a seed is a non-negative Python int, got {seed!r}")
    return seed


class HostGenerator:
    """A seeded NumPy stream whose draws come back as arrays of a target backend.

    Parameters
    ----------
    seed : int
        The seed of the PCG64 bit generator.

    Notes
    -----
    Every draw is made in float64 and rounded to ``dtype`` on the host before
    the transfer, so a float32 array is bit-equal on every backend.
    """

    def __init__(self, seed: int):
        self.seed = check_seed(seed)
        self._g = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"HostGenerator(seed={self.seed})"

    def _out(self, host, backend, dtype):
        target = _resolve.resolve(backend)
        return _arrays.transfer(host.astype(numpy_dtype(target, dtype)), target)

    def uniform(self, shape, low: float = 0.0, high: float = 1.0, *, backend=None, dtype=None):
        """Draws from U[low, high) of the given shape, on ``backend`` (default: current) in ``dtype`` (float32)."""
        return self._out(self._g.uniform(low, high, _shape(shape)), backend, dtype)

    def normal(self, shape, mean: float = 0.0, std: float = 1.0, *, backend=None, dtype=None):
        """Draws from N(mean, std^2) of the given shape, on ``backend`` in ``dtype`` (float32)."""
        return self._out(self._g.normal(mean, std, _shape(shape)), backend, dtype)

    def random(self, shape, *, backend=None, dtype=None):
        """Draws from U[0, 1), on ``backend`` in ``dtype`` (float32)."""
        return self._out(self._g.random(_shape(shape)), backend, dtype)

    def integers(self, low: int, high: int, shape, *, backend=None, dtype=None):
        """Integers drawn uniformly from [low, high), on ``backend`` in ``dtype`` (default int64)."""
        target = _resolve.resolve(backend)
        dtype = target.xp.int64 if dtype is None else dtype
        return _arrays.transfer(self._g.integers(low, high, _shape(shape)).astype(numpy_dtype(target, dtype)), target)

    def get_state(self) -> dict:
        """The generator's state, as JSON-ready Python values."""
        return self._g.bit_generator.state

    def set_state(self, state: dict) -> None:
        """Restore a state taken by :meth:`get_state`."""
        self._g.bit_generator.state = state

    def seed_int(self) -> int:
        """A fresh seed (a Python int) for another stream, drawn from this one."""
        return int(self._g.integers(0, 2**63 - 1))


def host_rng(seed: int) -> HostGenerator:
    """A seeded host stream; see :class:`HostGenerator`."""
    return HostGenerator(seed)


class HostStream:
    """The host stream bound to a CPU backend: draws come back as arrays of that backend."""

    def __init__(self, seed, backend):
        self.backend = backend
        self.seed = seed
        self._host = HostGenerator(seed)

    def random(self, shape, dtype=None):
        return self._host.random(shape, backend=self.backend, dtype=dtype)

    def get_state(self):
        return self._host.get_state()

    def set_state(self, state) -> None:
        self._host.set_state(state)


def device_rng(seed: int, backend=None):
    """A seeded stream of U[0, 1) draws made where ``backend``'s arrays live.

    Parameters
    ----------
    seed : int
        The seed.
    backend : str or Backend, optional
        Default: the current backend.

    Returns
    -------
    object
        With ``.random(shape, dtype=None)`` giving an array of the backend
        (float32 unless ``dtype`` says otherwise), ``.backend``, ``.seed``,
        and ``get_state()`` / ``set_state(state)`` (JSON-ready values; not
        available for CuPy, whose generator does not expose its state).

    Notes
    -----
    CPU backends share the host stream (same seed, same numbers on NumPy,
    torch and array-api-strict). CuPy and torch on CUDA use their own
    generators on the device: deterministic per seed, different numbers.
    """
    target = _resolve.resolve(backend)
    return target.kernels.stream(check_seed(seed), target)

