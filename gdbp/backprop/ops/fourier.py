"""The fft extension of the array API standard (``xp.fft``), each transform beside its VJP.

Forward values are the backend's own (``backend.xp.fft``). Every transform
is linear, so its VJP is its adjoint, and the adjoint of a DFT is another
DFT (the gradient of a complex input is PyTorch's, see :func:`primitive.conj`):

- ``fft`` with norm N: ``F^H = n ifft``, so the adjoint is ``ifft`` with the
  dual norm (``"backward"`` and ``"forward"`` swap, ``"ortho"`` stays); the
  same for ``ifft``, ``fftn`` and ``ifftn``.
- ``n`` (``s``) zero-pads or trims the input before the transform; the
  adjoint trims or zero-pads the gradient back (:func:`_fit`).
- ``rfft`` keeps the bins 0..n//2 of a real signal's spectrum. Its adjoint is
  ``Re(F^H g)`` with the dropped bins zero: ``irfft`` of ``g`` with the bins
  that ``irfft`` counts twice (all but 0 and, for even n, n/2) halved.
- ``irfft`` reads those bins once and their conjugate mirror images too (and
  only the real part of bins 0 and n/2): its adjoint is ``rfft`` of ``g`` with
  the mirrored bins doubled.
- ``hfft(x) = irfft(conj x)`` and ``ihfft(x) = conj(rfft(x))``, with the dual
  norms, so their adjoints are each other, weighted as ``irfft``'s and ``rfft``'s.

``fftshift`` and ``ifftshift`` are rolls, composed from ``roll``; ``fftfreq``
and ``rfftfreq`` create arrays and live in the namespace (they have no input
to differentiate). This module is not named ``fft``: ``ops.fft`` is the extension.
"""

from __future__ import annotations

import operator

from ... import backends
from ..primitive import axes as normalize_axes
from ..primitive import defn, defprim
from ..tensor import unwrap
from .conversion import astype
from .elementwise import positive_p
from .manipulation import roll

_NORMS = ("backward", "ortho", "forward")
_DUAL = {"backward": "forward", "ortho": "ortho", "forward": "backward"}

# --- the adjoints' pieces -----------------------------------------------------------------


def _fit(xp, a, axis, size):
    """a trimmed or zero-padded along axis to size: the adjoint of the padding or trimming of n (or s)."""
    m = a.shape[axis]
    if m == size:
        return a
    if m > size:
        return a[(slice(None),) * axis + (slice(0, size), Ellipsis)]
    shape = tuple(size - m if i == axis else k for i, k in enumerate(a.shape))
    return xp.concat([a, xp.zeros(shape, dtype=a.dtype, device=a.device)], axis=axis)


def _fit_all(xp, a, axes, shape):
    for axis in axes:
        a = _fit(xp, a, axis, shape[axis])
    return a


def _mirrored(xp, a, axis, n, weight):
    """a times ``weight`` on the bins 1..(n-1)//2 along axis: those that stand for themselves and their mirror."""
    bins = a.shape[axis]
    k = xp.arange(bins, device=a.device)
    real = xp.float32 if a.dtype == xp.complex64 else xp.float64
    twice = xp.astype((k > 0) & (2 * k < n), real)
    w = xp.reshape(1 + (weight - 1) * twice, (bins,) + (1,) * (a.ndim - 1 - axis))
    return a * w


# --- complex to complex -------------------------------------------------------------------


def _fft_vjp(inverse):
    def vjp(xp, g, ans, x, *, n, axis, norm):
        back = xp.fft.fft if inverse else xp.fft.ifft
        return _fit(xp, back(g, axis=axis, norm=_DUAL[norm]), axis, x.shape[axis])

    return vjp


def _fftn_vjp(inverse):
    def vjp(xp, g, ans, x, *, s, axes, norm):
        back = xp.fft.fftn if inverse else xp.fft.ifftn
        return _fit_all(xp, back(g, axes=axes, norm=_DUAL[norm]), axes, x.shape)

    return vjp


