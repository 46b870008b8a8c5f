"""Checking gradients: against finite differences, and between backends.

These are the checks gdbp runs on itself, public so that a user can check a
custom gradient (:func:`gdbp.custom_vjp`) or a whole cost function the same way.

- :func:`check_grad` compares gdbp's vector-Jacobian products with central
  finite differences in float64 (complex128 for complex inputs), along random
  directions.
- :func:`assert_backends_agree` runs one function on several backends and
  compares values and gradients on the host.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from . import backends
from .backprop import Tensor, no_grad, unwrap, value_and_grad, vjp

__all__ = ["GradCheckReport", "check_grad", "assert_backends_agree"]

# Beyond this many elements, a failing argument is not probed coordinate by coordinate.
_PROBE_LIMIT = 512


@dataclass
class GradCheckReport:
    """What :func:`check_grad` compared, and the worst agreement it saw.

    Attributes
    ----------
    worst_rel_error : float
        The largest ``|vjp - fd| / max(|vjp|, |fd|)`` over all checks.
    worst_where : str
        Which argument and direction gave it.
    n_checks : int
        How many directional derivatives were compared.
    """

    worst_rel_error: float
    worst_where: str
    n_checks: int

    def __str__(self) -> str:
        return (f"check_grad: {self.n_checks} directional derivatives agree; "
                f"worst relative error {self.worst_rel_error:.2e} ({self.worst_where})")


# --- small helpers: no array library is named here ---------------------------------------

_FLOATING = ("real floating", "complex floating")
_KINDS = ("real", "imaginary", "complex")  # the directions of a complex argument, in turn


def _is_float_array(x) -> bool:
    """A floating array, real or complex: one that has a gradient."""
    b = backends.backend_of(x)
    return b is not None and b.xp.isdtype(x.dtype, _FLOATING)


def _is_complex(x) -> bool:
    b = backends.backend_of(x)
    return b is not None and b.xp.isdtype(x.dtype, "complex floating")


def _to_float64(x):
    """x in float64 (complex128 if complex) on its own backend: the check is run in double precision."""
    xp = backends.backend_of(x).xp
    wide = xp.complex128 if _is_complex(x) else xp.float64
    return x if x.dtype == wide else xp.astype(x, wide)


def _leaves(tree) -> list:
    if isinstance(tree, (list, tuple)):
        return [leaf for t in tree for leaf in _leaves(t)]
    if isinstance(tree, dict):
        return [leaf for k in tree for leaf in _leaves(tree[k])]
    return [tree]


def _random_like(x, rnd: random.Random, kind: str = "complex"):
    """Standard normal numbers in x's shape, float64, on x's backend.

    For a complex x, complex128: real and imaginary parts both drawn
    (``kind="complex"``), or only one of them (``"real"``, ``"imaginary"``).
    """
    b = backends.backend_of(x)
    n = math.prod(x.shape)
    if _is_complex(x):
        re = kind != "imaginary"
        im = kind != "real"
        draws = [complex(rnd.gauss(0.0, 1.0) if re else 0.0, rnd.gauss(0.0, 1.0) if im else 0.0) for _ in range(n)]
        values = b.xp.asarray(draws, dtype=b.xp.complex128, device=b.device)
    else:
        values = b.xp.asarray([rnd.gauss(0.0, 1.0) for _ in range(n)], dtype=b.xp.float64, device=b.device)
    return b.xp.reshape(values, tuple(x.shape))


def _dot(a, b) -> float:
    """The real inner product Re <a, b> = sum(re a re b + im a im b), as a Python float.

    It is the pairing under which PyTorch's complex gradients (the conjugate
    Wirtinger derivatives) are gradients: d cost = Re <grad, dz>. (The host
    round-trip is the point here.)
    """
    xp = backends.backend_of(a).xp
    if not (_is_complex(a) and _is_complex(b)):
        a = xp.real(a) if _is_complex(a) else a
        b = xp.real(b) if _is_complex(b) else b
        return float(xp.sum(a * b))
    return float(xp.sum(xp.real(a) * xp.real(b))) + float(xp.sum(xp.imag(a) * xp.imag(b)))


def _rel_error(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0.0 else abs(a - b) / scale


def _unravel(flat: int, shape: tuple) -> tuple:
    index = []
    for n in reversed(shape):
        index.append(flat % n)
        flat //= n
    return tuple(reversed(index))


# --- check_grad ------------------------------------------------------------------------------


def check_grad(f, *xs, argnums=None, eps=1e-6, rtol=1e-5, atol=1e-8, n_directions=3, seed=0):
    """Check gdbp's gradient of ``f`` against central finite differences, in float64.

    For each differentiated argument ``x_i`` and each of ``n_directions``
    random directions ``u``, with a random output cotangent ``v`` (so that
    non-scalar outputs are covered by one check), the vector-Jacobian product
    gdbp computes must match the directional derivative:

    .. math::

        \\langle u, J_i^T v \\rangle \\approx
        \\left\\langle v, \\frac{f(x_i + \\epsilon u) - f(x_i - \\epsilon u)}{2 \\epsilon} \\right\\rangle

    within ``atol + rtol * max(|lhs|, |rhs|)``.

    Complex arguments and outputs are checked under PyTorch's convention,
    with the real inner product ``<a, b> = Re sum(conj(a) b)``: the gradient
    of a complex input is the conjugate Wirtinger derivative, for which
    ``<u, grad>`` is the derivative along ``u``. A complex argument's
    directions are in turn purely real, purely imaginary and both; complex
    outputs get complex cotangents.

    Parameters
    ----------
    f : callable
        ``f(*xs)`` returns an array or a list/tuple of arrays; written
        against the array API standard (it runs on gdbp Tensors) or with
        gdbp's own functions.
    *xs : arrays
        The inputs, arrays of any one backend. Floating arrays are cast to
        float64 (complex ones to complex128) on their own backend for the
        check; other arguments (integer indices, Python scalars) are passed
        as they are.
    argnums : int or tuple of int, optional
        The arguments to differentiate; by default every floating array
        (real or complex).
    eps : float
        The finite-difference step.
    rtol, atol : float
        Relative and absolute tolerances on each directional derivative.
    n_directions : int
        Random directions per argument.
    seed : int
        Seed of the directions and cotangents.

    Returns
    -------
    GradCheckReport
        The worst relative error seen, and where.

    Raises
    ------
    AssertionError
        A directional derivative disagrees; the message names the argument,
        the direction, both values and, for arguments of up to 512
        elements, the index whose partial derivative is worst.
    TypeError
        An argument chosen by ``argnums`` is not a floating array, or f's
        output is not floating (real or complex).
    """
    xs = [unwrap(x) for x in xs]
    xs = [_to_float64(x) if _is_float_array(x) else x for x in xs]
    if argnums is None:
        nums = tuple(i for i, x in enumerate(xs) if _is_float_array(x))
        if not nums:
            raise TypeError("check_grad: no floating-point array among the arguments to differentiate")
    else:
        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        nums = tuple(i % len(xs) for i in nums)
        for i in nums:
            if not _is_float_array(xs[i]):
                raise TypeError(f"check_grad: argument {i} is a {type(xs[i]).__name__}, not a floating-point array")

    def with_args(diff):
        # The arguments not differentiated as Tensors too, as evaluate() passes them: code that takes one
        # namespace from all its inputs (array_namespace(x, y)) must not meet a Tensor beside a raw array.
        args = [Tensor(a) if backends.is_array(a) else a for a in xs]
        for i, d in zip(nums, diff):
            args[i] = d
        return args

    def f_of_diff(*diff):
        return f(*with_args(diff))

    def evaluate(args) -> list:
        """f's outputs as raw arrays, computed on Tensors without a graph."""
        wrapped = [Tensor(a) if backends.is_array(a) else a for a in args]
        with no_grad():
            return [unwrap(o) for o in _leaves(f(*wrapped))]

    out, pullback = vjp(f_of_diff, *[xs[i] for i in nums])
    outs = _leaves(out)
    for k, o in enumerate(outs):
        if not _is_float_array(o):
            raise TypeError(f"check_grad: output {k} of f is not a floating-point array ({type(o).__name__})")
    rnd = random.Random(seed)
    cotangents = [_random_like(o, rnd) for o in outs]
    grads = pullback(cotangents if len(cotangents) > 1 else cotangents[0])

    def projected(args) -> float:
        """<v, f(args)>: the cost whose gradient the VJP gives."""
        return sum(_dot(v, o) for v, o in zip(cotangents, evaluate(args)))

    worst, worst_where, n_checks = 0.0, "no checks", 0
    for i, g in zip(nums, grads):
        x = xs[i]
        if tuple(g.shape) != tuple(x.shape):
            raise AssertionError(f"check_grad: the gradient of argument {i} has shape {tuple(g.shape)}, "
                                 f"its argument {tuple(x.shape)}")
        for d in range(n_directions):
            kind = _KINDS[d % 3] if _is_complex(x) else "real"
            u = _random_like(x, rnd, kind)
            lhs = _dot(u, g)
            plus = projected([x + eps * u if j == i else a for j, a in enumerate(xs)])
            minus = projected([x - eps * u if j == i else a for j, a in enumerate(xs)])
            rhs = (plus - minus) / (2 * eps)
            n_checks += 1
            err = _rel_error(lhs, rhs)
            where = f"argument {i} (shape {tuple(x.shape)}), direction {d}"
            if _is_complex(x):
                where += f" ({kind})"
            if err > worst:
                worst, worst_where = err, where
            # A NaN compares false with everything: a gradient or a difference that is not finite fails outright.
            finite = math.isfinite(lhs) and math.isfinite(rhs)
            if not finite or abs(lhs - rhs) > atol + rtol * max(abs(lhs), abs(rhs)):
                detail = _worst_index(projected, xs, i, g, eps)
                raise AssertionError(
                    f"check_grad: gdbp's gradient disagrees with finite differences for {where}: "
                    f"<u, J^T v> = {lhs!r} but the finite difference gives {rhs!r} "
                    f"(relative error {err:.3e}, rtol={rtol}, atol={atol}){detail}"
                )
    return GradCheckReport(worst, worst_where, n_checks)


