"""scipy.special's functions, differentiable: ``xp.special.expit``, ``xp.special.gammaln``...

Each is a primitive registered under ``special.<name>``, so gdbp's namespace
has a ``special`` extension; scipy.special (with ``SCIPY_ARRAY_API=1``) finds
it there, and a scipy.special ufunc applied to a Tensor is dispatched to it
(:mod:`gdbp.backprop.ufuncs`). The forward values come from the backend
layer, ``kernels(xp).special(name)``: scipy.special on NumPy arrays,
cupyx.scipy.special on CuPy arrays, torch.special on torch tensors.

The rules read like a table of derivatives; those that need another special
function call it through ``kernels(xp)`` too, so that on a recorded backward
pass it is the recorded primitive, and derivatives of every order exist
(digamma' is polygamma(1, .), polygamma(n, .)' is polygamma(n + 1, .)).
At the edges of a domain the rules give what PyTorch gives (entr'(0) = inf,
xlogy's d/dx = log y at x = 0, and 0 at x = y = 0), except for xlogy's and
xlog1py's d/dy at x = 0, which is 0, the derivative of xlogy(0, y) = 0, where
PyTorch gives 0 / 0 = nan at y = 0.
Real inputs only.
"""

from __future__ import annotations

import inspect
import math

from ... import backends
from ..primitive import binary, defn, defprim, unary
from .error_function import erf_p

_SQRT_PI = math.sqrt(math.pi)
_SQRT_2PI = math.sqrt(2 * math.pi)


def special(xp, name):
    """scipy.special's ``name`` for arrays of namespace ``xp`` (recorded, on gdbp's namespace)."""
    return backends.kernels(xp).special(name)


def _forward(name):
    return lambda xp, *args: special(xp, name)(*args)


# --- the logistic function and its inverse ------------------------------------------------

# expit(x) = 1 / (1 + exp(-x)): d = expit (1 - expit)
expit_p = unary("special.expit", _forward("expit"), lambda xp, g, ans, x: g * ans * (1 - ans), needs_ans=True)
# log_expit(x) = log(expit(x)) = -log(1 + exp(-x)): d = 1 - expit(x) = expit(-x), which keeps its digits for large x
log_expit_p = unary("special.log_expit", _forward("log_expit"),
                    lambda xp, g, ans, x: g * special(xp, "expit")(-x))
# logit(p) = log(p / (1 - p)): d = 1 / (p (1 - p))
logit_p = unary("special.logit", _forward("logit"), lambda xp, g, ans, x: g / (x * (1 - x)))

# --- the error function and the normal distribution -----------------------------------------

defn(erf_p, name="special.erf")  # gdbp's own erf (accurate to 1e-16), one primitive for both names
# d erfc = -2 / sqrt(pi) exp(-x^2)
erfc_p = unary("special.erfc", _forward("erfc"), lambda xp, g, ans, x: g * (-2 / _SQRT_PI) * xp.exp(-(x * x)))
# erfinv(y) = x where erf(x) = y: d = 1 / erf'(x) = sqrt(pi) / 2 exp(x^2)
erfinv_p = unary("special.erfinv", _forward("erfinv"),
                 lambda xp, g, ans, x: g * (_SQRT_PI / 2) * xp.exp(ans * ans), needs_ans=True)
# ndtr(x) = Phi(x), the standard normal CDF: d = phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
ndtr_p = unary("special.ndtr", _forward("ndtr"), lambda xp, g, ans, x: g * xp.exp(-(x * x) / 2) / _SQRT_2PI)
# log_ndtr(x) = log Phi(x): d = phi(x) / Phi(x), as exp(-x^2 / 2 - log Phi(x)) so that it holds far into the tail
log_ndtr_p = unary("special.log_ndtr", _forward("log_ndtr"),
                   lambda xp, g, ans, x: g * xp.exp(-(x * x) / 2 - ans) / _SQRT_2PI, needs_ans=True)

# --- the gamma function's logarithm and its derivatives ---------------------------------------


def _polygamma_x(xp, g, ans, n, x):
    return g * special(xp, "polygamma")(n + 1, x)


# gammaln(x) = log |Gamma(x)|: d = digamma(x)
gammaln_p = unary("special.gammaln", _forward("gammaln"), lambda xp, g, ans, x: g * special(xp, "digamma")(x))
# digamma = Gamma' / Gamma: d = polygamma(1, x), the trigamma function
digamma_p = unary("special.digamma", _forward("digamma"),
                  lambda xp, g, ans, x: g * special(xp, "polygamma")(1, x))
defn(digamma_p, name="special.psi")  # scipy's own name for it, which scipy's array-API dispatch looks up
# polygamma(n, x), the n-th derivative of digamma: d/dx = polygamma(n + 1, x); n is an integer order
polygamma_p = defprim("special.polygamma", _forward("polygamma"), None, _polygamma_x, broadcasts=True,
                      signature=inspect.Signature([inspect.Parameter(p, inspect.Parameter.POSITIONAL_ONLY)
                                                   for p in ("n", "x")]))

# --- x log y and entropies --------------------------------------------------------------------


def _log_unless_both_zero(name, at):
    # d/dx xlogy(x, y) = log y, also at x = 0; where x = 0 and log y = -inf, 0 (both as PyTorch).
    # xlogy(mask, y) is log y where mask is 1, else 0, and never evaluates log y where it is not wanted.
    def vjp_x(xp, g, ans, x, y):
        return g * special(xp, name)(xp.astype((x != 0) | (y != at), g.dtype), y)

    return vjp_x


def _x_over(xp, x, y):
    # x / y, taken as 0 where x = 0: xlogy(0, y) is 0 for every y, so its y-derivative is 0, at y = 0 too
    # (PyTorch gives 0 / 0 = nan there). Dividing by 1 there keeps the second derivative finite as well.
    if not hasattr(x, "shape"):
        return x / y
    return x / xp.where(x == 0, xp.ones_like(y), y)


# xlogy(x, y) = x log y, 0 where x = 0: d/dx = log y, d/dy = x / y
xlogy_p = binary("special.xlogy", _forward("xlogy"), _log_unless_both_zero("xlogy", 0),
                 lambda xp, g, ans, x, y: g * _x_over(xp, x, y))
# xlog1py(x, y) = x log(1 + y), 0 where x = 0: d/dx = log(1 + y), d/dy = x / (1 + y)
xlog1py_p = binary("special.xlog1py", _forward("xlog1py"), _log_unless_both_zero("xlog1py", -1),
                   lambda xp, g, ans, x, y: g * _x_over(xp, x, 1 + y))
# entr(x) = -x log x (0 at 0): d = -(log x + 1), as PyTorch
entr_p = unary("special.entr", _forward("entr"), lambda xp, g, ans, x: -g * (xp.log(x) + 1))
# rel_entr(x, y) = x log(x / y) for x, y > 0 (0 where x = 0): d/dx = log(x / y) + 1, d/dy = -x / y
rel_entr_p = binary("special.rel_entr", _forward("rel_entr"),
                    lambda xp, g, ans, x, y: g * (xp.log(x / y) + 1),
                    lambda xp, g, ans, x, y: -g * x / y)
