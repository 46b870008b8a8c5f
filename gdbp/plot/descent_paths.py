"""Descent paths drawn over their cost: the steps on the cost curve (one weight) or on its contours (two).

The pictures come from real runs: each path is the :class:`DescentPath` that
``gdbp.descent.minimize(..., record=True)`` kept, and the cost is evaluated
with the same function, point by point, on a grid around the paths.
"""

from __future__ import annotations

import math
import textwrap

from .. import backends
from ._figure import new_figure, save

__all__ = ["descent"]

# Distinct on white and in greyscale, in the order a legend reads best.
COLORS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")

OUTCOMES = {
    "tol": "converged in {steps} steps",
    "max_steps": "not converged after {steps} steps",
    "line_search": "line search stalled at step {steps}",
    "diverged": "diverged at step {steps} (DivergenceError)",
}


# Legend entries that are not runs: listed after the runs.
GENERIC = ["the cost curve", "start $w_0$", "minimum"]


def _host():
    """The host namespace (NumPy's, through the backend layer): matplotlib draws host arrays."""
    return backends.resolve("numpy").xp


def descent(cost, paths, *, labels=None, minimum=None, bounds=None, separate=False, names=None,
            title=None, resolution=None, file=None):
    """Draw descent paths over their cost, and the cost against step on a log scale.

    For one weight the cost curve is drawn with each step as a point on it,
    joined in order, as in a textbook figure; for two weights, the cost's
    contours with the path across them. Beside them, the cost at each step
    on a log scale, where a rate that converges (or diverges) geometrically
    draws a straight line.

    Parameters
    ----------
    cost : callable
        The cost the paths descended: ``cost(w) -> scalar``, called with
        points shaped like the paths' w0 and of its library.
    paths : DescentPath, MinimizeResult, DivergenceError, or a list of them
        Recorded runs (``minimize(..., record=True)``); a DivergenceError
        raised by such a run carries its path. A dict maps labels to runs.
    labels : list of str, optional
        One legend label per path (default ``"lr=<lr>"``, with the method
        when it is not plain gradient descent).
    minimum : array or sequence of float, optional
        A known minimizer, marked with a star.
    bounds : (lo, hi) or ((lo1, hi1), (lo2, hi2)), optional
        The range of each weight drawn. By default it spans the points of
        the runs that did not diverge (their panels share it); a panel of
        a run that diverged spans its first steps.
    separate : bool
        One panel per path (default False: all paths on one panel).
    names : str or (str, str), optional
        The weights' names on the axes (default ``w`` or ``w_1, w_2``).
    title : str, optional
        A title over the whole figure.
    resolution : int, optional
        Grid points per weight (default 400 for one weight, 101 for two).
    file : str or os.PathLike, optional
        Save the figure there (format from the suffix, e.g. ``.png``).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ImportError
        matplotlib is not installed (``pip install 'gdbp[plot]'``).
    TypeError
        A path is not a recorded run (e.g. a MinimizeResult of a run without ``record=True``).
    ValueError
        The paths do not all have the same 1 or 2 weights, or bounds are malformed.

    Examples
    --------
    >>> runs = [gdbp.descent.minimize(cost, w0, lr=lr, record=True) for lr in (0.01, 0.3)]
    >>> gdbp.plot.descent(cost, runs, minimum=[1.0], file="descent.png")
    """
    runs = _runs(paths, labels)
    n = runs[0]["n"]
    if any(r["n"] != n for r in runs):
        raise ValueError(f"plot.descent: the paths have {sorted({r['n'] for r in runs})} weights: "
                         "draw paths of one cost (the same number of weights) together")
    if n not in (1, 2):
        raise ValueError(f"plot.descent draws costs of 1 or 2 weights, these paths have {n}: "
                         "plot path.cost against step yourself, or descend a 1- or 2-weight slice of the cost")
    names = _names(names, n)
    star = None if minimum is None else _flat(minimum)
    if star is not None and len(star) != n:
        raise ValueError(f"plot.descent: minimum has {len(star)} values, the paths have {n} weights")
    resolution = resolution or (400 if n == 1 else 101)

    panels = runs if separate else [None]
    cols = math.ceil(math.sqrt(len(panels)))
    rows = math.ceil(len(panels) / cols)
    side = 4.6 if separate else 6.0
    # Panels of runs that finished share one view, so that they compare; a diverged run's panel
    # widens to show its first steps growing.
    shared = _bounds(bounds, runs, star, n)
    row = 4.0 if n == 1 or not _equal_aspect(shared) else min(4.2, max(2.8, side * _ratio(shared) + 1.2))
    legend_rows = math.ceil((len(runs) + 3) / 2)
    height = row * rows + 0.3 * legend_rows + (0.5 if title else 0.0)
    # Constrained layout keeps titles, labels and the legend apart, equal-aspect panels included.
    fig = new_figure((side * cols + 5.5, height), file, layout="constrained")
    grid = fig.add_gridspec(rows, cols + 1, width_ratios=[1.0] * cols + [5.5 / side])
    for i, only in enumerate(panels):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        shown = runs if only is None else [only]
        box = shared
        if bounds is None and only is not None and only["path"].stop == "diverged":
            box = _union(shared, _bounds(None, shown, star, n))
        if n == 1:
            _curve(ax, cost, runs[0], shown, box[0], star, names[0], resolution)
        else:
            _contours(ax, cost, runs[0], shown, box, star, names, resolution, equal=box is shared)
        ax.set_title(_panel_title(only) if only else "the steps on the cost contours", fontsize=10)
    _cost_against_step(fig.add_subplot(grid[:, cols]), runs)
    # One legend for every panel: the colours mean the same run everywhere.
    handles, texts = _legend_entries(fig)
    fig.legend(handles, texts, loc="outside lower center", ncol=2, fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=12)
    save(fig, file)
    return fig


