"""The primitive table, and the functions composed from it, under the standard's names.

Each module below defines its ops in one place and registers them
(:data:`gdbp.backprop.primitive.OPS`); this package exposes the registry
under the ops' names: ``ops.add`` is ``OPS["add"]``, the primitive ``add_p``
of :mod:`.elementwise`. An extension's ops (registered as ``"linalg.solve"``)
are the attributes of its own object: ``ops.linalg.solve``.
"""

from ..primitive import OPS, Extension, extensions
from . import (  # noqa: F401  (importing a module registers its ops)
    conversion,
    decompositions,
    elementwise,
    error_function,
    fourier,
    indexing,
    linear_algebra,
    manipulation,
    network,
    products,
    reductions,
    searching,
    special_functions,
)

_modules = {"conversion", "decompositions", "elementwise", "error_function", "fourier", "indexing",
            "linear_algebra", "manipulation", "network", "products", "reductions", "searching", "special_functions"}
assert not _modules & (set(OPS) | set(extensions(OPS))), "an op is named like a module of gdbp.backprop.ops"
globals().update({name: fn for name, fn in OPS.items() if "." not in name})
globals().update(extensions(OPS))
__all__ = sorted(name for name in OPS if "." not in name) + sorted(extensions(OPS))
