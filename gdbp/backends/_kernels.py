"""Kernels: what differs between array libraries, behind one set of functions.

``Kernels`` holds the generic versions, written in the array API standard
alone; each library's module subclasses it (``NumpyKernels``, ...) and
overrides a function only where the library has a better way or a benchmark
shows it pays. The generic version is the tested fallback. Every Backend
carries its library's kernels (``backend.kernels``), and :func:`kernels`
finds them from a namespace, as gradient rules know only ``xp``.
"""

from __future__ import annotations

import contextlib
import math

import array_api_compat
import numpy

from ._scatter import generic_scatter_add

__all__ = ["Kernels", "Strided", "kernels", "register_kernels", "library_kernels", "isdtype", "UNKNOWN"]

#: What :meth:`Kernels.memory_of` says when it cannot tell whose memory an array uses.
UNKNOWN = object()


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

    def transposed(self, a) -> bool:
        """Whether a is a matrix laid out column by column (the transpose of a row-major one). Generic: no."""
        return False

    def same_layout(self, a, like) -> bool:
        """Whether a is laid out in memory as ``like`` is (so that elementwise work between them is contiguous)."""
        return True

    def scalar_array(self, a):
        """The 0-d array holding ``a``, a scalar that a library function gave where the standard wants an array."""
        return self.xp.asarray(a)

    def row_major(self, a) -> bool:
        """Whether a is laid out in row-major (C) order, as new arrays are; generic: yes (layout is hidden)."""
        return True

    def copy_like(self, a, like=None):
        """A copy of a (laid out as ``like`` where the library can)."""
        return self.xp.asarray(a, copy=True)

    def into(self, name: str):
        """The library's function for the op ``name`` that writes into ``out=`` (``f(*args, out=buf)``), or None.

        gdbp.compile's plans write the values they recompute at every replay
        into buffers they keep. Generic: none (arrays may not be writable).
        """
        return None

    def kernel_into(self, name: str):
        """The version of kernel ``name`` (one of this object's methods) that writes into ``out=``, or None.

        ``f(*args, out=buf)`` gives what ``getattr(self, name)(*args)`` gives, bit for bit. Generic: none.
        """
        return None

    def direct(self, name: str):
        """A function that does what the forward of primitive ``name`` does, with fewer calls in between, or None.

        It takes the forward's arguments without the namespace (``f(x, axis=1)``)
        and gives the same array, bit for bit: gdbp.compile's plans call it at
        every replay in place of the primitive's forward. Generic: none.
        """
        return None

    def memory_of(self, a):
        """Whose memory a uses: None (its own), the array a is a writeable view of, or UNKNOWN.

        The sweep hands a gradient out as it is when it has memory of its own
        (or views memory no other gradient has): a leaf can then write it in
        place without changing another. Generic: the library cannot tell.
        """
        return UNKNOWN

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

    def known_all_false(self, mask) -> bool:
        """True when the library can tell, without waiting on a device, that no element of mask is set.

        A rule then skips work needed only where some element is set (the
        SVD of det's gradient at a singular matrix). Generic: it cannot tell
        (reading a device array would stall it), so the rule does both.
        """
        return False

    # -- activations and costs -------------------------------------------------------

    def relu_grad(self, g, ans):
        """g where ans > 0, else 0 (relu's VJP, from its output)."""
        return g * self.xp.astype(ans > 0, g.dtype)

    def maximum_grad(self, g, x, y):
        """g [x > y] + g [x == y] / 2: the gradient of maximum(x, y) for x (ties split evenly)."""
        xp = self.xp
        return g * (xp.astype(x > y, g.dtype) + 0.5 * xp.astype(x == y, g.dtype))

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

    def clip(self, x, lo=None, hi=None):
        """The standard's ``clip(x, lo, hi)``, from ``maximum`` and ``minimum``.

        As the standard has it: the result has x's dtype (a bound of another
        dtype is cast to it) and the broadcast shape, a NaN in x or in a bound
        gives NaN, and with ``lo > hi`` the result is ``hi``. array-api-compat's
        clip writes through boolean masks instead, which on CuPy reads the
        count of selected elements back to the host: a device sync per bound.
        """
        xp = self.xp
        lo, hi = self._bound(x, lo, "lo"), self._bound(x, hi, "hi")
        if lo is None and hi is None:
            return self.copy(x)  # a new array, as clip's always is
        out = x if lo is None else xp.maximum(x, lo)
        return out if hi is None else xp.minimum(out, hi)

    def _bound(self, x, b, which):
        """A bound as ``maximum``/``minimum`` take it without changing x's dtype (None: no bound)."""
        if b is None:
            return None
        if isinstance(b, bool):
            b = int(b)
        integral = isdtype(self.xp, x.dtype, "integral")
        if isinstance(b, int) and integral:
            info = self.xp.iinfo(x.dtype)
            # A bound beyond x's range clips nothing (array-api-compat drops it too, rather than overflow).
            if (which == "lo" and b <= info.min) or (which == "hi" and b >= info.max):
                return None
            return b
        if isinstance(b, (int, float)) and not integral:
            return b  # a Python scalar takes the array's dtype
        if hasattr(b, "dtype"):
            return b if b.dtype == x.dtype else self.xp.astype(b, x.dtype)
        # A Python float bound of an integer x: unspecified by the standard; array-api-compat converts it.
        device = array_api_compat.device(x)
        with self.creating(device):
            return self.xp.asarray(b, dtype=x.dtype, device=device)

    # -- indexing --------------------------------------------------------------------

    def index(self, x) -> int:
        """A 0-d integer array as a Python int (what ``operator.index`` gives), read explicitly.

        CuPy's arrays have no ``__index__`` (array-api-compat cannot add one),
        so the value is read through the host copy every library has: a
        device sync on a GPU, as any use of an array as a Python index is.

        Raises
        ------
        TypeError
            x is not 0-d, or not of an integer dtype.
        """
        if x.ndim != 0:
            raise TypeError(
                f"only a 0-d integer array can serve as an index, got shape {tuple(x.shape)}; take one element first"
            )
        if not isdtype(self.xp, x.dtype, "integral"):
            raise TypeError(
                f"only an integer array can serve as an index, got dtype {x.dtype}; cast it first, "
                "e.g. xp.astype(i, xp.int64)"
            )
        return int(numpy.asarray(self.to_numpy(x))[()])

    def scatter_add(self, g, key, shape):
        """``z = zeros(shape); z[key] += g``, with repeated indices adding up (the adjoint of ``x[key]``)."""
        return generic_scatter_add(self.xp, g, key, shape)

    # -- moving arrays ---------------------------------------------------------------------

    def transfer(self, x, backend):
        """x's values as an array of another backend (an explicit copy, see :func:`gdbp.backends.transfer`)."""
        from ._arrays import transfer

        return transfer(x, backend)

    def copy(self, x):
        """A copy of x on x's own device (array-api-compat's CuPy ``asarray`` copies onto the current one)."""
        device = array_api_compat.device(x)
        with self.creating(device):
            return self.xp.asarray(x, device=device, copy=True)

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

    def uniform(self, key: int, counter: int, shape: tuple, dtype, backend):
        """The draw at ``(key, counter)`` of U[0, 1) values (:mod:`gdbp.backends._philox`), in ``dtype``.

        Generic: on a CPU backend, NumPy draws (float64, rounded to ``dtype``
        on the host) and the values are handed over, so every CPU library
        sees the same numbers; on a GPU, the same bits are computed on the
        device in the array API standard (one elementwise pass per step of
        Philox: a library with its own kernel overrides this).
        """
        from . import _philox
        from ._random import numpy_dtype

        n = math.prod(shape)
        if not backend.is_gpu:
            host = _philox.host_uniform(key, counter, n).astype(numpy_dtype(backend, dtype))
            return self.transfer(host.reshape(shape), backend)
        xp = self.xp
        with self.creating(backend.device):
            u = _philox.array_uniform(xp, key, counter, n, backend.device)
            return xp.reshape(xp.astype(u, self.dtype(dtype)), shape)

    def dtype(self, dtype):
        """A dtype of the library: None is float32, a name is looked up."""
        if dtype is None:
            return self.xp.float32
        return getattr(self.xp, dtype) if isinstance(dtype, str) else dtype

    # -- where new arrays are made -----------------------------------------------------

    def creating(self, device):
        """A context in which the library's creation functions make arrays on ``device``.

        Generic: nothing to do, ``device=`` is honoured. (array-api-compat's
        CuPy functions ignore ``device=`` and make arrays on CuPy's current
        device; CuPy's kernels make it current.)
        """
        return contextlib.nullcontext()


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


class Strided:
    """The layout answers of libraries whose arrays carry NumPy's flags (NumPy, CuPy): mixed into their kernels."""

    def transposed(self, a) -> bool:
        return a.ndim == 2 and a.flags.f_contiguous and not a.flags.c_contiguous

    def row_major(self, a) -> bool:
        return a.flags.c_contiguous

    def same_layout(self, a, like) -> bool:
        return a.flags.c_contiguous or not like.flags.c_contiguous
