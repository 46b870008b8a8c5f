"""Real client code, written by others against the array API standard, differentiated by gdbp as it stands.

scipy (``SCIPY_ARRAY_API=1``, set in conftest before scipy is imported),
scikit-learn (``sklearn.config_context(array_api_dispatch=True)``),
``einops.array_api`` and array-api-extra: each function's gradient against
central finite differences (``gdbp.testing.check_grad``), and its value on
Tensors against the same function on plain NumPy arrays. Functions that use
the linalg extension are tested elsewhere. The last tests pin down why some
client functions cannot be differentiated, and that gdbp says so.
"""

from __future__ import annotations

import array_api_extra as xpx
import einops.array_api as ea
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as ss
import sklearn
from sklearn import metrics, preprocessing
from sklearn.metrics import pairwise
from sklearn.utils import extmath

import gdbp
from gdbp import backends
from gdbp.testing import check_grad

from conftest import to_numpy

CLIENTS = []


def client(name, x=(0.2, 1.0), y=(0.2, 1.0), backends=("numpy",)):
    """Register fn(x, y) (y is a constant; x, y of shape (4, 3), uniform in the given ranges)."""

    def register(fn):
        for b in backends:
            CLIENTS.append(pytest.param(fn, x, y, b, id=f"{name}-{b}" if len(backends) > 1 else name))
        return fn

    return register


def ns(a):
    return a.__array_namespace__() if isinstance(a, gdbp.Tensor) else backends.namespace(a)


CPU = ("numpy", "torch", "array_api_strict")

# --- scipy.special: the ufuncs, through xp.special (scipy's array-API dispatch) ---------------------

client("scipy.special.expit", x=(-3.0, 3.0), backends=CPU)(lambda a, b: sp.expit(a))
client("scipy.special.log_expit", x=(-3.0, 3.0))(lambda a, b: sp.log_expit(a))
client("scipy.special.logit", x=(0.1, 0.9), backends=CPU)(lambda a, b: sp.logit(a))
client("scipy.special.gammaln", x=(0.3, 4.0), backends=CPU)(lambda a, b: sp.gammaln(a))
client("scipy.special.digamma", x=(0.5, 4.0))(lambda a, b: sp.digamma(a))
client("scipy.special.polygamma", x=(0.5, 4.0))(lambda a, b: sp.polygamma(1, a))
client("scipy.special.erf", x=(-2.0, 2.0))(lambda a, b: sp.erf(a))
client("scipy.special.erfc", x=(-2.0, 2.0))(lambda a, b: sp.erfc(a))
client("scipy.special.erfinv", x=(-0.9, 0.9), backends=CPU)(lambda a, b: sp.erfinv(a))
client("scipy.special.ndtr", x=(-3.0, 3.0))(lambda a, b: sp.ndtr(a))
client("scipy.special.log_ndtr", x=(-10.0, 3.0), backends=CPU)(lambda a, b: sp.log_ndtr(a))
client("scipy.special.xlogy", backends=CPU)(lambda a, b: sp.xlogy(a, b))
client("scipy.special.xlog1py")(lambda a, b: sp.xlog1py(b, a))
client("scipy.special.entr")(lambda a, b: sp.entr(a))
client("scipy.special.rel_entr", backends=CPU)(lambda a, b: sp.rel_entr(a, b))
# scipy.special's array-API functions built on the namespace
client("scipy.special.logsumexp", x=(-3.0, 3.0))(lambda a, b: sp.logsumexp(a, axis=1))
client("scipy.special.logsumexp-weights")(lambda a, b: sp.logsumexp(a, b=b, axis=0))
client("scipy.special.softmax")(lambda a, b: sp.softmax(a, axis=1))
client("scipy.special.log_softmax")(lambda a, b: sp.log_softmax(a, axis=0))

# --- scipy.stats ----------------------------------------------------------------------------------

