"""init(): the Communicator of this process, chosen from how it was launched and what it trains on."""

from __future__ import annotations

from .. import backends
from .communicator import Communicator, SingleEngine

__all__ = ["init", "BACKENDS"]

BACKENDS = ("auto", "mpi", "nccl", "single")

_made: dict = {}  # engine name -> Communicator: init() twice gives the same one


def init(backend: str = "auto") -> Communicator:
    """The Communicator of this process (the same object on every call with the same choice).

    Parameters
    ----------
    backend : {"auto", "mpi", "nccl", "single"}
        ``"auto"``: NCCL when the default backend is CuPy and NCCL is
        available, else MPI, when the process was started by an MPI launcher
        (``mpiexec -n N`` with N > 1); otherwise a single-process
        communicator, so the same script runs unchanged without a launcher.
        ``"mpi"`` (mpi4py; NumPy arrays, CuPy staged through the host),
        ``"nccl"`` (CuPy's NCCL, one GPU per rank; MPI carries its unique id)
        and ``"single"`` ask for one.

    Returns
    -------
    Communicator

    Raises
    ------
    ImportError
        The process was started by an MPI launcher with several processes
        (or MPI was asked for) but mpi4py is missing: without it each
        process would train alone. ``pip install 'gdbp[mpi]'``.
    RuntimeError
        NCCL was asked for and is not available, or this machine runs more
        ranks than it has GPUs.
    ValueError
        Unknown backend.

    Notes
    -----
    Under NCCL each rank uses GPU ``local_rank % device_count`` and makes
    ``cupy:<that GPU>`` the default backend: call ``init`` before making any
    array (model, data), so that they land on this rank's GPU.
    """
    if not isinstance(backend, str) or backend.strip().lower() not in BACKENDS:
        raise ValueError(f"init: backend must be one of {BACKENDS}, got {backend!r}")
    choice = backend.strip().lower()
    if choice == "auto":
        choice = _auto()
    if choice in _made:
        return _made[choice]
    if choice == "single":
        comm = Communicator(SingleEngine())
    else:
        mpi = _mpi_engine(f"init(backend={backend!r})")
        if choice == "mpi":
            comm = Communicator(mpi)
        else:
            ok, why = backends.nccl_probe()
            if not ok:
                raise RuntimeError(f"init(backend='nccl'): {why}; or use backend='mpi'")
            nccl = backends.NCCLEngine(mpi)
            backends.use(f"cupy:{nccl.device}")  # new arrays on this rank's GPU
            comm = Communicator(nccl, host=mpi)
    _made[choice] = comm
    return comm


def _mpi_engine(where: str):
    engine = _made.get("_mpi_engine")
    if engine is None:
        ok, why = backends.mpi_probe()
        if not ok:
            size = backends.launched_size()
            launched = f"this process was started by an MPI launcher ({size or 'several'} processes) but " \
                if size not in (None, 1) else ""
            raise ImportError(f"{where}: {launched}{why}; without it each process would train alone")
        engine = _made["_mpi_engine"] = backends.MPIEngine()
    return engine


def _auto() -> str:
    size = backends.launched_size()
    if size is None or size == 1:
        return "single"
    engine = _mpi_engine("init(backend='auto')")  # size 0: launched, size known only to MPI
    if engine.size == 1:
        return "single"
    if backends.current().name == "cupy" and backends.nccl_probe()[0]:
        return "nccl"
    return "mpi"
