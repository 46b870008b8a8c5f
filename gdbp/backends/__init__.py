"""The backend layer: the only package in gdbp that imports numpy, cupy or array_api_compat.

A backend is an array namespace and a device (:class:`Backend`). Math code
takes its namespace from its inputs; the default backend set by :func:`use`
(or ``GDBP_BACKEND``) only decides where new arrays are created.
"""

from ._arrays import backend_of, device_of, is_array, namespace, same_backend, to_numpy, transfer
from ._backend import (
    Backend,
    BackendError,
    BackendMismatchError,
    BackendUnavailableError,
    auto,
    probe_cuda,
    resolve,
)
from ._default import current, use
from ._info import probe, report
from ._kernels import kernels
from ._scatter import scatter_add

__all__ = [
    "Backend",
    "BackendError",
    "BackendMismatchError",
    "BackendUnavailableError",
    "auto",
    "backend_of",
    "current",
    "device_of",
    "is_array",
    "kernels",
    "namespace",
    "probe",
    "probe_cuda",
    "report",
    "resolve",
    "same_backend",
    "scatter_add",
    "to_numpy",
    "transfer",
    "use",
]
