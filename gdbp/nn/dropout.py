"""Dropout: zero each element with probability p while training, scale the rest by 1/(1-p)."""

from __future__ import annotations

import operator
import reprlib

from .. import backends
from ..backprop import Tensor, trace
from . import init
from ._util import as_tensor
from .module import Module

__all__ = ["dropout", "Dropout"]


def _check_p(p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must lie in [0, 1], got {p}")
    return float(p)


def _backend(x):
    return x.backend if isinstance(x, Tensor) else backends.backend_of(x)


def dropout(x, p: float = 0.5, training: bool = True, *, rng=None, seed=None):
    """Inverted dropout: y = x * m / (1 - p), m_i ~ Bernoulli(1 - p); the identity when not training.

    Parameters
    ----------
    x : Tensor or array
    p : float
        The probability of dropping an element.
    training : bool
        False gives x back unchanged.
    rng : stream, optional
        A stream from :func:`gdbp.backends.device_rng` on x's backend.
    seed : int, optional
        Seed a fresh stream instead. With neither, a seed is drawn from the
        default stream of :mod:`gdbp.nn.init`.

    Notes
    -----
    The mask is drawn where x lives: on CPU backends from the host stream
    (the same mask on NumPy, torch and array-api-strict for one seed), on
    GPUs by the library's own generator (deterministic per seed, but a
    different mask). As in PyTorch, p = 1 gives zeros.
    """
    p = _check_p(p)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    backend = _backend(x)
    if rng is not None and seed is not None:
        raise TypeError("dropout: pass rng= or seed=, not both")
    if rng is not None and getattr(rng, "backend", None) is not backend:
        raise TypeError(
            f"dropout: rng must be a stream on x's backend ({backend.spec}); make one with "
            "gdbp.backends.device_rng(seed, backend)"
        )
    x = as_tensor(x)
    # The mask is drawn outside the graph; under gdbp.compile each replay draws a new one, as a call would.
    scale = trace.external(_mask, rng, seed, backend, tuple(x.shape), x.dtype, p)
    return x * scale


def _mask(rng, seed, backend, shape, dtype, p):
    """m / (1 - p) with m_i ~ Bernoulli(1 - p), drawn from rng (or a fresh stream for seed, or a drawn seed)."""
    if rng is None:
        rng = backends.device_rng(seed if seed is not None else init.default_rng().seed_int(), backend)
    xp = backend.xp
    return xp.astype(rng.random(shape, dtype=dtype) >= p, dtype) * (1.0 / (1.0 - p))


def _state_seed(state) -> int:
    """The seed of a generator state taken by :meth:`Dropout.rng_state`, checked."""
    seed = state.get("seed") if isinstance(state, dict) else None
    try:
        if isinstance(seed, bool):
            raise TypeError
        seed = operator.index(seed)
    except TypeError:
        seed = -1
    if seed < 0:
        raise ValueError(
            f"Dropout: a generator state is {{'seed': int >= 0, 'stream': ...}}, got {reprlib.repr(state)}"
        )
    return seed


class Dropout(Module):
    """Inverted dropout (see :func:`dropout`); the identity in eval mode.

    Parameters
    ----------
    p : float
        The probability of dropping an element (default 0.5).
    seed : int, optional
        Seeds the stream of masks: the same seed gives the same sequence of
        masks on a given backend. Default: drawn from the default stream of
        :mod:`gdbp.nn.init` when the layer is built. Moving the layer's
        inputs to another backend restarts the stream from the seed there.
    """

    def __init__(self, p: float = 0.5, seed: int | None = None):
        super().__init__()
        self.p = _check_p(p)
        self.seed = seed if seed is not None else init.default_rng().seed_int()
        self._stream = None
        self._saved_state = None  # restored into the stream when it is next made

    def reset(self) -> None:
        """Restart the stream of masks from the seed."""
        self._stream = None
        self._saved_state = None

    def rng_state(self) -> dict:
        """The seed and the position in the stream of masks (saved by :func:`gdbp.save`)."""
        if self._stream is None:
            return {"seed": self.seed, "stream": self._saved_state}
        return {"seed": self.seed, "stream": self._stream.get_state()}

    def set_rng_state(self, state: dict) -> None:
        """Continue the stream of masks from a state taken by :meth:`rng_state`.

        Raises
        ------
        ValueError
            The state is not one :meth:`rng_state` gives (see :meth:`check_rng_state`);
            nothing is changed then.
        """
        self.check_rng_state(state)
        self.seed = _state_seed(state)
        self._stream = None
        self._saved_state = state.get("stream")

    def check_rng_state(self, state: dict) -> None:
        """Check that ``state`` is one :meth:`rng_state` gives, changing nothing.

        The seed must be an int >= 0; the stream position None (not drawn
        yet), a host stream's position (tried on a throwaway host generator)
        or a torch CUDA generator's bytes. Whether the backend the masks are
        next drawn on can continue that position is found when they are drawn
        (a CuPy generator cannot take one).

        Raises
        ------
        ValueError
            The state is malformed.
        """
        seed = _state_seed(state)
        stream = state.get("stream")
        if stream is None:
            return
        if isinstance(stream, list):  # torch's generator state: bytes
            if all(type(b) is int and 0 <= b < 256 for b in stream):
                return
            raise ValueError("Dropout: a torch generator's saved position is a list of bytes (ints in [0, 256))")
        try:
            backends.host_rng(seed).set_state(stream)
        except Exception as exc:  # NumPy refuses a malformed position in several ways
            raise ValueError(f"Dropout: the saved stream position is not a host generator's: {exc!r}"[:300]) from None

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        backend = _backend(x)
        if self._stream is None or self._stream.backend is not backend:
            self._stream = backends.device_rng(self.seed, backend)
            if self._saved_state is not None:
                self._stream.set_state(self._saved_state)
                self._saved_state = None
        return dropout(x, self.p, True, rng=self._stream)

    def extra_repr(self):
        return f"p={self.p}"
