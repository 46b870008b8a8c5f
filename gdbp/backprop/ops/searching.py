"""Functions of the standard without a gradient rule, run by the backend on the raw arrays.

Their integer and boolean outputs carry no gradient. Floating outputs computed
from Tensors that require grad (unique values, say) get a node that raises,
if a gradient ever reaches it, that gdbp cannot differentiate the function.
Each is registered under the standard's signature, written below.
"""

from __future__ import annotations

import inspect

from ..primitive import no_gradient
from ..tensor import unwrap


def _one_array(x, /):
    """nonzero, unique_all, unique_counts, unique_inverse, unique_values."""


def _reduction(x, /, *, axis=None, keepdims=False):
    """argmax, argmin, count_nonzero, all, any."""


def _argsort(x, /, *, axis=-1, descending=False, stable=True):
    """argsort."""


def _searchsorted(x1, x2, /, *, side="left", sorter=None):
    """searchsorted."""


SIGNATURES = {
    "argmax": _reduction, "argmin": _reduction, "count_nonzero": _reduction, "all": _reduction, "any": _reduction,
    "argsort": _argsort, "searchsorted": _searchsorted,
    "nonzero": _one_array, "unique_all": _one_array, "unique_counts": _one_array, "unique_inverse": _one_array,
    "unique_values": _one_array,
}


def _backend_function(name: str):
    def forward(xp, *args, **kw):
        return getattr(xp, name)(*args, **{k: unwrap(v) for k, v in kw.items()})  # sorter= may be a Tensor

    return forward


for _name, _signature in SIGNATURES.items():
    no_gradient(_name, _backend_function(_name), signature=inspect.signature(_signature))
