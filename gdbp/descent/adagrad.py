"""Adagrad: each coordinate's step divided by the root of its summed squared gradients."""

from __future__ import annotations

from . import rules
from .optimizer import Optimizer
from .validate import nonnegative

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), as ``torch.optim.Adagrad``.

    At step t (counted per parameter, from 1), the rule :func:`gdbp.descent.rules.adagrad`
    after the L2 weight decay::

        g <- grad + weight_decay * w
        S <- S + g * g                                  (S starts at initial_accumulator_value)
        lr_t = lr / (1 + (t - 1) * lr_decay)
        w <- w - lr_t * g / (sqrt(S) + eps)

    Coordinates with large past gradients take small steps, rarely-moved
    ones large steps; since S only grows, the steps shrink over time.

    Parameters
    ----------
    params : iterable of Tensor
        See :class:`Optimizer`.
    lr : float
        Learning rate (default 1e-2, as PyTorch).
    lr_decay : float
        Decay of the learning rate with the step count (default 0).
    weight_decay : float
        L2 penalty added to the gradient (default 0).
    initial_accumulator_value : float
        The starting value of every coordinate of S (default 0).
    eps : float
        Added to ``sqrt(S)`` so that it is never zero (default 1e-10).
    flat : bool
        Keep the parameters in flat buffers (see :class:`Optimizer`).

    Raises
    ------
    ValueError
        A hyperparameter is negative, NaN or infinite.
    """

    hyperparameter_names = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")
    rule = staticmethod(rules.adagrad)

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, flat: bool = False):
        self.lr_decay = nonnegative("lr_decay", lr_decay)
        self.weight_decay = nonnegative("weight_decay", weight_decay)
        self.initial_accumulator_value = nonnegative("initial_accumulator_value", initial_accumulator_value)
        self.eps = nonnegative("eps", eps)
        super().__init__(params, lr, flat)

    def _state_keys(self) -> tuple:
        return ("step", "sum")
