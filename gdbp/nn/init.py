"""Weight initialisers, drawn from a seeded host stream so that a seed means the same weights everywhere.

Every initialiser draws on the host (NumPy's PCG64, through
:func:`gdbp.backends.host_rng`), rounds to the target dtype there and then
transfers: the same seed gives bit-equal weights on NumPy, CuPy, torch and
array-api-strict.

Each comes in two forms: ``xavier_uniform(shape, ...)`` returns a new array
of the target backend, and ``xavier_uniform_(tensor, ...)`` overwrites a
Tensor (a Parameter) with fresh values in its own backend and dtype.

Where no ``rng`` or ``seed`` is given, draws come from a process-wide default
stream, seeded with 0 at import and reset with :func:`manual_seed`.
"""

from __future__ import annotations

import math

from .. import backends
from ..backprop import Tensor, no_grad

__all__ = [
    "manual_seed", "default_rng", "calculate_gain", "fans",
    "uniform", "normal", "zeros", "ones", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "uniform_", "normal_", "zeros_", "ones_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
    "kaiming_normal_",
]

_default = backends.host_rng(0)


def manual_seed(seed: int) -> None:
    """Reset the default stream (used by layers built without ``seed``/``rng``) to ``seed``."""
    global _default
    _default = backends.host_rng(seed)


def default_rng():
    """The default host stream."""
    return _default


def generator(rng=None, seed=None):
    """The stream to draw from: ``rng`` if given, else a fresh one for ``seed``, else the default."""
    if rng is not None and seed is not None:
        raise TypeError("pass rng= or seed=, not both")
    if rng is not None:
        return rng
    if seed is not None:
        return backends.host_rng(seed)
    return _default


def dtype_of(backend, dtype):
    """A dtype object of ``backend``: float32 by default; names such as "float64" are looked up."""
    xp = backend.xp
    if dtype is None:
        return xp.float32
    if isinstance(dtype, str):
        found = getattr(xp, dtype, None)
        if found is None:
            raise TypeError(f"backend {backend.spec} has no dtype {dtype!r}")
        return found
    return dtype


def calculate_gain(nonlinearity: str = "linear", param: float | None = None) -> float:
    """The recommended gain for an activation (PyTorch's values).

    linear, sigmoid, identity: 1; tanh: 5/3; relu: sqrt(2);
    leaky_relu with slope a: sqrt(2 / (1 + a^2)); selu: 3/4.
    """
    if nonlinearity in ("linear", "identity", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + a * a))
    if nonlinearity == "selu":
        return 0.75
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}: use linear, sigmoid, tanh, relu, leaky_relu or selu")


def fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *receptive field), as PyTorch counts them."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight of at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape, mode):
    fan_in, fan_out = fans(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


# --- returning new arrays -----------------------------------------------------------------


def uniform(shape, low=0.0, high=1.0, *, rng=None, seed=None, backend=None, dtype=None):
    """Draws from U[low, high)."""
    target = backends.resolve(backend)
    return generator(rng, seed).uniform(shape, low, high, backend=target, dtype=dtype_of(target, dtype))


def normal(shape, mean=0.0, std=1.0, *, rng=None, seed=None, backend=None, dtype=None):
    """Draws from N(mean, std^2)."""
    target = backends.resolve(backend)
    return generator(rng, seed).normal(shape, mean, std, backend=target, dtype=dtype_of(target, dtype))


def _filled(create: str, shape, backend, dtype):
    """``xp.zeros`` or ``xp.ones`` on the backend's device, made inside its creation context.

    array-api-compat's CuPy functions ignore ``device=`` (they make arrays on
    CuPy's current device): :meth:`gdbp.backends.Kernels.creating` makes the
    backend's device current, so that cupy:1's parameters are made on GPU 1.
    """
    target = backends.resolve(backend)
    with target.kernels.creating(target.device):
        return getattr(target.xp, create)(tuple(shape), dtype=dtype_of(target, dtype), device=target.device)


def zeros(shape, *, backend=None, dtype=None):
    """An array of zeros."""
    return _filled("zeros", shape, backend, dtype)


def ones(shape, *, backend=None, dtype=None):
    """An array of ones."""
    return _filled("ones", shape, backend, dtype)


def _empty(shape) -> bool:
    # A weight with no elements has no fan to scale by (it would divide by 0): there is nothing to draw,
    # as PyTorch's initialisers do nothing for zero-element tensors.
    return math.prod(tuple(shape)) == 0


def xavier_uniform(shape, gain=1.0, *, rng=None, seed=None, backend=None, dtype=None):
    """Glorot & Bengio (2010): U[-b, b] with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    if _empty(shape):
        return zeros(shape, backend=backend, dtype=dtype)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape, -bound, bound, rng=rng, seed=seed, backend=backend, dtype=dtype)


def xavier_normal(shape, gain=1.0, *, rng=None, seed=None, backend=None, dtype=None):
    """Glorot & Bengio (2010): N(0, s^2) with s = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    if _empty(shape):
        return zeros(shape, backend=backend, dtype=dtype)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal(shape, 0.0, std, rng=rng, seed=seed, backend=backend, dtype=dtype)


def kaiming_uniform(shape, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, rng=None, seed=None,
                    backend=None, dtype=None):
    """He et al. (2015): U[-b, b] with b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a)."""
    if _empty(shape):
        _fan(shape, mode)  # still refuse a bad mode or a 1-d shape
        return zeros(shape, backend=backend, dtype=dtype)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(shape, mode))
    return uniform(shape, -bound, bound, rng=rng, seed=seed, backend=backend, dtype=dtype)


