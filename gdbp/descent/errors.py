"""The error raised when gradient descent diverges."""

from __future__ import annotations

__all__ = ["DivergenceError"]


class DivergenceError(FloatingPointError):
    """The cost (or the gradient) became NaN or infinite: the steps diverge.

    The usual cause is a learning rate too large for the cost function's
    curvature: each step overshoots the minimum by more than the last. The
    message names where it happened and suggests a learning rate ten times
    smaller.

    Parameters
    ----------
    value : float
        The non-finite value seen (nan, inf or -inf).
    step : int or str
        Where it was seen: a step number, or a phrase such as ``"epoch 3, batch 17"``.
    lr : float, optional
        The learning rate in use; when given, the message suggests ``lr / 10``.
    quantity : str
        What became non-finite (default ``"cost"``).

    Attributes
    ----------
    value, step, lr, quantity
        As given.
    suggested_lr : float or None
        ``lr / 10`` when lr is known.

    Examples
    --------
    >>> raise DivergenceError(float("inf"), step=7, lr=1.5)
    DivergenceError: cost became inf at step 7 with lr=1.5; the steps diverge: try a smaller learning rate (e.g. 0.15)
    """

    def __init__(self, value: float, step, lr: float | None = None, quantity: str = "cost"):
        self.value = value
        self.step = step
        self.lr = lr
        self.quantity = quantity
        self.suggested_lr = None if lr is None else lr / 10.0
        where = f"step {step}" if isinstance(step, int) else str(step)
        if lr is None:
            advice = "the steps diverge: try a smaller learning rate"
            message = f"{quantity} became {value} at {where}; {advice}"
        else:
            advice = f"the steps diverge: try a smaller learning rate (e.g. {self.suggested_lr:.3g})"
            message = f"{quantity} became {value} at {where} with lr={lr:g}; {advice}"
        super().__init__(message)

    def __reduce__(self):
        return type(self), (self.value, self.step, self.lr, self.quantity)
