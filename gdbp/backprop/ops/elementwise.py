"""Elementwise functions of the array API standard, each beside its VJP.

Read it as a sheet of derivatives: ``g`` is the incoming gradient, ``ans``
the forward output, ``x, y`` the inputs. Broadcasting is undone by the engine
(``broadcasts=True``), never by a rule.

Complex inputs follow PyTorch's convention: for a real cost, the gradient of
a complex input is the conjugate Wirtinger derivative, so a holomorphic
function pulls ``g`` back to ``g * conj(f'(z))``. ``conj`` leaves real
arrays as they are, so each rule reads as the real derivative does.
"""

from __future__ import annotations

import cmath
import math

from ... import backends
from ..primitive import binary, conj, defn, defprim, no_grad_op, unary
from ..tensor import unwrap


def _complex(xp, x) -> bool:
    return backends.isdtype(xp, x.dtype, "complex floating")


# --- arithmetic ---------------------------------------------------------------

add_p = binary("add", lambda xp, x, y: x + y,
             lambda xp, g, ans, x, y: g,
             lambda xp, g, ans, x, y: g, linear=True)
subtract_p = binary("subtract", lambda xp, x, y: x - y,
                  lambda xp, g, ans, x, y: g,
                  lambda xp, g, ans, x, y: -g, linear=True)
multiply_p = binary("multiply", lambda xp, x, y: x * y,
                  lambda xp, g, ans, x, y: g * conj(xp, y),
                  lambda xp, g, ans, x, y: g * conj(xp, x))
divide_p = binary("divide", lambda xp, x, y: x / y,
                lambda xp, g, ans, x, y: g / conj(xp, y),
                lambda xp, g, ans, x, y: -g * conj(xp, x / (y * y)))
negative_p = unary("negative", lambda xp, x: -x, lambda xp, g, ans, x: -g)
positive_p = unary("positive", lambda xp, x: +x, lambda xp, g, ans, x: g)
# d/dx |x| = sign(x), taken as 0 at 0, as PyTorch does; for complex z, sign(z) = z / |z|.
abs_p = unary("abs", lambda xp, x: xp.abs(x), lambda xp, g, ans, x: g * xp.sign(x))
square_p = unary("square", lambda xp, x: xp.square(x), lambda xp, g, ans, x: g * (2 * conj(xp, x)))
sqrt_p = unary("sqrt", lambda xp, x: xp.sqrt(x), lambda xp, g, ans, x: g / (2 * conj(xp, ans)), needs_ans=True)
reciprocal_p = unary("reciprocal", lambda xp, x: xp.reciprocal(x),
                   lambda xp, g, ans, x: -g * conj(xp, ans * ans), needs_ans=True)


def _pow_x(xp, g, ans, x, y):
    if type(y) in (int, float):
        if y == 0:
            return None  # x ** 0 is constant
        if y == 2:
            return g * (2 * conj(xp, x))
    return g * conj(xp, y * x ** (y - 1))


def _pow_y(xp, g, ans, x, y):
    # d/dy x**y = x**y log x; taken as 0 where x == 0 (the limit from above when y > 0).
    if type(x) is complex:
        return g * conj(xp, ans * cmath.log(x)) if x != 0 else None
    if not hasattr(x, "shape"):
        return g * conj(xp, ans) * math.log(x) if x > 0 else None
    if _complex(xp, ans) and not _complex(xp, x):
        x = xp.astype(x, ans.dtype)  # a negative real base of a complex power: the principal log of a complex number
    return g * conj(xp, ans * xp.log(xp.where(x == 0, xp.ones_like(x), x)))


pow_p = binary("pow", lambda xp, x, y: x ** y, _pow_x, _pow_y, needs_ans=True)


def _remainder_y(xp, g, ans, x, y):
    # x mod y = x - y * floor(x / y), so d/dy = -floor(x / y).
    return -g * xp.floor_divide(x, y)


remainder_p = binary("remainder", lambda xp, x, y: x % y, lambda xp, g, ans, x, y: g, _remainder_y)


# d max(x, y) / dx = [x > y] + [x == y] / 2: ties split the gradient evenly, as PyTorch does.
# min(x, y) takes x where y > x: its derivative is max's with the arguments swapped.
maximum_p = binary("maximum", lambda xp, x, y: xp.maximum(x, y),
                   lambda xp, g, ans, x, y: backends.kernels(xp).maximum_grad(g, x, y),
                   lambda xp, g, ans, x, y: backends.kernels(xp).maximum_grad(g, y, x))
