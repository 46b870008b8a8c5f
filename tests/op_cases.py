"""One table of cases covering every differentiable function of gdbp's namespace.

Each :class:`Case` is a small function of some floating inputs, real
(:class:`Float`) or complex (:class:`Complex`), and integer or boolean
constants, with input domains where the function is smooth: log of positive
numbers, acos inside (-0.9, 0.9), |x| away from 0, complex logs away from the
branch cut, and so on. The
finite-difference tests, the backend-parity tests and the dtype tests all run
over this table, so a function added to the namespace needs one entry here
(``test_every_differentiable_function_has_a_case`` fails until it has one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import array_api_compat
import numpy as np

import gdbp
from gdbp import backends
from gdbp.backprop import ops
from gdbp.backprop.primitive import NAMESPACE, Primitive
from gdbp.backprop.namespace import DIFFERENTIABLE


def raw(x):
    """The array inside a Tensor (a primitive's keyword arguments, such as index keys, are raw arrays)."""
    return x.data if isinstance(x, gdbp.Tensor) else x


def ns(*arrays):
    """The array namespace of the inputs (gdbp's own, for Tensors)."""
    return array_api_compat.array_namespace(*arrays)


@dataclass(frozen=True)
class Float:
    """A floating input: uniform in [low, high); ``pm``: |x| in [low, high) with a random sign."""

    shape: tuple
    low: float = -1.0
    high: float = 1.0
    pm: bool = False
    zeros: tuple = ()  # flat positions set exactly to 0


@dataclass(frozen=True)
class Complex:
    """A complex input: real and imaginary parts uniform in [-scale, scale), plus ``offset``.

    complex128 in float64 runs, complex64 in float32 runs.
    """

    shape: tuple
    scale: float = 1.0
    offset: complex = 0.0


@dataclass(frozen=True)
class Const:
    """A constant input (integer indices, a boolean mask), given as a host NumPy array."""

    value: object


@dataclass
class Case:
    name: str  # the function of the namespace (or of gdbp.backprop.ops) that the case covers
    fn: object
    inputs: tuple
    label: str = ""
    fd: dict = field(default_factory=dict)  # check_grad options for this case
    skip: dict = field(default_factory=dict)  # backend name -> why the case cannot run there
    keeps_dtype: bool = True  # float32 inputs give float32 outputs

    @property
    def id(self) -> str:
        return f"{self.name}-{self.label}" if self.label else self.name

    def float_argnums(self) -> tuple:
        return tuple(i for i, s in enumerate(self.inputs) if isinstance(s, (Float, Complex)))


def host_args(case: Case, rng, dtype="float64") -> list:
    """The case's inputs as host NumPy arrays."""
    out = []
    for spec in case.inputs:
        if isinstance(spec, Const):
            out.append(np.asarray(spec.value))
            continue
        if isinstance(spec, Complex):
            z = rng.uniform(-spec.scale, spec.scale, size=spec.shape) * (1 + 0j)
            z += 1j * rng.uniform(-spec.scale, spec.scale, size=spec.shape) + spec.offset
            out.append(z.astype(np.complex64 if dtype == "float32" else np.complex128))
            continue
        x = rng.uniform(spec.low, spec.high, size=spec.shape)
        if spec.pm:
            x = x * rng.choice([-1.0, 1.0], size=spec.shape)
        x = np.asarray(x, dtype=np.float64)
        if spec.zeros:
            x.reshape(-1)[list(spec.zeros)] = 0.0
        out.append(x.astype(dtype))
    return out


def make_args(case: Case, rng, backend="numpy", dtype="float64") -> list:
    """The case's inputs as arrays of ``backend``; floating ones in ``dtype`` (complex ones of its precision)."""
    return [backends.transfer(a, backend) for a in host_args(case, rng, dtype)]


CASES: list[Case] = []


def case(name, fn, *inputs, label="", **options):
    CASES.append(Case(name, fn, tuple(inputs), label, **options))


# --- elementwise, one input ---------------------------------------------------------

UNARY_DOMAINS = {
    "abs": dict(low=0.2, high=1.0, pm=True),
    "acos": dict(low=-0.9, high=0.9),
    "acosh": dict(low=1.2, high=3.0),
    "asin": dict(low=-0.9, high=0.9),
    "asinh": dict(),
    "atan": dict(),
    "atanh": dict(low=-0.9, high=0.9),
    "conj": dict(),
    "cos": dict(),
    "cosh": dict(),
    "exp": dict(),
    "expm1": dict(),
    "log": dict(low=0.2, high=2.0),
    "log1p": dict(low=-0.5, high=1.0),
    "log2": dict(low=0.2, high=2.0),
    "log10": dict(low=0.2, high=2.0),
    "negative": dict(),
    "positive": dict(),
    "real": dict(),
    "reciprocal": dict(low=0.2, high=2.0, pm=True),
    "sin": dict(),
    "sinh": dict(),
    "sqrt": dict(low=0.2, high=2.0),
    "square": dict(),
    "tan": dict(low=-1.2, high=1.2),
    "tanh": dict(),
    "relu": dict(low=0.1, high=1.0, pm=True),  # away from the kink at 0
    "sigmoid": dict(low=-3.0, high=3.0),
}


def unary_fn(name):
    return lambda x: getattr(ns(x), name)(x)


for _name, _domain in UNARY_DOMAINS.items():
    case(_name, unary_fn(_name), Float((2, 3), **_domain), label="2d")
    case(_name, unary_fn(_name), Float((), **_domain), label="0d")

# --- elementwise, two inputs (broadcasting) ----------------------------------------------

BINARY_DOMAINS = {
    "add": (dict(), dict()),
    "subtract": (dict(), dict()),
    "multiply": (dict(), dict()),
    "divide": (dict(), dict(low=0.3, high=1.0, pm=True)),
    "atan2": (dict(low=0.2, high=1.0, pm=True), dict(low=0.2, high=1.0, pm=True)),  # off the branch cut
    "copysign": (dict(low=0.2, high=1.0, pm=True), dict(low=0.2, high=1.0, pm=True)),
    "hypot": (dict(low=0.2, high=1.0, pm=True), dict(low=0.2, high=1.0, pm=True)),
    "logaddexp": (dict(), dict()),
    "maximum": (dict(), dict()),
    "minimum": (dict(), dict()),
    "pow": (dict(low=0.5, high=2.0), dict(low=-1.5, high=1.5)),
    "remainder": (dict(low=-3.0, high=3.0), dict(low=0.5, high=1.5)),
}


def binary_fn(name):
    return lambda x, y: getattr(ns(x, y), name)(x, y)


for _name, (_dx, _dy) in BINARY_DOMAINS.items():
    case(_name, binary_fn(_name), Float((3, 1, 2), **_dx), Float((4, 1), **_dy), label="broadcast")
    case(_name, binary_fn(_name), Float((), **_dx), Float((2, 3), **_dy), label="0d-2d")

# Python scalars as operands, through the Tensor's operators.
case("pow", lambda x: x ** 2, Float((3,)), label="square-int")
case("pow", lambda x: x ** 3.0, Float((3,)), label="cube")
case("pow", lambda x: x ** 0.5, Float((3,), 0.2, 2.0), label="sqrt")
case("pow", lambda x: 2.0 ** x, Float((3,)), label="scalar-base")
case("divide", lambda x: 3.0 / x, Float((3,), 0.3, 1.0, pm=True), label="scalar-numerator")
case("subtract", lambda x: 1.0 - x, Float((2, 2)), label="scalar-left")
case("remainder", lambda x: x % 0.7, Float((4,), -2.0, 2.0), label="scalar-divisor")
case("clip", lambda x: ns(x).clip(x, min=-0.5, max=0.5), Float((3, 4)), label="scalars")
case("clip", lambda x: ns(x).clip(x, min=-0.5), Float((3, 4)), label="min-only")
case("clip", lambda x: ns(x).clip(x, max=0.5), Float((3, 4)), label="max-only")
case("clip", lambda x, lo, hi: ns(x).clip(x, min=lo, max=hi), Float((3, 4)), Float((4,), -0.8, -0.1),
     Float((3, 1), 0.1, 0.8), label="arrays")

# --- reductions and scans -----------------------------------------------------------------


def reduction(name, **kw):
    return lambda x: getattr(ns(x), name)(x, **kw)


for _name in ("sum", "mean", "max", "min", "prod", "logsumexp"):
    case(_name, reduction(_name), Float((2, 3, 2)), label="all")
    case(_name, reduction(_name, axis=1), Float((2, 3, 2)), label="axis1")
    case(_name, reduction(_name, axis=(0, 2), keepdims=True), Float((2, 3, 2)), label="axes-keepdims")
    case(_name, reduction(_name, axis=-1), Float((1, 3)), label="size1")
    case(_name, reduction(_name), Float(()), label="0d")
case("prod", reduction("prod", axis=1), Float((2, 4), zeros=(1,)), label="one-zero")
case("prod", reduction("prod", axis=1), Float((2, 4), zeros=(1, 2)), label="two-zeros")
case("prod", reduction("prod"), Float((2, 3), zeros=(4,)), label="all-one-zero")
for _name in ("var", "std"):
    case(_name, reduction(_name), Float((3, 4)), label="all")
    case(_name, reduction(_name, axis=0, correction=1), Float((3, 4)), label="axis0-correction1")
    case(_name, reduction(_name, axis=(0, 2), keepdims=True, correction=0.5), Float((2, 3, 2)),
         label="axes-keepdims")
case("cumulative_sum", reduction("cumulative_sum"), Float((5,)), label="1d")
case("cumulative_sum", reduction("cumulative_sum", axis=1), Float((2, 4)), label="axis1")
case("cumulative_sum", reduction("cumulative_sum", axis=0, include_initial=True), Float((3, 2)),
     label="include-initial")
case("cumulative_prod", reduction("cumulative_prod"), Float((5,), 0.5, 1.5, pm=True), label="1d")
case("cumulative_prod", reduction("cumulative_prod", axis=1), Float((2, 4), 0.5, 1.5, pm=True), label="axis1")
case("cumulative_prod", reduction("cumulative_prod", axis=0, include_initial=True),
     Float((3, 2), 0.5, 1.5, pm=True), label="include-initial")
for _name in ("softmax", "log_softmax"):
    case(_name, reduction(_name), Float((3, 4)), label="last-axis")
    case(_name, reduction(_name, axis=0), Float((3, 4)), label="axis0")
    case(_name, reduction(_name), Float((4,), -30.0, 30.0), label="wide-range")

# --- linear algebra ----------------------------------------------------------------------


def matmul(x, y):
    return ns(x, y).matmul(x, y)


for _label, (_a, _b) in {
    "2d": ((3, 4), (4, 2)),
    "batch-broadcast": ((2, 1, 3, 4), (5, 4, 2)),
    "1d-2d": ((4,), (4, 3)),
    "2d-1d": ((3, 4), (4,)),
    "1d-1d": ((4,), (4,)),
    "1d-3d": ((4,), (2, 4, 3)),
    "3d-1d": ((2, 3, 4), (4,)),
    "stack-2d": ((2, 3, 4), (4, 5)),  # on NumPy, one product over the stack's rows, forward and backward
    "4d-2d": ((2, 2, 3, 4), (4, 2)),
}.items():
    case("matmul", matmul, Float(_a), Float(_b), label=_label)
# A stack that is not C-ordered (a transposed view) is multiplied matrix by matrix.
case("matmul", lambda x, y: ns(x).matrix_transpose(x) @ y, Float((2, 4, 3)), Float((4, 2)), label="stack-view-2d")
case("matmul", lambda x, y: x @ y, Float((2, 3)), Float((3, 2)), label="operator")
case("matrix_transpose", lambda x: ns(x).matrix_transpose(x), Float((2, 3, 4)))
case("tensordot", lambda x, y: ns(x, y).tensordot(x, y, axes=1), Float((2, 3)), Float((3, 4)), label="axes1")
case("tensordot", lambda x, y: ns(x, y).tensordot(x, y), Float((2, 3, 4)), Float((3, 4, 2)), label="axes2")
case("tensordot", lambda x, y: ns(x, y).tensordot(x, y, axes=((1, 0), (0, 2))), Float((2, 3, 4)),
     Float((3, 5, 2)), label="explicit")
case("vecdot", lambda x, y: ns(x, y).vecdot(x, y), Float((2, 3)), Float((3,)), label="broadcast")
case("vecdot", lambda x, y: ns(x, y).vecdot(x, y, axis=0), Float((3, 2)), Float((3, 2)), label="axis0")

# --- the linalg extension (xp.linalg) ---------------------------------------------------------
#
# Inputs are shifted or symmetrised inside each case where the function needs it (solve and inv: well away
# from singular; cholesky: positive definite; eigh: symmetric, as the libraries read one triangle). Outputs
# that a decomposition fixes only up to sign (eigenvectors, singular vectors, Q) are returned in a form that
# does not depend on it, so that every backend's LAPACK gives the same values.


def linalg(x):
    return ns(x).linalg


def well_conditioned(x):
    return x + 3.0 * ns(x).eye(x.shape[-1], dtype=x.dtype)


def positive_definite(x):
    return x @ x.mT + x.shape[-1] * ns(x).eye(x.shape[-1], dtype=x.dtype)


def symmetric(x):
    return x + x.mT


def eigh_parts(x):
    w, v = linalg(x).eigh(symmetric(x))
    return w, v * v[..., :1, :]  # each eigenvector times its first entry: the same for v and -v


def svd_parts(x, **kw):
    u, s, vh = linalg(x).svd(x, **kw)
    k = s.shape[-1]
    # column i of U times Vh[i, 0], row i of Vh times U[0, i]: unchanged when u_i and v_i both flip sign
    return s, u[..., :, :k] * vh[..., :k, :1].mT, vh[..., :k, :] * u[..., :1, :k].mT


def qr_parts(x, **kw):
    q, r = linalg(x).qr(x, **kw)
    d = ns(x).sign(linalg(x).diagonal(r))  # R's diagonal made positive: the unique QR
    k = d.shape[-1]
    return q[..., :, :k] * d[..., None, :], r * d[..., :, None]


case("linalg.solve", lambda a, b: linalg(a).solve(well_conditioned(a), b), Float((2, 3, 3)), Float((2, 3, 2)),
     label="batch")
case("linalg.solve", lambda a, b: linalg(a).solve(well_conditioned(a), b), Float((2, 1, 3, 3)), Float((4, 3, 2)),
     label="broadcast")
case("linalg.solve", lambda a, b: linalg(a).solve(well_conditioned(a), b), Float((2, 3, 3)), Float((3,)),
     label="vector")
case("linalg.inv", lambda a: linalg(a).inv(well_conditioned(a)), Float((2, 3, 3)))
case("linalg.det", lambda a: linalg(a).det(a), Float((2, 3, 3)), label="batch")
case("linalg.det", lambda a: linalg(a).det(a), Float((1, 1)), label="1x1")
case("linalg.slogdet", lambda a: linalg(a).slogdet(a), Float((2, 3, 3)))
case("linalg.cholesky", lambda a: linalg(a).cholesky(positive_definite(a)), Float((2, 3, 3)), label="lower")
case("linalg.cholesky", lambda a: linalg(a).cholesky(positive_definite(a), upper=True), Float((3, 3)),
     label="upper")
case("linalg.eigh", eigh_parts, Float((2, 3, 3)))
case("linalg.eigvalsh", lambda a: linalg(a).eigvalsh(symmetric(a)), Float((2, 3, 3)))
case("linalg.svd", svd_parts, Float((2, 4, 3)), label="tall")
case("linalg.svd", lambda a: svd_parts(a, full_matrices=False), Float((2, 3, 4)), label="wide-reduced")
case("linalg.svdvals", lambda a: linalg(a).svdvals(a), Float((2, 3, 4)))
case("linalg.qr", qr_parts, Float((2, 4, 3)), label="tall")
case("linalg.qr", qr_parts, Float((3, 3)), label="square")
case("linalg.qr", lambda a: qr_parts(a, mode="complete"), Float((2, 3, 4)), label="wide-complete")
case("linalg.pinv", lambda a: linalg(a).pinv(a), Float((2, 4, 3)), label="tall")
case("linalg.pinv", lambda a: linalg(a).pinv(a), Float((3, 5)), label="wide")
case("linalg.matrix_power", lambda a: linalg(a).matrix_power(a, 3), Float((2, 3, 3)), label="3")
case("linalg.matrix_power", lambda a: linalg(a).matrix_power(well_conditioned(a), -2), Float((3, 3)), label="-2")
case("linalg.cross", lambda a, b: linalg(a).cross(a, b), Float((2, 3)), Float((3,)), label="broadcast")
case("linalg.cross", lambda a, b: linalg(a).cross(a, b, axis=-2), Float((3, 2)), Float((3, 2)), label="axis-2")
case("linalg.diagonal", lambda a: linalg(a).diagonal(a), Float((2, 3, 4)), label="main")
case("linalg.diagonal", lambda a: linalg(a).diagonal(a, offset=1), Float((2, 3, 4)), label="above")
case("linalg.diagonal", lambda a: linalg(a).diagonal(a, offset=-2), Float((4, 3)), label="below")
case("linalg.trace", lambda a: linalg(a).trace(a), Float((2, 3, 3)), label="batch")
case("linalg.trace", lambda a: linalg(a).trace(a, offset=-1), Float((3, 4)), label="offset")
case("linalg.outer", lambda a, b: linalg(a).outer(a, b), Float((3,)), Float((4,)))
for _ord in (2, 1, 3, 0.5, -1, math.inf, -math.inf):
    case("linalg.vector_norm", lambda a, o=_ord: linalg(a).vector_norm(a, ord=o, axis=-1), Float((2, 3)),
         label=f"ord{_ord}")
case("linalg.vector_norm", lambda a: linalg(a).vector_norm(a), Float((2, 3, 2)), label="all")
case("linalg.vector_norm", lambda a: linalg(a).vector_norm(a, axis=(0, 2), keepdims=True), Float((2, 3, 2)),
     label="axes-keepdims")
for _ord in ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf):
    case("linalg.matrix_norm", lambda a, o=_ord: linalg(a).matrix_norm(a, ord=o), Float((2, 3, 4)),
         label=f"ord{_ord}")
