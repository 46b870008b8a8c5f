"""Functions of the standard without a gradient rule, run by the backend on the raw arrays.

Their integer and boolean outputs carry no gradient. Floating outputs computed
from Tensors that require grad (unique values, say) get a node that raises,
if a gradient ever reaches it, that gdbp cannot differentiate the function.
"""

from __future__ import annotations

from ..primitive import no_gradient
from ..tensor import unwrap


def _argmax(xp, x, /, *, axis=None, keepdims=False):
    return xp.argmax(x, axis=axis, keepdims=keepdims)


def _argmin(xp, x, /, *, axis=None, keepdims=False):
    return xp.argmin(x, axis=axis, keepdims=keepdims)


def _argsort(xp, x, /, *, axis=-1, descending=False, stable=True):
    return xp.argsort(x, axis=axis, descending=descending, stable=stable)


def _nonzero(xp, x, /):
    return xp.nonzero(x)


def _searchsorted(xp, x1, x2, /, *, side="left", sorter=None):
    return xp.searchsorted(x1, x2, side=side, sorter=unwrap(sorter))


def _count_nonzero(xp, x, /, *, axis=None, keepdims=False):
    return xp.count_nonzero(x, axis=axis, keepdims=keepdims)


def _all(xp, x, /, *, axis=None, keepdims=False):
    return xp.all(x, axis=axis, keepdims=keepdims)


def _any(xp, x, /, *, axis=None, keepdims=False):
    return xp.any(x, axis=axis, keepdims=keepdims)


def _unique_all(xp, x, /):
    return xp.unique_all(x)


def _unique_counts(xp, x, /):
    return xp.unique_counts(x)


def _unique_inverse(xp, x, /):
    return xp.unique_inverse(x)


def _unique_values(xp, x, /):
    return xp.unique_values(x)


argmax_p = no_gradient("argmax", _argmax)
argmin_p = no_gradient("argmin", _argmin)
argsort_p = no_gradient("argsort", _argsort)
nonzero_p = no_gradient("nonzero", _nonzero)
searchsorted_p = no_gradient("searchsorted", _searchsorted)
count_nonzero_p = no_gradient("count_nonzero", _count_nonzero)
all_p = no_gradient("all", _all)
any_p = no_gradient("any", _any)
unique_all_p = no_gradient("unique_all", _unique_all)
unique_counts_p = no_gradient("unique_counts", _unique_counts)
unique_inverse_p = no_gradient("unique_inverse", _unique_inverse)
unique_values_p = no_gradient("unique_values", _unique_values)
