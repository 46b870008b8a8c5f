"""The linalg extension (``xp.linalg``): solves, inverses, determinants, Cholesky, norms, products.

Forward values come from the backend's own linalg (array-api-compat's NumPy
wrapper, ``cupy.linalg``, ``torch.linalg``); each VJP is the standard
matrix-calculus result, as in PyTorch's ``FunctionsManual.cpp`` and HIPS
autograd's ``numpy/linalg.py``. Rules use namespace functions only, so that on
a recorded backward pass they are differentiated again (higher derivatives).
The decompositions (eigh, svd, qr) are in :mod:`.decompositions`.

Complex inputs: the rules are written with the conjugate transpose ``A^H``
where the complex formula needs it (PyTorch's convention: for a real cost, the
gradient of a complex input is the conjugate Wirtinger derivative); on real
dtypes the conjugation is skipped, so it costs no pass over memory.

Where the gradient is undefined, gdbp does what PyTorch does:

- ``det`` at a singular matrix: the cofactor matrix (finite), from the SVD
  (PyTorch gives it under ``create_graph=True``; its plain backward gives 0).
- ``slogdet`` at a singular matrix: log|det| is -inf and its gradient infinite:
  ``inf`` with the incoming gradient's sign (0 where none arrives), as PyTorch.
- ``vector_norm`` at 0: 0, PyTorch's subgradient (``ord=0`` counts nonzeros:
  gradient 0); ``matrix_norm`` likewise.
- ``inv`` and ``solve`` of a singular matrix fail in the forward pass already.
"""

from __future__ import annotations

import math
import operator
from typing import Any, NamedTuple

from ... import backends
from ..primitive import conj, defn, defprim
from ..tensor import unwrap
from .elementwise import abs_p, multiply_p
from .manipulation import broadcast_to, matrix_transpose, reshape
from .products import is_complex, matmul_p, mH, tensordot, vecdot
from .reductions import _expand_back, max_p, min_p, sum_p

# --- helpers ---------------------------------------------------------------------------


def eye_like(xp, n, a):
    """The n x n identity in a's dtype, on a's device."""
    return xp.eye(n, dtype=a.dtype, device=a.device)


def as_matrix(xp, v):
    """A stack of scalars (...) as a stack of 1 x 1 matrices (..., 1, 1), to scale matrices by."""
    return xp.expand_dims(xp.expand_dims(v, axis=-1), axis=-1)


def col(xp, v):
    """(..., n) as (..., n, 1)."""
    return xp.expand_dims(v, axis=-1)


def row(xp, v):
    """(..., n) as (..., 1, n)."""
    return xp.expand_dims(v, axis=-2)


def _square(name, x):
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"linalg.{name} needs a stack of square matrices (..., M, M), got shape {tuple(x.shape)}")


# --- solve and inv -----------------------------------------------------------------


def _solve(xp, x1, x2, /):
    """Solve x1 @ X = x2 for X; an x2 of shape (M,) is one right-hand side for every matrix of x1."""
    return xp.linalg.solve(x1, x2)


def _solve_vjp(xp, g, ans, x1, x2):
    # X = A^{-1} B  =>  gB = A^{-H} gX,  gA = -gB X^H: one solve serves both.
    if x2.ndim == 1:  # a vector right-hand side: solve it as a one-column matrix
        gB = xp.linalg.solve(mH(xp, x1), col(xp, g))
        return -gB * row(xp, conj(xp, ans)), gB[..., 0]
    gB = xp.linalg.solve(mH(xp, x1), g)
    return -(gB @ mH(xp, ans)), gB


solve_p = defprim("linalg.solve", _solve, vjp_all=_solve_vjp, needs_ans=True)


def _inv(xp, x, /):
    """The inverse of each matrix of a stack."""
    return xp.linalg.inv(x)


def _inv_vjp(xp, g, ans, x):
    # d(A^{-1}) = -A^{-1} dA A^{-1}  =>  gA = -A^{-H} g A^{-H}
    ans_h = mH(xp, ans)
    return -(ans_h @ g @ ans_h)


inv_p = defprim("linalg.inv", _inv, _inv_vjp, needs_ans=True, linear=True)

# --- determinants --------------------------------------------------------------------


class SlogdetResult(NamedTuple):
    """``linalg.slogdet``'s result: det = sign * exp(logabsdet)."""

    sign: Any
    logabsdet: Any


def _det(xp, x, /):
    """The determinant of each matrix of a stack."""
    return xp.linalg.det(x)