case("linalg.matrix_norm", lambda a: linalg(a).matrix_norm(a, keepdims=True), Float((2, 3, 4)), label="keepdims")
case("linalg.matmul", lambda a, b: linalg(a).matmul(a, b), Float((2, 3, 4)), Float((4, 2)))
case("linalg.matrix_transpose", lambda a: linalg(a).matrix_transpose(a), Float((2, 3, 4)))
case("linalg.tensordot", lambda a, b: linalg(a).tensordot(a, b, axes=1), Float((2, 3)), Float((3, 4)))
case("linalg.vecdot", lambda a, b: linalg(a).vecdot(a, b), Float((2, 3)), Float((3,)))

# --- manipulation ---------------------------------------------------------------------------

case("broadcast_arrays", lambda x, y: ns(x, y).broadcast_arrays(x, y), Float((3, 1)), Float((4,)))
case("broadcast_to", lambda x: ns(x).broadcast_to(x, (2, 3, 4)), Float((3, 1)))
case("broadcast_to", lambda x: ns(x).broadcast_to(x, (2, 3)), Float(()), label="0d")
case("concat", lambda x, y: ns(x, y).concat([x, y], axis=0), Float((2, 3)), Float((1, 3)), label="axis0")
case("concat", lambda x, y: ns(x, y).concat([x, y, x], axis=-1), Float((2, 1)), Float((2, 3)), label="axis-1")
case("concat", lambda x, y: ns(x, y).concat([x, y], axis=None), Float((2, 2)), Float((3,)), label="flat")
case("expand_dims", lambda x: ns(x).expand_dims(x, axis=0), Float((2, 3)), label="axis0")
case("expand_dims", lambda x: ns(x).expand_dims(x, axis=-1), Float((2, 3)), label="last")
case("flip", lambda x: ns(x).flip(x), Float((2, 3)), label="all")
case("flip", lambda x: ns(x).flip(x, axis=1), Float((2, 3, 2)), label="axis1")
case("flip", lambda x: ns(x).flip(x, axis=(0, 2)), Float((2, 3, 2)), label="axes")
case("moveaxis", lambda x: ns(x).moveaxis(x, 0, -1), Float((2, 3, 4)), label="one")
case("moveaxis", lambda x: ns(x).moveaxis(x, (0, 1), (2, 0)), Float((2, 3, 4)), label="two")
case("permute_dims", lambda x: ns(x).permute_dims(x, (2, 0, 1)), Float((2, 3, 4)))
case("repeat", lambda x: ns(x).repeat(x, 2, axis=0), Float((2, 3)), label="int")
case("repeat", lambda x, r: ns(x).repeat(x, r, axis=1), Float((2, 3)), Const(np.array([1, 0, 3])),
     label="array")