def _legend_entries(fig):
    seen = {}
    for ax in fig.axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(text, handle)
    generic = [t for t in seen if t in GENERIC]
    texts = [t for t in seen if t not in GENERIC] + sorted(generic, key=GENERIC.index)
    return [seen[t] for t in texts], texts


# --- the runs, on the host ------------------------------------------------------------------


def _runs(paths, labels):
    if isinstance(paths, dict):
        labels, paths = list(paths), list(paths.values())
    elif not isinstance(paths, (list, tuple)):
        paths = [paths]
    if not paths:
        raise ValueError("plot.descent: no paths given")
    if labels is not None and len(labels) != len(paths):
        raise ValueError(f"plot.descent: {len(labels)} labels for {len(paths)} paths")
    runs = []
    for i, item in enumerate(paths):
        path = _as_path(item, i)
        points = [_flat(w) for w in path.w]
        label = labels[i] if labels is not None else _default_label(path)
        runs.append({
            "path": path,
            "label": label,
            "color": COLORS[i % len(COLORS)],
            "n": len(points[0]),
            "points": points,
            "cost": list(path.cost),
            "outcome": OUTCOMES.get(path.stop, path.stop).format(steps=path.steps),
        })
    return runs


def _as_path(item, i):
    path = getattr(item, "path", item)
    if all(hasattr(path, a) for a in ("w", "cost", "grad_norm", "stop")):
        return path
    what = type(item).__name__
    hint = ("run minimize(..., record=True) to keep the path" if path is None
            else "pass what minimize(..., record=True) returned, or the DivergenceError it raised")
    raise TypeError(f"plot.descent: path {i} is a {what} without a recorded path: {hint}")


def _default_label(path):
    label = f"lr={path.lr:g}"
    return label if path.method == "gd" else f"{path.method}, {label}"


def _names(names, n):
    if names is None:
        return ["$w$"] if n == 1 else ["$w_1$", "$w_2$"]
    names = [names] if isinstance(names, str) else list(names)
    if len(names) != n:
        raise ValueError(f"plot.descent: {len(names)} names for {n} weights")
    return names


def _flat(w):
    """A point (an array, a sequence of numbers, or a list/tuple/dict of arrays) as a list of host floats."""
    if isinstance(w, dict):
        w = list(w.values())
    if isinstance(w, (list, tuple)):
        return [v for leaf in w for v in _flat(leaf)]
    if isinstance(w, (int, float)):
        return [float(w)]
    host = backends.to_numpy(w)
    return [float(v) for v in _host().reshape(host, (-1,))]