fft_p = defprim("fft.fft", lambda xp, x, *, n, axis, norm: xp.fft.fft(x, n=n, axis=axis, norm=norm),
                _fft_vjp(False), linear=True, public=False)
ifft_p = defprim("fft.ifft", lambda xp, x, *, n, axis, norm: xp.fft.ifft(x, n=n, axis=axis, norm=norm),
                 _fft_vjp(True), linear=True, public=False)
fftn_p = defprim("fft.fftn", lambda xp, x, *, s, axes, norm: xp.fft.fftn(x, s=s, axes=axes, norm=norm),
                 _fftn_vjp(False), linear=True, public=False)
ifftn_p = defprim("fft.ifftn", lambda xp, x, *, s, axes, norm: xp.fft.ifftn(x, s=s, axes=axes, norm=norm),
                  _fftn_vjp(True), linear=True, public=False)

# --- real to half-spectrum and back ---------------------------------------------------------


def _rfft_vjp(xp, g, ans, x, *, n, axis, norm):
    return _fit(xp, xp.fft.irfft(_mirrored(xp, g, axis, n, 0.5), n=n, axis=axis, norm=_DUAL[norm]),
                axis, x.shape[axis])


def _irfft_vjp(xp, g, ans, x, *, n, axis, norm):
    return _fit(xp, _mirrored(xp, xp.fft.rfft(g, axis=axis, norm=_DUAL[norm]), axis, n, 2.0), axis, x.shape[axis])


def _hfft_vjp(xp, g, ans, x, *, n, axis, norm):
    return _fit(xp, _mirrored(xp, xp.fft.ihfft(g, axis=axis, norm=_DUAL[norm]), axis, n, 2.0), axis, x.shape[axis])


def _ihfft_vjp(xp, g, ans, x, *, n, axis, norm):
    return _fit(xp, xp.fft.hfft(_mirrored(xp, g, axis, n, 0.5), n=n, axis=axis, norm=_DUAL[norm]),
                axis, x.shape[axis])


def _rfftn_vjp(xp, g, ans, x, *, s, axes, norm):
    half = _mirrored(xp, g, axes[-1], s[-1], 0.5)
    return _fit_all(xp, xp.fft.irfftn(half, s=s, axes=axes, norm=_DUAL[norm]), axes, x.shape)


def _irfftn_vjp(xp, g, ans, x, *, s, axes, norm):
    full = _mirrored(xp, xp.fft.rfftn(g, axes=axes, norm=_DUAL[norm]), axes[-1], s[-1], 2.0)
    return _fit_all(xp, full, axes, x.shape)


def _one_axis(name):
    def forward(xp, x, *, n, axis, norm):
        return getattr(xp.fft, name)(x, n=n, axis=axis, norm=norm)

    return forward


rfft_p = defprim("fft.rfft", _one_axis("rfft"), _rfft_vjp, linear=True, public=False)
irfft_p = defprim("fft.irfft", _one_axis("irfft"), _irfft_vjp, linear=True, public=False)
hfft_p = defprim("fft.hfft", _one_axis("hfft"), _hfft_vjp, linear=True, public=False)
ihfft_p = defprim("fft.ihfft", _one_axis("ihfft"), _ihfft_vjp, linear=True, public=False)
rfftn_p = defprim("fft.rfftn", lambda xp, x, *, s, axes, norm: xp.fft.rfftn(x, s=s, axes=axes, norm=norm),
                  _rfftn_vjp, linear=True, public=False)
irfftn_p = defprim("fft.irfftn", lambda xp, x, *, s, axes, norm: xp.fft.irfftn(x, s=s, axes=axes, norm=norm),
                   _irfftn_vjp, linear=True, public=False)

# --- arguments: checked once, made explicit for the rules ----------------------------------------


def _dtype_kind(x):
    raw = unwrap(x)
    xp = backends.namespace(raw)
    if backends.isdtype(xp, raw.dtype, "complex floating"):
        return xp, "complex"
    if backends.isdtype(xp, raw.dtype, "real floating"):
        return xp, "real"
    return xp, None