def _worst_index(projected, xs, i, g, eps) -> str:
    """The element of argument i whose partial derivative disagrees most (small arguments only).

    A complex element is probed along its real and its imaginary axis: the
    two finite differences are the real and imaginary parts of its gradient.
    """
    x = xs[i]
    n = math.prod(x.shape)
    if n == 0 or n > _PROBE_LIMIT:
        return ""
    xp = backends.backend_of(x).xp
    host_g = backends.to_numpy(g).reshape(-1)
    steps = (1, 1j) if _is_complex(x) else (1,)
    found, worst = None, -1.0
    for flat in range(n):
        basis = xp.reshape(xp.astype(xp.arange(n, device=backends.device_of(x)) == flat, x.dtype), tuple(x.shape))
        fd = 0
        for step in steps:
            plus = projected([x + (eps * step) * basis if j == i else a for j, a in enumerate(xs)])
            minus = projected([x - (eps * step) * basis if j == i else a for j, a in enumerate(xs)])
            fd += step * (plus - minus) / (2 * eps)
        mine = complex(host_g[flat]) if _is_complex(x) else float(host_g[flat])
        off = abs(mine - fd)
        if off > worst or off != off:  # a NaN is the worst there is
            worst, found = math.inf if off != off else off, (flat, mine, fd)
    flat, mine, fd = found
    return (f"; worst element: index {_unravel(flat, tuple(x.shape))} of argument {i}, "
            f"gdbp {mine!r} vs finite difference {fd!r}")