client("scipy.stats.entropy", backends=CPU)(lambda a, b: ss.entropy(a))
client("scipy.stats.entropy-relative")(lambda a, b: ss.entropy(a, b, axis=1))
client("scipy.stats.entropy-base2")(lambda a, b: ss.entropy(b, a, base=2.0))
client("scipy.stats.zscore")(lambda a, b: ss.zscore(a))
client("scipy.stats.zmap")(lambda a, b: ss.zmap(a, b, axis=1))
client("scipy.stats.skew")(lambda a, b: ss.skew(a))
client("scipy.stats.kurtosis")(lambda a, b: ss.kurtosis(a, axis=1))
client("scipy.stats.moment")(lambda a, b: ss.moment(a, 3))
client("scipy.stats.gmean")(lambda a, b: ss.gmean(a, weights=b))
client("scipy.stats.hmean")(lambda a, b: ss.hmean(a))
client("scipy.stats.pmean")(lambda a, b: ss.pmean(a, 2.5, axis=1))
client("scipy.stats.variation")(lambda a, b: ss.variation(a))
client("scipy.stats.tvar")(lambda a, b: ss.tvar(a))
client("scipy.stats.sem")(lambda a, b: ss.sem(a, axis=1))
client("scipy.stats.gstd")(lambda a, b: ss.gstd(a))
client("scipy.stats.differential_entropy")(lambda a, b: ss.differential_entropy(a, window_length=1, axis=0))

# --- scikit-learn ------------------------------------------------------------------------------------

# Metrics give Python floats (float(...)) unless asked for one value per output: raw_values are arrays.
client("sklearn.metrics.mean_squared_error")(
    lambda a, b: metrics.mean_squared_error(b, a, multioutput="raw_values"))
client("sklearn.metrics.mean_absolute_error", x=(0.25, 0.5), y=(0.6, 0.9))(
    lambda a, b: metrics.mean_absolute_error(b, a, multioutput="raw_values"))
client("sklearn.metrics.r2_score")(lambda a, b: metrics.r2_score(b, a, multioutput="raw_values"))
client("sklearn.metrics.explained_variance_score")(
    lambda a, b: metrics.explained_variance_score(b, a, multioutput="raw_values"))
client("sklearn.metrics.mean_squared_log_error")(
    lambda a, b: metrics.mean_squared_log_error(b, a, multioutput="raw_values"))
client("sklearn.metrics.mean_pinball_loss", x=(0.25, 0.5), y=(0.6, 0.9))(
    lambda a, b: metrics.mean_pinball_loss(b, a, alpha=0.3, multioutput="raw_values"))
client("sklearn.pairwise.rbf_kernel", backends=CPU)(lambda a, b: pairwise.rbf_kernel(a, b, gamma=0.7))
client("sklearn.pairwise.euclidean_distances", x=(0.0, 0.4), y=(0.6, 1.0))(
    lambda a, b: pairwise.euclidean_distances(a, b))
client("sklearn.pairwise.cosine_similarity")(lambda a, b: pairwise.cosine_similarity(a, b))
client("sklearn.pairwise.polynomial_kernel")(lambda a, b: pairwise.polynomial_kernel(a, b, degree=3))
client("sklearn.pairwise.sigmoid_kernel")(lambda a, b: pairwise.sigmoid_kernel(a, b))
client("sklearn.pairwise.laplacian_kernel", x=(0.0, 0.4), y=(0.6, 1.0))(
    lambda a, b: pairwise.laplacian_kernel(a, b))
client("sklearn.pairwise.additive_chi2_kernel")(lambda a, b: pairwise.additive_chi2_kernel(a, b))
client("sklearn.pairwise.manhattan_distances", x=(0.0, 0.4), y=(0.6, 1.0))(
    lambda a, b: pairwise.manhattan_distances(a, b))