def _complex_input(x, name):
    """x as a complex array: a real one is cast to the complex dtype of its precision (its gradient comes back real)."""
    xp, kind = _dtype_kind(x)
    if kind == "real":
        return astype(x, xp.complex64 if unwrap(x).dtype == xp.float32 else xp.complex128)
    if kind is None:
        raise TypeError(f"fft.{name}: the input has dtype {unwrap(x).dtype}; pass a floating-point array "
                        "(cast it, e.g. xp.astype(x, xp.complex128))")
    return x


def _real_input(x, name, instead):
    _, kind = _dtype_kind(x)
    if kind != "real":
        raise TypeError(f"fft.{name}: the input must be real floating-point, got dtype {unwrap(x).dtype}; "
                        f"use fft.{instead} for complex input, or take xp.real(x) first")
    return x


def _norm(norm, name):
    if norm not in _NORMS:
        raise ValueError(f"fft.{name}: norm={norm!r}; choose one of {', '.join(map(repr, _NORMS))}")
    return norm


def _size(n, default, name, what="n"):
    """A transform length: n as given, or the default; a positive integer either way."""
    if n is None:
        n = default
    elif isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"fft.{name}: {what} must be an integer or None, got {n!r}")
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"fft.{name}: {what}={n} points; a transform needs at least 1 (pass a larger {what})")
    return n


def _axis(x, axis, name):
    if x.ndim == 0:
        raise ValueError(f"fft.{name}: the input is 0-d; a transform needs at least one axis")
    return normalize_axes(axis, x.ndim)[0]


def _sizes(x, s, axes, name, halved=False):
    """The axes (all by default, or the last len(s) as NumPy takes them) and their lengths, explicit.

    An entry -1 of ``s`` means the whole axis; ``halved``: the last axis holds
    a half spectrum (irfftn), whose default length is 2 * (M - 1).
    """
    if axes is None:
        axes = range(x.ndim) if s is None else range(x.ndim - len(s), x.ndim)
    axes = normalize_axes(tuple(axes), x.ndim)
    if not axes:
        raise ValueError(f"fft.{name}: axes names no axis to transform")
    defaults = [x.shape[a] for a in axes]
    if halved:
        defaults[-1] = 2 * (defaults[-1] - 1)
    if s is None:
        s = defaults
    elif len(s) != len(axes):
        raise ValueError(f"fft.{name}: s has {len(s)} entries for {len(axes)} axes; give one length per axis")
    s = tuple(_size(None if k == -1 else k, d, name, "s") for k, d in zip(s, defaults))
    return s, axes


# --- the public functions: the standard's signatures ----------------------------------------------


@defn(name="fft.fft")
def fft(x, /, *, n=None, axis=-1, norm="backward"):
    """The 1-D discrete Fourier transform: ``y[k] = sum_j x[j] exp(-2 pi i j k / n)``, scaled by ``norm``.

    Parameters
    ----------
    x : array
        Complex (a real input is cast to the complex dtype of its precision).
    n : int, optional
        The transform length: the axis is zero-padded or trimmed to n.
    axis : int
        The axis to transform.
    norm : {"backward", "ortho", "forward"}
        Scale by 1, 1/sqrt(n) or 1/n.

    Returns
    -------
    array
        Complex, of x's precision; n long along axis.
    """
    x = _complex_input(x, "fft")
    axis = _axis(x, axis, "fft")
    return fft_p(x, n=_size(n, x.shape[axis], "fft"), axis=axis, norm=_norm(norm, "fft"))


@defn(name="fft.ifft")
def ifft(x, /, *, n=None, axis=-1, norm="backward"):
    """The inverse of :func:`fft`: ``x[j] = sum_k y[k] exp(2 pi i j k / n)``, scaled by 1/n (``norm="backward"``)."""
    x = _complex_input(x, "ifft")
    axis = _axis(x, axis, "ifft")
    return ifft_p(x, n=_size(n, x.shape[axis], "ifft"), axis=axis, norm=_norm(norm, "ifft"))


