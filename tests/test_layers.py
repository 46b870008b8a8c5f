"""The packages of gdbp import only the layers below them, and never each other in a cycle.

Layers, bottom to top (DESIGN.md): backends <- backprop <- descent, nn <-
distributed, compile, plot <- train <- lessons <- check <- cli. Packages on one
layer do not import each other either. The test reads every source file with
:mod:`ast` (imports inside functions count) and resolves relative imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gdbp

PACKAGE = Path(gdbp.__file__).resolve().parent

#: package (or top-level module) of gdbp -> its layer
LAYERS = {
    "_version": 0, "_validate": 0, "backends": 0,
    "backprop": 1,
    "descent": 2, "nn": 2, "testing": 2,
    "distributed": 3, "compile": 3, "plot": 3,
    "train": 4,
    "lessons": 5,
    "check": 6,
    "cli": 7,
}
TOP = {"__init__", "__main__"}  # the package's face: may import anything


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import of a gdbp module in ``source``.

    ``module`` is the importing module's dotted name (``gdbp.descent.sgd``);
    ``is_package`` whether it is a package's ``__init__``.
    """
    base = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                stem = ".".join(anchor + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from . import x` may import a submodule x: count it as such.
            names = [f"{stem}.{a.name}" for a in node.names] if not node.module else [stem]
        else:
            continue
        found += [(node.lineno, n) for n in names if n == "gdbp" or n.startswith("gdbp.")]
    return found


def package_of(module: str) -> str:
    """The first component after ``gdbp.``: the package or top-level module a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def violations(edges) -> list[str]:
    """The edges (importer, imported, where) that go up a layer, sideways, or to an unknown package."""
    bad = []
    for importer, imported, where in edges:
        a, b = package_of(importer), package_of(imported)
        if a == b or a in TOP:
            continue
        if a not in LAYERS or b not in LAYERS:
            bad.append(f"{where}: {importer} -> {imported}: package not placed in a layer (add it to LAYERS)")
        elif LAYERS[b] >= LAYERS[a]:
            kind = "sideways" if LAYERS[b] == LAYERS[a] else "up"
            bad.append(f"{where}: {importer} (layer {LAYERS[a]}) imports {imported} (layer {LAYERS[b]}): {kind}")
    return bad


def package_edges() -> list[tuple[str, str, str]]:
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        is_package = rel.name == "__init__"
        module = ".".join(rel.parts[:-1] if is_package else rel.parts)
        for line, name in imported_modules(path.read_text(encoding="utf-8"), module, is_package):
            edges.append((module, name, f"{path.relative_to(PACKAGE.parent)}:{line}"))
    return edges


# --- the checker itself must be able to fail -----------------------------------------------


def test_relative_imports_resolve():
    got = imported_modules("from .. import backends\nfrom ..backprop import ops\nfrom . import rules\n"
                           "def f():\n    from ..backends import kernels\n", "gdbp.descent.sgd", False)
    assert sorted(n for _, n in got) == ["gdbp.backends", "gdbp.backends", "gdbp.backprop", "gdbp.descent.rules"]
    deep = imported_modules("from ...backends import kernels\n", "gdbp.backprop.ops.indexing", False)
    assert [n for _, n in deep] == ["gdbp.backends"]
    init = imported_modules("from .tensor import Tensor\n", "gdbp.backprop", True)
    assert [n for _, n in init] == ["gdbp.backprop.tensor"]


@pytest.mark.parametrize("importer, imported", [
    ("gdbp.backends._arrays", "gdbp.backprop.namespace"),  # up
    ("gdbp.backprop.tensor", "gdbp.train"),  # up, two layers
    ("gdbp.descent.sgd", "gdbp.nn.module"),  # sideways
    ("gdbp.train.loop", "gdbp.mystery"),  # not placed
])
def test_the_checker_refuses(importer, imported):
    assert violations([(importer, imported, "here")])


@pytest.mark.parametrize("importer, imported", [
    ("gdbp.backprop.tensor", "gdbp.backends"),
    ("gdbp.train.loop", "gdbp.descent.errors"),
    ("gdbp.cli", "gdbp.train"),
    ("gdbp", "gdbp.train"),  # the package's face
    ("gdbp.descent.sgd", "gdbp.descent.rules"),  # within a package
])
def test_the_checker_allows(importer, imported):
    assert violations([(importer, imported, "here")]) == []


# --- the package -----------------------------------------------------------------------------


def test_every_package_is_placed_in_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py")} - TOP
    assert packages | modules <= set(LAYERS), sorted((packages | modules) - set(LAYERS))


def test_no_import_runs_up_or_across_the_layers():
    edges = package_edges()
    assert any(package_of(a) == "descent" and package_of(b) == "backprop" for a, b, _ in edges)  # the scan sees edges
    bad = violations(edges)
    assert not bad, "imports that break the layering:\n" + "\n".join(bad)


def test_every_module_stays_small():
    """Modules are small and single-purpose: none of gdbp's source files is over 500 lines."""
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert sizes, "no source files found"
    over = {name: n for name, n in sizes.items() if n > 500}
    assert not over, f"modules over 500 lines, split them: {over}"
