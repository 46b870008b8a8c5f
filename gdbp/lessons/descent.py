"""``gdbp lesson descent``: what the learning rate does to gradient descent, shown from real runs.

Gradient descent steps ``w <- w - lr * grad cost(w)`` until the gradient is
about zero. On a quadratic each step multiplies the distance to the minimum,
along each axis of curvature c, by ``1 - lr * c``: with lr far below 2 / c
the steps crawl, near 1 / c they arrive quickly, between 1 / c and 2 / c they
overshoot and zigzag, and past 2 / c each overshoot is longer than the last
until the cost overflows (a DivergenceError). The lesson runs four rates on
a 1-D parabola and on an elongated 2-D bowl (curvatures 1 and 10, so that
one rate must suit both), prints what each run did, and draws the paths.
"""

from __future__ import annotations

import math
import sys
import textwrap
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .. import backends
from ..backprop import grad
from ..descent import DivergenceError, minimize

__all__ = ["run", "COSTS", "DescentLesson"]

MAX_STEPS = 1000
TOL = 1e-6


def parabola(w):
    """cost(w) = (w - 1)^2: one weight, the minimum at w = 1, curvature 2 everywhere."""
    return (w - 1.0) ** 2


def bowl(w):
    """cost(w) = (w_1^2 + 10 w_2^2) / 2: two weights, the minimum at 0, curvatures 1 and 10."""
    return 0.5 * (w[0] ** 2 + 10.0 * w[1] ** 2)


#: The lesson's two costs: formula, start, known minimum, file name, and the rates tried with their roles.
COSTS = (
    {
        "name": "1-D", "cost": parabola, "formula": "cost(w) = (w - 1)^2", "title": "$(w - 1)^2$",
        "w0": -2.0, "minimum": 1.0, "file": "descent-1d.png",
        "rates": ((0.001, "too small"), (0.3, "good"), (0.95, "too large"), (1.25, "diverges")),
    },
    {
        "name": "2-D", "cost": bowl, "formula": "cost(w) = (w_1^2 + 10 w_2^2) / 2",
        "title": "$(w_1^2 + 10\\,w_2^2)\\,/\\,2$",
        "w0": (-4.0, 1.2), "minimum": (0.0, 0.0), "file": "descent-2d.png",
        "rates": ((0.001, "too small"), (0.15, "good"), (0.19, "too large"), (0.25, "diverges")),
    },
)


@dataclass
class Run:
    """One learning rate on one cost: its recorded path and what it showed."""

    lr: float
    role: str
    path: object = field(repr=False)
    error: DivergenceError | None = field(default=None, repr=False)
    distance: float = math.nan
    overshoots: int = 0
    factor: float = math.nan  # the largest |1 - lr c| over the curvatures c: how the distance scales per step


@dataclass
class DescentLesson:
    """What :func:`run` computed: per cost, its runs, its curvatures, and the PNG written."""

    costs: dict = field(default_factory=dict)  # name -> {"runs": [Run], "curvatures": [...], "limit": float}
    files: list = field(default_factory=list)


def run(out="runs/lessons", backend="numpy", stream=None, plot=True) -> DescentLesson:
    """Run the learning-rate lesson: print its tables and write its two PNGs.

    Parameters
    ----------
    out : str or os.PathLike
        The folder for ``descent-1d.png`` and ``descent-2d.png`` (created if missing).
    backend : str
        Where the weights live (default ``"numpy"``; float64 on every backend).
    stream : file, optional
        Where the text goes (default standard output).
    plot : bool
        Write the PNGs (default True; needs matplotlib).

    Returns
    -------
    DescentLesson
    """
    say = Writer(sys.stdout if stream is None else stream)
    be = backends.resolve(backend)

    say("Gradient descent: w <- w - lr * grad cost(w), repeated until the gradient norm is at most "
        f"tol={TOL:g}, for at most {MAX_STEPS} steps. Four learning rates on each of two costs.")
    lesson = DescentLesson()
    for spec in COSTS:
        w0 = be.xp.asarray(spec["w0"], dtype=be.xp.float64, device=be.device)
        star = be.xp.asarray(spec["minimum"], dtype=be.xp.float64, device=be.device)
        curvatures = _curvatures(spec["cost"], star)
        limit = 2.0 / max(curvatures)
        say()
        say(f"{spec['name']}: {spec['formula']}, from w0 = {_text(w0)}; its minimum is at w = {_text(star)} "
            f"(gradient there: {_text(grad(spec['cost'])(star))}).")
        say(f"Its curvature (the Hessian's eigenvalues, from gdbp.grad of gdbp.grad): {_numbers(curvatures)}. "
            "Along curvature c each step multiplies the distance to the minimum by 1-lr*c: the steps "
            f"shrink only while |1-lr*c|<1 for every c, that is for lr < 2 / {max(curvatures):g} = {limit:g}.",
            "  ")
        if len(curvatures) > 1:
            flat, steep = min(curvatures), max(curvatures)
            say(f"One rate serves every direction: the steepest curvature ({steep:g}) caps it below {limit:g}, "
                f"and along the flattest ({flat:g}) a step then shrinks the distance by no better than "
                f"1 - {limit:g} * {flat:g} = {1 - limit * flat:g}: the flat direction sets the pace.", "  ")
        runs = [_descend(spec["cost"], w0, star, lr, role, curvatures) for lr, role in spec["rates"]]
        _table(say, runs)
        lesson.costs[spec["name"]] = {"runs": runs, "curvatures": curvatures, "limit": limit}
        if plot:
            from ..plot import descent as draw

            file = Path(out) / spec["file"]
            draw(spec["cost"], [r.path for r in runs], labels=[f"lr={r.lr:g} ({r.role})" for r in runs],
                 minimum=star, separate=True, file=file,
                 title=f"Gradient descent on cost = {spec['title']}: four learning rates "
                       f"(the steps converge only for lr < {limit:g})")
            lesson.files.append(file)
            say(f"wrote {file}", "  ")
    return lesson


