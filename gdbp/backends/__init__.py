"""The backend layer: the only package in gdbp that imports numpy, cupy, mpi4py or array_api_compat.

A backend is an array namespace and a device (:class:`Backend`), with the
library's kernels (``backend.kernels``). Math code takes its namespace from
its inputs; the default backend set by :func:`use` (or ``GDBP_BACKEND``)
only decides where new arrays are created.
"""

from ._arrays import backend_of, device_of, dlpack, is_array, namespace, same_backend, to_numpy, transfer
from ._backend import (
    Backend,
    BackendError,
    BackendMismatchError,
    BackendUnavailableError,
    ShapeError,
)
from ._checks import check_fits, fits
from ._cupy import probe_cuda
from ._default import current, use
from ._host import first_not_finite, out_of_range, permutation, to_numpy_contiguous
from ._info import probe, report
from ._kernels import UNKNOWN, Kernels, isdtype, kernels, register_kernels
from ._mpi import MPIEngine, RankFailedError, launched_size, mpi_probe, mpi_report
from ._nccl import NCCLEngine, nccl_probe
from ._random import CounterStream, HostGenerator, device_rng, host_rng
from ._resolve import auto, resolve
from ._special import SPECIAL_NAMES, ufunc_names
from ._memory import tune_allocator

tune_allocator()  # glibc's malloc keeps the memory eager steps reuse (see _memory.py; GDBP_MALLOC=system: not)

__all__ = [
    "Backend",
    "BackendError",
    "BackendMismatchError",
    "BackendUnavailableError",
    "CounterStream",
    "HostGenerator",
    "Kernels",
    "MPIEngine",
    "NCCLEngine",
    "RankFailedError",
    "SPECIAL_NAMES",
    "UNKNOWN",
    "ShapeError",
    "auto",
    "backend_of",
    "check_fits",
    "fits",
    "current",
    "device_of",
    "device_rng",
    "dlpack",
    "first_not_finite",
    "host_rng",
    "is_array",
    "isdtype",
    "kernels",
    "launched_size",
    "mpi_probe",
    "mpi_report",
    "nccl_probe",
    "namespace",
    "out_of_range",
    "permutation",
    "probe",
    "probe_cuda",
    "register_kernels",
    "report",
    "resolve",
    "same_backend",
    "to_numpy",
    "to_numpy_contiguous",
    "transfer",
    "ufunc_names",
    "use",
]
