"""The linalg rules on complex inputs, against torch.autograd, applied to the arrays directly.

gdbp's graph does not carry complex gradients yet (``requires_grad`` takes
real dtypes), but the rules of the linalg primitives are written for complex
inputs (the conjugate transpose where the formula needs it; PyTorch's
conjugate-Wirtinger convention). Here each rule is called on complex128
NumPy arrays, as the backward sweep calls it, and its result is compared with
``torch.autograd.grad`` of the same function with the same cotangents.

Eigenvectors, singular vectors and Q are defined up to a phase each, so their
cotangents come from a cost that does not depend on the phases, evaluated at
NumPy's outputs; torch differentiates the same cost through its own
decomposition, which may pick other phases.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gdbp import backends
from gdbp.backprop.engine import Cotangents
from gdbp.backprop.primitive import NAMESPACE

xp = backends.resolve("numpy").xp


def _complex(rng, *shape):
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def _hermitian_positive(rng, n):
    a = _complex(rng, 2, n, n)
    return a @ np.conj(np.swapaxes(a, -1, -2)) + np.eye(n)


def _rule(prim, args, kw, g):
    """The gradients the sweep would compute from g, before it sums broadcast axes back."""
    ans = prim.forward(xp, *args, **kw)
    if prim.vjp_all is not None:
        return list(prim.vjp_all(xp, g, ans, *args, **kw))
    return [vjp(xp, g, ans, *args, **kw) for vjp in prim.vjps]


def _assert_close(mine, theirs):
    mine = np.asarray(mine)
    while mine.ndim > theirs.ndim:  # the engine's unbroadcast, for the leading axes used here
        mine = mine.sum(axis=0)
    np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12 * np.abs(theirs).max())


def _torch_vjp(fn, args, g):
    ts = [torch.from_numpy(a).requires_grad_(True) for a in args]
    out = fn(*ts)
    outs, gs = (list(out), list(g)) if isinstance(out, tuple) else ([out], [g])
    pairs = [(o, torch.from_numpy(np.asarray(c))) for o, c in zip(outs, gs) if c is not None]
    return [t.numpy() for t in torch.autograd.grad([p[0] for p in pairs], ts, [p[1] for p in pairs])]


def _cases(rng):
    a = _complex(rng, 2, 3, 3) + 3 * np.eye(3)
    h = _hermitian_positive(rng, 3)
    yield "solve", (a, _complex(rng, 2, 3, 2)), {}, _complex(rng, 2, 3, 2), torch.linalg.solve
    yield "solve", (a, _complex(rng, 3)), {}, _complex(rng, 2, 3), torch.linalg.solve
    yield "inv", (a,), {}, _complex(rng, 2, 3, 3), torch.linalg.inv
    yield "det", (a,), {}, _complex(rng, 2), torch.linalg.det
    yield "slogdet", (a,), {}, Cotangents((_complex(rng, 2), rng.normal(size=2))), torch.linalg.slogdet
    yield "cholesky", (h,), {}, _complex(rng, 2, 3, 3), torch.linalg.cholesky
    yield "cholesky", (h,), {"upper": True}, _complex(rng, 2, 3, 3), lambda x: torch.linalg.cholesky(x, upper=True)
    yield ("cross", (_complex(rng, 2, 3), _complex(rng, 3)), {}, _complex(rng, 2, 3),
           lambda x1, x2: torch.linalg.cross(*torch.broadcast_tensors(x1, x2)))
    yield ("diagonal", (_complex(rng, 2, 3, 4),), {"offset": 1}, _complex(rng, 2, 3),
           lambda x: torch.linalg.diagonal(x, offset=1))
    yield "pinv", (_complex(rng, 2, 4, 3),), {}, _complex(rng, 2, 3, 4), torch.linalg.pinv
    yield "pinv", (_complex(rng, 3, 5),), {}, _complex(rng, 5, 3), torch.linalg.pinv
    for order in (2, 1, 3, 0.5, math.inf):
        yield ("vector_norm", (_complex(rng, 2, 3),), {"ord": order, "axis": -1}, rng.normal(size=2),
               lambda x, o=order: torch.linalg.vector_norm(x, ord=o, dim=-1))


def test_complex_rules_match_torch():
    rng = np.random.default_rng(7)
    for name, args, kw, g, torch_fn in _cases(rng):
        mine = _rule(NAMESPACE[f"linalg.{name}"], args, kw, g)
        for m, t in zip(mine, _torch_vjp(torch_fn, args, g)):
            _assert_close(m, t)


# --- the decompositions: costs that do not depend on the phases --------------------------------------


def _eigh_cost(rng):
    w, W, M = (torch.from_numpy(a) for a in (rng.normal(size=3), rng.normal(size=(3, 3)), _complex(rng, 3, 3)))
    return lambda L, V: (L ** 2 * w).sum() + (V.abs() ** 2 * W).sum() + ((V * w) @ V.mH * M).sum().real


def _svd_cost(rng, m, n):
    k = min(m, n)
    w, Wu, Wv = (torch.from_numpy(rng.normal(size=s)) for s in (k, (m, k), (k, n)))
    M = torch.from_numpy(_complex(rng, m, n))

    def cost(U, S, Vh):
        U, Vh = U[..., :, :k], Vh[..., :k, :]  # past k: any basis, as full_matrices=True gives
        return ((S * w).sum() + (U.abs() ** 2 * Wu).sum() + (Vh.abs() ** 2 * Wv).sum()
                + ((U * w) @ Vh * M).sum().real)

    return cost


def _qr_cost(rng, m, n):
    k = min(m, n)
    w, Wq, Wr = (torch.from_numpy(rng.normal(size=s)) for s in (k, (m, k), (k, n)))
    M = torch.from_numpy(_complex(rng, m, n))
    return lambda Q, R: (Q.abs() ** 2 * Wq).sum() + (R.abs() ** 2 * Wr).sum() + ((Q * w) @ R * M).sum().real


@pytest.mark.parametrize("name, shape, kw", [
    ("eigh", (3, 3), {}),
    ("svd", (4, 3), {"full_matrices": False}), ("svd", (3, 4), {"full_matrices": False}),
    ("svd", (3, 3), {}), ("svd", (4, 3), {}), ("svd", (3, 4), {}),
    ("qr", (4, 3), {}), ("qr", (3, 4), {}), ("qr", (3, 3), {"mode": "complete"}), ("qr", (3, 4), {"mode": "complete"}),
])
def test_complex_decomposition_rules_match_torch(name, shape, kw):
    rng = np.random.default_rng(8)
    x = _hermitian_positive(rng, shape[0]) if name == "eigh" else _complex(rng, 2, *shape)
    cost = _eigh_cost(rng) if name == "eigh" else (_svd_cost if name == "svd" else _qr_cost)(rng, *shape)
    prim = NAMESPACE[f"linalg.{name}"]
    ans = prim.forward(xp, x, **kw)
    outs = [torch.from_numpy(np.asarray(a)).requires_grad_(True) for a in ans]
    g = Cotangents(t.numpy() for t in torch.autograd.grad(cost(*outs), outs))  # at NumPy's outputs
    mine = prim.vjps[0](xp, g, tuple(ans), x, **kw)
    t = torch.from_numpy(x).requires_grad_(True)
    (theirs,) = torch.autograd.grad(cost(*getattr(torch.linalg, name)(t, **kw)), t)
    _assert_close(mine, theirs.numpy())
