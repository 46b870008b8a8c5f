"""The Communicator: collectives over the ranks of a job, on the Backend's arrays.

One class for the three engines: MPI (NumPy arrays; CuPy arrays staged
through the host unless the MPI is CUDA-aware), NCCL (CuPy arrays, with MPI
for host values and failure notices), and a single process (every
collective is the identity, so one script runs unchanged on a laptop).
The raw collectives live in :mod:`gdbp.backends` (``_mpi``, ``_nccl``); this
module gives them one face and the rules around them: in-place collectives
on arrays or Tensors, a mean that is a sum divided by the size, host values
gathered in rank order (so every rank computes bit-identical reductions of
them), and :meth:`Communicator.guard`, which turns an exception on one rank
into :class:`RankFailedError` on the others.
"""

from __future__ import annotations

import contextlib

from .. import backends
from ..backends import RankFailedError
from ..backprop import Tensor

__all__ = ["Communicator", "RankFailedError", "OPS"]

#: The reductions of :meth:`Communicator.allreduce_`.
OPS = ("mean", "sum", "max", "min")


class _Done:
    """A collective of one process: complete as soon as it starts."""

    __slots__ = ()
    on_device = False

    def test(self) -> bool:
        return True


class SingleEngine:
    """The engine of one process: every collective is the identity."""

    name = "single"
    rank, size, local_rank, local_size = 0, 1, 0, 1
    broken = False

    def iallreduce(self, a, op="sum"):
        return _Done()

    def ibcast(self, a, root=0):
        return _Done()

    def ibarrier(self):
        return _Done()

    def progress(self, pending) -> None:
        pass

    def wait(self, pending, what: str) -> None:
        pass

    def notify_failure(self, exc) -> None:
        pass