def _distinct(xp, n, a):
    """diag(1, ..., n): a stand-in with distinct singular values, whose SVD has a finite gradient."""
    return eye_like(xp, n, a) * xp.astype(xp.arange(1, n + 1, device=a.device), a.dtype)


def _cofactor_from_svd(xp, x, g):
    """g times the conjugated cofactor matrix of x, also where x is singular (Higham's adjugate by the SVD).

    With x = U diag(s) Vh, adj(x) = det(U) det(Vh) V diag(prod_{j != i} s_j) U^H: no division by s.
    """
    n = x.shape[-1]
    U, s, Vh = xp.linalg.svd(x)
    alpha = conj(xp, xp.linalg.det(U) * xp.linalg.det(Vh))
    off = 1 - xp.eye(n, dtype=s.dtype, device=s.device)
    others = xp.prod(row(xp, s) * off + (1 - off), axis=-1)  # row i: every s_j but s_i
    return (U * row(xp, others * col(xp, g * alpha))) @ Vh


def _det_vjp(xp, g, ans, x):
    # d det(A) = det(A) tr(A^{-1} dA)  =>  gA = g conj(det) A^{-H}: g times the conjugated cofactor matrix,
    # which is a polynomial in A, defined (and finite) where A is singular too.
    n = x.shape[-1]
    eye = eye_like(xp, n, x)
    d = as_matrix(xp, g * conj(xp, ans)) * eye
    singular = ans == 0
    if backends.kernels(xp).known_all_false(singular):
        return xp.linalg.solve(mH(xp, x), d)
    # Where det is exactly 0, the cofactors come from the SVD; the other branch solves with an identity in the
    # singular matrices' places, the SVD branch runs on matrices with distinct singular values in the others',
    # so that neither branch fails or leaves a NaN in the other's gradient.
    s = as_matrix(xp, singular)
    regular = xp.linalg.solve(mH(xp, xp.where(s, eye, x)), d)
    from_svd = _cofactor_from_svd(xp, xp.where(s, x, _distinct(xp, n, x)), g)
    return xp.where(s, from_svd, regular)


det_p = defprim("linalg.det", _det, _det_vjp, needs_ans=True)


def _slogdet(xp, x, /):
    """The sign and the natural log of the absolute value of each matrix's determinant."""
    sign, logabsdet = xp.linalg.slogdet(x)
    return SlogdetResult(sign, logabsdet)


def _signed_inf(xp, d):
    """inf with d's sign, 0 where d is 0 (complex d: inf where d is not 0)."""
    inf = xp.full_like(d, math.inf)
    if is_complex(xp, d):
        return xp.where(d == 0, 0.0, inf)
    return xp.where(d > 0, inf, xp.where(d < 0, -inf, 0.0))


def _slogdet_vjp(xp, g, ans, x):
    # d log|det A| = Re tr(A^{-1} dA)  =>  gA = g A^{-H}. The sign is piecewise constant for real A; for
    # complex A it is the phase det / |det|, which adds -i Im(conj(g_sign) sign) to g (PyTorch's rule).
    g_sign, g = g
    sign, logabsdet = ans
    if g_sign is not None and is_complex(xp, x):
        phase = -1j * xp.imag(conj(xp, g_sign) * sign)
        g = phase if g is None else g + phase
    if g is None:
        return None
    n = x.shape[-1]
    eye = eye_like(xp, n, x)
    g = as_matrix(xp, g)
    singular = logabsdet == -math.inf
    if backends.kernels(xp).known_all_false(singular):
        return xp.linalg.solve(mH(xp, x), g * eye)
    # A singular matrix has no finite gradient of log|det|: inf, as PyTorch gives (solved with an identity in
    # its place, so that the solve does not fail).
    s = as_matrix(xp, singular)
    regular = xp.linalg.solve(mH(xp, xp.where(s, eye, x)), g * eye)
    return xp.where(s, _signed_inf(xp, g), regular)


slogdet_p = defprim("linalg.slogdet", _slogdet, _slogdet_vjp, multiple=True)

# --- Cholesky ------------------------------------------------------------------------------


def _cholesky(xp, x, /, *, upper=False):
    """The Cholesky factor of each Hermitian positive-definite matrix: x = L L^H (upper: x = U^H U)."""
    return xp.linalg.cholesky(x, upper=upper)