minimum_p = binary("minimum", lambda xp, x, y: xp.minimum(x, y),
                   lambda xp, g, ans, x, y: backends.kernels(xp).maximum_grad(g, y, x),
                   lambda xp, g, ans, x, y: backends.kernels(xp).maximum_grad(g, x, y))


def _copysign_x(xp, g, ans, x, y):
    # copysign(x, y) is x or -x: the derivative is +1 where the sign was kept, -1 where flipped.
    kept = xp.signbit(x) == xp.signbit(ans)
    return g * (2 * xp.astype(kept, g.dtype) - 1)


copysign_p = binary("copysign", lambda xp, x, y: xp.copysign(x, y), _copysign_x, lambda xp, g, ans, x, y: None)

# --- exponentials and logarithms ----------------------------------------------

exp_p = unary("exp", lambda xp, x: xp.exp(x), lambda xp, g, ans, x: g * conj(xp, ans), needs_ans=True)


def _expm1(xp, x):
    """exp(x) - 1, without its cancellation near 0.

    For complex x the backend's expm1 (NumPy's: expm1(a) cos b - 2 sin^2(b/2)
    + i e^a sin b) is precise where x is finite, but turns the standard's
    special cases at infinities into NaN (inf * 0), and gives -0 + 0j at
    -0 + 0j, where the standard says 0 + 0j. Those come from exp(x) - 1,
    exact there, and from x - real(x) at 0 (its imaginary part keeps its sign).
    """
    y = xp.expm1(x)
    if not _complex(xp, x):
        return y
    y = xp.where(x == 0, x - xp.real(x), y)
    return xp.where(xp.isfinite(x), y, xp.exp(x) - 1)


expm1_p = unary("expm1", _expm1, lambda xp, g, ans, x: g * conj(xp, ans + 1), needs_ans=True)
log_p = unary("log", lambda xp, x: xp.log(x), lambda xp, g, ans, x: g / conj(xp, x))
log1p_p = unary("log1p", lambda xp, x: xp.log1p(x), lambda xp, g, ans, x: g / conj(xp, x + 1))
log2_p = unary("log2", lambda xp, x: xp.log2(x), lambda xp, g, ans, x: g / (conj(xp, x) * math.log(2.0)))
log10_p = unary("log10", lambda xp, x: xp.log10(x), lambda xp, g, ans, x: g / (conj(xp, x) * math.log(10.0)))
logaddexp_p = binary("logaddexp", lambda xp, x, y: xp.logaddexp(x, y),
                     lambda xp, g, ans, x, y: g * xp.exp(x - ans),
                     lambda xp, g, ans, x, y: g * xp.exp(y - ans), needs_ans=True)
hypot_p = binary("hypot", lambda xp, x, y: xp.hypot(x, y),
                 lambda xp, g, ans, x, y: g * x / ans,
                 lambda xp, g, ans, x, y: g * y / ans, needs_ans=True)

# --- trigonometric and hyperbolic ---------------------------------------------

sin_p = unary("sin", lambda xp, x: xp.sin(x), lambda xp, g, ans, x: g * conj(xp, xp.cos(x)))
cos_p = unary("cos", lambda xp, x: xp.cos(x), lambda xp, g, ans, x: -g * conj(xp, xp.sin(x)))
tan_p = unary("tan", lambda xp, x: xp.tan(x), lambda xp, g, ans, x: g * conj(xp, 1 + ans * ans), needs_ans=True)
asin_p = unary("asin", lambda xp, x: xp.asin(x), lambda xp, g, ans, x: g / conj(xp, xp.sqrt(1 - x * x)))
acos_p = unary("acos", lambda xp, x: xp.acos(x), lambda xp, g, ans, x: -g / conj(xp, xp.sqrt(1 - x * x)))
atan_p = unary("atan", lambda xp, x: xp.atan(x), lambda xp, g, ans, x: g / conj(xp, 1 + x * x))
atan2_p = binary("atan2", lambda xp, x, y: xp.atan2(x, y),
               lambda xp, g, ans, x, y: g * y / (x * x + y * y),
               lambda xp, g, ans, x, y: -g * x / (x * x + y * y))
