"""Gradient descent: optimizers, learning-rate schedules, gradient clipping and minimize.

Each optimizer's update rule (``w <- w - lr * ...``) is a pure function in
:mod:`.rules`, with its formula in its docstring, matching its namesake in
``torch.optim``; one applier (:func:`.optimizer.applier`) runs any rule,
per tensor or over flat buffers. Weight decay and clipping are shared
transforms (:mod:`.transforms`).
"""

from . import rules
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .transforms import clip_grad_norm, clip_grad_value, global_norm
from .errors import DivergenceError
from .minimize import METHODS, MinimizeResult, minimize
from .optimizer import Optimizer, applier
from .rmsprop import RMSprop
from .schedules import ConstantLR, CosineAnnealingLR, ExponentialLR, LinearWarmup, ReduceLROnPlateau, Schedule, StepLR
from .sgd import SGD

__all__ = [
    "Adagrad", "Adam", "AdamW", "ConstantLR", "CosineAnnealingLR", "DivergenceError", "ExponentialLR",
    "LinearWarmup", "METHODS", "MinimizeResult", "Optimizer", "RMSprop", "ReduceLROnPlateau", "SGD",
    "Schedule", "StepLR", "applier", "clip_grad_norm", "clip_grad_value", "global_norm", "minimize", "rules",
]
