"""Products: matmul as the primitive; tensordot and vecdot composed from it; the conjugate transpose."""

from __future__ import annotations

from ... import backends
from ..primitive import binary, conj, defn
from ..tensor import unwrap
from .elementwise import conj_p
from .manipulation import permute_dims, reshape
from .reductions import sum_p


def _matmul_forward(xp, x, y):
    return backends.kernels(xp).matmul(x, y)  # NumPy's: a stack times a matrix as one product


def _mT(xp, a):
    # .T is the cheapest transpose every library has, for the common 2-D case.
    return a.T if a.ndim == 2 else xp.matrix_transpose(a)


def is_complex(xp, a) -> bool:
    """Whether a has a complex dtype."""
    return backends.isdtype(xp, a.dtype, "complex floating")


def mH(xp, a):
    """The conjugate transpose of a stack of matrices (the transpose, for real dtypes)."""
    return conj(xp, _mT(xp, a))


def _matmul_x(xp, g, ans, x, y):
    # ans = x @ y  =>  dx = g @ y^H, with 1-D operands promoted to matrices and back.
    y = conj(xp, y)
    if y.ndim == 1:
        if x.ndim == 1:
            return g * y
        return xp.expand_dims(g, axis=-1) * y  # outer product: (..., m, 1) * (k,)
    if x.ndim == 1:
        return xp.reshape(xp.expand_dims(g, axis=-2) @ _mT(xp, y), (-1, x.shape[0]))
    return backends.kernels(xp).matmul(g, _mT(xp, y))


def _matmul_y(xp, g, ans, x, y):
    # dy = x^H @ g
    x = conj(xp, x)
    if x.ndim == 1:
        if y.ndim == 1:
            return g * x
        return xp.expand_dims(x, axis=-1) * xp.expand_dims(g, axis=-2)  # (k, 1) * (..., 1, n)
    if y.ndim == 1:
        return xp.reshape(_mT(xp, x) @ xp.expand_dims(g, axis=-1), (-1, y.shape[0]))
    k = backends.kernels(xp)  # its matmul: NumPy's dot where the shared dimension is 1 (batch 1)
    if y.ndim == 2 and x.ndim == 2 and k.transposed(y):
        # y is a transpose (x @ W.T): (g^T x)^T, laid out as y, so that W's gradient comes out laid out as W.
        return _mT(xp, k.matmul(_mT(xp, g), x))
    if y.ndim == 2 and x.ndim > 2:
        # A stack times one matrix: dy sums over the stack, which one product over all its rows does.
        return k.matmul(_mT(xp, xp.reshape(x, (-1, x.shape[-1]))), xp.reshape(g, (-1, g.shape[-1])))
    return k.matmul(_mT(xp, x), g)


# Batch dimensions broadcast; the engine sums the gradient back over them.
matmul_p = binary("matmul", _matmul_forward, _matmul_x, _matmul_y)


@defn
def tensordot(x1, x2, /, *, axes=2):
    """Sum products over the given axes: permute and reshape to one matrix product."""
    if isinstance(axes, int):
        a1 = tuple(range(x1.ndim - axes, x1.ndim))
        a2 = tuple(range(axes))
    else:
        a1 = tuple(a % x1.ndim for a in axes[0])
        a2 = tuple(a % x2.ndim for a in axes[1])
    free1 = tuple(i for i in range(x1.ndim) if i not in a1)
    free2 = tuple(i for i in range(x2.ndim) if i not in a2)
    k = 1
    for a in a1:
        k *= x1.shape[a]
    m = 1
    for a in free1:
        m *= x1.shape[a]
    n = 1
    for a in free2:
        n *= x2.shape[a]
    left = reshape(permute_dims(x1, free1 + a1), (m, k))
    right = reshape(permute_dims(x2, a2 + free2), (k, n))
    out_shape = tuple(x1.shape[i] for i in free1) + tuple(x2.shape[i] for i in free2)
    return reshape(matmul_p(left, right), out_shape)


@defn
def vecdot(x1, x2, /, *, axis=-1):
    """Dot product of vectors along an axis: sum(conj(x1) * x2), as the standard defines it.

    The other axes broadcast; the vectors themselves do not (their lengths
    must match), and the sum keeps the product's dtype (a uint8 dot product
    is uint8, as the standard says, where ``sum`` alone would widen it).
    """
    ndim = max(x1.ndim, x2.ndim)
    n1, n2 = ((1,) * (ndim - x.ndim) + tuple(x.shape) for x in (x1, x2))
    if n1[axis] != n2[axis]:
        raise ValueError(
            f"vecdot: x1 of shape {tuple(x1.shape)} and x2 of shape {tuple(x2.shape)} hold vectors of lengths "
            f"{n1[axis]} and {n2[axis]} along axis {axis}; the lengths must be equal (they do not broadcast)"
        )
    if is_complex(backends.backend_of(unwrap(x1)).xp, x1):
        x1 = conj_p(x1)
    products = x1 * x2
    return sum_p(products, axis=axis, dtype=products.dtype)