@defn(name="fft.fftn")
def fftn(x, /, *, s=None, axes=None, norm="backward"):
    """The n-D discrete Fourier transform over ``axes`` (all by default), each padded or trimmed to ``s``."""
    x = _complex_input(x, "fftn")
    s, axes = _sizes(x, s, axes, "fftn")
    return fftn_p(x, s=s, axes=axes, norm=_norm(norm, "fftn"))


@defn(name="fft.ifftn")
def ifftn(x, /, *, s=None, axes=None, norm="backward"):
    """The inverse of :func:`fftn`."""
    x = _complex_input(x, "ifftn")
    s, axes = _sizes(x, s, axes, "ifftn")
    return ifftn_p(x, s=s, axes=axes, norm=_norm(norm, "ifftn"))


@defn(name="fft.rfft")
def rfft(x, /, *, n=None, axis=-1, norm="backward"):
    """The DFT of a real signal, bins 0..n//2 (the others are their conjugates); complex of x's precision."""
    x = _real_input(x, "rfft", "fft")
    axis = _axis(x, axis, "rfft")
    return rfft_p(x, n=_size(n, x.shape[axis], "rfft"), axis=axis, norm=_norm(norm, "rfft"))


@defn(name="fft.irfft")
def irfft(x, /, *, n=None, axis=-1, norm="backward"):
    """The inverse of :func:`rfft`: a real signal n long (default 2 * (M - 1)) from bins 0..n//2."""
    x = _complex_input(x, "irfft")
    axis = _axis(x, axis, "irfft")
    return irfft_p(x, n=_size(n, 2 * (x.shape[axis] - 1), "irfft"), axis=axis, norm=_norm(norm, "irfft"))


@defn(name="fft.rfftn")
def rfftn(x, /, *, s=None, axes=None, norm="backward"):
    """The n-D DFT of a real array: :func:`rfft` over the last of ``axes``, :func:`fft` over the others."""
    x = _real_input(x, "rfftn", "fftn")
    s, axes = _sizes(x, s, axes, "rfftn")
    return rfftn_p(x, s=s, axes=axes, norm=_norm(norm, "rfftn"))


@defn(name="fft.irfftn")
def irfftn(x, /, *, s=None, axes=None, norm="backward"):
    """The inverse of :func:`rfftn`: real, of lengths ``s`` (the last by default 2 * (M - 1))."""
    x = _complex_input(x, "irfftn")
    s, axes = _sizes(x, s, axes, "irfftn", halved=True)
    return irfftn_p(x, s=s, axes=axes, norm=_norm(norm, "irfftn"))


@defn(name="fft.hfft")
def hfft(x, /, *, n=None, axis=-1, norm="backward"):
    """The DFT of a signal with Hermitian symmetry, given by bins 0..n//2: real, n long (default 2 * (M - 1))."""
    x = _complex_input(x, "hfft")
    axis = _axis(x, axis, "hfft")
    return hfft_p(x, n=_size(n, 2 * (x.shape[axis] - 1), "hfft"), axis=axis, norm=_norm(norm, "hfft"))


@defn(name="fft.ihfft")
def ihfft(x, /, *, n=None, axis=-1, norm="backward"):
    """The inverse of :func:`hfft`: bins 0..n//2 of a real signal's inverse DFT."""
    x = _real_input(x, "ihfft", "ifft")
    axis = _axis(x, axis, "ihfft")
    return ihfft_p(x, n=_size(n, x.shape[axis], "ihfft"), axis=axis, norm=_norm(norm, "ihfft"))


def _shift(x, axes, sign):
    shifted = normalize_axes(axes, x.ndim)
    if not shifted:
        return positive_p(x)  # a 0-d array: nothing moves
    return roll(x, tuple(sign * (x.shape[a] // 2) for a in shifted), axis=shifted)


@defn(name="fft.fftshift")
def fftshift(x, /, *, axes=None):
    """The zero frequency moved to the middle: a roll by n // 2 along each of ``axes`` (all by default)."""
    return _shift(x, axes, 1)


@defn(name="fft.ifftshift")
def ifftshift(x, /, *, axes=None):
    """The inverse of :func:`fftshift`: a roll by -(n // 2)."""
    return _shift(x, axes, -1)
