"""The table's cases for complex inputs, and for the fft extension (appended to op_cases.CASES).

Complex inputs follow PyTorch's convention: for a real cost, the gradient of a
complex input is the conjugate Wirtinger derivative. A real input of a complex
computation gets the real part, in its own dtype. Each fft transform is
covered with real and complex inputs where it takes them, with n (or s)
padding and trimming, even and odd lengths, another axis and each norm.
"""

from __future__ import annotations

from gdbp.backprop import ops

from op_cases import MASK, Complex, Const, Float, binary_fn, case, matmul, ns, reduction, unary_fn

# --- complex inputs: PyTorch's convention (the conjugate Wirtinger derivative) --------------------

# Domains off the branch cuts: logs and roots away from the negative real axis, the inverse
# functions inside the region where their cuts do not reach, |z| and 1/z away from 0.
COMPLEX_DOMAINS = {
    "abs": dict(offset=1.2), "acos": dict(scale=0.6), "acosh": dict(offset=2.0), "asin": dict(scale=0.6),
    "asinh": dict(scale=0.6), "atan": dict(scale=0.6), "atanh": dict(scale=0.6), "conj": dict(), "cos": dict(),
    "cosh": dict(), "exp": dict(), "expm1": dict(), "imag": dict(), "log": dict(offset=1.5),
    "log1p": dict(scale=0.6), "log2": dict(offset=1.5), "log10": dict(offset=1.5), "negative": dict(),
    "positive": dict(), "real": dict(), "reciprocal": dict(offset=1.5), "sign": dict(offset=1.2), "sin": dict(),
    "sinh": dict(), "sqrt": dict(offset=1.5), "square": dict(), "tan": dict(scale=0.6), "tanh": dict(scale=0.6),
}
for _name, _domain in COMPLEX_DOMAINS.items():
    case(_name, unary_fn(_name), Complex((2, 3), **_domain), label="complex")
case("sign", unary_fn("sign"), Complex((4,), offset=0.5), label="complex-near-0")
for _name in ("add", "subtract", "multiply", "divide", "pow"):
    _offset = 1.5 if _name in ("divide", "pow") else 0.0  # 1/y and log x away from 0 and the cut
    case(_name, binary_fn(_name), Complex((3, 1, 2), offset=_offset), Complex((4, 1), offset=_offset),
         label="complex-broadcast")
    # A real input of a complex computation: its gradient is the real part, in its own dtype.
    case(_name, binary_fn(_name), Float((3, 1, 2), 0.5, 2.0), Complex((4, 1), offset=_offset), label="real-complex")
case("pow", lambda z: z ** 2, Complex((3,)), label="complex-square-int")
case("pow", lambda z: (1.5 + 0.5j) ** z, Complex((3,)), label="complex-scalar-base")
for _name in ("sum", "mean", "prod"):
    case(_name, reduction(_name, axis=1), Complex((2, 3, 2)), label="complex-axis1")
case("prod", reduction("prod", axis=1), Complex((2, 3)), label="complex-all")
case("cumulative_sum", reduction("cumulative_sum", axis=1), Complex((2, 4)), label="complex")
case("cumulative_prod", reduction("cumulative_prod", axis=1), Complex((2, 4), offset=0.5), label="complex")
case("matmul", matmul, Complex((2, 3, 4)), Complex((4, 2)), label="complex-batch")
case("matmul", matmul, Complex((4,)), Complex((4, 3)), label="complex-1d-2d")
case("matmul", matmul, Complex((3, 4)), Complex((4,)), label="complex-2d-1d")
case("vecdot", lambda x, y: ns(x, y).vecdot(x, y), Complex((2, 3)), Complex((3,)), label="complex")
case("tensordot", lambda x, y: ns(x, y).tensordot(x, y, axes=1), Complex((2, 3)), Complex((3, 4)), label="complex")
case("astype", lambda z: ns(z).astype(z, ns(z).complex64), Complex((2, 3)), label="to-complex64",
     fd=dict(eps=1e-3, rtol=1e-3, atol=1e-6))
