"""The Backend value and the parsing of backend specs.

A backend is an array namespace (``xp``) plus the device new arrays are made
on. Every spec string is parsed here and nowhere else, and each concrete
library is imported lazily, behind a guard, only when it is asked for.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Backend",
    "BackendError",
    "BackendUnavailableError",
    "BackendMismatchError",
    "resolve",
    "probe_cuda",
]


class BackendError(RuntimeError):
    """A backend spec could not be understood."""


class BackendUnavailableError(BackendError):
    """The backend asked for cannot be used on this machine."""


class BackendMismatchError(TypeError):
    """Arrays of two backends (or two devices) met in one operation."""


@dataclass(frozen=True, eq=False)
class Backend:
    """An array library and a device.

    Attributes
    ----------
    name : str
        ``"numpy"``, ``"cupy"``, ``"torch"``, ``"array_api_strict"`` or the
        namespace's module name for any other array-API library.
    xp : module
        The array API namespace (array-api-compat's wrapper where one exists).
    device : object
        The device new arrays are created on (``xp``'s own device object).
    mutable : bool
        Whether arrays can be written in place (``x[...] = v``, ``x += y``).
    array_type : type
        The library's array class (what every operation returns).
    version : str
        The library's version.

    Backends are interned: resolving the same spec twice gives the same
    object, so ``a is b`` tells whether two arrays share a backend and device.
    """

    name: str
    xp: Any = field(repr=False)
    device: Any
    mutable: bool = field(repr=False)
    array_type: type = field(repr=False)
    version: str = field(repr=False)

    @property
    def spec(self) -> str:
        """The spec string that resolves to this backend."""
        if self.name == "cupy":
            return f"cupy:{self.device.id}"
        if self.name == "torch":
            return "torch" if self.device.type == "cpu" else f"torch:{self.device}"
        return self.name

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy" or (self.name == "torch" and self.device.type == "cuda")

    def __repr__(self) -> str:
        return f"Backend({self.spec!r})"

    # Backends are interned: a copy (e.g. copy.deepcopy of a model) is the backend itself.
    def __copy__(self) -> "Backend":
        return self

    def __deepcopy__(self, memo) -> "Backend":
        return self

    def __str__(self) -> str:
        return self.spec

    @property
    def namespace(self):
        """gdbp's differentiable namespace bound to this backend."""
        from ..backprop.namespace import namespace_for

        return namespace_for(self)


_interned: dict[tuple, Backend] = {}

INSTALL_HINTS = {
    "numpy": "pip install numpy",
    "cupy": "pip install 'gdbp[cuda12]' (CUDA 12) or 'gdbp[cuda13]' (CUDA 13)",
    "torch": "pip install torch",
    "array_api_strict": "pip install array-api-strict",
}


def _import(module: str, backend: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"{backend} is not installed ({exc}): {INSTALL_HINTS.get(backend, 'pip install ' + backend)}"
        ) from None


def _intern(key: tuple, make) -> Backend:
    backend = _interned.get(key)
    if backend is None:
        backend = _interned[key] = make()
    return backend


def numpy_backend() -> Backend:
    def make():
        np = _import("numpy", "numpy")
        xp = _import("array_api_compat.numpy", "array_api_compat")
        return Backend("numpy", xp, "cpu", True, np.ndarray, np.__version__)

    return _intern(("numpy",), make)


def probe_cuda() -> tuple[bool, str]:
    """Whether CuPy imports and a CUDA device answers, and why not if not."""
    try:
        import cupy  # noqa: F401  (guarded: the only place cupy is probed)
    except ImportError as exc:
        return False, f"cupy is not installed ({exc}): {INSTALL_HINTS['cupy']}"
    except Exception as exc:  # a broken CUDA install raises at import
        return False, f"cupy is installed but failed to import: {exc}"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
        if n < 1:
            return False, "cupy is installed but no CUDA device answered: 0 devices found"
        cupy.zeros(1).sum().item()  # a device that is listed may still refuse work
    except Exception as exc:
        return False, f"cupy is installed but no CUDA device answered: {exc}"
    return True, f"cupy {cupy.__version__} with {n} CUDA device(s)"


def cupy_backend(index: int = 0) -> Backend:
    def make():
        ok, why = probe_cuda()
        if not ok:
            raise BackendUnavailableError(why)
        import cupy

        n = cupy.cuda.runtime.getDeviceCount()
        if not 0 <= index < n:
            raise BackendUnavailableError(
                f"cupy:{index} asked for, but this machine has {n} CUDA device(s): use cupy:0 .. cupy:{n - 1}"
            )
        xp = _import("array_api_compat.cupy", "array_api_compat")
        return Backend("cupy", xp, cupy.cuda.Device(index), True, cupy.ndarray, cupy.__version__)

    return _intern(("cupy", index), make)


def torch_backend(device: str = "cpu") -> Backend:
    torch = _import("torch", "torch")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"torch:{device} asked for, but torch {torch.__version__} sees no CUDA device"
            )
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())

    def make():
        xp = _import("array_api_compat.torch", "array_api_compat")
        return Backend("torch", xp, dev, True, torch.Tensor, torch.__version__)

    return _intern(("torch", str(dev)), make)