# --- assert_backends_agree ---------------------------------------------------------------------


@dataclass
class _Run:
    backend: object
    values: list = field(default_factory=list)
    grads: list = field(default_factory=list)


def _sum_outputs(outs):
    """A real cost from the outputs: each one's sum, a complex one's real and imaginary parts' sums."""
    total = None
    for o in outs:
        if isinstance(o, Tensor):
            xp = o.__array_namespace__()
            s = xp.sum(xp.real(o)) + xp.sum(xp.imag(o)) if _is_complex(o.data) else xp.sum(o)
        else:
            s = o
        total = s if total is None else total + s
    return total


def assert_backends_agree(f, *xs, backends=("numpy", "array_api_strict", "torch"), argnums=None,
                          rtol=None, atol=None):
    """Run ``f`` and its gradient on several backends; assert that they agree.

    Each array input is transferred to each backend (an explicit copy);
    ``f`` runs there on gdbp Tensors, with ``gdbp.grad`` of the sum of its
    outputs (of their real and imaginary parts, for complex outputs). Values and gradients are compared on the host with the first
    backend's; each output must be an array of the backend's own library,
    each gradient in its input's dtype and shape, and each output's dtype
    the same on every backend.

    Parameters
    ----------
    f : callable
        ``f(*xs)`` returns an array or a list/tuple of arrays.
    *xs : arrays or scalars
        Host NumPy arrays or arrays of any backend; non-arrays pass as they are.
    backends : sequence of str or Backend
        The backends to run on. One that is unavailable raises: leave it
        out to skip it.
    argnums : int or tuple of int, optional
        The arguments to differentiate; by default every floating array
        (real or complex).
    rtol, atol : float, optional
        Tolerances; by default 1e-4 and 1e-5 when an input is float32 or
        complex64 (or narrower), 1e-7 and 1e-10 otherwise.

    Returns
    -------
    dict
        Backend spec -> ``(values, grads)``, both lists of host NumPy arrays.

    Raises
    ------
    AssertionError
        A value, gradient, library, dtype or shape differs; the message names
        the backends and which output or argument.
    gdbp.backends.BackendUnavailableError
        A backend asked for is not available on this machine.
    """
    from . import backends as _backends

    targets = [_backends.resolve(b) for b in backends]
    if not targets:
        raise ValueError("assert_backends_agree: no backends given")
    floats = [x for x in xs if _is_float_array(unwrap(x))]
    if rtol is None or atol is None:
        narrow = any(_float_bits(x) < 64 for x in floats)
        rtol = (1e-4 if narrow else 1e-7) if rtol is None else rtol
        atol = (1e-5 if narrow else 1e-10) if atol is None else atol
    runs = [_run_on(f, [unwrap(x) for x in xs], b, argnums) for b in targets]
    reference = runs[0]
    for run in runs:
        _check_kinds(run, [unwrap(x) for x in xs], argnums)
    for run in runs[1:]:
        for kind, mine, theirs in (("output", run.values, reference.values),
                                   ("gradient of argument", run.grads, reference.grads)):
            for k, (a, b) in enumerate(zip(mine, theirs)):
                a_host, b_host = _backends.to_numpy(a), _backends.to_numpy(b)
                label = f"{kind} {k}" if kind == "output" else f"{kind} {_argnum_list(xs, argnums)[k]}"
                if tuple(a_host.shape) != tuple(b_host.shape):
                    raise AssertionError(f"{label}: shape {a_host.shape} on {run.backend.spec}, "
                                         f"{b_host.shape} on {reference.backend.spec}")
                if str(a_host.dtype) != str(b_host.dtype):
                    raise AssertionError(f"{label}: dtype {a_host.dtype} on {run.backend.spec}, "
                                         f"{b_host.dtype} on {reference.backend.spec}")
                _assert_close(a_host, b_host, rtol, atol,
                              f"{label}: {run.backend.spec} and {reference.backend.spec} disagree")
    return {run.backend.spec: ([_backends.to_numpy(v) for v in run.values],
                               [_backends.to_numpy(g) for g in run.grads]) for run in runs}


