"""gdbp.plot: descent paths over their cost, the recorded graph; PNGs written, what is drawn is the run's."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import gdbp
import gdbp.plot
from gdbp.backprop import graph
from gdbp.descent import DivergenceError, minimize

PNG = b"\x89PNG\r\n\x1a\n"


def parabola(w):
    return (w - 1.0) ** 2


def bowl(w):
    return 0.5 * (w[0] ** 2 + 10.0 * w[1] ** 2)


def runs(cost, w0, rates):
    out = []
    for lr in rates:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out.append(minimize(cost, w0, lr=lr, max_steps=1000, record=True))
        except DivergenceError as err:
            out.append(err)
    return out


def is_png(path):
    return path.exists() and path.stat().st_size > 10_000 and path.read_bytes()[:8] == PNG


def texts(fig):
    found = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        found += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()] + [t.get_text() for t in ax.texts]
    for legend in fig.legends:
        found += [t.get_text() for t in legend.get_texts()]
    return found


def test_one_weight_draws_the_steps_on_the_cost_curve(tmp_path):
    results = runs(parabola, np.asarray(-2.0), (0.3, 1.25))
    file = tmp_path / "sub" / "d1.png"
    fig = gdbp.plot.descent(parabola, results, minimum=[1.0], file=file)
    assert is_png(file)
    landscape, history = fig.axes
    assert landscape.get_xlabel() == "$w$" and landscape.get_ylabel() == "cost"
    assert history.get_yscale() == "log" and history.get_xlabel() == "step"
    # The good run's line is its recorded points, on the curve: (w_k, cost(w_k)).
    path = results[0].path
    line = next(l for l in landscape.get_lines() if l.get_label().startswith("lr=0.3"))
    np.testing.assert_allclose(line.get_xdata(), [float(w) for w in path.w])
    np.testing.assert_allclose(line.get_ydata(), path.cost)
    np.testing.assert_allclose(line.get_ydata(), (np.asarray(line.get_xdata()) - 1.0) ** 2, rtol=1e-12)
    legend = texts(fig)
    assert f"lr=0.3: converged in {path.steps} steps" in legend
    assert f"lr=1.25: diverged at step {results[1].path.steps} (DivergenceError)" in legend
    assert "minimum" in legend and "start $w_0$" in legend
    # The diverged run is drawn until it leaves the view, not out to 1e153.
    lost = next(l for l in landscape.get_lines() if l.get_label().startswith("lr=1.25"))
    assert len(lost.get_xdata()) < 10


def test_two_weights_draw_contours_one_panel_per_path(tmp_path):
    results = runs(bowl, np.array([-4.0, 1.2]), (0.001, 0.15, 0.19, 0.25))
    file = tmp_path / "d2.png"
    fig = gdbp.plot.descent(bowl, results, labels=["small", "good", "large", "diverges"], minimum=[0.0, 0.0],
                            separate=True, title="four rates", file=file)
    assert is_png(file)
    panels = fig.axes[:4]
    assert len(fig.axes) == 5 and all(ax.collections for ax in panels)  # contour sets drawn
    assert [ax.get_xlabel() for ax in panels] == ["$w_1$"] * 4 and panels[0].get_ylabel() == "$w_2$"
    titles = [ax.get_title() for ax in panels]
    assert titles[1] == f"good\nconverged in {results[1].path.steps} steps"
    assert titles[3].startswith("diverges\nDivergenceError: gradient norm became inf")
    # The panels of runs that finished share one view; the diverged one widens to show its blow-up.
    assert panels[0].get_ylim() == panels[1].get_ylim() == panels[2].get_ylim()
    assert panels[3].get_ylim()[1] > panels[0].get_ylim()[1]
    # cost against step: one curve per run, each its recorded costs (the blow-up cut at the top of the view).
    history = fig.axes[4]
    curves = [l for l in history.get_lines() if len(l.get_xdata()) > 1]
    np.testing.assert_allclose(curves[1].get_ydata(), results[1].path.cost)
    assert history.get_yscale() == "log" and any("inf at step" in t for t in texts(fig))


def test_bad_paths_are_named():
    plain = minimize(parabola, np.asarray(0.0), lr=0.3)
    with pytest.raises(TypeError, match="record=True"):
        gdbp.plot.descent(parabola, plain)
    three = minimize(lambda w: (w * w).sum(), np.ones(3), lr=0.3, record=True)
    with pytest.raises(ValueError, match="1 or 2 weights"):
        gdbp.plot.descent(lambda w: (w * w).sum(), three)
    one = minimize(parabola, np.asarray(0.0), lr=0.3, record=True)
    with pytest.raises(ValueError, match="labels"):
        gdbp.plot.descent(parabola, [one], labels=["a", "b"])
    with pytest.raises(ValueError, match="bounds"):
        gdbp.plot.descent(parabola, one, bounds=(2.0, 1.0))


def test_the_graph_is_drawn_with_values_and_gradients(tmp_path):
    W = gdbp.tensor(np.array([[0.1, 0.2], [0.3, 0.4]]), requires_grad=True)
    x = gdbp.tensor(np.array([0.5, -1.0]))
    h = gdbp.nn.functional.sigmoid(W @ x)
    C = (h * h).sum()
    g = graph(C, names={"W": W, "x": x, "h": h, "C": C})
    file = tmp_path / "graph.png"
    fig = gdbp.plot.graph(g, file=file, title="a graph")
    assert is_png(file)
    drawn = texts(fig)
    boxes = [t for t in drawn if "\nshape (" in t or "\nscalar" in t]
    assert len(boxes) == len(g.nodes)
    assert any(t.startswith("W  (input)") and "[0.1, 0.2]\n[0.3, 0.4]" in t for t in boxes)
    assert any(t.startswith("h = sigmoid") for t in boxes) and any(t.startswith("x  (constant)") for t in boxes)
    dh = g.edges_from("h")[0].grad
    assert f"dC/dh =\n[{float(dh[0]):.3g}, {float(dh[1]):.3g}]" in drawn
    assert sum(t.startswith(("dC/d", "grad")) for t in drawn) == sum(e.grad is not None for e in g.edges)
    with pytest.raises(TypeError, match="gdbp.backprop.graph"):
        gdbp.plot.graph("not a graph")


def test_without_matplotlib_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    one = minimize(parabola, np.asarray(0.0), lr=0.3, record=True)
    with pytest.raises(ImportError, match=r"pip install 'gdbp\[plot\]'"):
        gdbp.plot.descent(parabola, one, file="unused.png")