client("sklearn.preprocessing.normalize")(lambda a, b: preprocessing.normalize(a))
# Not StandardScaler: its incremental variance computes 0/0 and then overwrites it (x[zeros] = ...), so the
# chain rule carries 0 * NaN into every gradient, as JAX's would (torch refuses the in-place write).
client("sklearn.preprocessing.MinMaxScaler")(lambda a, b: preprocessing.MinMaxScaler().fit(a).transform(b))
client("sklearn.preprocessing.MaxAbsScaler")(lambda a, b: preprocessing.MaxAbsScaler().fit_transform(a))
client("sklearn.preprocessing.KernelCenterer")(
    lambda a, b: preprocessing.KernelCenterer().fit_transform(a @ ns(a).matrix_transpose(b)))
client("sklearn.utils.extmath.softmax")(lambda a, b: extmath.softmax(a))

# --- einops.array_api --------------------------------------------------------------------------------

client("einops.rearrange", backends=CPU)(lambda a, b: ea.rearrange(a, "(h w) c -> c h w", h=2))
client("einops.reduce-mean")(lambda a, b: ea.reduce(a * b, "b c -> c", "mean"))
client("einops.reduce-max")(lambda a, b: ea.reduce(a, "(b2 b) c -> b c", "max", b2=2))
client("einops.repeat")(lambda a, b: ea.repeat(a, "b c -> b r c", r=2) * ea.rearrange(b, "b c -> b 1 c"))
client("einops.pack")(lambda a, b: ea.pack([a, b * a], "b *")[0])

# --- array-api-extra: at, and functions built on the namespace -------------------------------------------

client("xpx.at.set", backends=CPU)(lambda a, b: xpx.at(a)[1, :].set(b[0, :] * a[2, :]))
client("xpx.at.add", backends=CPU)(lambda a, b: xpx.at(a)[:, 1].add(b[:, 0] * a[:, 2]))
client("xpx.at.multiply")(lambda a, b: xpx.at(a)[1:, 0].multiply(b[1:, 1]))
client("xpx.at.divide")(lambda a, b: xpx.at(a)[0].divide(b[0] + a[1]))
client("xpx.at.power")(lambda a, b: xpx.at(a)[0].power(2.0))
client("xpx.at.max")(lambda a, b: xpx.at(a, (slice(None), 1)).max(b[:, 1]))
client("xpx.at.copy")(lambda a, b: xpx.at(a)[2].set(b[2], copy=True) + a)
client("xpx.cov")(lambda a, b: xpx.cov(a))
client("xpx.kron")(lambda a, b: xpx.kron(a, b[:2, :2]))
client("xpx.pad")(lambda a, b: xpx.pad(a, 2, constant_values=0.5))
client("xpx.sinc")(lambda a, b: xpx.sinc(a))
client("xpx.create_diagonal")(lambda a, b: xpx.create_diagonal(a[0, ...], offset=1))
client("xpx.atleast_nd")(lambda a, b: xpx.atleast_nd(a, ndim=4))
client("xpx.nanmean")(lambda a, b: xpx.nanmean(a, axis=0))
client("xpx.nansum")(lambda a, b: xpx.nansum(a * b, axis=1))
client("xpx.nanmax")(lambda a, b: xpx.nanmax(a, axis=1))
client("xpx.deg2rad")(lambda a, b: xpx.deg2rad(a))
client("xpx.partition")(lambda a, b: xpx.partition(a, 1))
client("xpx.isclose")(lambda a, b: a * xpx.isclose(a, b, atol=0.3))
client("xpx.apply_where")(lambda a, b: xpx.apply_where(a > 0.5, (a, b), lambda u, v: ns(u).log(u) * v,
                                                       fill_value=0.0))
client("xpx.nan_to_num")(lambda a, b: xpx.nan_to_num(a))
client("xpx.one_hot")(lambda a, b: xpx.one_hot(ns(a).asarray([0, 1, 2, 1]), 3) * a)


