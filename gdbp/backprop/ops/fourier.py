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
    """x itself, which must be real: ``instead`` names the transform that takes complex input."""
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


def _check_input(x, name, real):
    return _real_input(x, name, real) if real else _complex_input(x, name)


def _one_axis_function(prim, name, doc, real=None, halved=False):
    """The public ``name(x, /, *, n=None, axis=-1, norm="backward")`` of a transform along one axis.

    ``real``: the input must be real (the name of the complex transform to
    use instead); ``halved``: x holds a half spectrum, n defaults to 2 * (M - 1).
    """

    def transform(x, /, *, n=None, axis=-1, norm="backward"):
        x = _check_input(x, name, real)
        axis = _axis(x, axis, name)
        m = x.shape[axis]
        return prim(x, n=_size(n, 2 * (m - 1) if halved else m, name), axis=axis, norm=_norm(norm, name))

    transform.__name__ = transform.__qualname__ = name
    transform.__doc__ = doc
    return defn(transform, name=f"fft.{name}")


def _n_axes_function(prim, name, doc, real=None, halved=False):
    """The public ``name(x, /, *, s=None, axes=None, norm="backward")`` of a transform over several axes."""

    def transform(x, /, *, s=None, axes=None, norm="backward"):
        x = _check_input(x, name, real)
        s, axes = _sizes(x, s, axes, name, halved)
        return prim(x, s=s, axes=axes, norm=_norm(norm, name))

    transform.__name__ = transform.__qualname__ = name
    transform.__doc__ = doc
    return defn(transform, name=f"fft.{name}")


_ARGUMENTS = """

    Parameters
    ----------
    x : array
        {input}
    {n} : {n_type}, optional
        {n_doc}
    {axis} : {axis_type}
        {axis_doc}
    norm : {{"backward", "ortho", "forward"}}
        {norm_doc}

    Returns
    -------
    array
        {output}
    """


def _doc(summary, input, output, n_axes=False, inverse=False):
    one = dict(n="n", n_type="int", n_doc="The transform length: the axis is zero-padded or trimmed to n.",
               axis="axis", axis_type="int", axis_doc="The axis to transform.")
    many = dict(n="s", n_type="sequence of int", n_doc="The lengths along ``axes`` (-1: the whole axis).",
                axis="axes", axis_type="sequence of int, optional",
                axis_doc="The axes to transform: all, or the last len(s) when s is given (as NumPy).")
    scale = "1/n, 1/sqrt(n) or 1" if inverse else "1, 1/sqrt(n) or 1/n"
    return summary + _ARGUMENTS.format(input=input, output=output, norm_doc=f"Scale by {scale}.",
                                       **(many if n_axes else one))


_COMPLEX_IN = "Complex (a real input is cast to the complex dtype of its precision; its gradient comes back real)."
_REAL_IN = "Real floating-point."

fft = _one_axis_function(fft_p, "fft", _doc(
    "The 1-D discrete Fourier transform: ``y[k] = sum_j x[j] exp(-2 pi i j k / n)``, scaled by ``norm``.",
    _COMPLEX_IN, "Complex, of x's precision; n long along axis."))
ifft = _one_axis_function(ifft_p, "ifft", _doc(
    "The inverse of :func:`fft`: ``x[j] = sum_k y[k] exp(2 pi i j k / n)``, scaled by ``norm``.",
    _COMPLEX_IN, "Complex, of x's precision; n long along axis.", inverse=True))
rfft = _one_axis_function(rfft_p, "rfft", _doc(
    "The DFT of a real signal: bins 0..n//2 (the others are their conjugates).",
    _REAL_IN, "Complex, of x's precision; n // 2 + 1 long along axis."), real="fft")
irfft = _one_axis_function(irfft_p, "irfft", _doc(
    "The inverse of :func:`rfft`: a real signal n long (default 2 * (M - 1)) from bins 0..n//2.",
    _COMPLEX_IN, "Real, of x's precision; n long along axis.", inverse=True), halved=True)
hfft = _one_axis_function(hfft_p, "hfft", _doc(
    "The DFT of a signal with Hermitian symmetry, given by its bins 0..n//2: ``irfft(conj(x))`` times n.",
    _COMPLEX_IN, "Real, of x's precision; n long (default 2 * (M - 1)) along axis."), halved=True)
ihfft = _one_axis_function(ihfft_p, "ihfft", _doc(
    "The inverse of :func:`hfft`: bins 0..n//2 of a real signal's inverse DFT, ``conj(rfft(x)) / n``.",
    _REAL_IN, "Complex, of x's precision; n // 2 + 1 long along axis.", inverse=True), real="ifft")
fftn = _n_axes_function(fftn_p, "fftn", _doc(
    "The n-D discrete Fourier transform: :func:`fft` along each of ``axes``.",
    _COMPLEX_IN, "Complex, of x's precision; s[i] long along axes[i].", n_axes=True))
ifftn = _n_axes_function(ifftn_p, "ifftn", _doc(
    "The inverse of :func:`fftn`.", _COMPLEX_IN, "Complex, of x's precision; s[i] long along axes[i].",
    n_axes=True, inverse=True))
rfftn = _n_axes_function(rfftn_p, "rfftn", _doc(
    "The n-D DFT of a real array: :func:`rfft` along the last of ``axes``, :func:`fft` along the others.",
    _REAL_IN, "Complex, of x's precision; s[-1] // 2 + 1 long along the last axis.", n_axes=True), real="fftn")
irfftn = _n_axes_function(irfftn_p, "irfftn", _doc(
    "The inverse of :func:`rfftn`: real, of lengths ``s`` (the last by default 2 * (M - 1)).",
    _COMPLEX_IN, "Real, of x's precision; s[i] long along axes[i].", n_axes=True, inverse=True), halved=True)


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