class Communicator:
    """The ranks of a job, and collectives over them (made by :func:`gdbp.distributed.init`).

    Attributes
    ----------
    rank : int
        This process's index in the job, 0 .. size - 1.
    size : int
        The number of processes.
    local_rank : int
        Its index among the processes of its machine (under NCCL, it picks the GPU).
    backend : {"mpi", "nccl", "single"}
        The engine.
    device : int or None
        Under NCCL, this rank's CUDA device.

    Notes
    -----
    Every rank must call the same collectives in the same order (as with
    MPI and NCCL themselves). Waits poll for failure notices: when a rank
    fails inside :meth:`guard`, the others raise :class:`RankFailedError`
    at their next wait, naming it, instead of hanging.
    """

    def __init__(self, engine, host=None):
        self._engine = engine
        self._host = host if host is not None else engine  # the MPI side: host values, failure notices
        self.backend = engine.name
        self.rank, self.size, self.local_rank = engine.rank, engine.size, engine.local_rank
        self.device = getattr(engine, "device", None)

    def __repr__(self) -> str:
        return (f"Communicator(backend={self.backend!r}, rank={self.rank}, size={self.size}, "
                f"local_rank={self.local_rank})")

    @property
    def broken(self) -> bool:
        """Whether a rank has failed: no collective may run any more (the process aborts the job at exit)."""
        return bool(self._host.broken)

    # -- which engine carries an array ---------------------------------------------------

    def _engine_for(self, a):
        found = backends.backend_of(a)
        if self.backend == "nccl" and found is not None and found.name == "cupy":
            return self._engine
        return self._host

    def _refuse_if_broken(self, what: str) -> None:
        if self.broken:
            raise RuntimeError(f"{what}: a rank of this job has failed, so this communicator is broken; "
                               "end the process (it aborts the job at exit)")

    # -- non-blocking collectives (what the gradient buckets use) -----------------------

    def start_allreduce(self, a, op: str = "sum"):
        """Start an in-place all-reduce (``"sum"``, ``"max"`` or ``"min"``) of one contiguous array.

        Returns
        -------
        request
            Pass it to :meth:`wait`; ``a`` must not be touched until then.
        """
        return self._engine_for(a).iallreduce(a, op)

    def start_broadcast(self, a, root: int = 0):
        """Start an in-place broadcast of one contiguous array from ``root``; see :meth:`start_allreduce`."""
        return self._engine_for(a).ibcast(a, root)

    def progress(self, pending) -> None:
        """Let started collectives move on (MPI progresses inside MPI calls only)."""
        host = [p for p in pending if not p.on_device]  # NCCL progresses on the device by itself
        if host:
            self._host.progress(host)

    def wait(self, pending, what: str = "a collective") -> None:
        """Wait for started collectives (under NCCL: the current stream waits, the host does not).

        Raises
        ------
        RankFailedError
            Another rank failed meanwhile.
        """
        pending = list(pending)
        device = [p for p in pending if p.on_device]
        host = [p for p in pending if not p.on_device]
        if host:
            self._host.wait(host, what)
        if device:
            self._engine.wait(device, what)

    def synchronize(self, what: str = "synchronize") -> None:
        """Under NCCL, wait on the host for this rank's GPU work, watching for failed ranks; else nothing.

        Call it before a host read of values that depend on collectives
        (the loss every few steps): a rank that failed then stops the others
        instead of leaving them blocked in a device synchronisation.
        """
        sync = getattr(self._engine, "synchronize", None)
        if sync is not None:
            sync(what)

    # -- blocking collectives on arrays ---------------------------------------------------

    def allreduce_(self, arrays, op: str = "mean") -> None:
        """Reduce arrays over all ranks, in place: afterwards every rank holds the result.

        Parameters
        ----------
        arrays : array, Tensor, or a list or tuple of them
            Contiguous arrays of the Backend (NumPy; CuPy under NCCL, or
            staged through the host under MPI). A Tensor's data is reduced
            and the Tensor marked changed.
        op : {"mean", "sum", "max", "min"}
            ``"mean"`` is the sum divided by the size (floating arrays only).

        Raises
        ------
        ValueError
            Unknown op, a mean of integers, or an array MPI cannot address.
        TypeError
            An array of a library the engine does not take.
        RankFailedError
            Another rank failed meanwhile.
        """
        items = _items(arrays, "allreduce_")
        if op not in OPS:
            raise ValueError(f"allreduce_: op must be one of {OPS}, got {op!r}")
        if op == "mean":
            for a, _ in items:
                if not backends.namespace(a).isdtype(a.dtype, ("real floating", "complex floating")):
                    raise ValueError(f"allreduce_: the mean of {a.dtype} arrays is not {a.dtype}; use op='sum'")
        self._refuse_if_broken("allreduce_")
        self.wait([self.start_allreduce(a, "sum" if op == "mean" else op) for a, _ in items], "allreduce_")
        for a, tensor in items:
            if op == "mean" and self.size > 1:
                a /= self.size
            if tensor is not None:
                tensor.mark_changed()

    def broadcast_(self, arrays, root: int = 0) -> None:
        """Overwrite every rank's arrays with those of ``root``, in place.

        Parameters
        ----------
        arrays : array, Tensor, or a list or tuple of them
            The same shapes and dtypes on every rank.
        root : int
            The rank whose values everyone gets.

        Raises
        ------
        ValueError
            root is not a rank of the job.
        RankFailedError
            Another rank failed meanwhile.
        """
        if isinstance(root, bool) or not isinstance(root, int) or not 0 <= root < self.size:
            raise ValueError(f"broadcast_: root must be a rank in 0..{self.size - 1}, got {root!r}")
        items = _items(arrays, "broadcast_")
        self._refuse_if_broken("broadcast_")
        self.wait([self.start_broadcast(a, root) for a, _ in items], "broadcast_")
        for _, tensor in items:
            if tensor is not None:
                tensor.mark_changed()

    def barrier(self) -> None:
        """Wait until every rank has reached this call."""
        self._refuse_if_broken("barrier")
        self.wait([self._host.ibarrier()], "barrier")

    # -- host values ----------------------------------------------------------------------

    def allgather_floats(self, values, what: str = "allgather") -> list:
        """Every rank's list of numbers (each of the same length), in rank order.

        Host values (costs, counts, flags) travel as float64. Sums over the
        returned rows taken in rank order give the same bits on every rank,
        so that decisions made from them (early stopping) agree.
        """
        values = [float(v) for v in values]
        if self.size == 1:
            return [values]
        self._refuse_if_broken(what)
        pending = self._host.iallgather(values)
        self._host.wait([pending], what)
        return pending.result.tolist()

    # -- failing ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def guard(self, collective=()):
        """Inside, an exception on this rank tells every other rank to stop.

        The other ranks raise :class:`RankFailedError` (naming this rank and
        its error) at their next wait, within moments, instead of waiting
        for a collective it will never join; this rank's exception goes on
        as it was. Afterwards the communicator is broken and each process
        aborts the job (``MPI_Abort``) when it exits.

        Parameters
        ----------
        collective : tuple of exception classes
            Exceptions that every rank raises at the same point (decided from
            reduced values, such as a divergence seen in the reduced cost):
            they pass through without breaking the communicator.
        """
        try:
            yield self
        except RankFailedError:
            raise
        except BaseException as exc:
            if self.size > 1 and not isinstance(exc, tuple(collective)) and not self.broken:
                self._engine.notify_failure(exc)
            raise


def _items(arrays, what: str) -> list:
    """[(raw array, Tensor or None)] of an array, a Tensor or a sequence of them."""
    if isinstance(arrays, (list, tuple)):
        seq = list(arrays)
    else:
        seq = [arrays]
    out = []
    for i, a in enumerate(seq):
        tensor = a if isinstance(a, Tensor) else None
        raw = a.data if tensor is not None else a
        if not backends.is_array(raw):
            raise TypeError(f"{what}: item {i} is a {type(a).__name__}, not an array or Tensor")
        out.append((raw, tensor))
    return out
