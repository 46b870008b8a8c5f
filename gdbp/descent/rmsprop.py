"""RMSprop: steps divided by a running root mean square of the gradient."""

from __future__ import annotations

from . import rules
from .optimizer import Optimizer
from .validate import fraction, nonnegative

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, 2012), as ``torch.optim.RMSprop``: the rule
    :func:`gdbp.descent.rules.rmsprop` after the L2 weight decay::

        g <- grad + weight_decay * w
        s <- alpha * s + (1 - alpha) * g * g                running mean square
        a <- alpha * a + (1 - alpha) * g                    running mean (centered only)
        r = sqrt(s - a * a) + eps   if centered,   else   r = sqrt(s) + eps
        b <- momentum * b + g / r,   w <- w - lr * b        with momentum
        w <- w - lr * g / r                                 without

    Parameters
    ----------
    params : iterable of Tensor
        See :class:`Optimizer`.
    lr : float
        Learning rate (default 1e-2, as PyTorch).
    alpha : float
        Decay rate of the running averages, in [0, 1) (default 0.99).
    eps : float
        Added to the root mean square so that it is never zero (default 1e-8).
    weight_decay : float
        L2 penalty added to the gradient (default 0).
    momentum : float
        Momentum factor (default 0: none).
    centered : bool
        Divide by the gradient's running standard deviation instead of its
        root mean square.
    flat : bool
        Keep the parameters in flat buffers (see :class:`Optimizer`).

    Raises
    ------
    ValueError
        A hyperparameter is out of range, NaN or infinite.
    """

    hyperparameter_names = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
    rule = staticmethod(rules.rmsprop)

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, flat: bool = False):
        self.alpha = fraction("alpha", alpha)
        self.eps = nonnegative("eps", eps)
        self.weight_decay = nonnegative("weight_decay", weight_decay)
        self.momentum = nonnegative("momentum", momentum)
        self.centered = bool(centered)
        super().__init__(params, lr, flat)

    def _state_keys(self) -> tuple:
        keys = ("step", "square_avg")
        if self.momentum:
            keys += ("momentum_buffer",)
        if self.centered:
            keys += ("grad_avg",)
        return keys
