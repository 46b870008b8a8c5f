"""The Backend value, the errors of the backend layer, and the interning of backends.

A backend is an array namespace (``xp``) plus the device new arrays are made
on, plus the library's kernels (:mod:`gdbp.backends._kernels`): the one
object that answers every "which library is this?" question. Each library's
module (``_numpy``, ``_cupy``, ``_torch``, ``_strict``) builds its backends;
concrete libraries are imported lazily, behind a guard, only when asked for.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Backend",
    "BackendError",
    "BackendUnavailableError",
    "BackendMismatchError",
    "ShapeError",
    "INSTALL_HINTS",
    "intern",
    "import_library",
    "loaded",
]


class BackendError(RuntimeError):
    """A backend spec could not be understood."""


class BackendUnavailableError(BackendError):
    """The backend asked for cannot be used on this machine."""


class BackendMismatchError(TypeError):
    """Arrays of two backends (or two devices) met in one operation."""


class ShapeError(ValueError):
    """Shapes that do not fit an operation (both shapes and the op are named)."""


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
    spec : str
        The spec string that resolves to this backend (``"cupy:1"``, ``"torch:cuda:0"``).
    is_gpu : bool
        Whether the arrays live on a GPU.
    kernels : Kernels
        The library's fast paths, host conversion, scatter-add and random
        streams, with generic array-API versions beneath them.

    Backends are interned: resolving the same spec twice gives the same
    object, so ``a is b`` tells whether two arrays share a backend and device.
    """

    name: str
    xp: Any = field(repr=False)
    device: Any
    mutable: bool = field(repr=False)
    array_type: type = field(repr=False)
    version: str = field(repr=False)
    spec: str = field(repr=False)
    is_gpu: bool = field(repr=False, default=False)
    kernels: Any = field(repr=False, default=None)

    def __repr__(self) -> str:
        return f"Backend({self.spec!r})"

    def __str__(self) -> str:
        return self.spec

    # Backends are interned: a copy (e.g. copy.deepcopy of a model) is the backend itself.
    def __copy__(self) -> "Backend":
        return self

    def __deepcopy__(self, memo) -> "Backend":
        return self


_interned: dict[tuple, Backend] = {}

INSTALL_HINTS = {
    "numpy": "pip install numpy",
    "cupy": "pip install 'gdbp[cuda12]' (CUDA 12) or 'gdbp[cuda13]' (CUDA 13)",
    "torch": "pip install torch",
    "array_api_strict": "pip install array-api-strict",
    "array_api_compat": "pip install array-api-compat",
}


def import_library(module: str, backend: str):
    """Import a library for a backend, or raise BackendUnavailableError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"{backend} is not installed ({exc}): {INSTALL_HINTS.get(backend, 'pip install ' + backend)}"
        ) from None


def intern(key: tuple, make) -> Backend:
    """The backend for ``key``, made once by ``make()``."""
    backend = _interned.get(key)
    if backend is None:
        backend = _interned[key] = make()
    return backend


def loaded(module: str):
    """A module if it has been imported already, else None (never imports)."""
    return sys.modules.get(module)
