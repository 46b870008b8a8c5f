"""The progress bar of :func:`gdbp.train.fit`: one tqdm bar per epoch.

The bar counts steps as they are taken (no host sync); the cost and
throughput it shows are refreshed only when fit brings the running cost to
the host, every ``sync_every`` steps and at the end of the epoch, so the bar
never stalls a GPU by itself. Throughput is measured at those points too,
after the device has finished the work, so it is honest on asynchronous
devices.
"""

from __future__ import annotations

import sys
import time

__all__ = ["EpochBar", "wants_bar"]


def wants_bar(progress: bool, stream=None) -> bool:
    """Whether to draw a bar: asked for, and the stream is a terminal."""
    stream = sys.stderr if stream is None else stream
    if not progress:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError as exc:
        raise ImportError(
            f"the progress bar needs tqdm ({exc}): pip install 'gdbp[train]', or pass progress=False"
        ) from None
    return tqdm


class EpochBar:
    """A bar for one epoch: ``epoch 3/30  40/43 [cost=0.1234, samples/s=51234]``.

    Parameters
    ----------
    epoch : int
        0-based index (shown 1-based).
    epochs : int
    steps : int
    stream : file, optional
        Default ``sys.stderr``.
    """

    def __init__(self, epoch: int, epochs: int, steps: int, stream=None):
        tqdm = _tqdm()
        self._bar = tqdm(
            total=steps,
            desc=f"epoch {epoch + 1}/{epochs}",
            unit="step",
            file=sys.stderr if stream is None else stream,
            leave=True,
            dynamic_ncols=True,
        )
        self._start = time.perf_counter()

    def step(self) -> None:
        self._bar.update(1)

    def show(self, samples: int, values: dict) -> None:
        """Show running values (already on the host) and the throughput so far."""
        elapsed = time.perf_counter() - self._start
        post = {k: f"{v:.4g}" for k, v in values.items()}
        if elapsed > 0:
            post["samples/s"] = f"{samples / elapsed:.0f}"
        self._bar.set_postfix(post, refresh=True)

    def close(self) -> None:
        self._bar.close()
