"""Philox4x64-10: the counter-based generator behind gdbp's streams of random draws.

A counter-based generator computes its output from a key and a counter
alone, with no hidden state: a stream is ``(key, counter)``, two integers
that gdbp keeps, saves as JSON and restores on any backend. A GPU library
whose own generator cannot give back its state (CuPy's) then resumes exactly
all the same, and every element of a draw is computed independently of the
others, as a GPU wants it.

The bits are NumPy's: a draw of ``n`` values at counter ``c`` is what
``numpy.random.Generator(numpy.random.Philox(key=key, counter=c)).random(n)``
gives. Element ``i`` is word ``i % 4`` of the Philox4x64-10 block at counter
``c + 1 + i // 4`` (NumPy increments its counter before each block), and a
64-bit word ``w`` becomes the double ``(w >> 11) * 2**-53`` (the top 53 bits).
The draw then advances the counter by the ``ceil(n / 4)`` blocks it used, so
consecutive draws never share a block. NumPy's C generator is the reference
(:func:`host_uniform`); :func:`array_uniform` computes the same bits in the
array API standard alone, for a library's device; CuPy has one kernel for it
(:data:`gdbp.backends._cupy.PHILOX_KERNEL`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["KEY_LIMIT", "COUNTER_LIMIT", "key_of", "blocks", "check_state", "advance", "host_uniform",
           "array_uniform", "library_seed", "MULTIPLIERS", "WEYL", "ROUNDS"]

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
#: Philox4x64's multipliers and its key schedule's Weyl increments (Salmon et al., 2011), as NumPy has them.
MULTIPLIERS = (0xD2E7470EE14C6C93, 0xCA5A826395121157)
WEYL = (0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B)
ROUNDS = 10
#: A key is 128 bits (two 64-bit words); the counter is kept in the low 64-bit word of NumPy's four.
KEY_LIMIT = 2**128
COUNTER_LIMIT = 2**64


def key_of(seed: int) -> int:
    """The 128-bit key of a seed, spread by NumPy's SeedSequence (as ``numpy.random.Philox(seed)`` does)."""
    k0, k1 = (int(w) for w in np.random.SeedSequence(seed).generate_state(2, np.uint64))
    return k0 | (k1 << 64)


def blocks(n: int) -> int:
    """The 4-word blocks a draw of n values uses: the counter's advance."""
    return (n + 3) // 4


def check_state(state) -> tuple[int, int]:
    """``(key, counter)`` of a stream state ``{"key": int, "counter": int}``, or a ValueError naming the fault."""
    if not isinstance(state, dict) or set(state) != {"key", "counter"}:
        raise ValueError(f"a stream state is {{'key': int, 'counter': int}}, got {str(state)[:120]}")
    key, counter = state["key"], state["counter"]
    for name, value, limit in (("key", key, KEY_LIMIT), ("counter", counter, COUNTER_LIMIT)):
        if type(value) is not int or not 0 <= value < limit:
            raise ValueError(f"a stream state's {name} is an int in [0, 2**{limit.bit_length() - 1}), got {value!r}")
    return key, counter


def advance(counter: int, n: int) -> int:
    """The counter after a draw of n values at ``counter``; an OverflowError when the stream is spent."""
    after = counter + blocks(n)
    if after >= COUNTER_LIMIT:
        raise OverflowError(
            f"this stream has drawn {counter} blocks of 4 values and cannot draw {n} more (its counter is 64-bit): "
            "start a new stream from another seed"
        )
    return after


def host_uniform(key: int, counter: int, n: int):
    """The draw of n values in [0, 1) at ``(key, counter)``, float64, by NumPy's C generator (the reference)."""
    return np.random.Generator(np.random.Philox(key=key, counter=counter)).random(n)


def _mulhilo(a: int, x):
    """The high and low 64-bit words of the constant ``a`` times each uint64 of ``x``.

    The standard has no 64 x 64 -> 128-bit product, so it is taken from
    32-bit halves, each partial product below 2**64 (nothing wraps).
    """
    a_hi, a_lo = a >> 32, a & M32
    x_hi, x_lo = x >> 32, x & M32
    ll, lh, hl, hh = x_lo * a_lo, x_hi * a_lo, x_lo * a_hi, x_hi * a_hi
    mid = (ll >> 32) + (lh & M32) + (hl & M32)
    hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32)
    lo = ((mid & M32) << 32) | (ll & M32)
    return hi, lo


def array_uniform(xp, key: int, counter: int, n: int, device=None):
    """:func:`host_uniform`'s bits, computed with namespace ``xp`` on ``device`` (float64, shape ``(n,)``).

    Needs uint64 arithmetic (NumPy, CuPy and array-api-strict have it; torch does not).
    """
    m = blocks(n)
    # Block j's counter words are (counter + 1 + j, 0, 0, 0); advance() keeps counter + m below 2**64.
    c0 = xp.arange(m, dtype=xp.uint64, device=device) + (counter + 1)
    c1 = c2 = c3 = xp.zeros_like(c0)
    k0, k1 = key & M64, key >> 64
    for r in range(ROUNDS):
        if r:
            k0, k1 = (k0 + WEYL[0]) & M64, (k1 + WEYL[1]) & M64
        hi0, lo0 = _mulhilo(MULTIPLIERS[0], c0)
        hi1, lo1 = _mulhilo(MULTIPLIERS[1], c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    words = xp.reshape(xp.stack([c0, c1, c2, c3], axis=-1), (-1,))[:n]
    return xp.astype(words >> 11, xp.float64) * (2.0**-53)


def library_seed(key: int, counter: int) -> int:
    """A 63-bit seed for a library's own generator, derived from ``(key, counter)``.

    For a library that cannot compute Philox itself (torch has no uint64
    arithmetic on CUDA): its generator is seeded afresh for each draw, so
    the stream's state is still gdbp's two integers.
    """
    return int(np.random.SeedSequence([key, counter]).generate_state(1, np.uint64)[0]) >> 1
