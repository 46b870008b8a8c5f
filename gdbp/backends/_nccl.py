"""NCCL through CuPy (``cupy.cuda.nccl``): GPU collectives, with MPI carrying NCCL's unique id.

UNVERIFIED: gdbp's test machines have no GPU. This module is written against
CuPy's documented API (``NcclCommunicator(ndev, commId, rank)``,
``get_unique_id()``, ``allReduce`` / ``bcast`` on a stream with the arrays'
device pointers, ``abort()``), and its tests are marked ``gpu``.

Ordering without host round trips: a collective is enqueued on a side
stream that first waits (an event, on the device) for the work already
queued on the current stream, the stream that wrote the arrays; waiting for
it makes the current stream wait for the collective's event, again on the
device. The host learns of completion only in :meth:`NCCLEngine.synchronize`,
where it polls an event and, meanwhile, MPI's failure notices: a rank that
failed makes the others abort the NCCL communicator (``ncclCommAbort``,
which frees kernels that would otherwise wait forever) and raise.
"""

from __future__ import annotations

import time

from ._mpi import RankFailedError

__all__ = ["NCCLEngine", "nccl_probe"]


def nccl_probe() -> tuple[bool, str]:
    """Whether CuPy's NCCL bindings import and NCCL is there, and why not if not."""
    try:
        from cupy.cuda import nccl
    except Exception as exc:  # ImportError, or a broken CUDA install
        return False, f"cupy.cuda.nccl does not import ({exc}): pip install 'gdbp[cuda12]' and nvidia-nccl-cu12"
    if not getattr(nccl, "available", False):
        return False, "CuPy was built without NCCL: pip install nvidia-nccl-cu12 (or cu13) beside cupy"
    try:
        version = nccl.get_version()
    except Exception as exc:
        return False, f"NCCL does not answer: {exc}"
    return True, f"NCCL {version}"


class NCCLPending:
    """A collective enqueued on the side stream; ``event`` is recorded after it."""

    __slots__ = ("event",)
    on_device = True  # the current stream waits for it, not the host

    def __init__(self, event):
        self.event = event

    def test(self) -> bool:
        return self.event.done


class NCCLEngine:
    """An NCCL communicator over the ranks of an :class:`~._mpi.MPIEngine`, one GPU per rank.

    Each rank takes GPU ``local_rank % device_count`` (made current here,
    before any array is made on it); rank 0 draws NCCL's unique id and MPI
    broadcasts it.

    Attributes
    ----------
    rank, size, local_rank : int
    device : int
        This rank's CUDA device.
    mpi : MPIEngine
        For host values and failure notices.
    """

    name = "nccl"

    def __init__(self, mpi):
        import cupy
        from cupy.cuda import nccl

        self.cupy, self.nccl, self.mpi = cupy, nccl, mpi
        self.rank, self.size, self.local_rank = mpi.rank, mpi.size, mpi.local_rank
        count = cupy.cuda.runtime.getDeviceCount()
        if mpi.local_size > count:
            raise RuntimeError(
                f"NCCL needs one GPU per rank: {mpi.local_size} ranks run on this machine, which has {count} "
                "GPU(s); start fewer ranks per machine, or use backend='mpi' (CuPy arrays staged through the host)"
            )
        self.device = mpi.local_rank % count
        cupy.cuda.Device(self.device).use()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = mpi.bcast_object(uid, root=0)
        self.comm = nccl.NcclCommunicator(self.size, uid, self.rank)
        self.side = cupy.cuda.Stream(non_blocking=True)
        self._dtypes = {
            "float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64,
            "int8": nccl.NCCL_INT8, "uint8": nccl.NCCL_UINT8, "int32": nccl.NCCL_INT32,
            "uint32": nccl.NCCL_UINT32, "int64": nccl.NCCL_INT64, "uint64": nccl.NCCL_UINT64,
        }
        self._ops = {"sum": nccl.NCCL_SUM, "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN}

    @property
    def broken(self) -> bool:
        return self.mpi.broken

    def _checked(self, a, what: str):
        if not isinstance(a, self.cupy.ndarray):
            raise TypeError(f"{what}: NCCL takes CuPy arrays, got {type(a).__module__}.{type(a).__name__}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{what}: NCCL needs a C-contiguous array; got strides {a.strides}")
        if a.device.id != self.device:
            raise ValueError(f"{what}: the array lives on GPU {a.device.id}, this rank's NCCL uses GPU {self.device}")
        dtype = self._dtypes.get(str(a.dtype))
        if dtype is None:
            raise TypeError(f"{what}: NCCL has no type for {a.dtype}; reduce {sorted(self._dtypes)}")
        return dtype

    def _after_current(self):
        """Make the side stream wait (on the device) for what the current stream has queued."""
        ready = self.cupy.cuda.Event(disable_timing=True)
        ready.record(self.cupy.cuda.get_current_stream())
        self.side.wait_event(ready)

    def _enqueued(self) -> NCCLPending:
        done = self.cupy.cuda.Event(disable_timing=True)
        done.record(self.side)
        return NCCLPending(done)

    def iallreduce(self, a, op: str = "sum") -> NCCLPending:
        """Enqueue an in-place all-reduce of ``a`` after the current stream's work."""
        dtype = self._checked(a, "allreduce")
        if op not in self._ops:
            raise ValueError(f"reduction op must be one of {sorted(self._ops)}, got {op!r}")
        self._after_current()
        self.comm.allReduce(a.data.ptr, a.data.ptr, a.size, dtype, self._ops[op], self.side.ptr)
        return self._enqueued()

    def ibcast(self, a, root: int = 0) -> NCCLPending:
        """Enqueue a broadcast of ``a`` from ``root`` after the current stream's work."""
        dtype = self._checked(a, "broadcast")
        self._after_current()
        self.comm.bcast(a.data.ptr, a.size, dtype, root, self.side.ptr)
        return self._enqueued()

    def progress(self, pending) -> None:
        """NCCL progresses on the device: nothing to do."""

    def wait(self, pending, what: str) -> None:
        """Make the current stream wait for the collectives (on the device: the host does not block)."""
        failed = self.mpi.failure()
        if failed is not None:
            self._fail(failed, what)
        stream = self.cupy.cuda.get_current_stream()
        for p in pending:
            stream.wait_event(p.event)

    def synchronize(self, what: str) -> None:
        """Wait on the host for the current stream, watching for failure notices meanwhile."""
        event = self.cupy.cuda.Event(disable_timing=True)
        event.record(self.cupy.cuda.get_current_stream())
        while not event.done:
            failed = self.mpi.failure()
            if failed is not None:
                self._fail(failed, what)
            time.sleep(5e-5)

    def _fail(self, failed, what: str):
        self.abort_device()
        self.mpi.broken = True
        raise RankFailedError(*failed, self.rank, what)

    def abort_device(self) -> None:
        """Abort the NCCL communicator: kernels waiting for a failed rank end."""
        comm, self.comm = self.comm, None
        if comm is not None:
            comm.abort()

    def notify_failure(self, exc: BaseException) -> None:
        self.abort_device()
        self.mpi.notify_failure(exc)
