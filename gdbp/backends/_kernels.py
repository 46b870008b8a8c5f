"""Kernels: what differs between array libraries, behind one set of functions.

``Kernels`` holds the generic versions, written in the array API standard
alone; each library's module subclasses it (``NumpyKernels``, ...) and
overrides a function only where the library has a better way or a benchmark
shows it pays. The generic version is the tested fallback. Every Backend
carries its library's kernels (``backend.kernels``), and :func:`kernels`
finds them from a namespace, as gradient rules know only ``xp``.
"""

from __future__ import annotations

import math

import numpy

from ._scatter import generic_scatter_add

__all__ = ["Kernels", "kernels", "register_kernels", "library_kernels", "isdtype"]


class Kernels:
    """The generic versions, written in the array API standard alone."""

    def __init__(self, xp):
        self.xp = xp

    # -- products and sums ---------------------------------------------------------

    def matmul(self, a, b):
        return a @ b

    def reusable(self, a) -> bool:
        """Whether a can serve as an output buffer: it owns its memory (a view could alias
        another array) and ``matmul_into`` / ``sum_into`` write into it. Generic: never."""
        return False

    def owns(self, a) -> bool:
        """Whether a owns its memory and may be written in place (not a view). Generic: unknown, so no."""
        return False

    def matmul_into(self, a, b, out):
        """``a @ b``, written into ``out`` where the library can (the generic version allocates)."""
        return a @ b

    def sum_into(self, a, axis, out):
        """``sum(a, axis)``, written into ``out`` where the library can."""
        return self.xp.sum(a, axis=axis)

    def sum(self, a, axis=None, dtype=None, keepdims=False):
        """``xp.sum``, always an array (some libraries give scalars for full reductions)."""
        return self.xp.sum(a, axis=axis, dtype=dtype, keepdims=keepdims)

    def mean_all(self, a):
        """The mean of every element, as a 0-d array."""
        return self.xp.sum(a) / math.prod(a.shape)

    # -- activations and costs -------------------------------------------------------

    def relu_grad(self, g, ans):
        """g where ans > 0, else 0 (relu's VJP, from its output)."""
        return g * self.xp.astype(ans > 0, g.dtype)

    def softmax_xent(self, logits, labels, smoothing=0.0):
        """Per-row cross-entropy of softmax(logits) against integer labels, and the softmax.

        cost = log(sum(exp(z))) - z[label] with z = logits - max(logits)
        (shifted so that exp cannot overflow); with label smoothing e,
        (1 - e) cost + e (log(sum(exp(z))) - mean(z)).
        """
        xp = self.xp
        z = logits - xp.max(logits, axis=-1, keepdims=True)
        e = xp.exp(z)
        s = xp.sum(e, axis=-1, keepdims=True)
        log_s = xp.log(s)[..., 0]
        cost = log_s - self.pick(z, labels)
        if smoothing:
            cost = (1 - smoothing) * cost + smoothing * (log_s - xp.mean(z, axis=-1))
        e /= s
        return cost, e

    def pick(self, a, labels):
        """``a[..., labels]`` along the last axis: out[i] = a[i, labels[i]]."""
        xp = self.xp
        return xp.take_along_axis(a, xp.expand_dims(labels, axis=-1), axis=-1)[..., 0]

    def minus_onehot(self, p, labels, weight=1.0):
        """A new array ``p - weight * onehot(labels)``, the one-hot along the last axis."""
        xp = self.xp
        classes = xp.arange(p.shape[-1], device=p.device)
        onehot = xp.astype(xp.expand_dims(labels, axis=-1) == classes, p.dtype)
        return p - weight * onehot

    # -- indexing --------------------------------------------------------------------

    def scatter_add(self, g, key, shape):
        """``z = zeros(shape); z[key] += g``, with repeated indices adding up (the adjoint of ``x[key]``)."""
        return generic_scatter_add(self.xp, g, key, shape)

    # -- moving arrays ---------------------------------------------------------------------

    def transfer(self, x, backend):
        """x's values as an array of another backend (an explicit copy, see :func:`gdbp.backends.transfer`)."""
        from ._arrays import transfer

        return transfer(x, backend)

    def to_device(self, x, device):
        """x on another device of its own library."""
        to = getattr(x, "to_device", None)
        if to is not None:
            return to(device)
        return self.xp.asarray(x, device=device, copy=True)

    # -- scipy.special -------------------------------------------------------------------------

    def special(self, name: str):
        """The forward of scipy.special's ``name`` on this library's arrays (see :mod:`._special`), made once."""
        found = self.__dict__.setdefault("_specials", {})
        fn = found.get(name)
        if fn is None:
            fn = found[name] = self.special_forward(name)
        return fn

    def special_forward(self, name: str):
        """Make the forward of ``name``. Generic: scipy.special on the arrays' CPU memory, shared through DLPack."""
        from ._special import host_special

        return host_special(self.xp, name)

    # -- the host and random streams -----------------------------------------------------

    def to_numpy(self, x):
        """A NumPy array with x's values (through DLPack where the library speaks it)."""
        if hasattr(x, "__dlpack__"):
            try:
                return numpy.from_dlpack(x)
            except Exception:  # a device array that DLPack cannot hand to the host
                pass
        return numpy.asarray(x)

    def stream(self, seed: int, backend):
        """A seeded stream of U[0, 1) draws on ``backend`` (see :func:`gdbp.backends.device_rng`).

        Generic: the host stream, so that every CPU library sees the same numbers for a seed.
        """
        from ._random import HostStream

        return HostStream(seed, backend)


_by_namespace: dict = {}
_kinds: dict = {}


def register_kernels(xp, k: Kernels) -> None:
    """Make ``k`` the kernels of namespace ``xp`` (a library's own, or a namespace built on one)."""
    _by_namespace[xp] = k


def library_kernels(xp, cls) -> Kernels:
    """The kernels of a library's namespace: one ``cls`` object per namespace, shared by its devices."""
    k = _by_namespace.get(xp)
    if type(k) is not cls:
        k = _by_namespace[xp] = cls(xp)
    return k


def kernels(xp) -> Kernels:
    """The kernels of namespace ``xp`` (the generic ones for a namespace no library registered)."""
    k = _by_namespace.get(xp)
    if k is None:
        k = _by_namespace[xp] = Kernels(xp)
    return k


def isdtype(xp, dtype, kind) -> bool:
    """``xp.isdtype(dtype, kind)``, remembered: some libraries take microseconds to answer."""
    key = (xp, dtype, kind)
    try:
        return _kinds[key]
    except KeyError:
        answer = _kinds[key] = bool(xp.isdtype(dtype, kind))
        return answer
    except TypeError:  # an unhashable dtype object
        return bool(xp.isdtype(dtype, kind))
