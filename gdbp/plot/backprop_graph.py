"""The recorded graph drawn with matplotlib: values in the nodes, gradients on the edges.

No Graphviz binary is needed: the layout is layered, for the small graphs
this is meant for. The chain of operations that leads to the loss runs
along one row, an operation one column right of the last one it reads;
weights, data and targets sit above or below the operation that reads them. ``Graph.to_dot()``
gives the same graph to Graphviz where it is installed.
"""

from __future__ import annotations

from ..backprop.graph import format_array
from .. import backends
from ._figure import new_figure, save

__all__ = ["graph"]

FILL = {"input": "#dbeafe", "constant": "#ffffff", "op": "#f3f4f6"}
EDGE = {"input": "#1d4ed8", "constant": "#6b7280", "op": "#111827"}
GRADIENT = "#b91c1c"


def graph(g, *, values=True, gradients=True, precision=3, title=None, file=None):
    """Draw a :class:`gdbp.backprop.Graph`, the forward pass left to right.

    Each node shows its label (name, op), its shape and, with ``values``,
    its value; each edge that carries a gradient shows it in red: the
    gradient of the loss with respect to the value on that edge (written
    ``dC/dW1 = ...`` where the loss is named C and the value W1).

    Parameters
    ----------
    g : gdbp.backprop.Graph
        From :func:`gdbp.backprop.graph`.
    values, gradients : bool
        Write the nodes' values, the edges' gradients (default both).
    precision : int
        Significant digits (default 3).
    title : str, optional
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
        g is not a Graph.
    """
    if not all(hasattr(g, a) for a in ("nodes", "edges", "root")):
        raise TypeError(f"plot.graph draws a gdbp.backprop.Graph, got {type(g).__name__}: "
                        "make one with gdbp.backprop.graph(loss)")
    column = _columns(g)
    row = _rows(g, column)
    width = max(column.values()) + 1
    height = max(row.values()) - min(row.values()) + 1
    dx, dy = 2.5, 1.6
    fig = new_figure((max(6.0, width * dx), max(3.0, height * dy + (0.5 if title else 0.2))), file)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0 - (0.5 if title else 0.0) / fig.get_figheight()))
    ax.set_axis_off()
    where = {n.id: (column[n.id] * dx, row[n.id] * dy) for n in g.nodes}
    xs = [p[0] for p in where.values()]
    ys = [p[1] for p in where.values()]
    ax.set_xlim(min(xs) - 0.5 * dx, max(xs) + 0.5 * dx)
    ax.set_ylim(min(ys) - 0.5 * dy, max(ys) + 0.5 * dy)
    boxes = {}
    for n in g.nodes:
        text = [n.label + ("" if n.kind == "op" else f"  ({n.kind})"), _shape(n.shape)]
        if values:
            text.append(_values(n.value, precision))
        boxes[n.id] = ax.text(*where[n.id], "\n".join(text), ha="center", va="center", fontsize=9, zorder=3,
                              linespacing=1.3,
                              bbox=dict(boxstyle="round,pad=0.35", fc=FILL[n.kind], ec=EDGE[n.kind],
                                        ls="--" if n.kind == "constant" else "-", lw=1.2))
    extent = _box_extents(fig, ax, boxes)
    loss = g.nodes[g.root].name or "loss"
    for e in g.edges:
        start, end = _clip(where[e.src], where[e.dst], extent[e.src]), _clip(where[e.dst], where[e.src], extent[e.dst])
        ax.annotate("", xy=end, xytext=start, zorder=2,
                    arrowprops=dict(arrowstyle="-|>", color=EDGE[g.nodes[e.src].kind], lw=1.2, mutation_scale=14,
                                    shrinkA=0, shrinkB=0, ls="--" if g.nodes[e.src].kind == "constant" else "-"))
        if gradients and e.grad is not None:
            src = g.nodes[e.src].name
            what = f"d{loss}/d{src} =" if src else "grad"
            # Between two boxes of one row there is room for a narrow label only: the values go under their name.
            joint = "\n" if abs(start[1] - end[1]) < 1e-9 else " "
            _gradient_label(ax, start, end, what + joint + _values(e.grad, precision))
    if title:
        fig.suptitle(title, fontsize=11)
    save(fig, file, dpi=110)
    return fig


def _box_extents(fig, ax, boxes):
    """Each node's box as (x0, y0, x1, y1) in data coordinates, measured by drawing the figure once."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    to_data = ax.transData.inverted()
    out = {}
    for i, t in boxes.items():
        b = t.get_bbox_patch().get_window_extent(renderer)
        (x0, y0), (x1, y1) = to_data.transform([(b.x0, b.y0), (b.x1, b.y1)])
        out[i] = (x0, y0, x1, y1)
    return out


def _clip(centre, toward, box):
    """Where the segment from centre toward another point leaves the box around centre."""
    (cx, cy), (tx, ty) = centre, toward
    x0, y0, x1, y1 = box
    dx, dy = tx - cx, ty - cy
    scale = min((x1 - cx) / abs(dx) if dx else float("inf"), (y1 - cy) / abs(dy) if dy else float("inf"))
    return (cx + scale * dx, cy + scale * dy)


def _gradient_label(ax, start, end, text):
    """The gradient beside its edge: above a horizontal one, right of a vertical one, on a slanted one."""
    (x0, y0), (x1, y1) = start, end
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    if abs(y1 - y0) < 1e-9:
        xy, ha, va, offset = (mx, my), "center", "bottom", (0, 3)
    elif abs(x1 - x0) < 1e-9:
        xy, ha, va, offset = (mx, my), "left", "center", (4, 0)
    else:
        xy, ha, va, offset = (mx, my), "center", "center", (0, 0)
    ax.annotate(text, xy=xy, xytext=offset, textcoords="offset points", ha=ha, va=va, fontsize=8,
                color=GRADIENT, zorder=4, linespacing=1.15,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9))


def _shape(shape):
    return f"shape {shape}" if shape else "scalar"


def _values(x, precision):
    """Values as text, a matrix one row per line."""
    host = backends.to_numpy(x)
    if host.ndim == 2 and host.size <= 8:
        return "\n".join(format_array(r, precision) for r in host)
    return format_array(x, precision)


def _columns(g):
    """Each op one column right of its latest computed input; an input or constant above or below its first reader."""
    column = {}
    for n in g.nodes:  # forward order: inputs of an op come before it
        if n.kind == "op":
            column[n.id] = 1 + max((column[i] for i in n.inputs if i is not None and i in column), default=-1)
    for n in g.nodes:
        if n.kind != "op":
            readers = [column[e.dst] for e in g.edges if e.src == n.id]
            column[n.id] = min(readers) if readers else 0
    low = min(column.values())
    return {i: c - low for i, c in column.items()}


def _rows(g, column):
    """Heights within each column: the chain of values that leads to the loss on row 0, the others above and below."""
    # The spine: from the loss back through each op's first computed input.
    spine, i = set(), g.root
    while i is not None:
        spine.add(i)
        i = next((j for j in g.nodes[i].inputs if j is not None and g.nodes[j].kind == "op"), None)
    slots = [0] + [s for k in range(1, len(g.nodes) + 1) for s in (k, -k)]  # 0, +1, -1, +2, -2 ...
    row = {}
    for c in sorted(set(column.values())):
        here = sorted((n.id for n in g.nodes if column[n.id] == c), key=lambda i: i not in spine)
        row.update(zip(here, slots))
    return row
