"""Data parallel training: the pieces :func:`gdbp.train.fit` puts together when ``distributed=comm``.

The guarantee: N processes with ``batch_size=b`` give the same weights, up
to the order of floating-point sums, as one process with ``batch_size=N*b``,
shuffled or not, from the same seed. It rests on three things here:

- :func:`part`: each global batch (the one a single process takes) is cut
  into N contiguous parts, one per rank, as evenly as possible; a last,
  smaller batch may leave a rank with no samples;
- :meth:`DataParallel.seed`: each rank's cost is the mean over its part,
  so its gradient is weighted by its share ``n_rank / n_batch`` (the seed of
  its backward pass) and the weighted gradients are SUMMED over the ranks:
  the mean over the global batch;
- :meth:`DataParallel.broadcast_state`: the parameters and buffers start
  equal, copied from rank 0.

A rank without samples in a step skips the forward and backward passes but
takes part in the reduction with zero gradients. BatchNorm normalises with
each rank's own batch statistics (PyTorch DDP's default, not SyncBatchNorm),
so the guarantee holds for models without batch statistics; its running
statistics are rank 0's (broadcast at the end of every epoch, as
DDP broadcasts buffers before each forward pass).
"""

from __future__ import annotations

from .buckets import DEFAULT_BUCKET_BYTES, GradReducer
from .communicator import Communicator

__all__ = ["DataParallel", "part"]


def part(start: int, stop: int, rank: int, size: int) -> tuple[int, int]:
    """The rank's contiguous share of the samples ``start..stop``: sizes differ by at most one, larger first.

    Examples
    --------
    >>> [part(0, 5, r, 2) for r in range(2)]
    [(0, 3), (3, 5)]
    >>> [part(8, 9, r, 2) for r in range(2)]   # one sample left: rank 1 gets none
    [(8, 9), (9, 9)]
    """
    q, extra = divmod(stop - start, size)
    a = start + rank * q + min(rank, extra)
    return a, a + q + (1 if rank < extra else 0)


class DataParallel:
    """A model and optimizer trained on every rank of a communicator as one.

    Parameters
    ----------
    comm : Communicator
    model : gdbp.nn.Module
    optimizer : gdbp.descent.Optimizer
    bucket_bytes : int
        The size of a gradient bucket (see :class:`GradReducer`).

    Use: :meth:`agree` on the run's settings, :meth:`broadcast_state`, then
    per step :meth:`begin_step`, the forward and backward passes with
    :meth:`seed`, :meth:`finish_step`, ``optimizer.step()``; :meth:`close`
    at the end.
    """

    def __init__(self, comm, model, optimizer, bucket_bytes: int = DEFAULT_BUCKET_BYTES):
        if not isinstance(comm, Communicator):
            raise TypeError(
                f"distributed= takes a Communicator (gdbp.distributed.init()), got {type(comm).__name__}"
            )
        self.comm, self.model, self.optimizer = comm, model, optimizer
        self.rank, self.size = comm.rank, comm.size
        self.bucket_bytes = bucket_bytes
        self.reducer = None

    def agree(self, where: str, **settings) -> None:
        """Refuse, on every rank alike, settings that differ between the ranks.

        Ranks that disagree on the data size, the batch size or the seed
        would take different steps, or different numbers of them, and wait
        for each other forever; this check makes them fail together instead.

        Raises
        ------
        ValueError
            Some setting differs; the message gives each rank's value.
        """
        names = sorted(settings)
        rows = self.comm.allgather_floats([settings[k] for k in names], f"{where}'s check of the settings")
        differ = [(k, [row[i] for row in rows]) for i, k in enumerate(names) if len({row[i] for row in rows}) > 1]
        if differ:
            said = "; ".join(f"{k}: " + ", ".join(f"rank {r}: {_number(v)}" for r, v in enumerate(vals))
                             for k, vals in differ)
            raise ValueError(f"{where}: the ranks were given different settings ({said}); every rank must run "
                             "the same script on the same data")

    def broadcast_state(self) -> None:
        """Copy every parameter and buffer from rank 0 to every rank (parameters in place)."""
        self.comm.broadcast_(list(self.model.parameters()), root=0)  # each marked changed
        self.sync_buffers()

    def sync_buffers(self) -> None:
        """Rank 0's buffers (BatchNorm's running statistics) on every rank."""
        # Buffers are rebound, not written, by the layers that keep them (a count may be a
        # NumPy scalar, which nothing can write into): broadcast copies, then load them.
        xp = self.model.backend.xp
        buffers = {name: xp.asarray(b, copy=True) for name, b in self.model.named_buffers() if b is not None}
        if buffers:
            self.comm.broadcast_(list(buffers.values()), root=0)
            self.model.load_state_dict(buffers, strict=False)

    def part(self, start: int, stop: int) -> tuple[int, int]:
        """This rank's share of the global batch ``start..stop`` (see :func:`part`)."""
        return part(start, stop, self.rank, self.size)

    def seed(self, cost, mine: int, batch: int):
        """The backward pass's seed: this rank's share of the global batch, ``mine / batch`` (None when 1)."""
        if mine == batch:
            return None
        xp = cost.backend.xp
        return xp.full_like(cost.data, mine / batch)

    def begin_step(self) -> None:
        if self.reducer is None:
            self.reducer = GradReducer(self.comm, self.model.parameters(), self.optimizer, self.bucket_bytes)
        self.reducer.begin()

    def finish_step(self) -> None:
        """The gradients summed over the ranks (see :meth:`GradReducer.finish`)."""
        self.reducer.finish()

    def sums(self, values, what: str) -> list:
        """Each value summed over the ranks, in rank order (the same bits on every rank)."""
        rows = self.comm.allgather_floats(values, what)
        return [sum(row[i] for row in rows) for i in range(len(values))]

    def any(self, flag: bool, what: str) -> bool:
        """Whether the flag is set on any rank (so that all stop together)."""
        return any(row[0] for row in self.comm.allgather_floats([float(bool(flag))], what))

    def close(self) -> None:
        """Unregister the gradient hooks."""
        if self.reducer is not None:
            self.reducer.close()
            self.reducer = None


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)