def kaiming_normal(shape, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, rng=None, seed=None,
                   backend=None, dtype=None):
    """He et al. (2015): N(0, s^2) with s = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)."""
    if _empty(shape):
        _fan(shape, mode)
        return zeros(shape, backend=backend, dtype=dtype)
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    return normal(shape, 0.0, std, rng=rng, seed=seed, backend=backend, dtype=dtype)


glorot_uniform = xavier_uniform
glorot_normal = xavier_normal
he_uniform = kaiming_uniform
he_normal = kaiming_normal

# --- overwriting a Tensor ---------------------------------------------------------------------


def _fill(t, make, **kw):
    """Overwrite t's values with make(shape, backend=..., dtype=...) (in place where the backend allows)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"expected a Tensor or Parameter to fill, got {type(t).__name__}")
    value = make(t.shape, backend=t.backend, dtype=t.dtype, **kw)
    with no_grad():
        if t.backend.mutable:
            t.data[...] = value
        else:
            t.data = value
    t.mark_changed()
    return t


def uniform_(t, low=0.0, high=1.0, *, rng=None, seed=None):
    """Fill t with draws from U[low, high); returns t."""
    return _fill(t, uniform, low=low, high=high, rng=rng, seed=seed)


def normal_(t, mean=0.0, std=1.0, *, rng=None, seed=None):
    """Fill t with draws from N(mean, std^2); returns t."""
    return _fill(t, normal, mean=mean, std=std, rng=rng, seed=seed)


def zeros_(t):
    """Fill t with zeros; returns t."""
    return _fill(t, zeros)


def ones_(t):
    """Fill t with ones; returns t."""
    return _fill(t, ones)


def xavier_uniform_(t, gain=1.0, *, rng=None, seed=None):
    """Fill t as :func:`xavier_uniform`; returns t."""
    return _fill(t, xavier_uniform, gain=gain, rng=rng, seed=seed)


def xavier_normal_(t, gain=1.0, *, rng=None, seed=None):
    """Fill t as :func:`xavier_normal`; returns t."""
    return _fill(t, xavier_normal, gain=gain, rng=rng, seed=seed)


def kaiming_uniform_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, rng=None, seed=None):
    """Fill t as :func:`kaiming_uniform`; returns t."""
    return _fill(t, kaiming_uniform, a=a, mode=mode, nonlinearity=nonlinearity, rng=rng, seed=seed)


def kaiming_normal_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, rng=None, seed=None):
    """Fill t as :func:`kaiming_normal`; returns t."""
    return _fill(t, kaiming_normal, a=a, mode=mode, nonlinearity=nonlinearity, rng=rng, seed=seed)
