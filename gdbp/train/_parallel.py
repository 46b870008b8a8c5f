"""How fit and evaluate run: on this process alone, or as one of the ranks of a communicator.

:class:`Alone` is the plain loop's behaviour. :class:`Ranks` adds, around
the same loop, what data-parallel training needs (:mod:`gdbp.distributed`):
every rank takes its part of each global batch, gradients are summed over
the ranks before each optimizer step, running means and stopping decisions
are reduced over the ranks, and a failure on one rank stops them all.
"""

from __future__ import annotations

import contextlib

__all__ = ["Alone", "Ranks", "shard", "strategy"]


def strategy(distributed, model, optimizer=None):
    """Alone for ``distributed=None``, else Ranks over the communicator (a TypeError for anything else)."""
    return Alone() if distributed is None else Ranks(distributed, model, optimizer)


class Alone:
    """One process: every hook of the loop does what a plain loop does."""

    rank, size = 0, 1

    def agree(self, where: str, **settings) -> None:
        pass

    @contextlib.contextmanager
    def training(self):
        yield

    def part(self, start: int, stop: int) -> tuple[int, int]:
        return start, stop

    def begin_step(self) -> None:
        pass

    def seed(self, cost, mine: int, batch: int):
        return None

    def finish_step(self) -> None:
        pass

    def before_sync(self) -> None:
        pass

    def combine(self, running: dict):
        """(name -> mean, first non-finite cost as (step, value) or None) of the running means."""
        return {name: r.mean for name, r in running.items()}, _first_bad(running)

    def end_epoch(self) -> None:
        pass

    def any(self, flag: bool) -> bool:
        return flag


class Ranks(Alone):
    """One rank of a data-parallel run (see :mod:`gdbp.distributed.parallel`)."""

    def __init__(self, comm, model, optimizer=None):
        from ..distributed import DataParallel

        self.dp = DataParallel(comm, model, optimizer)
        self.comm = comm
        self.rank, self.size = comm.rank, comm.size

    def agree(self, where: str, **settings) -> None:
        self.dp.agree(where, **settings)

    @contextlib.contextmanager
    def training(self):
        from ..descent import DivergenceError

        # A divergence is seen in the reduced cost, so every rank raises it at the same step.
        with self.comm.guard(collective=(DivergenceError,)):
            self.dp.broadcast_state()
            try:
                yield
            finally:
                self.dp.close()
            # Every checkpoint rank 0 wrote exists once fit returns on any rank (to resume from it).
            self.comm.barrier()

    def part(self, start: int, stop: int) -> tuple[int, int]:
        return self.dp.part(start, stop)

    def begin_step(self) -> None:
        self.dp.begin_step()

    def seed(self, cost, mine: int, batch: int):
        return self.dp.seed(cost, mine, batch)

    def finish_step(self) -> None:
        self.dp.finish_step()

    def before_sync(self) -> None:
        self.comm.synchronize("the host read of the running cost")

    def combine(self, running: dict):
        names = list(running)
        bad = _first_bad(running)
        mine = [bad[0] if bad is not None else -1.0, bad[1] if bad is not None else 0.0]
        for name in names:
            mine += [running[name].total, running[name].count]
        rows = self.comm.allgather_floats(mine, "the reduction of the running cost")
        means = {}
        for i, name in enumerate(names):
            total = sum(row[2 + 2 * i] for row in rows)
            count = sum(row[3 + 2 * i] for row in rows)
            means[name] = total / count if count else float("nan")
        # The first step at which any rank's cost was not finite, and that rank's value.
        bads = [(row[0], row[1]) for row in rows if row[0] >= 0]
        first = min(bads) if bads else None
        return means, None if first is None else (int(first[0]), first[1])

    def end_epoch(self) -> None:
        self.dp.sync_buffers()

    def any(self, flag: bool) -> bool:
        return self.dp.any(flag, "the decision to stop")


def _first_bad(running: dict):
    cost = running.get("cost")
    return None if cost is None else cost.first_bad


def shard(distributed, n: int) -> tuple[int, int]:
    """This rank's contiguous share of n samples (all of them without a communicator)."""
    if distributed is None:
        return 0, n
    from ..distributed import part

    return part(0, n, distributed.rank, distributed.size)
