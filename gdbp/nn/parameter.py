"""Parameter: a trainable Tensor that owns its memory."""

from __future__ import annotations

from .. import backends
from ..backprop import Tensor, tensor

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A leaf Tensor that requires grad and owns its memory.

    Parameters
    ----------
    data : array, Tensor or nested list
        The initial value. It is copied, so that an optimizer may update the
        parameter in place without touching the caller's array. Lists are
        made on the current backend in float32.
    requires_grad : bool
        Whether the parameter is trained (default True).

    Raises
    ------
    TypeError
        ``data`` is not of a real floating dtype.
    """

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        if isinstance(data, Tensor):
            data = data.data
        elif backends.backend_of(data) is None:
            data = tensor(data).data
        backend = backends.backend_of(data)
        xp = backend.xp
        if not xp.isdtype(data.dtype, "real floating"):
            raise TypeError(
                f"a Parameter holds real floating-point values, got dtype {data.dtype}; "
                "cast first, e.g. xp.astype(x, xp.float32)"
            )
        super().__init__(backend.kernels.copy(data), requires_grad=requires_grad)  # on data's device

    def __repr__(self) -> str:
        return f"Parameter({self.data!r}, backend={self._backend.spec!r})"

    def _move_to(self, backend) -> None:
        """Move the values (and the gradient, if any) to another backend, keeping this object."""
        target = backends.resolve(backend)
        if target is self._backend:
            return
        self.data = backends.transfer(self.data, target)  # a copy: never shares memory
        self._backend = target
        grad = self.grad
        if grad is not None:
            if isinstance(grad, Tensor):
                self.grad = Tensor(backends.transfer(grad.data, target))
            else:
                self.grad = backends.transfer(grad, target)
        self.mark_changed()
