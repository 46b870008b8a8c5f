"""The linalg extension (xp.linalg): the standard's signatures and results, torch.autograd, the edge cases.

Finite differences (float64, batched), backend parity and float32 in float32
out run over the cases of op_cases.py ("linalg.*"); this module adds:
signatures and named-tuple fields against array-api-strict's (the standard's
reference), every function differentiated by gdbp and by torch.autograd on the
same array-API cost, second derivatives, what happens where a gradient is
undefined (against what PyTorch does there), clear errors, and a real client:
scikit-learn's PCA under ``array_api_dispatch=True``.
"""

from __future__ import annotations

import inspect
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import array_api_compat
import array_api_strict
import numpy as np
import pytest
import torch

import gdbp
from conftest import backend_params
from gdbp import backends
from gdbp.backprop import ops
from gdbp.backprop.errors import NotDifferentiableError
from gdbp.testing import assert_backends_agree, check_grad
from op_cases import Const, Float, positive_definite, qr_parts, svd_parts, symmetric, well_conditioned
from test_against_torch import assert_matches_torch

ns = array_api_compat.array_namespace

#: The linalg extension of the array API standard, 2024.12.
STANDARD = ("cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul", "matrix_norm",
            "matrix_power", "matrix_rank", "matrix_transpose", "outer", "pinv", "qr", "slogdet", "solve", "svd",
            "svdvals", "tensordot", "trace", "vecdot", "vector_norm")


# --- the standard's face ---------------------------------------------------------------------------