def _cholesky_vjp(xp, g, ans, x, *, upper=False):
    # A = L L^H  =>  gA = L^{-H} Phi L^{-1}, Phi = (P + tril(P, -1)^H) / 2 with P = tril(L^H gL): the gradient
    # for a Hermitian perturbation of A (the libraries read one triangle of A; the result is Hermitian).
    L, gL = (mH(xp, ans), mH(xp, g)) if upper else (ans, g)
    P = xp.tril(mH(xp, L) @ gL)
    phi = 0.5 * (P + mH(xp, xp.tril(P, k=-1)))
    L_inv = xp.linalg.inv(L)
    return mH(xp, L_inv) @ phi @ L_inv


cholesky_p = defprim("linalg.cholesky", _cholesky, _cholesky_vjp, needs_ans=True, linear=True)

# --- the pseudo-inverse --------------------------------------------------------------------


def _pinv(xp, x, /, *, rtol=None):
    """The Moore-Penrose pseudo-inverse; singular values below rtol * the largest are taken as 0."""
    return xp.linalg.pinv(x, rtol=unwrap(rtol))


def _pinv_vjp(xp, g, ans, x, *, rtol=None):
    # The derivative of A+ where the rank of A does not change (Golub and Pereyra; PyTorch's rule), as
    # products only, so that repeated singular values are no trouble.
    A, P = x, ans
    P_h, g_h = mH(xp, P), mH(xp, g)
    if A.shape[-2] <= A.shape[-1]:
        K = g_h @ P
        KP_h = K @ P_h
        return -mH(xp, P @ K) + KP_h - (A @ P) @ KP_h + (P_h @ P) @ (g_h - K @ A)
    K = P @ g_h
    P_hK = P_h @ K
    return -mH(xp, K @ P) + (g_h - A @ K) @ P @ P_h + P_hK - P_hK @ P @ A


pinv_p = defprim("linalg.pinv", _pinv, _pinv_vjp, needs_ans=True)


def _matrix_rank(xp, x, /, *, rtol=None):
    """The number of singular values above rtol * the largest (an integer: no gradient)."""
    return xp.linalg.matrix_rank(x, rtol=unwrap(rtol))


matrix_rank_p = defprim("linalg.matrix_rank", _matrix_rank, differentiable=False)

# --- products and parts of matrices -----------------------------------------------------------


def _cross(xp, x1, x2, /, *, axis=-1):
    """The cross product of 3-vectors along an axis (the other axes broadcast)."""
    return xp.linalg.cross(x1, x2, axis=axis)


# c = a x b  =>  ga = b* x g, gb = g x a*; the engine sums broadcast axes back.
cross_p = defprim("linalg.cross", _cross,
                  lambda xp, g, ans, x1, x2, *, axis=-1: xp.linalg.cross(conj(xp, x2), g, axis=axis),
                  lambda xp, g, ans, x1, x2, *, axis=-1: xp.linalg.cross(g, conj(xp, x1), axis=axis),
                  broadcasts=True)


def _diagonal(xp, x, /, *, offset=0):
    """The diagonal of each matrix (offset > 0: above the main one; < 0: below)."""
    return xp.linalg.diagonal(x, offset=offset)


def _diagonal_vjp(xp, g, ans, x, *, offset=0):
    # g goes back onto the diagonal it came from, zeros elsewhere: g spread along rows (or columns), masked by
    # the shifted identity.
    m, n = x.shape[-2], x.shape[-1]
    k = g.shape[-1]
    along = m if offset >= 0 else n
    if along > k:
        g = xp.concat([g, xp.zeros(tuple(g.shape[:-1]) + (along - k,), dtype=g.dtype, device=g.device)], axis=-1)
    spread = col(xp, g) if offset >= 0 else row(xp, g)
    return spread * xp.eye(m, n, k=offset, dtype=g.dtype, device=g.device)


diagonal_p = defprim("linalg.diagonal", _diagonal, _diagonal_vjp, linear=True, view=True)


@defn(name="linalg.trace")
def trace(x, /, *, offset=0, dtype=None):
    """The sum of each matrix's diagonal."""
    return sum_p(diagonal_p(x, offset=offset), axis=-1, dtype=dtype)


@defn(name="linalg.outer")
def outer(x1, x2, /):
    """The outer product of two vectors: out[i, j] = x1[i] * x2[j]."""
    if x1.ndim != 1 or x2.ndim != 1:
        raise ValueError(f"linalg.outer needs two 1-D arrays, got shapes {tuple(x1.shape)} and {tuple(x2.shape)}")
    return multiply_p(reshape(x1, (-1, 1)), x2)


