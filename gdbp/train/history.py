"""The record of a training run, epoch by epoch, and its plot."""

from __future__ import annotations

import math
from ..plot._figure import matplotlib, new_figure, save

__all__ = ["History", "plot_history"]


class History:
    """Per-epoch values logged by :func:`gdbp.train.fit`.

    Attributes
    ----------
    epochs : list of int
        The 0-based index of each epoch logged (they continue from
        ``initial_epoch`` when training resumes).
    history : dict of str -> list of float
        One list per name, aligned with ``epochs``: ``"cost"`` and each
        training metric (averaged over the epoch's minibatches, in training
        mode), ``"val_cost"`` and ``"val_<metric>"`` (computed after the
        epoch, in evaluation mode), ``"lr"`` (the learning rate at the start
        of the epoch) and ``"seconds"`` (the epoch's wall time, validation
        included).

    Examples
    --------
    >>> history = gdbp.train.fit(model, cost, opt, (x, y), epochs=5)
    >>> history["cost"][-1]            # the last epoch's mean training cost
    """

    def __init__(self):
        self.epochs: list[int] = []
        self.history: dict[str, list[float]] = {}

    def append(self, epoch: int, logs: dict) -> None:
        """Record one epoch's values (a name first seen later is padded with NaN before)."""
        for name in logs:
            self.history.setdefault(name, [math.nan] * len(self.epochs))
        for name, values in self.history.items():
            values.append(float(logs.get(name, math.nan)))
        self.epochs.append(int(epoch))

    def __getitem__(self, name: str) -> list[float]:
        try:
            return self.history[name]
        except KeyError:
            raise KeyError(f"History has no {name!r}; it holds {sorted(self.history)}") from None

    def __contains__(self, name) -> bool:
        return name in self.history

    def __len__(self) -> int:
        return len(self.epochs)

    def keys(self):
        return self.history.keys()

    def last(self) -> dict:
        """The last epoch's values, by name."""
        return {name: values[-1] for name, values in self.history.items()} if self.epochs else {}

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.last().items())
        return f"History({len(self)} epochs{': ' + last if last else ''})"

    def plot(self, path=None):
        """Draw the cost and metric curves; see :func:`plot_history`."""
        return plot_history(self, path)


def plot_history(history: History, path=None):
    """Draw a History: one panel for the cost, one per metric, training and validation curves.

    Parameters
    ----------
    history : History
    path : str or os.PathLike, optional
        Save the figure there (format from the suffix, e.g. ``.png``),
        rendered with the Agg backend without touching pyplot's global
        state; missing parent directories are created. Without a path the
        figure is made with pyplot (so that notebooks show it).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ImportError
        matplotlib is not installed (``pip install 'gdbp[plot]'``).
    ValueError
        The History is empty.
    """
    matplotlib()
    if not history.epochs:
        raise ValueError("plot_history: the History is empty (no epoch was logged)")
    skip = {"lr", "seconds"}
    names = [k for k in history.keys() if not k.startswith("val_") and k not in skip]
    names += [k[4:] for k in history.keys() if k.startswith("val_") and k[4:] not in names]
    fig = new_figure((4.5 * len(names), 3.5), path)
    epochs = [e + 1 for e in history.epochs]
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        if name in history:
            ax.plot(epochs, history[name], label="train", marker=".")
        if "val_" + name in history:
            ax.plot(epochs, history["val_" + name], label="validation", marker=".")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save(fig, path)
    return fig
