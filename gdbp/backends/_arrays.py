"""Telling arrays apart, and moving them between backends.

Type checks look in ``sys.modules`` rather than importing a library, so
asking about an array never imports CuPy or torch.
"""

from __future__ import annotations

from typing import Any

from ._backend import (
    Backend,
    BackendMismatchError,
    generic_backend,
    loaded,
    numpy_backend,
    resolve,
    strict_backend,
    torch_backend,
    cupy_backend,
)

__all__ = ["backend_of", "is_array", "namespace", "device_of", "to_numpy", "transfer", "same_backend"]


def backend_of(x: Any) -> Backend | None:
    """The backend (library and device) an array lives on, or None for a non-array."""
    np = loaded("numpy")
    if np is not None and isinstance(x, (np.ndarray, np.generic)):
        return numpy_backend()
    cp = loaded("cupy")
    if cp is not None and isinstance(x, cp.ndarray):
        return cupy_backend(x.device.id)
    torch = loaded("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return torch_backend(str(x.device))
    strict = loaded("array_api_strict")
    if strict is not None and isinstance(x, strict._array_object.Array):
        return strict_backend(x.device)
    ns = getattr(x, "__array_namespace__", None)
    if ns is not None and not hasattr(x, "_gdbp_tensor"):
        return generic_backend(ns(), x.device)
    return None


def is_array(x: Any) -> bool:
    """Whether x is an array of some backend (a gdbp Tensor is not)."""
    return backend_of(x) is not None


def same_backend(*arrays: Any) -> Backend:
    """The one backend shared by the arrays; raises if they sit on two."""
    found: Backend | None = None
    first = None
    for a in arrays:
        b = backend_of(a)
        if b is None:
            continue
        if found is None:
            found, first = b, a
        elif b is not found:
            raise BackendMismatchError(
                f"arrays from two backends met: {found.spec} ({type(first).__name__}) and "
                f"{b.spec} ({type(a).__name__}); move one with gdbp.transfer(x, backend)"
            )
    if found is None:
        raise TypeError("no arrays given: expected NumPy, CuPy, torch or array-API arrays")
    return found


def namespace(*arrays: Any):
    """The array namespace shared by the arrays (array-api-compat's wrapper)."""
    return same_backend(*arrays).xp


def device_of(x: Any):
    """The device an array lives on, as its own library names it."""
    import array_api_compat

    return array_api_compat.device(x)


def to_numpy(x: Any):
    """A NumPy array with x's values: the one place that knows each library's host copy.

    NumPy arrays come back as they are (no copy); CuPy arrays are copied from
    the GPU (``.get()``), torch tensors through ``.cpu().numpy()``.
    """
    import numpy as np

    if hasattr(x, "_gdbp_tensor"):
        x = x.data
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, np.generic):
        return np.asarray(x)
    cp = loaded("cupy")
    if cp is not None and isinstance(x, cp.ndarray):
        return x.get()
    torch = loaded("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if hasattr(x, "__dlpack__"):
        try:
            return np.from_dlpack(x)
        except Exception:  # a device array that DLPack cannot hand to the host
            pass
    return np.asarray(x)


def transfer(x: Any, backend: Any):
    """x's values as an array of another backend (an explicit, visible copy).

    Arrays on the same kind of device move through DLPack (no host
    round-trip); others go through a host NumPy array. The result never
    shares memory with x, so writing one cannot change the other. An array
    already on ``backend`` comes back unchanged.
    """
    target = resolve(backend)
    source = backend_of(x)
    if source is None:
        raise TypeError(f"transfer expects an array, got {type(x).__name__}")
    if source is target:
        return x
    if not source.is_gpu and not target.is_gpu:
        try:
            shared = target.xp.from_dlpack(x)
        except Exception:  # not every pair speaks DLPack (e.g. read-only or odd strides)
            pass
        else:
            # DLPack hands over the same memory: copy, as promised.
            return target.xp.asarray(shared, copy=True)
    host = to_numpy(x)
    if target.name == "numpy":
        # A CPU source's host array may be a view of it (torch's .numpy()); a GPU's is fresh.
        return host if source.is_gpu else host.copy()
    # From a GPU the host array is a fresh copy already; from a CPU it may be x's own memory.
    return target.xp.asarray(host, device=target.device, copy=None if source.is_gpu else True)