class Writer:
    """Paragraphs wrapped to 100 columns (``say(text, indent)``); table rows as they are (``say.raw``)."""

    def __init__(self, stream):
        self.stream = stream

    def __call__(self, text="", indent="", hang=""):
        wrapped = textwrap.fill(text, 100, initial_indent=indent, subsequent_indent=indent + hang) if text else ""
        print(wrapped, file=self.stream)

    def raw(self, line):
        print(line, file=self.stream)


def _descend(cost, w0, star, lr, role, curvatures) -> Run:
    try:
        with warnings.catch_warnings():
            # A diverging run overflows on purpose: the DivergenceError says so, the warnings would repeat it.
            warnings.simplefilter("ignore", RuntimeWarning)
            result = minimize(cost, w0, lr=lr, tol=TOL, max_steps=MAX_STEPS, record=True)
        path, error = result.path, None
    except DivergenceError as err:
        path, error = err.path, err
    factor = max(abs(1.0 - lr * c) for c in curvatures)
    return Run(lr, role, path, error, _distance(path.w[-1], star), _overshoots(path.w, star), factor)


def _host(x):
    xp = backends.resolve("numpy").xp
    return [float(v) for v in xp.reshape(backends.to_numpy(x), (-1,))]


def _distance(w, star) -> float:
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(_host(w), _host(star))))


def _overshoots(points, star) -> int:
    """Steps that reversed the direction of the step before: each one overshot the bottom of the valley."""
    offsets = [[a - b for a, b in zip(_host(w), _host(star))] for w in points]
    steps = [[b - a for a, b in zip(p, q)] for p, q in zip(offsets, offsets[1:])]
    return sum(1 for s, t in zip(steps, steps[1:]) if sum(a * b for a, b in zip(s, t)) < 0)


def _curvatures(cost, w):
    """The Hessian's eigenvalues at w, the Hessian computed by gdbp.grad of gdbp.grad."""
    xp = backends.resolve("numpy").xp
    n = len(_host(w))
    if n == 1:
        return [float(backends.to_numpy(grad(grad(cost))(w)))]
    rows = [_host(grad(lambda v, i=i: grad(cost)(v)[i])(w)) for i in range(n)]
    return [float(c) for c in xp.linalg.eigvalsh(xp.asarray(rows))]


def _table(say, runs):
    head = (f"  {'lr':>6}  {'rate is':<9}  {'max|1-lr*c|':>11}  {'steps':>5}  {'final cost':>10}  "
            f"{'distance to min':>15}  {'overshoots':>10}  stopped because")
    say.raw(head)
    say.raw("  " + "-" * (len(head) + 12))
    for r in runs:
        p = r.path
        why = {
            "tol": f"gradient norm {p.grad_norm[-1]:.2g} <= tol",
            "max_steps": f"max steps; gradient norm {p.grad_norm[-1]:.2g}",
            "line_search": "the line search stalled",
            "diverged": "DivergenceError (caught)",
        }[p.stop]
        say.raw(f"  {r.lr:>6g}  {r.role:<9}  {r.factor:>11.3g}  {p.steps:>5}  {p.cost[-1]:>10.3g}  "
                f"{r.distance:>15.3g}  {r.overshoots:>10}  {why}")
    say()
    for r in runs:
        say(_in_words(r), "  ", "  ")


def _in_words(r) -> str:
    p = r.path
    if p.stop == "diverged":
        return (f"lr={r.lr:g} ({r.role}): each step overshot further than the last "
                f"(distance times {r.factor:g} per step); "
                f"DivergenceError at step {p.steps}: {r.error}")
    if p.stop == "tol" and r.overshoots > p.steps // 2:
        return (f"lr={r.lr:g} ({r.role}): overshot the minimum {r.overshoots} times, zigzagging in "
                f"(distance times {r.factor:g} per step), and needed {p.steps} steps to reach it.")
    if p.stop == "tol":
        return f"lr={r.lr:g} ({r.role}): reached the minimum in {p.steps} steps (distance times {r.factor:g} per step)."
    return (f"lr={r.lr:g} ({r.role}): after {p.steps} steps still {r.distance:.3g} from the minimum "
            f"(distance times {r.factor:g} per step): each step too short.")


def _text(x) -> str:
    values = _host(x)
    return f"{values[0]:g}" if len(values) == 1 else "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _numbers(values) -> str:
    return ", ".join(f"{v:.6g}" for v in values)
