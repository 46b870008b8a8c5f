"""The linalg extension's decompositions: eigh, svd, qr, and the eigenvalues and singular values alone.

The forward values come from the backend's linalg, as named tuples of the
standard's fields (``EighResult(eigenvalues, eigenvectors)``,
``SVDResult(U, S, Vh)``, ``QRResult(Q, R)``), the same on every backend. The
VJPs are PyTorch's (``linalg_eig_backward``, ``svd_backward``,
``linalg_qr_backward``), written for complex inputs with the conjugate
transpose (see :mod:`.linear_algebra`).

Where the gradient is undefined, as in PyTorch:

- Repeated eigenvalues (singular values): the eigenvectors (singular vectors)
  are not unique, and a gradient that reaches them is divided by the
  differences of the values: inf or NaN. The values alone (``eigvalsh``,
  ``svdvals``, or a cost that reads only them) have a finite gradient.
- ``svd(full_matrices=True)`` of a non-square matrix: the columns of U (rows
  of Vh) beyond min(M, N) are any basis of a subspace; gradients that reach
  them are ignored.
- ``qr(mode="complete")`` with more rows than columns: Q's last M - N
  columns are not unique; a gradient through the decomposition raises.
- Complex inputs: eigenvectors and singular vectors are defined up to a
  phase each; a cost that depends on the phase has no gradient (PyTorch
  checks it and raises, which costs a device sync; gdbp does not check).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import NotDifferentiableError
from ..primitive import defn, defprim
from .linear_algebra import col, eye_like, is_complex, mH, row


class EighResult(NamedTuple):
    """``linalg.eigh``'s result: x = eigenvectors @ diag(eigenvalues) @ eigenvectors^H, values ascending."""

    eigenvalues: Any
    eigenvectors: Any


class SVDResult(NamedTuple):
    """``linalg.svd``'s result: x = U @ diag(S) @ Vh, S descending."""

    U: Any
    S: Any
    Vh: Any


class QRResult(NamedTuple):
    """``linalg.qr``'s result: x = Q @ R, Q with orthonormal columns, R upper triangular."""

    Q: Any
    R: Any


def _off_diagonal(xp, n, a):
    """1 off the diagonal, 0 on it, in a's dtype."""
    return 1 - eye_like(xp, n, a)


# --- eigh ------------------------------------------------------------------------------------


def _eigh(xp, x, /):
    """The eigenvalues (ascending) and eigenvectors of each Hermitian matrix (one triangle of x is read)."""
    w, v = xp.linalg.eigh(x)
    return EighResult(w, v)


def _eigh_vjp(xp, g, ans, x):
    # A = V diag(L) V^H  =>  gA = V (diag(gL) + skew(V^H gV) / E) V^H, with E_ij = L_j - L_i off the diagonal.
    gL, gV = g
    L, V = ans
    if gV is None:  # the eigenvalues alone: no division, finite at repeated eigenvalues too
        return (V * row(xp, gL)) @ mH(xp, V)
    n = x.shape[-1]
    VhgV = mH(xp, V) @ gV
    skew = 0.5 * (VhgV - mH(xp, VhgV))
    eye = eye_like(xp, n, L)
    E = row(xp, L) - col(xp, L) + eye  # 1 on the diagonal, which the mask below clears
    inner = skew / E  # repeated eigenvalues: inf or NaN, as in PyTorch
    if is_complex(xp, inner):  # the diagonal of a complex skew part is imaginary: dropped, as PyTorch does
        inner = inner * _off_diagonal(xp, n, inner)
    if gL is not None:
        inner = inner + eye * row(xp, gL)
    return V @ inner @ mH(xp, V)


eigh_p = defprim("linalg.eigh", _eigh, _eigh_vjp, multiple=True)


@defn(name="linalg.eigvalsh")
def eigvalsh(x, /):
    """The eigenvalues (ascending) of each Hermitian matrix; their gradient needs the eigenvectors."""
    return eigh_p(x).eigenvalues


# --- svd -------------------------------------------------------------------------------------


def _svd(xp, x, /, *, full_matrices=True):
    """The singular value decomposition of each matrix: x = U diag(S) Vh."""
    U, S, Vh = xp.linalg.svd(x, full_matrices=full_matrices)
    return SVDResult(U, S, Vh)