def _parameters(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", STANDARD)
def test_signature_is_the_standards(name):
    mine = getattr(ops.linalg, name)
    assert getattr(gdbp.tensor(np.eye(2)).__array_namespace__().linalg, name) is mine
    assert _parameters(mine) == _parameters(getattr(array_api_strict.linalg, name))


def test_the_extension_has_every_function_and_the_shared_ones_are_the_same_callables():
    assert sorted(n for n in vars(ops.linalg) if not n.startswith("_")) == sorted(STANDARD)
    for name in ("matmul", "matrix_transpose", "tensordot", "vecdot"):
        assert getattr(ops.linalg, name) is getattr(ops, name)


@pytest.mark.parametrize("name, x, fields", [
    ("eigh", np.eye(3) * [1.0, 2.0, 3.0], ("eigenvalues", "eigenvectors")),
    ("qr", np.arange(6.0).reshape(3, 2), ("Q", "R")),
    ("svd", np.arange(6.0).reshape(2, 3), ("U", "S", "Vh")),
    ("slogdet", np.eye(2) * 2.0, ("sign", "logabsdet")),
])
def test_results_are_named_tuples_with_the_standards_fields(name, x, fields, backend):
    t = gdbp.tensor(backends.transfer(x, backend))
    result = getattr(t.__array_namespace__().linalg, name)(t)
    strict = getattr(array_api_strict.linalg, name)(array_api_strict.asarray(x))
    assert type(result)._fields == fields == type(strict)._fields
    assert all(isinstance(part, gdbp.Tensor) and part.backend is backend for part in result)
    unique = {"eigh": ("eigenvalues", [1.0, 2.0, 3.0]), "slogdet": ("logabsdet", math.log(4.0)),
              "svd": ("S", np.linalg.svd(x).S)}.get(name)  # the parts without a choice of signs
    if unique is not None:
        field, expected = unique
        np.testing.assert_allclose(backends.to_numpy(getattr(result, field).data), expected, rtol=1e-12)


def test_a_named_tuple_result_passes_through_vjp_as_its_own_type(rng):
    x = rng.uniform(-1, 1, size=(4, 3))
    out, pullback = gdbp.vjp(lambda a: ns(a).linalg.qr(a), x)
    assert type(out).__name__ == "QRResult" and type(out.Q) is np.ndarray
    (g,) = pullback(type(out)(np.ones_like(out.Q), np.zeros_like(out.R)))
    assert g.shape == x.shape


def test_matrix_rank_passes_through_without_a_gradient(backend):
    x = gdbp.tensor(backends.transfer(np.array([[1.0, 2.0], [2.0, 4.0]]), backend), requires_grad=True)
    rank = x.__array_namespace__().linalg.matrix_rank(x)
    assert not rank.requires_grad and backend.xp.isdtype(rank.dtype, "integral")
    assert int(backends.to_numpy(rank.data)) == 1
    grad = gdbp.grad(lambda a: ns(a).sum(a) * ns(a).astype(ns(a).linalg.matrix_rank(a, rtol=0.5), a.dtype))
    np.testing.assert_allclose(backends.to_numpy(grad(x.data)), np.ones((2, 2)))  # rank 1 at rtol 0.5


# --- gdbp against torch.autograd: the same array-API costs ----------------------------------------

COSTS = []


def cost(*inputs, marks=()):
    def register(f):
        COSTS.append(pytest.param(f, inputs, id=f.__name__, marks=marks))
        return f

    return register


@cost(Float((2, 4, 3)), Float((2, 4)))
def least_squares_by_solve(a, b):
    xp = ns(a, b)
    ata = a.mT @ a + xp.eye(3, dtype=a.dtype)
    w = xp.linalg.solve(ata, (a.mT @ b[..., None])[..., 0][0])  # one vector for every matrix
    return xp.sum(w ** 2) + xp.sum(xp.linalg.solve(ata, a.mT) * a.mT)


@cost(Float((2, 1, 3, 3)), Float((4, 3, 2)))
def solve_broadcast(a, b):
    xp = ns(a, b)
    return xp.sum(xp.sin(xp.linalg.solve(well_conditioned(a), b)))


@cost(Float((2, 3, 3)), Float((3, 3)))
def inverse(a, w):
    xp = ns(a, w)
    return xp.sum(xp.linalg.inv(well_conditioned(a)) * w)


@cost(Float((2, 3, 3)))
def determinants(a):
    xp = ns(a)
    sign, logabsdet = xp.linalg.slogdet(a)
    return xp.sum(xp.linalg.det(a) ** 2) + xp.sum(sign * logabsdet) + xp.sum(xp.linalg.slogdet(positive_definite(a))[1])


@cost(Float((2, 3, 3)), Float((3, 3)))
def cholesky_lower_and_upper(a, w):
    xp = ns(a, w)
    spd = positive_definite(a)
    return xp.sum(xp.linalg.cholesky(spd) * w) + xp.sum(xp.linalg.cholesky(spd, upper=True) ** 2 * w)


@cost(Float((2, 4, 4)), Float((4,)))
def eigh_projectors(a, w):
    xp = ns(a, w)
    values, vectors = xp.linalg.eigh(symmetric(a))
    # V diag(w) V^T does not depend on the eigenvectors' signs
    return xp.sum((vectors * w) @ vectors.mT * a) + xp.sum(values * w) + xp.sum(xp.linalg.eigvalsh(symmetric(a)) ** 3)


@cost(Float((2, 4, 3)), Float((3, 4)))
def svd_tall(a, w):
    xp = ns(a, w)
    s, left, right = svd_parts(a, full_matrices=False)
    return xp.sum(s ** 2) + xp.sum(left * w.mT) + xp.sum(right * w[:, :3]) + xp.sum(xp.linalg.svdvals(a) * w[0, :3])


@cost(Float((3, 5)), Float((5,)))
def svd_wide_and_full(a, w):
    xp = ns(a, w)
    s, left, right = svd_parts(a)  # full_matrices=True: the leading parts only (the rest is any basis)
    return xp.sum(s * w[:3]) + xp.sum(left ** 3) + xp.sum(right * w)


@cost(Float((2, 4, 3)), Float((3, 5)))
def qr_tall_and_wide(a, b):
    xp = ns(a, b)
    q, r = qr_parts(a)
    q2, r2 = qr_parts(b, mode="complete")
    return xp.sum(q * xp.sin(a)) + xp.sum(r ** 2) + xp.sum(q2 ** 3) + xp.sum(r2 * b)


@cost(Float((2, 4, 3)), Float((3, 5)))
def pseudo_inverse(a, b):
    xp = ns(a, b)
    return xp.sum(xp.linalg.pinv(a) ** 2) + xp.sum(xp.linalg.pinv(b) * xp.sin(3.0 * b.mT))  # not pinv(b) b: constant


@cost(Float((2, 3, 3)))
def matrix_powers(a):
    xp = ns(a)
    return (xp.sum(xp.linalg.matrix_power(a, 5)) + xp.sum(xp.linalg.matrix_power(well_conditioned(a), -3))
            + xp.sum(xp.linalg.matrix_power(a, 1) ** 2))


@cost(Float((4, 3)), Float((3,)))
def cross_product(a, b):
    xp = ns(a, b)
    return xp.sum(xp.linalg.cross(a, b) ** 2) + xp.sum(xp.linalg.cross(a.mT, xp.flip(a.mT, axis=1), axis=0))


@cost(Float((2, 3, 4)), Float((3,)), Float((5,)))
def diagonal_trace_outer(a, u, v):
    xp = ns(a, u, v)
    return (xp.sum(xp.linalg.diagonal(a, offset=1) ** 2) + xp.sum(xp.linalg.diagonal(a, offset=-1))
            + xp.sum(xp.linalg.trace(a[..., :3]) ** 2) + xp.sum(xp.linalg.outer(u, v) ** 2))


NUMPY_NORM_WARNS = pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")  # ord < 0 at 0


@cost(Float((3, 4), zeros=(1, 6)), marks=NUMPY_NORM_WARNS)
def vector_norms(a):
    xp = ns(a)
    total = xp.linalg.vector_norm(a) + xp.sum(xp.linalg.vector_norm(a, axis=0, keepdims=True))
    for order in (1, 3, 1.5, 0.5, -1, math.inf, -math.inf):  # rows with a zero: torch's subgradients
        total = total + xp.sum(xp.linalg.vector_norm(a, axis=1, ord=order))
    return total + xp.sum(xp.linalg.vector_norm(a * 0.0, axis=1))  # at 0: gradient 0


@cost(Float((2, 3, 4)))
def matrix_norms(a):
    xp = ns(a)
    total = 0.0
    for order in ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf):
        total = total + xp.sum(xp.linalg.matrix_norm(a, ord=order))
    return total


