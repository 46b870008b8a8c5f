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
    """A bar for one epoch: ``epoch 3/30: 93%|###  | 40/43 [00:01<00:00, cost 0.1234, acc 0.97, 51.2k samples/s]``.

    Parameters
    ----------
    epoch : int
        0-based index (shown 1-based).
    epochs : int
    steps : int
    stream : file, optional
        Default ``sys.stderr``.
    """

    _FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"

    def __init__(self, epoch: int, epochs: int, steps: int, stream=None):
        tqdm = _tqdm()
        self._bar = tqdm(
            total=steps,
            desc=f"epoch {epoch + 1}/{epochs}",
            unit="step",
            file=sys.stderr if stream is None else stream,
            leave=True,
            dynamic_ncols=True,
            bar_format=self._FORMAT,
        )
        self._start = time.perf_counter()
        self._values: dict = {}
        self._rate = ""

    def step(self) -> None:
        self._bar.update(1)

    def show(self, samples: int, values: dict) -> None:
        """Show running training values (already on the host) and the throughput so far."""
        elapsed = time.perf_counter() - self._start
        if elapsed > 0:
            rate = samples / elapsed
            self._rate = f"{rate / 1000:.1f}k samples/s" if rate >= 1000 else f"{rate:.0f} samples/s"
        self._values = dict(values)
        self._refresh()

    def show_validation(self, values: dict) -> None:
        """Add the validation values at the end of the epoch (the throughput stays the training one)."""
        self._values.update(values)
        self._refresh()

    def _refresh(self) -> None:
        parts = [f"{k.replace('accuracy', 'acc')} {v:.4g}" for k, v in self._values.items()]
        if self._rate:
            parts.append(self._rate)
        self._bar.set_postfix_str(", ".join(parts), refresh=True)

    def close(self) -> None:
        self._bar.close()
