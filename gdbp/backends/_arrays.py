"""Telling arrays apart, and moving them between backends.

Which library an array belongs to is worked out once per array type, without
importing anything (a library that was never imported has no arrays), and
remembered: asking again costs a dictionary lookup.
"""

from __future__ import annotations

from typing import Any, Callable

import array_api_compat

from ._backend import Backend, BackendMismatchError, loaded
from ._cupy import cupy_backend
from ._numpy import numpy_backend
from ._resolve import resolve
from ._strict import generic_backend, strict_backend
from ._torch import torch_backend

__all__ = ["backend_of", "dlpack", "is_array", "namespace", "device_of", "to_numpy", "transfer", "same_backend"]

# array type -> function giving an array of that type its backend (None: not an array)
_by_type: dict[type, Callable[[Any], Backend | None]] = {}


def _none(x) -> None:
    return None


def _per_device(make, device_key):
    """A resolver that makes each device's backend once, then looks it up."""
    cache: dict = {}

    def find(x):
        key = device_key(x)
        backend = cache.get(key)
        if backend is None:
            backend = cache[key] = make(key)
        return backend

    return find


def _resolver(t: type) -> Callable[[Any], Backend | None]:
    """How to find the backend of an array of type t: the one place that asks which library it is."""
    if getattr(t, "_gdbp_tensor", False):
        return _none  # a gdbp Tensor wraps an array; it is not one
    np = loaded("numpy")
    if np is not None and issubclass(t, (np.ndarray, np.generic)):
        backend = numpy_backend()
        return lambda x: backend
    cp = loaded("cupy")
    if cp is not None and issubclass(t, cp.ndarray):
        return _per_device(cupy_backend, lambda x: x.device.id)
    torch = loaded("torch")
    if torch is not None and issubclass(t, torch.Tensor):
        return _per_device(torch_backend, lambda x: x.device)
    strict = loaded("array_api_strict")
    if strict is not None and issubclass(t, strict._array_object.Array):
        return _per_device(strict_backend, lambda x: x.device)
    if hasattr(t, "__array_namespace__"):
        return lambda x: generic_backend(x.__array_namespace__(), x.device)
    return _none


def backend_of(x: Any) -> Backend | None:
    """The backend (library and device) an array lives on, or None for a non-array."""
    find = _by_type.get(type(x))
    if find is None:
        find = _by_type[type(x)] = _resolver(type(x))
    return find(x)


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
    return array_api_compat.device(x)


def to_numpy(x: Any):
    """A NumPy array with x's values: the one place that knows each library's host copy.

    NumPy arrays come back as they are (no copy); CuPy arrays are copied from
    the GPU (``.get()``), torch tensors through ``.cpu().numpy()``. A gdbp
    Tensor gives its data's values.
    """
    if getattr(x, "_gdbp_tensor", False):
        x = x.data
    backend = backend_of(x)
    if backend is None:
        return numpy_backend().kernels.to_numpy(x)  # a list, a scalar: whatever NumPy makes of it
    return backend.kernels.to_numpy(x)


def transfer(x: Any, backend: Any):
    """x's values as an array of another backend (an explicit, visible copy).

    Arrays on the same kind of device (two CPU libraries, or CuPy and torch
    on CUDA) move through DLPack, with no host round-trip; others go through
    a host NumPy array. The result never shares memory with x, so writing
    one cannot change the other, and it is made on the target's device. An
    array already on ``backend`` comes back unchanged.
    """
    target = resolve(backend)
    source = backend_of(x)
    if source is None:
        raise TypeError(f"transfer expects an array, got {type(x).__name__}")
    if source is target:
        return x
    make_here = target.kernels.creating(target.device)
    if source.is_gpu == target.is_gpu:
        try:
            shared = target.xp.from_dlpack(x)
        except Exception:  # not every pair speaks DLPack (read-only, odd strides, a tensor that requires grad)
            pass
        else:
            # DLPack hands over the same memory (on the source's device): copy, as promised, onto the target's.
            with make_here:
                return target.xp.asarray(shared, device=target.device, copy=True)
    host = source.kernels.to_numpy(x)
    if target.name == "numpy":
        # A CPU source's host array may be a view of it (torch's .numpy()); a GPU's is fresh.
        return host if source.is_gpu else host.copy()
    # From a GPU the host array is a fresh copy already; from a CPU it may be x's own memory.
    with make_here:
        return target.xp.asarray(host, device=target.device, copy=None if source.is_gpu else True)


def dlpack(x: Any, **kw):
    """``x.__dlpack__(**kw)``, passing on only the keywords given (not None).

    The standard's keywords (stream, max_version, dl_device, copy) came in
    over its versions; a library older than 2023.12 takes only ``stream``,
    so one left at its default is not sent.
    """
    return x.__dlpack__(**{k: v for k, v in kw.items() if v is not None})
