"""Backend specs: every spec string is parsed here and nowhere else."""

from __future__ import annotations

import os
from typing import Any

from ._backend import Backend, BackendError
from ._cupy import cupy_backend, probe_cuda
from ._numpy import numpy_backend
from ._strict import generic_backend, strict_backend
from ._torch import torch_backend

__all__ = ["resolve", "auto", "env_spec"]


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