case("astype", lambda x: ns(x).astype(x, ns(x).complex128 if x.dtype == ns(x).float64 else ns(x).complex64),
     Float((2, 3)), label="real-to-complex")
case("getitem", lambda z: z[1:, ::2], Complex((3, 4)), label="complex")
case("where", lambda c, x, y: ns(x, y).where(c, x, y), Const(MASK), Complex((3, 4)), Complex((4,)), label="complex")
case("concat", lambda x, y: ns(x, y).concat([x, y], axis=0), Complex((2, 3)), Complex((1, 3)), label="complex")
case("reshape", lambda z: ns(z).reshape(z, (3, -1)), Complex((2, 3)), label="complex")

# --- the fft extension: every transform, real and complex inputs, n / axis / norm ---------------------


def fft_fn(name, **kw):
    return lambda x: getattr(ns(x).fft, name)(x, **kw)


for _name in ("fft", "ifft"):
    case(f"fft.{_name}", fft_fn(_name), Complex((3, 4)), label="complex")
    case(f"fft.{_name}", fft_fn(_name, n=6, axis=0, norm="ortho"), Complex((3, 4)), label="pad-axis0-ortho")
    case(f"fft.{_name}", fft_fn(_name, n=3, norm="forward"), Complex((2, 5)), label="trim-forward")
    case(f"fft.{_name}", fft_fn(_name), Float((5,)), label="real-input")
for _name in ("rfft", "ihfft"):  # real in, bins 0..n//2 out
    case(f"fft.{_name}", fft_fn(_name), Float((3, 6)), label="even")
    case(f"fft.{_name}", fft_fn(_name, n=7, axis=0, norm="ortho"), Float((5, 2)), label="odd-pad-axis0-ortho")
    case(f"fft.{_name}", fft_fn(_name, n=4, norm="forward"), Float((2, 7)), label="trim-forward")
for _name in ("irfft", "hfft"):  # bins 0..n//2 in, real out
    case(f"fft.{_name}", fft_fn(_name), Complex((3, 4)), label="default-n")
    case(f"fft.{_name}", fft_fn(_name, n=7, axis=0, norm="ortho"), Complex((3, 2)), label="odd-pad-axis0-ortho")
    case(f"fft.{_name}", fft_fn(_name, n=4, norm="forward"), Complex((2, 5)), label="even-trim-forward")
    case(f"fft.{_name}", fft_fn(_name, n=5), Float((2, 3)), label="real-input")
for _name in ("fftn", "ifftn"):
    case(f"fft.{_name}", fft_fn(_name), Complex((2, 3, 4)), label="all-axes")
    case(f"fft.{_name}", fft_fn(_name, s=(4, 2), axes=(2, 0), norm="ortho"), Complex((3, 2, 5)), label="s-axes-ortho")
    case(f"fft.{_name}", fft_fn(_name, axes=(1,)), Float((2, 3)), label="real-input")
case("fft.rfftn", fft_fn("rfftn"), Float((2, 3, 4)), label="all-axes")
case("fft.rfftn", fft_fn("rfftn", s=(3, 5), axes=(0, 2), norm="forward"), Float((2, 3, 4)), label="s-axes-odd")
case("fft.irfftn", fft_fn("irfftn"), Complex((2, 3, 3)), label="all-axes")
case("fft.irfftn", fft_fn("irfftn", s=(4, 5), axes=(2, 0), norm="ortho"), Complex((3, 2, 4)), label="s-axes-odd")
for _name in ("fftshift", "ifftshift"):
    case(f"fft.{_name}", fft_fn(_name), Float((3, 4)), label="all-axes")
    case(f"fft.{_name}", fft_fn(_name, axes=1), Complex((2, 5)), label="complex-axis1")
case("linear", lambda x, w, b: ops.linear(x, w, b), Complex((4, 3)), Complex((5, 3)), Complex((5,)), label="complex")
case("linear", lambda x, w, b: ops.linear(x, w, b), Complex((2, 4, 3)), Float((5, 3)), Float((5,)),
     label="complex-input-real-weights", skip={"torch": "torch's matmul refuses a complex and a real operand"})