@cost(Float((2, 3, 4)), Float((4, 3)), Float((3,)))
def shared_products(a, b, v):
    xp = ns(a, b, v)
    return (xp.sum(xp.linalg.matmul(a, b) ** 2) + xp.sum(xp.linalg.tensordot(a, b, axes=1))
            + xp.sum(xp.linalg.vecdot(b, v) * xp.linalg.matrix_transpose(b)[0]))


@cost(Float((3, 3)), Const(np.array([[1.0, 2.0], [2.0, 4.0]])))
def rank_as_a_constant(a, singular):
    xp = ns(a, singular)
    return xp.sum(a ** 2) * xp.astype(xp.linalg.matrix_rank(singular) + xp.linalg.matrix_rank(a), a.dtype)


def test_every_function_has_a_torch_cost():
    sources = "".join(inspect.getsource(p.values[0]) for p in COSTS)
    missing = [n for n in STANDARD if f"linalg.{n}(" not in sources and f"{n}_parts(" not in sources]
    assert not missing, f"linalg functions without a cost checked against torch: {missing}"


@pytest.mark.parametrize("f, inputs", COSTS)
def test_gradients_match_torch_autograd(f, inputs, rng):
    assert_matches_torch(f, inputs, rng)


# --- second derivatives -------------------------------------------------------------------------------