def _svd_vjp(xp, g, ans, x, *, full_matrices=True):
    # PyTorch's svd_backward (the real case: J. Townsend, "Differentiating the singular value decomposition"):
    # gA = U [(skew(U^H gU) / E) S + S (skew(V^H gV) / E) + diag(gS)] V^H, E_jk = S_k^2 - S_j^2,
    # plus (I - U U^H) gU S^{-1} V^H when m > n, U S^{-1} gV^H (I - V V^H) when m < n.
    gU, gS, gVh = g
    U, S, Vh = ans
    m, n = x.shape[-2], x.shape[-1]
    k = S.shape[-1]
    if full_matrices and m != n:
        # The columns of U (rows of Vh) past k span a subspace in any basis: their gradients are dropped.
        U, Vh = U[..., :, :k], Vh[..., :k, :]
        gU = None if gU is None else gU[..., :, :k]
        gVh = None if gVh is None else gVh[..., :k, :]
    if gU is None and gVh is None:  # the singular values alone: U diag(gS) Vh
        return U @ (col(xp, gS) * Vh) if m >= n else (U * row(xp, gS)) @ Vh
    S2 = S * S
    E = row(xp, S2) - col(xp, S2) + eye_like(xp, k, S)  # 1 on the diagonal, where the numerators are 0
    UhgU = None if gU is None else mH(xp, U) @ gU
    VhgV = None if gVh is None else Vh @ mH(xp, gVh)
    if UhgU is not None:
        UhgU = UhgU - mH(xp, UhgU)
    if VhgV is not None:
        VhgV = VhgV - mH(xp, VhgV)
    if VhgV is None:
        inner = UhgU / E * row(xp, S)
    elif UhgU is None:
        inner = col(xp, S) * (VhgV / E)
    else:
        inner = (UhgU * row(xp, S) + col(xp, S) * VhgV) / E
    if gS is not None:
        inner = inner + eye_like(xp, k, inner) * row(xp, gS)
    if is_complex(xp, x) and UhgU is not None and VhgV is not None:
        inner = inner + eye_like(xp, k, inner) * row(xp, xp.linalg.diagonal(UhgU) / (2 * S))
    if m > n and gU is not None:
        gUSinv = gU / row(xp, S)
        return (U @ inner + gUSinv - U @ (mH(xp, U) @ gUSinv)) @ Vh
    if m < n and gVh is not None:
        SinvgVh = gVh / col(xp, S)
        return U @ (inner @ Vh + SinvgVh - (SinvgVh @ mH(xp, Vh)) @ Vh)
    return U @ (inner @ Vh) if m >= n else (U @ inner) @ Vh


svd_p = defprim("linalg.svd", _svd, _svd_vjp, multiple=True)


@defn(name="linalg.svdvals")
def svdvals(x, /):
    """The singular values (descending) of each matrix; their gradient needs the singular vectors."""
    return svd_p(x, full_matrices=False).S


# --- qr -----------------------------------------------------------------------------------------


def _qr(xp, x, /, *, mode="reduced"):
    """The QR decomposition of each matrix: mode 'reduced' (Q is M x K, K = min(M, N)) or 'complete' (M x M)."""
    if mode not in ("reduced", "complete"):
        raise ValueError(f"linalg.qr: mode={mode!r}; the standard's modes are 'reduced' and 'complete'")
    Q, R = xp.linalg.qr(x, mode=mode)
    return QRResult(Q, R)


def _right_solve_h(xp, b, R):
    """b R^{-H}, for R square upper triangular: solve R X^H = b^H."""
    return mH(xp, xp.linalg.solve(R, mH(xp, b)))


def _qr_vjp(xp, g, ans, x, *, mode="reduced"):
    # PyTorch's linalg_qr_backward. With M = gR R^H - Q^H gQ:
    # m >= n: gA = (gQ + Q copyltu(M)) R^{-H}, copyltu(M) = triu(M) + triu(M)^H with the diagonal's real part halved;
    # m < n:  gA = [Q trilImInvAdjSkew(-M) R_1^{-H}, 0] + Q gR, R_1 the leading m x m block of R.
    gQ, gR = g
    Q, R = ans
    m, n = x.shape[-2], x.shape[-1]
    if mode == "complete" and m > n:
        raise NotDifferentiableError(
            f"linalg.qr: mode='complete' of a {m} x {n} matrix (more rows than columns) is not differentiable: "
            "the last columns of Q are any basis of a subspace; use mode='reduced'"
        )
    if gQ is None:
        M = gR @ mH(xp, R)
    elif gR is None:
        M = -(mH(xp, Q) @ gQ)
    else:
        M = gR @ mH(xp, R) - mH(xp, Q) @ gQ
    k = Q.shape[-1]
    halve_diagonal = 1 - 0.5 * eye_like(xp, k, M)
    if m >= n:
        upper = xp.triu(M)
        b = Q @ ((upper + mH(xp, upper)) * halve_diagonal)
        if gQ is not None:
            b = b + gQ
        return _right_solve_h(xp, b, R)
    skew = xp.tril(mH(xp, M) - M)
    if is_complex(xp, skew):  # its diagonal is imaginary, and counted twice
        skew = skew * halve_diagonal
    b = _right_solve_h(xp, Q @ skew, R[..., :, :m])
    b = xp.concat([b, xp.zeros(tuple(b.shape[:-1]) + (n - m,), dtype=b.dtype, device=b.device)], axis=-1)
    return b if gR is None else b + Q @ gR


qr_p = defprim("linalg.qr", _qr, _qr_vjp, multiple=True)