case("repeat", lambda x: ns(x).repeat(x, 3), Float((2, 2)), label="flat")
case("reshape", lambda x: ns(x).reshape(x, (3, -1)), Float((2, 3)))
case("reshape", lambda x: ns(x).reshape(x, ()), Float((1, 1)), label="to-0d")
case("roll", lambda x: ns(x).roll(x, 2), Float((2, 3)), label="flat")
case("roll", lambda x: ns(x).roll(x, (1, -1), axis=(0, 1)), Float((2, 3)), label="axes")
case("squeeze", lambda x: ns(x).squeeze(x, axis=1), Float((3, 1, 2)), label="axis1")
case("squeeze", lambda x: ns(x).squeeze(x, axis=(0, 2)), Float((1, 3, 1)), label="axes")
case("stack", lambda x, y: ns(x, y).stack([x, y], axis=0), Float((2, 3)), Float((2, 3)), label="axis0")
case("stack", lambda x, y: ns(x, y).stack([x, y, x], axis=-1), Float((2, 3)), Float((2, 3)), label="last")
case("tile", lambda x: ns(x).tile(x, (2, 1)), Float((2, 3)), label="2d")
case("tile", lambda x: ns(x).tile(x, (2, 1, 3)), Float((2, 3)), label="more-reps")
case("tile", lambda x: ns(x).tile(x, (2,)), Float((2, 3)), label="fewer-reps")
case("unstack", lambda x: ns(x).unstack(x), Float((3, 2)), label="axis0")
case("unstack", lambda x: ns(x).unstack(x, axis=-1), Float((3, 2)), label="last")
case("diff", lambda x: ns(x).diff(x), Float((2, 5)), label="n1")
case("diff", lambda x: ns(x).diff(x, axis=0, n=2), Float((4, 3)), label="n2-axis0")
case("diff", lambda x, p, a: ns(x).diff(x, prepend=p, append=a), Float((2, 4)), Float((2, 1)), Float((2, 2)),
     label="prepend-append")