def _unflat(template, values):
    """values (host floats) as a point shaped like template, of template's library and dtype."""
    if isinstance(template, dict):
        leaves = _unflat(list(template.values()), values)
        return dict(zip(template, leaves))
    if isinstance(template, (list, tuple)):
        out, start = [], 0
        for leaf in template:
            size = len(_flat(leaf))
            out.append(_unflat(leaf, values[start:start + size]))
            start += size
        return type(template)(out)
    host = _host().reshape(_host().asarray(values, dtype=backends.to_numpy(template).dtype), template.shape)
    return backends.transfer(host, backends.backend_of(template))


def _cost_at(cost, template, values):
    c = float(backends.to_numpy(cost(_unflat(template, values))))
    return c


# --- the landscape --------------------------------------------------------------------------


def _bounds(bounds, runs, star, n):
    if bounds is not None:
        box = [bounds] if n == 1 and len(bounds) == 2 and not isinstance(bounds[0], (list, tuple)) else bounds
        if len(box) != n or any(len(b) != 2 or not b[0] < b[1] for b in box):
            raise ValueError(f"plot.descent: bounds={bounds!r}: give (lo, hi) with lo < hi for each of the "
                             f"{n} weights")
        return [tuple(map(float, b)) for b in box]
    # Runs that diverged set the view only when nothing else does: their blow-up would hide the rest.
    finished = [r for r in runs if r["path"].stop != "diverged"] or runs
    points = [p for r in finished for p in _in_view(r)] + ([star] if star is not None else [])
    box = []
    for j in range(n):
        lo, hi = min(p[j] for p in points), max(p[j] for p in points)
        pad = 0.15 * (hi - lo) if hi > lo else max(1.0, abs(lo))
        box.append((lo - pad, hi + pad))
    return box


def _union(a, b):
    return [(min(x[0], y[0]), max(x[1], y[1])) for x, y in zip(a, b)]


def _ratio(box):
    return (box[1][1] - box[1][0]) / (box[0][1] - box[0][0])


def _equal_aspect(box):
    # True geometry (each step crosses the contours at right angles) unless it would squash a panel.
    return 0.4 < _ratio(box) < 2.5


def _in_view(run):
    """The points that set the view: all of a finished run, the first steps of one that diverged."""
    finite = [p for p, c in zip(run["points"], run["cost"]) if math.isfinite(c) and all(map(math.isfinite, p))]
    if run["path"].stop != "diverged":
        return finite
    # Enough of the blow-up to see it grow: the steps while the cost is under 10 times its start.
    start = run["cost"][0]
    kept = [p for p, c in zip(finite, run["cost"]) if c <= 10.0 * abs(start) + 1e-12]
    return finite[:max(len(kept), 3)]


def _until_out(points, costs, box):
    """The points up to the first one outside box (kept, so that the step leaving the view shows)."""
    for k, p in enumerate(points):
        if not all(lo <= x <= hi for x, (lo, hi) in zip(p, box)) or not math.isfinite(costs[k]):
            return points[:k + 1], costs[:k + 1]
    return points, costs


def _marker_size(count):
    return 4.0 if count <= 50 else 3.0 if count <= 200 else 1.5


def _curve(ax, cost, first, runs, box, star, name, resolution):
    xp = _host()
    template = first["path"].w[0]
    ws = [float(w) for w in xp.linspace(box[0], box[1], resolution)]
    cs = [_cost_at(cost, template, [w]) for w in ws]
    ax.plot(ws, cs, color="0.35", lw=1.6, zorder=1, label="the cost curve")
    for run in runs:
        points, c = _until_out(run["points"], run["cost"], [box])
        w = [p[0] for p in points]
        ax.plot(w, c, "-o", color=run["color"], lw=1.0, ms=_marker_size(len(w)), alpha=0.85, zorder=3,
                label=f"{run['label']}: {run['outcome']}")
        ax.plot(w[:1], c[:1], "s", color="white", ms=8, mec="k", zorder=4, label="start $w_0$")
        if run["path"].stop != "diverged":
            ax.plot(w[-1:], c[-1:], "o", color=run["color"], ms=7, mec="k", zorder=4)
    if star is not None:
        ax.plot(star, [_cost_at(cost, template, star)], "*", ms=16, color="gold", mec="k", zorder=5,
                label="minimum")
    ax.set_xlim(*box)
    top, bottom = max(cs), min(cs)
    ax.set_ylim(bottom - 0.05 * (top - bottom), top + 0.08 * (top - bottom))
    ax.set_xlabel(name)
    ax.set_ylabel("cost")
    ax.grid(True, alpha=0.3)


