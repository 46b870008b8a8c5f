"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from . import rules
from .optimizer import Optimizer
from .validate import nonnegative

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Gradient descent: ``w <- w - lr * d``, ``d`` the gradient or a momentum of it.

    With the defaults (no momentum, no weight decay) this is plain gradient
    descent, ``w <- w - lr * grad``. The full rule (:func:`gdbp.descent.rules.sgd`,
    after the L2 weight decay), as ``torch.optim.SGD``::

        g <- grad + weight_decay * w
        b <- momentum * b + (1 - dampening) * g      (b <- g at the first step)
        d <- g + momentum * b   if nesterov,   else  d <- b
        w <- w - lr * d

    (without momentum, ``d <- g``).

    Parameters
    ----------
    params : iterable of Tensor
        See :class:`Optimizer`.
    lr : float
        Learning rate (default 1e-3, as PyTorch).
    momentum : float
        Momentum factor (default 0: none).
    dampening : float
        Scales the new gradient in the momentum buffer by ``1 - dampening``.
    nesterov : bool
        Nesterov momentum: step along ``g + momentum * b`` (needs momentum > 0
        and dampening = 0).
    weight_decay : float
        L2 penalty ``weight_decay / 2 * ||w||^2`` added to the cost.
    flat : bool
        Keep the parameters in flat buffers (see :class:`Optimizer`).

    Raises
    ------
    ValueError
        A hyperparameter is negative, NaN or infinite, or nesterov is asked
        for without momentum or with dampening.

    Examples
    --------
    >>> opt = gdbp.descent.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> cost(model(x), y).backward(); opt.step(); opt.zero_grad()
    """

    hyperparameter_names = ("lr", "momentum", "dampening", "nesterov", "weight_decay")
    rule = staticmethod(rules.sgd)

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0, flat: bool = False):
        self.momentum = nonnegative("momentum", momentum)
        self.dampening = nonnegative("dampening", dampening)
        self.weight_decay = nonnegative("weight_decay", weight_decay)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0.0 or self.dampening != 0.0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening = 0, got momentum={self.momentum!r}, "
                f"dampening={self.dampening!r}"
            )
        super().__init__(params, lr, flat)

    def _state_keys(self) -> tuple:
        return ("momentum_buffer",) if self.momentum else ()