for _name in ("tril", "triu"):
    case(_name, reduction(_name), Float((3, 4)), label="k0")
    case(_name, reduction(_name, k=1), Float((2, 3, 3)), label="k1-batch")
    case(_name, reduction(_name, k=-1), Float((4, 3)), label="k-1")

# --- indexing, searching, sorting -----------------------------------------------------------

REPEATS = np.array([2, 0, 2, 1, 2])
STRICT_INT_ARRAYS = "the standard (and array-api-strict) allows integer arrays beside integers only, not slices"
case("take", lambda x, i: ns(x).take(x, i, axis=0), Float((3, 2)), Const(REPEATS % 3), label="axis0-repeats")
case("take", lambda x, i: ns(x).take(x, i, axis=-1), Float((2, 4)), Const(np.array([3, 1, 3])), label="last")
case("take", lambda x, i: ns(x).take(x, i), Float((4,)), Const(np.array([0, 0, 3])), label="1d")
case("take_along_axis", lambda x, i: ns(x).take_along_axis(x, i, axis=1), Float((3, 4)),
     Const(np.array([[0, 0], [3, 1], [2, 2]])), label="axis1-repeats")
case("take_along_axis", lambda x, i: ns(x).take_along_axis(x, i, axis=0), Float((3, 2)),
     Const(np.array([[2, 0], [2, 2]])), label="axis0")
MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])
case("where", lambda c, x, y: ns(x, y).where(c, x, y), Const(MASK), Float((3, 4)), Float((4,)), label="broadcast")
case("where", lambda c, x: ns(x).where(c, x, 0.0), Const(MASK), Float((3, 4)), label="scalar")
case("sort", lambda x: ns(x).sort(x), Float((3, 4)), label="last-axis")
case("sort", lambda x: ns(x).sort(x, axis=0, descending=True), Float((3, 4)), label="axis0-descending")
case("getitem", lambda x: x[1, ...], Float((3, 4)), label="int")
case("getitem", lambda x: x[-1, 2], Float((3, 4)), label="ints")
case("getitem", lambda x: x[1:3, :], Float((4, 2)), label="slice")
case("getitem", lambda x: x[::2, 1::2], Float((5, 4)), label="steps")
case("getitem", lambda x: x[::-2, 1], Float((5, 4)), label="negative-step",
     skip={"torch": "torch tensors have no negative slice steps"})
case("getitem", lambda x: x[..., 1], Float((2, 3, 4)), label="ellipsis")
case("getitem", lambda x: x[None, :, None, 0], Float((3, 2)), label="none")
case("getitem", lambda x: x[()], Float(()), label="0d")
case("getitem", lambda x: x[:, 0], Float((3, 1)), label="squeeze")  # every element in order: a reshape back
case("getitem", lambda x: x[None, ..., -1], Float((2, 3, 1)), label="every-element")
case("getitem", lambda x, i: x[i], Float((3,)), Const(REPEATS % 3), label="int-array-repeats")
case("getitem", lambda x, i: x[i, 1], Float((3, 2)), Const(REPEATS % 3), label="int-array-and-int")
case("getitem", lambda x, i: x[i, :], Float((3, 2)), Const(REPEATS % 3), label="int-array-rows",
     skip={"array_api_strict": STRICT_INT_ARRAYS})
