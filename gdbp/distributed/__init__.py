"""Data-parallel training on many processes: MPI (mpi4py) for NumPy, NCCL (CuPy) for GPUs.

``comm = gdbp.distributed.init()`` gives this process's :class:`Communicator`
(rank, size, local_rank, backend "mpi", "nccl" or "single"), with in-place
collectives on the Backend's arrays (:meth:`~Communicator.allreduce_`,
:meth:`~Communicator.broadcast_`, :meth:`~Communicator.barrier`);
``gdbp.train.fit(..., distributed=comm)`` trains one model on all the
ranks: N processes with ``batch_size=b`` give the weights one process gives
with ``batch_size=N*b`` (see :mod:`gdbp.distributed.parallel`). Launch with
``mpiexec -n N python script.py``; without a launcher the same script runs
on one process.

The raw collectives are in :mod:`gdbp.backends` (``_mpi``, ``_nccl``); the
NCCL path is written against CuPy's documented API and is unverified on a
GPU.
"""

from .buckets import DEFAULT_BUCKET_BYTES, GradReducer
from .communicator import OPS, Communicator, RankFailedError
from .launch import BACKENDS, init
from .parallel import DataParallel, part

__all__ = ["BACKENDS", "Communicator", "DEFAULT_BUCKET_BYTES", "DataParallel", "GradReducer", "OPS",
           "RankFailedError", "init", "part"]
