"""Seeded random numbers for every backend.

Two kinds of stream:

- :func:`host_rng` draws on the host with NumPy's PCG64 and hands the values
  to any backend in any dtype. Values are drawn in float64 and rounded to the
  target dtype on the host, so the same seed gives bit-equal arrays on every
  backend (what weight initialisation needs).
- :func:`device_rng` is bound to one backend and draws where its arrays live,
  from a counter-based generator whose state is gdbp's (:class:`CounterStream`):
  a key and a counter, saved and restored as two integers, so that a resumed
  run continues exactly on every backend. The numbers are NumPy's Philox
  (:mod:`gdbp.backends._philox`): on CPU backends drawn by NumPy and handed
  over, on CuPy computed on the GPU by one kernel (no host-to-device copy per
  draw), with the same bits; only torch on CUDA, which has no 64-bit unsigned
  arithmetic, draws from its own generator, seeded from the key and counter.
"""

from __future__ import annotations

import math

import numpy as np

from . import _arrays, _philox, _resolve
from ._backend import Backend

__all__ = ["HostGenerator", "CounterStream", "host_rng", "device_rng", "numpy_dtype", "check_seed"]

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


class CounterStream:
    """A seeded stream of U[0, 1) draws whose whole state is gdbp's: a key and a counter.

    Each draw is a pure function of ``(key, counter)`` (Philox4x64-10, see
    :mod:`gdbp.backends._philox`), made by the backend's kernels where its
    arrays live (``kernels.uniform``); the counter then advances by the
    blocks the draw used. Saving the two integers and setting them again
    resumes the stream exactly, on every backend, whatever its library's own
    generator can or cannot say about itself. Making a stream allocates
    nothing on the device.

    Attributes
    ----------
    backend : Backend
    seed : int
    key, counter : int
    """

    def __init__(self, seed: int, backend):
        self.backend = backend
        self.seed = seed
        self.key = self.key_of(seed)
        self.counter = 0

    key_of = staticmethod(_philox.key_of)  # the 128-bit key of a seed
    check_state = staticmethod(_philox.check_state)  # (key, counter) of a state, or a ValueError

    def __repr__(self) -> str:
        return f"CounterStream(seed={self.seed}, counter={self.counter}, backend={self.backend.spec!r})"

    def random(self, shape, dtype=None):
        """Draws from U[0, 1) of the given shape, as an array of the stream's backend in ``dtype`` (float32)."""
        shape = _shape(shape)
        n = math.prod(shape)
        after = _philox.advance(self.counter, n)
        out = self.backend.kernels.uniform(self.key, self.counter, shape, dtype, self.backend)
        self.counter = after
        return out

    def get_state(self) -> dict:
        """``{"key": int, "counter": int}``: JSON-ready, and all there is to the stream."""
        return {"key": self.key, "counter": self.counter}

    def set_state(self, state: dict) -> None:
        """Continue from a state taken by :meth:`get_state` (a ValueError, changing nothing, if it is not one)."""
        self.key, self.counter = _philox.check_state(state)


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
    CounterStream
        With ``.random(shape, dtype=None)`` giving an array of the backend
        (float32 unless ``dtype`` says otherwise), ``.backend``, ``.seed``,
        and ``get_state()`` / ``set_state(state)``: ``{"key": int, "counter": int}``.

    Notes
    -----
    One seed gives the same numbers on NumPy, torch (CPU), array-api-strict
    and CuPy; torch on CUDA gives its own (deterministic per seed and state).
    """
    target = _resolve.resolve(backend)
    return CounterStream(check_seed(seed), target)
