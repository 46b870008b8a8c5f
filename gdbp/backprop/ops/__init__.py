"""The primitive table, and the functions composed from it, under the standard's names.

Each module below defines its ops in one place and registers them
(:data:`gdbp.backprop.primitive.OPS`); this package exposes the registry
under the ops' names: ``ops.add`` is ``OPS["add"]``, the primitive ``add_p``
of :mod:`.elementwise`.
"""

from ..primitive import OPS
from . import (  # noqa: F401  (importing a module registers its ops)
    conversion,
    elementwise,
    error_function,
    indexing,
    linalg,
    manipulation,
    reductions,
    searching,
    special,
)

_modules = {"conversion", "elementwise", "error_function", "indexing", "linalg", "manipulation", "reductions",
            "searching", "special"}
assert not _modules & set(OPS), "an op is named like a module of gdbp.backprop.ops"
globals().update(OPS)
__all__ = sorted(OPS)
