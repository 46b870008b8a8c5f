"""What backends this machine has: the report behind ``gdbp info``."""

from __future__ import annotations

import importlib

from . import _memory
from ._backend import BackendUnavailableError
from ._cupy import probe_cuda
from ._mpi import mpi_report
from ._nccl import nccl_probe
from ._resolve import auto, env_spec, resolve

__all__ = ["probe", "report"]


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except Exception:
        return None


def probe() -> list[dict]:
    """Every backend gdbp knows, each with whether it works, its version and devices."""
    rows = []
    for name in ("numpy", "array_api_strict", "torch"):
        version = _version(name)
        if version is None:
            rows.append(dict(backend=name, ok=False, version=None, devices=[], note="not installed"))
        else:
            rows.append(dict(backend=name, ok=True, version=version, devices=["cpu"], note=""))
    torch_row = rows[-1]
    if torch_row["ok"]:
        import torch

        if torch.cuda.is_available():
            torch_row["devices"] += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    ok, why = probe_cuda()
    devices = []
    if ok:
        import cupy

        for i in range(cupy.cuda.runtime.getDeviceCount()):
            props = cupy.cuda.runtime.getDeviceProperties(i)
            devices.append(f"cupy:{i} {props['name'].decode()}")
    rows.append(dict(backend="cupy", ok=ok, version=_version("cupy"), devices=devices, note="" if ok else why))
    return rows


def report() -> str:
    """A human-readable account of the chosen backend, why, and every backend probed."""
    spec = env_spec()
    lines = []
    try:
        if spec == "auto":
            chosen, why = auto()
        else:
            chosen, why = resolve(spec), f"GDBP_BACKEND={spec}"
        lines.append(f"backend: {chosen.spec}  ({why})")
    except BackendUnavailableError as exc:
        lines.append(f"backend: unavailable ({exc})")
    lines.append("probed:")
    for row in probe():
        mark = "ok " if row["ok"] else "-- "
        version = row["version"] or "-"
        devices = ", ".join(row["devices"]) or "-"
        note = f"  ({row['note']})" if row["note"] else ""
        lines.append(f"  {mark}{row['backend']:<17} {version:<12} {devices}{note}")
    lines.append("distributed (gdbp.distributed):")
    lines.append(f"  {mpi_report()}")
    ok, why = nccl_probe() if probe_cuda()[0] else (False, "no CUDA device")
    lines.append(f"  nccl: {'ok' if ok else '--'} {why}")
    lines.append(f"host memory: {_memory.TUNED}")
    return "\n".join(lines)