SECOND = {
    "solve": lambda a: ns(a).sum(ns(a).linalg.solve(well_conditioned(a), a[0, :, 0]) ** 2)
             + ns(a).sum(ns(a).linalg.solve(well_conditioned(a), a.mT) ** 2),
    "inv": lambda a: ns(a).sum(ns(a).linalg.inv(well_conditioned(a)) ** 2),
    "cholesky": lambda a: ns(a).sum(ns(a).linalg.cholesky(positive_definite(a)) ** 2),
    "det": lambda a: ns(a).sum(ns(a).linalg.det(a) ** 2),
    "slogdet": lambda a: ns(a).sum(ns(a).linalg.slogdet(positive_definite(a)).logabsdet),
    "vector_norm": lambda a: ns(a).sum(ns(a).linalg.vector_norm(a, axis=-1) ** 3)
                              + ns(a).sum(ns(a).linalg.vector_norm(a, ord=3, axis=-2)),
    "eigh": lambda a: ns(a).sum((lambda r: r.eigenvalues ** 2 + ns(a).sum(r.eigenvectors ** 4, axis=-2))(
        ns(a).linalg.eigh(symmetric(a)))),
    "svd": lambda a: ns(a).sum(ns(a).linalg.svdvals(a) ** 3) + ns(a).sum(svd_parts(a, full_matrices=False)[1] ** 2),
    "qr": lambda a: ns(a).sum(qr_parts(a)[0] ** 3) + ns(a).sum(qr_parts(a)[1] ** 2),
    "pinv": lambda a: ns(a).sum(ns(a).linalg.pinv(a) ** 3),
    "matrix_power": lambda a: ns(a).sum(ns(a).linalg.matrix_power(well_conditioned(a), -2) ** 2),
    "matrix_norm": lambda a: ns(a).sum(ns(a).linalg.matrix_norm(a) ** 3 + ns(a).linalg.matrix_norm(a, ord="nuc")),
}


@pytest.mark.parametrize("name", sorted(SECOND))
def test_second_derivatives_match_finite_differences(name, rng):
    x = rng.uniform(-1, 1, size=(2, 4, 3) if name in ("svd", "qr", "pinv", "matrix_norm") else (2, 3, 3))
    check_grad(gdbp.grad(SECOND[name]), x, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name", ["solve", "inv", "cholesky", "det", "slogdet", "vector_norm"])
def test_second_derivatives_match_torch(name, rng):
    x = rng.uniform(-1, 1, size=(2, 3, 3))
    mine = gdbp.grad(lambda a: ns(a).sum(gdbp.grad(SECOND[name])(a) ** 2))(x)
    t = torch.from_numpy(x.copy()).requires_grad_(True)
    (g,) = torch.autograd.grad(SECOND[name](t), t, create_graph=True)
    (theirs,) = torch.autograd.grad((g ** 2).sum(), t)
    np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-8, atol=1e-10)


# --- where the gradient is undefined: as PyTorch ----------------------------------------------------------

SINGULAR = np.array([[[1.0, 2.0], [2.0, 4.0]], [[2.0, 1.0], [0.5, 3.0]], [[0.0, 0.0], [0.0, 0.0]]])


def _torch_grad(f, x, create_graph=False):
    t = torch.from_numpy(np.array(x)).requires_grad_(True)
    (g,) = torch.autograd.grad(f(t), t, create_graph=create_graph)
    return g.detach().numpy()


def test_det_at_a_singular_matrix_is_the_cofactor_matrix_on_every_backend(backend):
    def f(a):
        return ns(a).sum(ns(a).linalg.det(a))

    # PyTorch's plain backward gives 0 there; its create_graph path (and the calculus) give the cofactors.
    expected = _torch_grad(f, SINGULAR, create_graph=True)
    np.testing.assert_allclose(expected[0], [[4.0, -2.0], [-2.0, 1.0]])
    x = backends.transfer(SINGULAR, backend)
    np.testing.assert_allclose(backends.to_numpy(gdbp.grad(f)(x)), expected, rtol=1e-12, atol=1e-12)
    x32 = backends.transfer(SINGULAR.astype(np.float32), backend)
    g32 = gdbp.grad(f)(x32)
    assert g32.dtype == backend.xp.float32
    np.testing.assert_allclose(backends.to_numpy(g32), expected, rtol=1e-5, atol=1e-6)


