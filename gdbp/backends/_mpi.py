"""MPI through mpi4py: the raw collectives that :mod:`gdbp.distributed` builds on.

Every collective here is non-blocking (``Iallreduce``, ``Ibcast``,
``Iallgather``, ``Ibarrier``), and every wait also waits for a failure
notice: each rank keeps a receive posted on a control communicator of its
own, on which a rank that fails tells every other rank so, and waits with
``MPI_Waitany`` over that receive and its requests (as fast as a plain
``MPI_Wait``: MPI's own progress loop, no polling from Python). A failed rank thus
makes the others raise :class:`RankFailedError`, naming it, instead of
waiting forever in a collective it will never join (the hang that a plain
blocking ``MPI_Allreduce`` gives). After that the communicator is broken:
requests may be left half done, so such a process ends with ``MPI_Abort``
at exit (which ends the whole job), never ``MPI_Finalize`` (which could wait
for them).

Arrays: NumPy arrays are handed to MPI as they are (C-contiguous, in place).
CuPy arrays go to MPI directly only when the MPI is CUDA-aware, which MPI
cannot be asked portably: set ``GDBP_MPI_CUDA_AWARE=1`` to say so. Otherwise
they are staged through host memory: copied to the host, reduced there, and
copied back (a host round trip per collective, stated by ``gdbp info``;
NCCL, :mod:`._nccl`, is the GPU path without it).
"""

from __future__ import annotations

import atexit
import os
import sys
import time
import traceback

import numpy as np

__all__ = ["MPIEngine", "RankFailedError", "launched_size", "mpi_probe", "mpi_report"]

#: Environment variables by which MPI launchers announce the size of the job.
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")
#: Variables that say the process was started by an MPI launcher, size unknown.
_LAUNCH_VARIABLES = ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK")

_TAG_FAILED = 7301  # the tag of failure notices on the control communicator
_TAG_HEARD = 7302  # a rank's answer to a failure notice: it has stopped and said so
_NOTICE_BYTES = 2048  # a failure notice: the exception's type and message, cut to this length
_OPS = ("sum", "max", "min")


class RankFailedError(RuntimeError):
    """Another rank of the job failed, so this one stopped instead of waiting for it.

    Attributes
    ----------
    rank : int
        The rank that failed.
    size : int
        The number of ranks.
    detail : str
        What the failed rank reported (its exception's type and message).
    """

    __module__ = "gdbp.distributed"  # where users meet it (re-exported there)

    def __init__(self, rank: int, size: int, detail: str, here: int, waiting_in: str):
        self.rank, self.size, self.detail = rank, size, detail
        super().__init__(
            f"rank {rank} of {size} failed ({detail}); rank {here} stopped while waiting for it in {waiting_in}. "
            f"The failed rank's traceback is in its own output. The communicator is broken: this process "
            "ends with MPI_Abort at exit, which ends the job"
        )


def launched_size() -> int | None:
    """The job size an MPI launcher announced in the environment; 0 if launched but unsized; None if not launched.

    Read from the environment, so that deciding whether to use MPI never
    starts MPI in a plain ``python script.py``.
    """
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0 if any(name in os.environ for name in _LAUNCH_VARIABLES) else None


def mpi_probe() -> tuple[bool, str]:
    """Whether mpi4py imports (without starting MPI), and why not if not."""
    try:
        import mpi4py
    except ImportError as exc:
        return False, f"mpi4py is not installed ({exc}): pip install 'gdbp[mpi]' (brings mpi4py and mpich)"
    return True, f"mpi4py {mpi4py.__version__}"


def _cuda_aware() -> bool:
    return os.environ.get("GDBP_MPI_CUDA_AWARE", "").strip().lower() in ("1", "true", "yes")


def mpi_report() -> str:
    """One line for ``gdbp info``: mpi4py, the launcher, and how CuPy arrays travel over MPI."""
    ok, why = mpi_probe()
    if not ok:
        return f"mpi: -- {why}"
    size = launched_size()
    launch = "not launched by mpiexec" if size is None else f"launched by an MPI launcher ({size or '?'} processes)"
    cupy_path = ("passed to MPI directly (GDBP_MPI_CUDA_AWARE=1: a CUDA-aware MPI)" if _cuda_aware() else
                 "staged through host memory (set GDBP_MPI_CUDA_AWARE=1 if this MPI is CUDA-aware; "
                 "NCCL is the GPU path without staging)")
    return f"mpi: ok {why}, {launch}; CuPy arrays over MPI: {cupy_path}"


