"""Adam and AdamW: steps scaled by running estimates of the gradient's first two moments."""

from __future__ import annotations

from . import rules
from .optimizer import Optimizer
from .validate import fraction, nonnegative

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``.

    At step t (counted per parameter, from 1), the rule :func:`gdbp.descent.rules.adam`
    after the L2 weight decay::

        g <- grad + weight_decay * w
        m <- beta1 * m + (1 - beta1) * g              first moment
        v <- beta2 * v + (1 - beta2) * g * g          second moment
        v_max <- max(v_max, v)   and use v_max for v   (amsgrad only)
        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)      bias correction
        w <- w - lr * m_hat / (sqrt(v_hat) + eps)

    The bias corrections undo the pull of ``m = v = 0`` toward zero in the
    first steps. They are Python floats, so float32 parameters stay float32.

    Parameters
    ----------
    params : iterable of Tensor
        See :class:`Optimizer`.
    lr : float
        Learning rate (default 1e-3).
    betas : (float, float)
        Decay rates of the first and second moment estimates, each in [0, 1)
        (default (0.9, 0.999)).
    eps : float
        Added to the denominator so that it is never zero (default 1e-8).
    weight_decay : float
        L2 penalty added to the gradient (default 0). For decoupled weight
        decay use :class:`AdamW`.
    amsgrad : bool
        Divide by the largest second moment seen so far (Reddi et al., 2018).
    flat : bool
        Keep the parameters in flat buffers (see :class:`Optimizer`).

    Raises
    ------
    ValueError
        A hyperparameter is out of range, NaN or infinite.
    """

    hyperparameter_names = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    rule = staticmethod(rules.adam)

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, flat: bool = False):
        beta1, beta2 = betas
        self.betas = (fraction("betas[0]", beta1), fraction("betas[1]", beta2))
        self.eps = nonnegative("eps", eps)
        self.weight_decay = nonnegative("weight_decay", weight_decay)
        self.amsgrad = bool(amsgrad)
        super().__init__(params, lr, flat)

    def _state_keys(self) -> tuple:
        return ("step", "exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    The weights shrink toward zero by ``lr * weight_decay`` of themselves at
    every step, apart from the gradient's moments (so the decay is not
    rescaled by ``1 / sqrt(v_hat)`` as an L2 penalty in :class:`Adam` is)::

        w <- w - lr * weight_decay * w
        m, v, m_hat, v_hat as in Adam, from the raw gradient
        w <- w - lr * m_hat / (sqrt(v_hat) + eps)

    Parameters
    ----------
    params, lr, betas, eps, amsgrad, flat
        As :class:`Adam`.
    weight_decay : float
        Decoupled weight decay (default 1e-2, as PyTorch).
    """

    weight_decay_decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, flat: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, flat)