def _panel_title(run):
    """The run's label, then what it did; for a diverged run, the DivergenceError's own words."""
    if run["path"].stop != "diverged":
        return run["label"] + "\n" + run["outcome"]
    what = run["path"].reason.split(";")[0]  # "cost became inf at step 870 with lr=0.25"
    return run["label"] + "\n" + textwrap.fill("DivergenceError: " + what, 46)


def _contours(ax, cost, first, runs, box, star, names, resolution, equal=True):
    xp = _host()
    template = first["path"].w[0]
    u = [float(v) for v in xp.linspace(box[0][0], box[0][1], resolution)]
    v = [float(v) for v in xp.linspace(box[1][0], box[1][1], resolution)]
    grid = xp.asarray([[_cost_at(cost, template, [a, b]) for a in u] for b in v])
    levels = _levels(grid)
    ax.contourf(u, v, grid, levels=levels, cmap="Greys_r", alpha=0.3, extend="max")
    lines = ax.contour(u, v, grid, levels=levels, colors="0.45", linewidths=0.6)
    ax.clabel(lines, lines.levels[::3], fmt="%.3g", fontsize=7)
    for run in runs:
        points, _ = _until_out(run["points"], run["cost"], box)
        a = [p[0] for p in points]
        b = [p[1] for p in points]
        ax.plot(a, b, "-o", color=run["color"], lw=1.2, ms=_marker_size(len(a)), zorder=3,
                label=f"{run['label']}: {run['outcome']}")
        ax.plot(a[:1], b[:1], "s", color="white", ms=8, mec="k", zorder=4, label="start $w_0$")
        if run["path"].stop != "diverged":
            ax.plot(a[-1:], b[-1:], "o", color=run["color"], ms=7, mec="k", zorder=4)
    if star is not None:
        ax.plot(star[:1], star[1:], "*", ms=16, color="gold", mec="k", zorder=5, label="minimum")
    ax.set_xlim(*box[0])
    ax.set_ylim(*box[1])
    if equal and _equal_aspect(box):
        ax.set_aspect("equal")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])


def _levels(grid):
    """Contour levels at evenly spaced quantiles: dense where the cost is low, for any cost's range."""
    xp = _host()
    values = xp.sort(xp.reshape(grid, (-1,)))
    values = values[xp.isfinite(values)]
    picks = [float(values[int(q * (values.shape[0] - 1))]) for q in (i / 16 for i in range(16))]
    levels = sorted(set(picks))
    return levels if len(levels) > 1 else None


# --- cost against step ----------------------------------------------------------------------


def _cost_against_step(ax, runs):
    costs = [c for r in runs for c in r["cost"] if math.isfinite(c)]
    positive = all(c > 0 for c in costs)
    # A blow-up climbs to 1e300 before it overflows: draw it until it leaves a view that keeps the
    # other runs readable, and say where it went.
    top = max(abs(r["cost"][0]) for r in runs) * 1e6
    for run in runs:
        ks, cs = [], []
        for k, c in enumerate(run["cost"]):
            if not math.isfinite(c):
                break
            ks.append(k)
            cs.append(c)
            if c > top:
                break
        ax.plot(ks, cs, "-", color=run["color"], lw=1.6)
        stop = run["path"].stop
        if stop == "diverged":
            ax.annotate(f"→ inf at step {run['path'].steps}", xy=(ks[-1], min(cs[-1], top)),
                        xytext=(6, -14), textcoords="offset points", fontsize=8, color=run["color"])
        else:
            ax.plot(ks[-1:], cs[-1:], "o" if stop == "tol" else "|", color=run["color"], ms=9, mec="k")
    if positive:
        ax.set_yscale("log")
        ax.set_ylabel("cost (log scale)")
    else:
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_ylabel("cost (symmetric log scale)")
    if any(r["path"].stop == "diverged" for r in runs):
        ax.set_ylim(top=top)
    ax.set_xlabel("step")
    ax.set_title("cost against step", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
