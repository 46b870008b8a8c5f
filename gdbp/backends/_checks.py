"""The one check that a value fits where it goes: same backend, shape and dtype."""

from __future__ import annotations

from ._arrays import backend_of
from ._backend import BackendMismatchError, ShapeError

__all__ = ["fits", "check_fits"]


def fits(value, backend, shape, dtype) -> bool:
    """Whether ``value`` is an array of ``backend`` with ``shape`` and ``dtype`` (None: any); cheap.

    Hot paths call it first and build :func:`check_fits`'s message only on a misfit.
    """
    return ((type(value) is backend.array_type or backend_of(value) is backend)
            and (shape is None or tuple(value.shape) == tuple(shape))
            and (dtype is None or value.dtype == dtype))


def check_fits(value, backend, shape, dtype, what: str, target: str, fix: str = "") -> None:
    """Raise unless ``value`` is an array of ``backend`` with ``shape`` and ``dtype``.

    Parameters
    ----------
    value : array
    backend : Backend
    shape : tuple or None
        None: any shape.
    dtype : dtype or None
        None: any dtype.
    what : str
        What the value is, for the message ("the gradient of parameter 2").
    target : str
        Where it goes ("the parameter", "the module's entry").
    fix : str
        What to do about it, appended to the message (e.g. "; cast it first").

    Raises
    ------
    BackendMismatchError, ShapeError, TypeError
        Naming ``what``, ``target`` and both backends, shapes or dtypes.
    """
    if type(value) is not backend.array_type:  # the common case costs one type check
        found = backend_of(value)
        if found is not backend:
            where = found.spec if found is not None else f"a {type(value).__name__}"
            raise BackendMismatchError(f"{what} lives on {where}, but {target} lives on {backend.spec}{fix}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ShapeError(f"{what} has shape {tuple(value.shape)}, but {target} has shape {tuple(shape)}{fix}")
    if dtype is not None and value.dtype != dtype:
        raise TypeError(f"{what} has dtype {value.dtype}, but {target} has dtype {dtype}{fix}")