def test_det_second_derivative_at_a_singular_matrix_matches_finite_differences():
    check_grad(gdbp.grad(lambda a: ns(a).sum(ns(a).linalg.det(a) ** 3 + ns(a).linalg.det(a))), SINGULAR[:2])


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the cost itself: -inf + inf
def test_slogdet_at_a_singular_matrix_has_an_infinite_gradient_as_in_torch(backend):
    def f(a):
        return ns(a).sum(ns(a).linalg.slogdet(a).logabsdet * ns(a).asarray([1.0, 1.0, -1.0], dtype=a.dtype))

    theirs = _torch_grad(f, SINGULAR)
    mine = backends.to_numpy(gdbp.grad(f)(backends.transfer(SINGULAR, backend)))
    np.testing.assert_allclose(mine[1], theirs[1], rtol=1e-12)  # the invertible matrix: A^{-T}
    for i in (0, 2):
        assert not np.isfinite(theirs[i]).any()
    assert (mine[0] == np.inf).all() and (mine[2] == -np.inf).all()  # inf with the incoming gradient's sign
    sign_only = gdbp.grad(lambda a: ns(a).sum(ns(a).linalg.slogdet(a).sign))(backends.transfer(SINGULAR, backend))
    assert (backends.to_numpy(sign_only) == 0).all()  # the sign is piecewise constant: no inf where no gradient


def test_eigh_with_repeated_eigenvalues_as_in_torch():
    x = np.diag([1.0, 1.0, 2.0])

    def values(a):
        return ns(a).sum(ns(a).linalg.eigh(a).eigenvalues ** 2)

    def vectors(a):
        return ns(a).sum(ns(a).linalg.eigh(a).eigenvectors ** 2 * ns(a).arange(3, dtype=a.dtype))

    np.testing.assert_allclose(gdbp.grad(values)(x), _torch_grad(values, x), rtol=1e-12)
    np.testing.assert_allclose(gdbp.grad(values)(x), np.diag([2.0, 2.0, 4.0]), rtol=1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        mine = gdbp.grad(vectors)(x)
    theirs = _torch_grad(vectors, x)
    assert not np.isfinite(theirs).all() and not np.isfinite(mine).all()  # the eigenvector part: 1 / 0
    np.testing.assert_array_equal(np.isfinite(mine), np.isfinite(theirs))


def test_svd_with_repeated_singular_values_as_in_torch():
    x = np.eye(3)

    def values(a):
        return ns(a).sum(ns(a).linalg.svdvals(a) * ns(a).arange(1, 4, dtype=a.dtype))

    np.testing.assert_allclose(gdbp.grad(values)(x), _torch_grad(values, x), rtol=1e-12)
    np.testing.assert_allclose(gdbp.grad(lambda a: ns(a).linalg.matrix_norm(a, ord="nuc"))(x), np.eye(3))


@NUMPY_NORM_WARNS
@pytest.mark.parametrize("order", [2, 1, 3, 1.5, 0.5, -1, 0, math.inf, -math.inf])
def test_vector_norm_at_zero_is_torchs_subgradient(order):
    for x in (np.zeros(4), np.array([0.0, 1.0, -2.0, 0.0])):
        def f(a):
            return ns(a).linalg.vector_norm(a, ord=order)

        theirs = _torch_grad(f, x) if order != 0 else np.zeros_like(x)  # torch: no gradient for ord=0
        mine = gdbp.grad(f)(x)
        assert np.isfinite(mine).all()
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=0)


def test_svd_full_matrices_ignores_the_extra_basis_as_torch():
    x = np.random.default_rng(3).uniform(-1, 1, size=(4, 2))

    def f(a):
        u, s, vh = ns(a).linalg.svd(a)  # U is 4 x 4: its last two columns are any basis of a plane
        return ns(a).sum(u ** 2 * ns(a).arange(4, dtype=a.dtype))

    np.testing.assert_allclose(gdbp.grad(f)(x), _torch_grad(f, x), rtol=1e-10, atol=1e-12)


def test_qr_complete_with_more_rows_than_columns_has_no_gradient():
    x = np.random.default_rng(4).uniform(-1, 1, size=(4, 3))
    with pytest.raises(NotDifferentiableError, match="mode='complete'.*more rows than columns.*mode='reduced'"):
        gdbp.grad(lambda a: ns(a).sum(ns(a).linalg.qr(a, mode="complete").R))(x)
    with pytest.raises(RuntimeError, match="not differentiable"):  # torch refuses it too
        _torch_grad(lambda a: ns(a).sum(ns(a).linalg.qr(a, mode="complete").R), x)


