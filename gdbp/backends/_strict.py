"""array-api-strict (the standard's reference library) and any other array-API namespace.

Both take the generic kernels: the standard alone, which is what they test.
"""

from __future__ import annotations

from ._backend import Backend, import_library, intern
from ._kernels import kernels

__all__ = ["strict_backend", "generic_backend"]


def strict_backend(device=None) -> Backend:
    xp = import_library("array_api_strict", "array_api_strict")
    dev = device if device is not None else xp.Device("CPU_DEVICE")

    def make():
        return Backend("array_api_strict", xp, dev, True, xp._array_object.Array, xp.__version__,
                       "array_api_strict", False, kernels(xp))

    return intern(("array_api_strict", str(dev)), make)


def generic_backend(xp, device=None) -> Backend:
    """Any other namespace that follows the array API standard (taken as immutable)."""

    def make():
        info = xp.__array_namespace_info__()
        dev = device if device is not None else info.default_device()
        sample = xp.zeros(1, device=dev)
        return Backend(xp.__name__, xp, dev, False, type(sample), str(getattr(xp, "__version__", "unknown")),
                       xp.__name__, False, kernels(xp))

    return intern(("generic", xp.__name__, str(device)), make)