def sized(rng, low_high, backend):
    low, high = low_high
    return backends.transfer(rng.uniform(low, high, size=(4, 3)), backend)


@pytest.mark.parametrize("fn, x_range, y_range, backend_name", CLIENTS)
def test_client_function_gradient_matches_finite_differences(fn, x_range, y_range, backend_name, rng):
    x, y = sized(rng, x_range, backend_name), sized(rng, y_range, backend_name)
    with sklearn.config_context(array_api_dispatch=True):
        on_tensors = fn(gdbp.tensor(x), gdbp.tensor(y))
        assert isinstance(on_tensors, gdbp.Tensor), f"the function gave {type(on_tensors).__name__}"
        on_arrays = fn(to_numpy(x), to_numpy(y))  # the client on plain NumPy (einops refuses raw torch tensors)
        np.testing.assert_allclose(to_numpy(on_tensors), to_numpy(on_arrays), rtol=1e-10, atol=1e-12)
        report = check_grad(fn, x, y, argnums=0)
    assert report.n_checks == 3


def test_at_least_sixty_client_functions():
    names = {p.id.rsplit("-", 1)[0] if p.id.endswith(CPU) else p.id for p in CLIENTS}
    assert len(names) >= 60
    libraries = {n.split(".")[0] for n in names}
    assert libraries == {"scipy", "sklearn", "einops", "xpx"}


def test_float32_stays_float32_through_clients(rng):
    x = rng.uniform(0.2, 1.0, size=(4, 3)).astype(np.float32)

    def cost(a):
        xp = ns(a)
        with sklearn.config_context(array_api_dispatch=True):
            k = pairwise.rbf_kernel(a, a)
        return xp.sum(ss.entropy(sp.expit(a))) + xp.sum(k) + xp.sum(xpx.at(a)[0].set(1.0) ** 2)

    value, g = gdbp.value_and_grad(cost)(x)
    assert value.dtype == np.float32 and g.dtype == np.float32


def test_scipy_stats_entropy_is_differentiated_through_its_ufuncs(rng):
    # entropy normalises pk, then sums scipy.special.entr: H(p) = -sum p log p, p = pk / sum(pk).
    pk = rng.uniform(0.1, 1.0, size=(5,))
    g = gdbp.grad(ss.entropy)(pk)
    p = pk / pk.sum()
    expected = (-(np.log(p) + 1) + np.sum(p * (np.log(p) + 1))) / pk.sum()
    np.testing.assert_allclose(g, expected, rtol=1e-12)


# --- what cannot be differentiated, and what gdbp says ----------------------------------------------------


def test_sklearn_metrics_that_return_python_floats_say_so(rng):
    # scikit-learn ends most metrics with float(...): a host number, which no gradient can pass.
    x, y = rng.uniform(0.2, 0.8, size=(4,)), (rng.uniform(size=(4,)) > 0.5).astype(np.float64)
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(TypeError, match=r"got float \(a Python number: the function turned its result"):
            gdbp.grad(lambda p, t: metrics.log_loss(t, p))(x, y)
        with pytest.raises(TypeError, match=r"vjp: the function must return arrays, got float"):
            gdbp.vjp(lambda p: metrics.mean_squared_error(y, p), x)


def test_a_scipy_function_without_a_rule_is_refused_not_silently_cut(rng):
    # scipy falls back to np.asarray for a function that xp.special lacks (huber): refused, with the way out.
    x = rng.uniform(0.2, 1.0, size=(3,))
    with pytest.raises(gdbp.NotDifferentiableError, match=r"np.asarray\(t\).*gdbp.custom_vjp"):
        gdbp.grad(lambda a: ns(a).sum(sp.huber(1.0, a)))(x)
    # Without a gradient, scipy's fallback gives the values.
    t = gdbp.tensor(x)
    np.testing.assert_allclose(to_numpy(sp.huber(1.0, t)), sp.huber(1.0, x))