case("getitem", lambda x, i: x[:, i], Float((2, 4)), Const(np.array([[3, 3], [0, 3]])), label="2d-int-array",
     skip={"array_api_strict": STRICT_INT_ARRAYS})
case("getitem", lambda x, i, j: x[i, j], Float((3, 4)), Const(np.array([0, 2, 0])), Const(np.array([1, 3, 1])),
     label="two-int-arrays")
case("getitem", lambda x, m: x[m], Float((3, 4)), Const(MASK), label="mask")
case("getitem", lambda x, m: x[m], Float((3, 4)), Const(np.array([True, False, True])), label="row-mask")


def _setitem_op(x, v):
    return ops.setitem(x, v, key=(slice(0, 2), 1))


def _setitem_tensor(x, v):
    y = x * 1.0  # a non-leaf, so that x[key] = v is recorded
    y[1:, 0] = v
    return y


def _setitem_int_array(x, v, i):
    y = x + 0.0
    y[i] = v
    return y


case("setitem", _setitem_op, Float((3, 4)), Float((2,)), label="op")
case("setitem", _setitem_tensor, Float((3, 4)), Float(()), label="operator-broadcast")
case("setitem", _setitem_int_array, Float((4, 2)), Float((2, 2)), Const(np.array([3, 0])), label="int-array",
     skip={"array_api_strict": "array-api-strict has no integer-array __setitem__"})