sinh_p = unary("sinh", lambda xp, x: xp.sinh(x), lambda xp, g, ans, x: g * conj(xp, xp.cosh(x)))
cosh_p = unary("cosh", lambda xp, x: xp.cosh(x), lambda xp, g, ans, x: g * conj(xp, xp.sinh(x)))


def _tanh(xp, x):
    """tanh; for complex a + ib with a infinite and b finite, +-1 + 0j with the zero signed as b (the standard's).

    C99 (NumPy's, torch's) gives +-1 + 0j sin(2b) there, -0 where sin(2b) < 0;
    the 2024.12 standard says 1 + 0j for b > 0 (and its conjugate for b < 0).
    ``astype`` makes the imaginary part +0, ``conj`` flips it to -0.
    """
    y = xp.tanh(x)
    if not _complex(xp, x):
        return y
    a, b = xp.real(x), xp.imag(x)
    limit = xp.astype(xp.sign(a), x.dtype)
    limit = xp.where(xp.signbit(b), xp.conj(limit), limit)
    return xp.where(xp.isinf(a) & xp.isfinite(b), limit, y)


tanh_p = unary("tanh", _tanh, lambda xp, g, ans, x: g * conj(xp, 1 - ans * ans), needs_ans=True)
asinh_p = unary("asinh", lambda xp, x: xp.asinh(x), lambda xp, g, ans, x: g / conj(xp, xp.sqrt(x * x + 1)))


def _acosh_x(xp, g, ans, x):
    # acosh(z) = log(z + sqrt(z + 1) sqrt(z - 1)), so d acosh = 1 / (sqrt(z - 1) sqrt(z + 1)); left of the
    # imaginary axis that is -1 / sqrt(z^2 - 1), so the cheaper form serves real x > 1 only.
    if _complex(xp, x):
        return g / xp.conj(xp.sqrt(x - 1) * xp.sqrt(x + 1))
    return g / xp.sqrt(x * x - 1)


acosh_p = unary("acosh", lambda xp, x: xp.acosh(x), _acosh_x)
atanh_p = unary("atanh", lambda xp, x: xp.atanh(x), lambda xp, g, ans, x: g / conj(xp, 1 - x * x))

# --- complex parts ----------------------------------------------------------------
# conj is antiholomorphic: g pulls back to conj(g). real(z) = (z + conj z) / 2 gives g back
# (the engine casts it to z's complex dtype); imag(z) = (z - conj z) / 2i gives i g.


def _imag_x(xp, g, ans, x):
    if not _complex(xp, x):
        return None  # imag of a real array is 0 whatever x is
    return xp.astype(g, x.dtype) * 1j


conj_p = unary("conj", lambda xp, x: xp.conj(x), lambda xp, g, ans, x: conj(xp, g))
real_p = unary("real", lambda xp, x: xp.real(x), lambda xp, g, ans, x: g)
imag_p = unary("imag", lambda xp, x: xp.imag(x), _imag_x)


def _sign_z(xp, g, ans, z):
    # sign(z) = z / |z| is not holomorphic: d sign = (dz - sign^2 conj(dz)) / (2 |z|), so
    # g pulls back to (g - sign^2 conj(g)) / (2 |z|); 0 at z = 0, as PyTorch's sgn gives.
    r = xp.abs(z)
    safe = xp.where(r == 0, xp.ones_like(r), r)
    return xp.where(r == 0, xp.zeros_like(g), (g - ans * ans * xp.conj(g)) / (2 * safe))


complex_sign_p = defprim("sign", lambda xp, x: xp.sign(x), _sign_z, needs_ans=True, public=False)
real_sign_p = no_grad_op("sign", lambda xp, x: xp.sign(x), public=False)


@defn
def sign(x, /):
    """-1, 0 or 1 by the sign of a real x (no gradient); z / |z| for a complex z, differentiable."""
    raw = unwrap(x)
    return (complex_sign_p if _complex(backends.namespace(raw), raw) else real_sign_p)(x)


# --- clip -----------------------------------------------------------------------


def _clip_forward(xp, x, lo, hi):
    # maximum and minimum, not xp.clip: array-api-compat's clip syncs a GPU (see Kernels.clip).
    return backends.kernels(xp).clip(x, lo, hi)


def _clip_x(xp, g, ans, x, lo, hi):
    # The gradient passes where x lies within [lo, hi], boundaries included, as in PyTorch.
    if lo is None and hi is None:
        return g
    if lo is None:
        inside = x <= hi
    elif hi is None:
        inside = x >= lo
    else:
        inside = (x >= lo) & (x <= hi)
    return g * xp.astype(inside, g.dtype)


