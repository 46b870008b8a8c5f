"""Gradient descent: optimizers, learning-rate schedules, gradient clipping and minimize.

Each optimizer's update rule (``w <- w - lr * ...``) is written out in its
code and docstring and matches its namesake in ``torch.optim``.
"""

from .adagrad import Adagrad
from .adam import Adam, AdamW
from .clip import clip_grad_norm, clip_grad_value, global_norm
from .errors import DivergenceError
from .minimize import METHODS, MinimizeResult, minimize
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .schedules import (
    ConstantLR,
    CosineAnnealingLR,
    ExponentialLR,
    LinearWarmup,
    ReduceLROnPlateau,
    Schedule,
    StepLR,
)
from .sgd import SGD

__all__ = [
    "Adagrad", "Adam", "AdamW", "ConstantLR", "CosineAnnealingLR", "DivergenceError", "ExponentialLR",
    "LinearWarmup", "METHODS", "MinimizeResult", "Optimizer", "RMSprop", "ReduceLROnPlateau", "SGD",
    "Schedule", "StepLR", "clip_grad_norm", "clip_grad_value", "global_norm", "minimize",
]