def _float_bits(x) -> int:
    """The bit width of a floating array's dtype (of each part, for a complex one)."""
    x = unwrap(x)
    return backends.backend_of(x).xp.finfo(x.dtype).bits


def _argnum_list(xs, argnums):
    if argnums is None:
        return [i for i, x in enumerate(xs) if _is_float_array(unwrap(x))]
    return [argnums] if isinstance(argnums, int) else [a % len(xs) for a in argnums]


def _run_on(f, xs, backend, argnums) -> _Run:
    moved = [backends.transfer(x, backend) if backends.is_array(x) else x for x in xs]
    nums = tuple(_argnum_list(xs, argnums))
    if not nums:
        raise TypeError("assert_backends_agree: no floating-point array among the arguments to differentiate")

    def summed(*args):
        outs = _leaves(f(*args))
        return _sum_outputs(outs), outs

    (_, outs), grads = value_and_grad(summed, argnums=nums, has_aux=True)(*moved)
    return _Run(backend, [unwrap(o) for o in outs], list(grads))


def _check_kinds(run, xs, argnums):
    b = run.backend
    for k, v in enumerate(run.values):
        if backends.backend_of(v) is not b:
            raise AssertionError(f"output {k} on {b.spec} is a {type(v).__name__}, not an array of {b.spec}")
    for i, g in zip(_argnum_list(xs, argnums), run.grads):
        if backends.backend_of(g) is not b:
            raise AssertionError(f"the gradient of argument {i} on {b.spec} is a {type(g).__name__}, "
                                 f"not an array of {b.spec}")
        x = xs[i]
        x_dtype = str(backends.to_numpy(x).dtype) if backends.is_array(x) else None
        g_dtype = str(backends.to_numpy(g).dtype)
        if x_dtype is not None and g_dtype != x_dtype:
            raise AssertionError(f"the gradient of argument {i} on {b.spec} has dtype {g_dtype}, its input {x_dtype}")
        if tuple(g.shape) != tuple(x.shape):
            raise AssertionError(f"the gradient of argument {i} on {b.spec} has shape {tuple(g.shape)}, "
                                 f"its input {tuple(x.shape)}")


def _assert_close(a, b, rtol, atol, message):
    """Host arrays a and b equal within atol + rtol * |b|, NaNs matching NaNs (|a - b| is a modulus if complex)."""
    shape = tuple(a.shape)
    wide = "complex128" if "complex" in str(a.dtype) + str(b.dtype) else "float64"
    a = a.astype(wide).reshape(-1)  # 1-D: NumPy gives scalars, not arrays, for 0-d arithmetic
    b = b.astype(wide).reshape(-1)
    nan_a, nan_b = a != a, b != b
    if (nan_a != nan_b).any():
        raise AssertionError(f"{message}: NaN in one and not the other")
    same_inf = (a == b)  # equal infinities (and equal values) count as agreeing
    diff = abs(a - b)
    diff[nan_a | same_inf] = 0.0
    bad = diff > atol + rtol * abs(b)
    if bad.any():
        flat = int(bad.argmax())
        index = _unravel(flat, shape)
        rel = float((diff / (abs(b) + (b == 0))).max())
        number = complex if wide == "complex128" else float
        raise AssertionError(f"{message} at index {index}: {number(a[flat])!r} vs "
                             f"{number(b[flat])!r} (max relative difference {rel:.3e}, "
                             f"rtol={rtol}, atol={atol})")