def strict_backend(device=None) -> Backend:
    xp = _import("array_api_strict", "array_api_strict")
    dev = device if device is not None else xp.Device("CPU_DEVICE")

    def make():
        return Backend("array_api_strict", xp, dev, True, xp._array_object.Array, xp.__version__)

    return _intern(("array_api_strict", str(dev)), make)


def generic_backend(xp, device=None) -> Backend:
    """Any other namespace that follows the array API standard."""

    def make():
        info = xp.__array_namespace_info__()
        dev = device if device is not None else info.default_device()
        sample = xp.zeros(1, device=dev)
        return Backend(
            xp.__name__, xp, dev, False, type(sample), str(getattr(xp, "__version__", "unknown"))
        )

    return _intern(("generic", xp.__name__, str(device)), make)


def _from_namespace(ns) -> Backend:
    name = getattr(ns, "__name__", "")
    root = name.split(".")[0]
    if name in ("numpy", "array_api_compat.numpy"):
        return numpy_backend()
    if name in ("cupy", "array_api_compat.cupy"):
        return cupy_backend(0)
    if name in ("torch", "array_api_compat.torch"):
        return torch_backend("cpu")
    if root == "array_api_strict":
        return strict_backend()
    if hasattr(ns, "__array_namespace_info__"):
        return generic_backend(ns)
    raise BackendError(f"{ns!r} is not an array namespace (it has no __array_namespace_info__)")


def resolve(spec: Any = None) -> Backend:
    """Turn a backend spec into a :class:`Backend`.

    Parameters
    ----------
    spec : str, Backend, namespace or None
        ``"auto"``, ``"numpy"``, ``"cupy"``, ``"cupy:N"``, ``"torch"``,
        ``"torch:cuda"``, ``"torch:cuda:N"``, ``"array_api_strict"``, a
        :class:`Backend`, or an array namespace module. ``None`` means the
        current default (see :func:`gdbp.use` and ``GDBP_BACKEND``).

    Returns
    -------
    Backend

    Raises
    ------
    BackendUnavailableError
        The library is not installed, or no device answered; the message
        names what is missing and how to get it.
    BackendError
        The spec is not understood.
    """
    if spec is None:
        from ._default import current

        return current()
    if isinstance(spec, Backend):
        return spec
    if not isinstance(spec, str):
        return _from_namespace(spec)
    text = spec.strip().lower()
    if text == "auto":
        return auto()[0]
    name, _, rest = text.partition(":")
    if name == "numpy" and not rest:
        return numpy_backend()
    if name == "cupy":
        if not rest:
            return cupy_backend(0)
        if rest.isdigit():
            return cupy_backend(int(rest))
    if name == "torch":
        return torch_backend(rest or "cpu")
    if name in ("array_api_strict", "array-api-strict", "strict") and not rest:
        return strict_backend()
    raise BackendError(
        f"unknown backend spec {spec!r}: use 'auto', 'numpy', 'cupy', 'cupy:N', 'torch', "
        "'torch:cuda', 'array_api_strict' or an array namespace"
    )


def auto() -> tuple[Backend, str]:
    """CuPy when it imports and a CUDA device answers, else NumPy; and why."""
    ok, why = probe_cuda()
    if ok:
        return cupy_backend(0), f"auto: {why}"
    return numpy_backend(), f"auto: NumPy, because {why}"


def env_spec() -> str:
    return os.environ.get("GDBP_BACKEND", "auto")


def loaded(module: str):
    """A module if it has been imported already, else None (never imports)."""
    return sys.modules.get(module)