def _clip_lo(xp, g, ans, x, lo, hi):
    return g * xp.astype(x < lo, g.dtype)


def _clip_hi(xp, g, ans, x, lo, hi):
    return g * xp.astype(x > hi, g.dtype)


clip_p = defprim("clip", _clip_forward, _clip_x, _clip_lo, _clip_hi, broadcasts=True, public=False)


@defn
def clip(x, /, min=None, max=None):
    """Clamp x to [min, max]; the gradient flows where x is inside the interval."""
    return clip_p(x, min, max)


# --- piecewise constant: zero gradient, so no gradient is recorded -------------

floor_p = no_grad_op("floor", lambda xp, x: xp.floor(x))
ceil_p = no_grad_op("ceil", lambda xp, x: xp.ceil(x))
round_p = no_grad_op("round", lambda xp, x: xp.round(x))
trunc_p = no_grad_op("trunc", lambda xp, x: xp.trunc(x))
signbit_p = no_grad_op("signbit", lambda xp, x: xp.signbit(x))


def _infinite(xp, v):
    return math.isinf(v) if isinstance(v, (int, float)) else xp.isinf(v)


def _floor_divide(xp, x, y):
    """floor(x / y). NumPy's ``//`` (Python's) gives inf // 2 = nan and 1 // -inf = -1; the standard,
    as IEEE 754 does, takes the quotient there, +-inf and +-0 (already integers), so it is used where
    an operand is infinite (inf / inf stays nan)."""
    q = x // y
    if not backends.isdtype(xp, q.dtype, "real floating"):
        return q
    return xp.where(_infinite(xp, x) | _infinite(xp, y), x / y, q)


def _floor_divide_inplace(xp, x, y):
    """``x //= y`` in x's buffer, with the values of :func:`_floor_divide` (and the library's casting rules)."""
    if not backends.isdtype(xp, x.dtype, "real floating"):
        x //= y
        return x
    exact = _infinite(xp, x) | _infinite(xp, y)
    quotient = x / y
    x //= y
    x[exact] = quotient[exact]
    return x


floor_divide_p = no_grad_op("floor_divide", _floor_divide, inplace=_floor_divide_inplace)
nextafter_p = no_grad_op("nextafter", lambda xp, x, y: xp.nextafter(x, y))

# --- comparisons and tests: boolean outputs --------------------------------------

equal_p = no_grad_op("equal", lambda xp, x, y: x == y)
not_equal_p = no_grad_op("not_equal", lambda xp, x, y: x != y)
less_p = no_grad_op("less", lambda xp, x, y: x < y)
less_equal_p = no_grad_op("less_equal", lambda xp, x, y: x <= y)
greater_p = no_grad_op("greater", lambda xp, x, y: x > y)
greater_equal_p = no_grad_op("greater_equal", lambda xp, x, y: x >= y)
isfinite_p = no_grad_op("isfinite", lambda xp, x: xp.isfinite(x))
isinf_p = no_grad_op("isinf", lambda xp, x: xp.isinf(x))
isnan_p = no_grad_op("isnan", lambda xp, x: xp.isnan(x))
logical_and_p = no_grad_op("logical_and", lambda xp, x, y: xp.logical_and(x, y))
logical_or_p = no_grad_op("logical_or", lambda xp, x, y: xp.logical_or(x, y))
logical_xor_p = no_grad_op("logical_xor", lambda xp, x, y: xp.logical_xor(x, y))
logical_not_p = no_grad_op("logical_not", lambda xp, x: xp.logical_not(x))

# --- integers and booleans: bitwise ---------------------------------------------

bitwise_and_p = no_grad_op("bitwise_and", lambda xp, x, y: x & y)
bitwise_or_p = no_grad_op("bitwise_or", lambda xp, x, y: x | y)
bitwise_xor_p = no_grad_op("bitwise_xor", lambda xp, x, y: x ^ y)
bitwise_invert_p = no_grad_op("bitwise_invert", lambda xp, x: ~x)
bitwise_left_shift_p = no_grad_op("bitwise_left_shift", lambda xp, x, y: x << y)
bitwise_right_shift_p = no_grad_op("bitwise_right_shift", lambda xp, x, y: x >> y)
