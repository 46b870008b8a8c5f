"""Only gdbp/backends/ may import a concrete array library.

Math code takes its namespace from its inputs; this test reads every source
file of the package (with :mod:`ast`, so imports inside functions count too)
and fails on any import of numpy, cupy, torch, mpi4py or the array-API helpers
outside the backend layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gdbp

PACKAGE = Path(gdbp.__file__).resolve().parent
ALLOWED = PACKAGE / "backends"
FORBIDDEN = frozenset({"numpy", "cupy", "cupyx", "torch", "array_api_compat", "array_api_strict", "mpi4py"})


def forbidden_imports(source: str, filename: str = "<snippet>") -> list[tuple[int, str]]:
    """(line, module) for every import of a forbidden library in ``source``.

    Covers ``import x``, ``import x.y as z``, ``from x import y``,
    ``from x.y import z`` at any depth (functions, classes, ``try`` blocks),
    and ``importlib.import_module("x")`` / ``__import__("x")`` with a literal
    name. Relative imports (``from ..backends import ...``) stay inside gdbp
    and are allowed.
    """
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module] if node.level == 0 and node.module else []
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func):
            first = node.args[0] if node.args else None
            names = [first.value] if isinstance(first, ast.Constant) and isinstance(first.value, str) else []
        else:
            continue
        for name in names:
            if name.split(".")[0] in FORBIDDEN:
                found.append((node.lineno, name))
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def _sources_outside_backends() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if ALLOWED not in p.parents)


# --- the scanner itself must be able to fail -------------------------------------------


@pytest.mark.parametrize(
    "snippet, module",
    [
        ("import numpy", "numpy"),
        ("import numpy as np", "numpy"),
        ("import os, torch", "torch"),
        ("import cupyx.scipy.special", "cupyx.scipy.special"),
        ("from cupy import ndarray", "cupy"),
        ("from array_api_compat.numpy import asarray", "array_api_compat.numpy"),
        ("def f():\n    import array_api_strict\n    return array_api_strict", "array_api_strict"),
        ("class A:\n    def m(self):\n        from torch import nn", "torch"),
        ("try:\n    import cupy\nexcept ImportError:\n    cupy = None", "cupy"),
        ("import importlib\nnp = importlib.import_module('numpy')", "numpy"),
        ("t = __import__('torch')", "torch"),
    ],
)
def test_scanner_finds_forbidden_import(snippet, module):
    assert [name for _, name in forbidden_imports(snippet)] == [module]


@pytest.mark.parametrize(
    "snippet",
    [
        "import math, os",
        "from ..backends import to_numpy",
        "from . import numpy",  # a relative module that happens to share the name
        "from .backends import namespace",
        "import numpyish",
        "x = 'import numpy'",
        "# import torch",
        "import importlib\nm = importlib.import_module(name)",
    ],
)
def test_scanner_allows_clean_code(snippet):
    assert forbidden_imports(snippet) == []


def test_scanner_reports_line_numbers():
    source = "import math\n\n\ndef f():\n    import torch\n"
    assert forbidden_imports(source) == [(5, "torch")]


# --- the package ---------------------------------------------------------------------------


def test_the_scan_covers_the_package():
    files = _sources_outside_backends()
    names = {p.relative_to(PACKAGE).as_posix() for p in files}
    assert "backprop/engine.py" in names and "backprop/tensor.py" in names
    assert not any(n.startswith("backends/") for n in names)
    # The backend layer itself does import them (or the scan would prove nothing).
    backend_hits = [hit for p in ALLOWED.rglob("*.py") for hit in forbidden_imports(p.read_text(), str(p))]
    assert backend_hits


def test_no_array_library_imported_outside_backends():
    offenders = []
    for path in _sources_outside_backends():
        for line, name in forbidden_imports(path.read_text(encoding="utf-8"), str(path)):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports {name}")
    assert not offenders, (
        "only gdbp/backends/ may import numpy, cupy, torch or array_api_compat/strict; take the namespace "
        "from the inputs instead (x.__array_namespace__(), gdbp.backends.namespace(*arrays)):\n"
        + "\n".join(offenders)
    )
