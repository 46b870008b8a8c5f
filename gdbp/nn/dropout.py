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
    The mask is drawn where x lives, from gdbp's counter-based stream
    (:class:`gdbp.backends.CounterStream`): one seed gives the same mask on
    NumPy, torch (CPU), array-api-strict and CuPy; torch on CUDA draws its
    own. Making a stream allocates nothing on the device, so a fresh one per
    call costs no more than a seed. As in PyTorch, p = 1 gives zeros.
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


def _check_stream(seed: int, stream) -> None:
    """Check a saved stream position: None, or the ``{"key", "counter"}`` of the seed's stream."""
    if stream is None:
        return
    if (isinstance(stream, dict) and "bit_generator" in stream) or isinstance(stream, list):
        # A NumPy PCG64 state (CPU) or a torch generator's bytes (CUDA): how gdbp 0.1 saved a position.
        raise ValueError(
            f"Dropout: the saved stream position {reprlib.repr(stream)} is a library generator's state, as gdbp "
            "saved it before masks came from its own counter-based stream; that position cannot be continued. "
            "Resume from a checkpoint written by this version, or keep the weights and optimizer and restart "
            "the masks from their seed: ckpt = gdbp.load(path); model.load_state_dict(ckpt.state_dict); "
            "optimizer.load_state_dict(ckpt.optimizer_state)"
        )
    try:
        key, _ = backends.CounterStream.check_state(stream)
    except ValueError as exc:
        raise ValueError(f"Dropout: the saved stream position is not a stream's: {exc}"[:300]) from None
    if key != backends.CounterStream.key_of(seed):
        raise ValueError(f"Dropout: the saved stream's key is not the key of seed {seed}: the state was altered")


class Dropout(Module):
    """Inverted dropout (see :func:`dropout`); the identity in eval mode.

    Parameters
    ----------
    p : float
        The probability of dropping an element (default 0.5).
    seed : int, optional
        Seeds the stream of masks: the same seed gives the same sequence of
        masks (on every backend but torch on CUDA). Default: drawn from the
        default stream of :mod:`gdbp.nn.init` when the layer is built.
        Moving the layer's inputs to another backend continues the stream
        there, from the same position.
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
        yet) or ``{"key": int, "counter": int}`` with the seed's key. The
        state of a library's generator, as gdbp 0.1 saved it (a NumPy PCG64
        state, torch's bytes), is refused with what to do instead.

        Raises
        ------
        ValueError
            The state is malformed, or of the old kind.
        """
        _check_stream(_state_seed(state), state.get("stream"))

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        backend = _backend(x)
        if self._stream is None or self._stream.backend is not backend:
            # The position is gdbp's (key, counter): it carries over to the new backend as it is.
            saved = self._saved_state if self._stream is None else self._stream.get_state()
            self._stream = backends.device_rng(self.seed, backend)
            if saved is not None:
                self._stream.set_state(saved)
                self._saved_state = None
        return dropout(x, self.p, True, rng=self._stream)

    def extra_repr(self):
        return f"p={self.p}"