# --- clear errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, error, match", [
    (lambda xp, x: xp.linalg.matrix_power(x, 1.5), TypeError, "n must be an integer, got float 1.5"),
    (lambda xp, x: xp.linalg.matrix_power(x[:, :2], 2), ValueError, r"square matrices .*got shape \(3, 2\)"),
    (lambda xp, x: xp.linalg.matrix_norm(x, ord=3), ValueError, r"ord=3 is not a matrix norm; use one of"),
    (lambda xp, x: xp.linalg.matrix_norm(x[0]), ValueError, r"stack of matrices .*got shape \(3,\)"),
    (lambda xp, x: xp.linalg.outer(x, x[0]), ValueError, r"two 1-D arrays, got shapes \(3, 3\) and \(3,\)"),
    (lambda xp, x: xp.linalg.qr(x, mode="r"), ValueError, "mode='r'; the standard's modes are"),
])
def test_bad_arguments_are_named(call, error, match):
    x = gdbp.tensor(np.eye(3))
    with pytest.raises(error, match=match):
        call(x.__array_namespace__(), x)


def test_matrix_power_zero_is_the_identity(backend):
    x = gdbp.tensor(backends.transfer(np.arange(8.0).reshape(2, 2, 2), backend))
    out = x.__array_namespace__().linalg.matrix_power(x, 0)
    np.testing.assert_array_equal(backends.to_numpy(out.data), np.broadcast_to(np.eye(2), (2, 2, 2)))


# --- kernels: the host shortcut of det's singular path ------------------------------------------------------


def test_known_all_false_answers_on_host_libraries_only():
    numpy_k, torch_k = backends.resolve("numpy").kernels, backends.resolve("torch").kernels
    assert numpy_k.known_all_false(np.zeros(3, dtype=bool)) and not numpy_k.known_all_false(np.eye(2) == 1)
    assert torch_k.known_all_false(torch.zeros(3, dtype=torch.bool)) and not torch_k.known_all_false(torch.ones(1) == 1)
    strict = backends.resolve("array_api_strict")
    assert not strict.kernels.known_all_false(strict.xp.zeros(3, dtype=strict.xp.bool))  # cannot tell: both paths


# --- CuPy ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", backend_params(("cupy",)))
def test_singular_paths_on_cupy_agree_with_numpy(backend_name):
    # CuPy's kernels cannot tell without a device sync: det and slogdet take the generic where-paths.
    def f(a):
        xp = ns(a)
        return xp.sum(xp.linalg.det(a)) + xp.sum(xp.linalg.slogdet(a[1:2]).logabsdet)

    assert_backends_agree(f, SINGULAR, backends=("numpy", backend_name))


# --- a real client: scikit-learn's PCA under array_api_dispatch ------------------------------------------------

PCA_SCRIPT = textwrap.dedent("""
    import numpy as np, sklearn
    from sklearn.decomposition import PCA
    import gdbp
    from gdbp.testing import check_grad

    def cost(x):
        with sklearn.config_context(array_api_dispatch=True):
            pca = PCA(n_components=2, svd_solver="full")
            z = pca.fit_transform(x)  # centring, xp.linalg.svd, svd_flip: all on gdbp's namespace
        xp = x.__array_namespace__()
        assert type(z).__name__ == ("Tensor" if isinstance(x, gdbp.Tensor) else "ndarray")
        return xp.sum(z ** 2 * xp.arange(1, 3, dtype=z.dtype)) + xp.sum(pca.explained_variance_ratio_)

    x = np.random.default_rng(0).normal(size=(10, 4))
    g = gdbp.grad(cost)(x)
    assert type(g) is np.ndarray and g.shape == x.shape and np.abs(g).max() > 0
    print(check_grad(cost, x))
""")


def test_scikit_learn_pca_is_differentiated_through_xp_linalg_svd():
    pytest.importorskip("sklearn")
    root = Path(__file__).resolve().parents[1]
    # scipy reads SCIPY_ARRAY_API when it is first imported, and scikit-learn's dispatch needs it set:
    # hence a fresh interpreter.
    env = dict(os.environ, SCIPY_ARRAY_API="1", PYTHONPATH=str(root))
    done = subprocess.run([sys.executable, "-c", PCA_SCRIPT], capture_output=True, text=True, env=env, cwd=root,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "directional derivatives agree" in done.stdout
