"""matplotlib, imported only when a picture is asked for, and figures that save without pyplot."""

from __future__ import annotations

from pathlib import Path


def matplotlib():
    """The matplotlib module, or an ImportError that says how to install it."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(f"plotting needs matplotlib ({exc}): pip install 'gdbp[plot]'") from None
    return matplotlib


def new_figure(size, file, layout=None):
    """A Figure of ``size`` inches: pyplot's (so notebooks show it) without a file, a bare Agg one with a file.

    Saving through a bare Agg canvas leaves pyplot's global state (its list
    of open figures, its interactive backend) untouched.
    """
    matplotlib()
    if file is None:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=size, layout=layout)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save(fig, file, dpi=100):
    """Write fig to file (format from the suffix), creating missing parent folders."""
    if file is None:
        return
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(file, dpi=dpi)