@defn(name="linalg.matrix_power")
def matrix_power(x, n, /):
    """x multiplied by itself n times (n < 0: the inverse's power; n = 0: the identity), by repeated squaring."""
    if isinstance(n, bool) or not hasattr(type(n), "__index__"):
        raise TypeError(f"linalg.matrix_power: n must be an integer, got {type(n).__name__} {n!r}")
    n = operator.index(n)
    _square("matrix_power", x)
    if n == 0:
        raw = unwrap(x)
        xp = backends.backend_of(raw).xp
        return broadcast_to(eye_like(xp, x.shape[-1], raw), tuple(x.shape))
    base = inv_p(x) if n < 0 else x
    n = abs(n)
    out = None
    while True:
        if n & 1:
            out = base if out is None else matmul_p(out, base)
        n >>= 1
        if not n:
            return out
        base = matmul_p(base, base)


# --- norms ------------------------------------------------------------------------------------


def _vector_norm(xp, x, /, *, axis=None, keepdims=False, ord=2):
    """The ord-norm of the vectors along the given axes (all by default)."""
    return xp.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord)


def _vector_norm_vjp(xp, g, ans, x, *, axis=None, keepdims=False, ord=2):
    # PyTorch's rules, ord by ord; every denominator is kept away from 0, where the gradient is 0.
    g = _expand_back(xp, g, x, axis, keepdims)
    norm = _expand_back(xp, ans, x, axis, keepdims)
    safe_norm = xp.where(norm == 0, 1.0, norm)
    if ord == 2:
        return x * (g / safe_norm)
    if ord == 0:  # a count of nonzeros: piecewise constant
        return xp.zeros_like(x)
    if ord == 1:
        return xp.sign(x) * g
    a = xp.abs(x)
    if math.isinf(ord):  # the largest (smallest) |x_i|: ties share the gradient evenly
        hit = xp.astype(a == norm, g.dtype)
        return xp.sign(x) * hit * (g / xp.sum(hit, axis=axis, keepdims=True))
    if ord > 1:
        return xp.sign(x) * a ** (ord - 1) * (g / safe_norm ** (ord - 1))
    # 0 < ord < 1 and ord < 0: |x_i|^(ord - 1) is infinite at x_i = 0, where the gradient is taken as 0.
    zero = x == 0
    scaled = xp.where(zero, 0.0, xp.sign(x) * xp.where(zero, 1.0, a) ** (ord - 1))
    return scaled * g * norm ** (1 - ord)


vector_norm_p = defprim("linalg.vector_norm", _vector_norm, _vector_norm_vjp, needs_ans=True)

_MATRIX_ORDS = ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf)


@defn(name="linalg.matrix_norm")
def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    """The ord-norm of each matrix: 'fro', 'nuc', 1, -1, 2, -2, inf or -inf.

    Composed: 'fro' from vector_norm, 'nuc' and +-2 from the singular values,
    +-1 and +-inf from sums of |x| (ties of the max share its gradient, as in PyTorch).
    """
    if x.ndim < 2:
        raise ValueError(f"linalg.matrix_norm needs a stack of matrices (..., M, N), got shape {tuple(x.shape)}")
    if ord == "fro":
        out = vector_norm_p(x, axis=(-2, -1), ord=2)
    elif ord in ("nuc", 2, -2):
        from .decompositions import svdvals  # the decompositions build on this module

        s = svdvals(x)
        out = sum_p(s, axis=-1) if ord == "nuc" else max_p(s, axis=-1) if ord == 2 else min_p(s, axis=-1)
    elif ord in (1, -1, math.inf, -math.inf):
        sums = sum_p(abs_p(x), axis=-2 if ord in (1, -1) else -1)
        out = max_p(sums, axis=-1) if ord > 0 else min_p(sums, axis=-1)
    else:
        raise ValueError(f"linalg.matrix_norm: ord={ord!r} is not a matrix norm; use one of {_MATRIX_ORDS}")
    return reshape(out, tuple(x.shape[:-2]) + (1, 1)) if keepdims else out


# --- the standard's linalg functions that are also in the main namespace ----------------------

defn(matmul_p, name="linalg.matmul")
defn(matrix_transpose, name="linalg.matrix_transpose")
defn(tensordot, name="linalg.tensordot")
defn(vecdot, name="linalg.vecdot")