case("index_add", lambda g, i: ops.index_add(g, key=(raw(i),), shape=(3,)), Float((5,)), Const(REPEATS % 3),
     label="repeats")
case("index_add", lambda g, i: ops.index_add(g, key=(raw(i), 1), shape=(3, 2)), Float((5,)), Const(REPEATS % 3),
     label="repeats-and-int")
case("index_add", lambda g, i: ops.index_add(g, key=(raw(i), slice(None)), shape=(3, 2)), Float((5, 2)),
     Const(REPEATS % 3), label="repeats-rows", skip={"array_api_strict": STRICT_INT_ARRAYS})
case("index_add", lambda g: ops.index_add(g, key=(slice(1, 3), Ellipsis), shape=(4, 2)), Float((2, 2)), label="slice")

# --- data types -----------------------------------------------------------------------------

# A round trip through float32 loses digits: a wider step keeps finite differences above the rounding.
case("astype", lambda x: ns(x).astype(x, ns(x).float32), Float((2, 3)), label="to-float32",
     fd=dict(eps=1e-3, rtol=1e-3, atol=1e-6))
case("astype", lambda x: ns(x).astype(x, ns(x).float64), Float((2, 3)), label="to-float64", keeps_dtype=False)

# --- beyond the standard: what cost functions need -----------------------------------------------

LABELS = np.array([0, 3, 1, 1, 2])
case("softmax_cross_entropy", lambda z, y: ops.softmax_cross_entropy(z, y), Float((5, 4), -3.0, 3.0),
     Const(LABELS), label="mean")
case("softmax_cross_entropy", lambda z, y: ops.softmax_cross_entropy(z, y, reduction="sum"), Float((5, 4)),
     Const(LABELS), label="sum")
case("softmax_cross_entropy", lambda z, y: ops.softmax_cross_entropy(z, y, reduction="none"), Float((5, 4)),
     Const(LABELS), label="none")
case("softmax_cross_entropy", lambda z, y: ops.softmax_cross_entropy(z, y, label_smoothing=0.1),
     Float((5, 4)), Const(LABELS), label="smoothing")
case("softmax_cross_entropy", lambda z, y: ops.softmax_cross_entropy(z, y, label_smoothing=0.2, reduction="none"),
     Float((2, 3, 4)), Const(np.array([[0, 1, 3], [3, 3, 2]])), label="batch-dims")
