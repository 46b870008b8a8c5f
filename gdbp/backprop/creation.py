"""gdbp.tensor: a Tensor from an array, a nested list or a scalar."""

from __future__ import annotations

from .. import backends
from .tensor import Tensor, unwrap

__all__ = ["tensor"]


def tensor(data, requires_grad: bool = False, backend=None, dtype=None) -> Tensor:
    """Make a Tensor.

    Parameters
    ----------
    data : array, Tensor, nested list or scalar
        An array is wrapped without a copy (it shares memory, like
        ``torch.as_tensor``) and keeps its backend and dtype. Lists and
        scalars are created on ``backend``; Python floats become float32,
        the default dtype for parameters.
    requires_grad : bool
        Record operations on it for backprop (floating dtypes only).
    backend : str or Backend, optional
        Where lists and scalars are created (default: :func:`gdbp.use`'s
        choice). An array on another backend is an error: move it
        explicitly with :func:`gdbp.transfer`.
    dtype : dtype, optional
        The dtype for lists and scalars.
    """
    data = unwrap(data)
    source = backends.backend_of(data)
    if source is not None:
        if backend is not None and backends.resolve(backend) is not source:
            raise backends.BackendMismatchError(
                f"gdbp.tensor: the array lives on {source.spec} but backend={backends.resolve(backend).spec} "
                "was asked for; move it explicitly with gdbp.transfer(x, backend)"
            )
        if dtype is not None and data.dtype != dtype:
            raise TypeError(
                f"gdbp.tensor: the array has dtype {data.dtype} but dtype={dtype} was asked for; "
                "cast it explicitly with xp.astype"
            )
        return Tensor(data, requires_grad=requires_grad)
    target = backends.resolve(backend)
    xp = target.xp
    if dtype is None and _holds_float(data):
        dtype = xp.float32
    try:
        array = xp.asarray(data, dtype=dtype, device=target.device)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"gdbp.tensor: cannot make an array from {type(data).__name__}: {exc}") from None
    if not xp.isdtype(array.dtype, ("bool", "numeric")):  # NumPy makes object or string arrays of anything
        raise TypeError(f"gdbp.tensor: cannot make a numeric array from {type(data).__name__} (got dtype {array.dtype})")
    return Tensor(array, requires_grad=requires_grad)


def _holds_float(data) -> bool:
    if isinstance(data, float):
        return True
    if isinstance(data, (list, tuple)):
        return any(_holds_float(d) for d in data)
    return False
