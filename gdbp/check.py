"""``gdbp check``: cross-check gradients between the backends this machine has.

Each case is a small cost function written against the array API standard.
On every available backend its gradient is compared with central finite
differences (float64), and its value and gradient with the NumPy backend's.
"""

from __future__ import annotations

import time

from . import backends
from .backprop import ops
from .testing import assert_backends_agree, check_grad

__all__ = ["CASES", "run_check", "available_backends"]


def _mlp(w1, w2, x, labels):
    xp = w1.__array_namespace__()
    h = xp.tanh(x @ w1)
    return ops.softmax_cross_entropy(h @ w2, labels)


def _stable(x):
    xp = x.__array_namespace__()
    return xp.sum(xp.logsumexp(x, axis=-1)) + xp.sum(xp.log_softmax(x * 100.0, axis=0)[0, :])


def _shapes(x, y):
    xp = x.__array_namespace__()
    z = xp.reshape(xp.permute_dims(x, (1, 0)), (-1,))
    return xp.sum(xp.concat([z, xp.flip(y)]) ** 2) + xp.sum(xp.tile(x, (2, 1)) * 0.5)


def _indexing(x, idx):
    xp = x.__array_namespace__()
    column = x[:, 1]
    return xp.sum(xp.sin(column[idx]) * x[1:, ::2].sum()) + xp.sum(xp.take(x, idx, axis=0))


def _statistics(x):
    xp = x.__array_namespace__()
    return xp.sum(xp.std(x, axis=0, correction=1) + xp.sum(xp.prod(x, axis=1)[:3])) + xp.sum(
        xp.cumulative_sum(x, axis=1)
    )


def _sorting(x):
    xp = x.__array_namespace__()
    return xp.sum(xp.sort(x, axis=1)[:, :2] * xp.max(x, axis=1, keepdims=True)) + xp.sum(xp.where(x > 0, x, 0.1 * x))


def _host_inputs(seed=0):
    rng = backends.host_rng(seed)

    def normal(*shape):
        return rng.normal(shape, backend="numpy", dtype="float64")

    def integers(high, n):
        return rng.integers(0, high, (n,), backend="numpy")

    return {
        "mlp + cross-entropy": (_mlp, (normal(6, 5), normal(5, 3), normal(4, 6), integers(3, 4))),
        "logsumexp, log_softmax": (_stable, (normal(3, 4),)),
        "reshape, concat, tile": (_shapes, (normal(3, 4), normal(5))),
        "indexing, take": (_indexing, (normal(5, 4), integers(5, 6))),
        "std, prod, cumulative_sum": (_statistics, (normal(4, 5),)),
        "sort, max, where": (_sorting, (normal(4, 5),)),
    }


#: The names of the cases ``gdbp check`` runs.
CASES = tuple(_host_inputs().keys())


def available_backends() -> list[str]:
    """The specs of every backend that answers on this machine."""
    found = []
    for spec in ("numpy", "array_api_strict", "torch", "torch:cuda", "cupy"):
        try:
            backends.resolve(spec)
        except Exception:
            continue
        found.append(spec)
    return found


def run_check(specs=None, out=print) -> int:
    """Run every case on every backend; print a table; return 0 if all agree, 1 otherwise."""
    specs = list(specs) if specs else available_backends()
    if "numpy" not in specs:
        specs.insert(0, "numpy")
    cases = _host_inputs()
    width = max(len(name) for name in cases) + 2
    out(f"gradient check on {', '.join(specs)} (float64; vs finite differences and vs numpy)")
    out(f"{'case':<{width}}" + "".join(f"{s:>20}" for s in specs))
    failures = 0
    start = time.perf_counter()
    for name, (f, xs) in cases.items():
        xp = backends.resolve("numpy").xp
        floats = tuple(i for i, x in enumerate(xs) if xp.isdtype(x.dtype, "real floating"))
        cells = []
        try:
            assert_backends_agree(f, *xs, backends=specs, argnums=floats)
            agree = True
        except AssertionError:
            agree = False
        for spec in specs:
            moved = [backends.transfer(x, spec) for x in xs]
            try:
                report = check_grad(f, *moved, argnums=floats)
                cell = f"{report.worst_rel_error:.1e}" + ("" if agree else " (differs)")
                failures += 0 if agree else 1
            except AssertionError:
                cell = "FAILED"
                failures += 1
            cells.append(cell)
        out(f"{name:<{width}}" + "".join(f"{c:>20}" for c in cells))
    out(f"cells: worst relative error of gdbp's gradient vs finite differences; "
        f"{'all backends agree' if not failures else f'{failures} failure(s)'} ({time.perf_counter() - start:.1f} s)")
    return 1 if failures else 0