def _is_cupy(a) -> bool:
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(a, cupy.ndarray)


class Pending:
    """One non-blocking MPI operation; ``after`` runs once when it completes (a staged copy back)."""

    __slots__ = ("request", "after", "result", "done")
    on_device = False  # the host waits for it

    def __init__(self, request, after=None, result=None):
        self.request, self.after, self.result, self.done = request, after, result, False

    def test(self) -> bool:
        if not self.done and self.request.Test():
            self.done = True
            if self.after is not None:
                self.after()
        return self.done


class MPIEngine:
    """A duplicate of ``MPI.COMM_WORLD`` for data, another for failure notices.

    Attributes
    ----------
    rank, size, local_rank, local_size : int
        In the job, and among the ranks of this machine (``COMM_TYPE_SHARED``).
    cuda_aware : bool
        Whether CuPy arrays are handed to MPI directly (else staged through the host).
    """

    name = "mpi"

    def __init__(self):
        from mpi4py import MPI

        self.MPI = MPI
        world = MPI.COMM_WORLD
        self.data = world.Dup()
        self.control = world.Dup()
        self.rank, self.size = self.data.Get_rank(), self.data.Get_size()
        local = world.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        self.cuda_aware = _cuda_aware()
        self.broken = False
        self.failed_here = False  # this rank sent a failure notice
        self._notice_buffer = bytearray(_NOTICE_BYTES)
        self._notice_status = MPI.Status()
        self._notice = self.control.Irecv([self._notice_buffer, MPI.BYTE], source=MPI.ANY_SOURCE, tag=_TAG_FAILED)
        atexit.register(self._at_exit)

    # -- buffers -------------------------------------------------------------------------

    def _buffer(self, a, what: str):
        """(buffer MPI reads and writes, function that copies it back into ``a`` or None)."""
        if isinstance(a, np.ndarray):
            if not (a.flags.c_contiguous and a.flags.writeable):
                raise ValueError(f"{what}: MPI needs a C-contiguous, writable array; got strides {a.strides}")
            return a, None
        if _is_cupy(a):
            if self.cuda_aware:
                import cupy

                cupy.cuda.get_current_stream().synchronize()  # MPI reads device memory outside CUDA's streams
                return a, None
            host = np.ascontiguousarray(a.get())  # the staging round trip gdbp info states
            return host, (lambda: a.set(host))
        raise TypeError(
            f"{what}: MPI collectives take NumPy or CuPy arrays, got {type(a).__module__}.{type(a).__name__}; "
            "train on the numpy or cupy backend (gdbp.use('numpy')) to run on many processes"
        )

    def _op(self, op: str):
        if op not in _OPS:
            raise ValueError(f"reduction op must be one of {_OPS}, got {op!r}")
        return {"sum": self.MPI.SUM, "max": self.MPI.MAX, "min": self.MPI.MIN}[op]

    # -- the collectives ----------------------------------------------------------------

    def iallreduce(self, a, op: str = "sum") -> Pending:
        """Start reducing ``a`` in place over all ranks."""
        buf, back = self._buffer(a, "allreduce")
        return Pending(self.data.Iallreduce(self.MPI.IN_PLACE, buf, op=self._op(op)), back)

    def ibcast(self, a, root: int = 0) -> Pending:
        """Start broadcasting ``a`` from ``root`` into every rank's ``a``."""
        buf, back = self._buffer(a, "broadcast")
        return Pending(self.data.Ibcast(buf, root=root), back)

    def iallgather(self, values) -> Pending:
        """Start gathering a 1-D float64 host array from every rank: ``result`` is (size, n)."""
        send = np.ascontiguousarray(values, dtype=np.float64)
        out = np.empty((self.size, send.size), dtype=np.float64)
        return Pending(self.data.Iallgather(send, out), result=out)

    def ibarrier(self) -> Pending:
        return Pending(self.data.Ibarrier())

    def bcast_object(self, obj, root: int = 0):
        """A small picklable object from ``root`` (blocking; for setting up, e.g. NCCL's unique id)."""
        return self.data.bcast(obj, root=root)

    # -- waiting, and failing ----------------------------------------------------------

    def progress(self, pending) -> None:
        """Let MPI move the requests on (MPICH progresses non-blocking collectives only inside MPI calls)."""
        for p in pending:
            p.test()

    def wait(self, pending, what: str) -> None:
        """Wait for every request, looking for failure notices meanwhile.

        Raises
        ------
        RankFailedError
            Another rank reported a failure before the requests completed.
        """
        left = [p for p in pending if not p.done]
        if self.broken:
            raise RuntimeError(f"{what}: a rank of this job has failed, so its communicator is broken")
        owners = [None] + left
        requests = [self._notice] + [p.request for p in left]
        for _ in left:
            i = self.MPI.Request.Waitany(requests, self._notice_status)
            if i == 0:  # the failure notice, not a collective, completed
                raise RankFailedError(*self._noticed(), self.rank, what)
            requests[i] = self.MPI.REQUEST_NULL
            done = owners[i]
            done.done = True
            if done.after is not None:
                done.after()

    def failure(self):
        """(rank, detail) of a failure another rank reported, or None (without blocking)."""
        if self.broken or not self._notice.Test(self._notice_status):
            return None
        return self._noticed()

    def _noticed(self) -> tuple:
        """(rank, detail) of the notice just received; this rank answers and is broken from now on."""
        self.broken = True
        source = self._notice_status.Get_source()
        detail = bytes(self._notice_buffer[: self._notice_status.Get_count(self.MPI.BYTE)]).decode(errors="replace")
        self.control.isend(self.rank, dest=source, tag=_TAG_HEARD)  # so that it waits for this rank's report
        return source, self.size, detail

    def notify_failure(self, exc: BaseException, grace: float = 2.0) -> None:
        """Print this rank's failure, tell every other rank, and mark the communicator broken.

        The traceback is printed before anything is sent: the job may be
        aborted by another rank as soon as it hears of the failure.
        """
        detail = f"{type(exc).__name__}: {exc}"
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(f"gdbp.distributed: rank {self.rank} of {self.size} failed; telling the other ranks to "
                         f"stop.\n{text}")
        sys.stderr.flush()
        self.broken = self.failed_here = True
        message = detail.encode()[:_NOTICE_BYTES]
        requests = [self.control.Isend([message, self.MPI.BYTE], dest=r, tag=_TAG_FAILED)
                    for r in range(self.size) if r != self.rank]
        deadline = time.perf_counter() + grace
        while requests and time.perf_counter() < deadline:  # small messages: sent at once, or never
            requests = [r for r in requests if not r.Test()]
            time.sleep(1e-4)

    def abort(self, code: int = 1) -> None:
        """End every process of the job (``MPI_Abort`` on ``COMM_WORLD``)."""
        sys.stderr.flush()
        sys.stdout.flush()
        self.MPI.COMM_WORLD.Abort(code)

    def _at_exit(self, patience: float = 5.0) -> None:
        # Runs before mpi4py's MPI_Finalize, which could wait forever for a half-done collective.
        if self.MPI.Is_finalized():
            return  # the program ended MPI itself
        if not self.broken:
            self._notice.Cancel()  # no notice came: MPI_Finalize must not find the receive still posted
            self._notice.Wait()
            return
        if self.failed_here:
            # MPI_Abort ends every rank at once: first let the others say why they stopped.
            heard, deadline = set(), time.perf_counter() + patience
            while len(heard) < self.size - 1 and time.perf_counter() < deadline:
                if self.control.Iprobe(source=self.MPI.ANY_SOURCE, tag=_TAG_HEARD):
                    heard.add(self.control.recv(source=self.MPI.ANY_SOURCE, tag=_TAG_HEARD))
                else:
                    time.sleep(1e-3)
            time.sleep(0.2)  # their messages, on their way to the terminal
        else:
            time.sleep(0.5)  # the other ranks that heard the notice print their reports too
        self.abort(1)