case("linear", lambda x, w, b: ops.linear(x, w, b), Float((4, 3)), Float((5, 3)), Float((5,)), label="bias")
case("linear", lambda x, w: ops.linear(x, w), Float((4, 3)), Float((5, 3)), label="no-bias")
case("linear", lambda x, w, b: ops.linear(x, w, b), Float((2, 4, 3)), Float((5, 3)), Float((5,)), label="3d")
case("linear", lambda x, w, b: ops.linear(x, w, b), Float((3,)), Float((2, 3)), Float((2,)), label="1d")

# --- beyond the table: composed helpers of the namespace -------------------------------------------

case("meshgrid", lambda x, y: ns(x, y).meshgrid(x, y), Float((3,)), Float((2,)), label="xy")
case("meshgrid", lambda x, y: ns(x, y).meshgrid(x, y, indexing="ij"), Float((3,)), Float((2,)), label="ij")

# --- xp.special: scipy.special's functions ----------------------------------------------------------

SPECIAL_DOMAINS = {
    "expit": dict(low=-3.0, high=3.0),
    "log_expit": dict(low=-30.0, high=30.0),
    "logit": dict(low=0.1, high=0.9),
    "erf": dict(low=-2.0, high=2.0),
    "erfc": dict(low=-2.0, high=2.0),
    "erfinv": dict(low=-0.9, high=0.9),
    "gammaln": dict(low=0.3, high=4.0),
    "digamma": dict(low=0.5, high=4.0),
    "psi": dict(low=0.5, high=4.0),
    "ndtr": dict(low=-3.0, high=3.0),
    "log_ndtr": dict(low=-12.0, high=3.0),  # far into the tail, where log(ndtr(x)) would be -inf
    "entr": dict(low=0.1, high=2.0),
}
SPECIAL_BINARY_DOMAINS = {
    "xlogy": (dict(), dict(low=0.2, high=2.0)),
    "xlog1py": (dict(), dict(low=-0.5, high=1.5)),
    "rel_entr": (dict(low=0.2, high=2.0), dict(low=0.2, high=2.0)),
}


def special_fn(name):
    return lambda *a: getattr(ns(*a).special, name)(*a)


for _name, _domain in SPECIAL_DOMAINS.items():
    case(f"special.{_name}", special_fn(_name), Float((2, 3), **_domain), label="2d")
    case(f"special.{_name}", special_fn(_name), Float((), **_domain), label="0d")
for _name, (_dx, _dy) in SPECIAL_BINARY_DOMAINS.items():
    case(f"special.{_name}", special_fn(_name), Float((3, 1, 2), **_dx), Float((4, 1), **_dy), label="broadcast")
    case(f"special.{_name}", special_fn(_name), Float((), **_dx), Float((2, 3), **_dy), label="0d-2d")
# At x = 0, xlogy's x-derivative is log y (finite differences see it), and a Python scalar may stand for x or y.
case("special.xlogy", special_fn("xlogy"), Float((2, 3), zeros=(0, 4)), Float((2, 3), 0.2, 2.0), label="x-zero")
case("special.xlogy", lambda y: ns(y).special.xlogy(2.0, y), Float((3,), 0.2, 2.0), label="scalar-x")
case("special.xlog1py", lambda x: ns(x).special.xlog1py(x, 0.5), Float((3,)), label="scalar-y")
case("special.polygamma", lambda x: ns(x).special.polygamma(1, x), Float((2, 3), 0.5, 4.0), label="trigamma")
case("special.polygamma", lambda x: ns(x).special.polygamma(3, x), Float((4,), 0.5, 4.0), label="order3")

# The complex cases and the fft extension's: a table of their own, appended to CASES.
import op_cases_complex  # noqa: E402,F401

#: Names that must have a case: the namespace's functions with a gradient, and gdbp's own.
EXTRA = ("linear", "softmax_cross_entropy", "relu", "sigmoid", "getitem", "setitem", "index_add")
#: The functions of the standard's extensions (``linalg.solve``...), under their dotted names.
EXTENSIONS = tuple(n for n in NAMESPACE if "." in n)


def differentiable_names() -> set:
    names = set(EXTRA)
    for name in DIFFERENTIABLE + EXTENSIONS:
        fn = NAMESPACE[name]
        if isinstance(fn, Primitive) and (not fn.differentiable or fn.no_gradient):
            continue
        names.add(name)
    return names


NO_GRADIENT = tuple(n for n in DIFFERENTIABLE if n not in differentiable_names())
