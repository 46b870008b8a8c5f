"""Neural-network building blocks: Module, Parameter, layers, initialisers and cost functions.

Layers create their parameters on the current backend (or ``backend=``) in
float32 (or ``dtype=``), drawing initial values from a seeded host stream so
that one seed gives the same weights on every backend.
"""

from . import costs, functional, init
from .activations import GELU, Identity, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .costs import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber,
    mae,
    mse,
    nll,
)
from .dropout import Dropout
from .init import manual_seed
from .layers import Embedding, Flatten, Linear, Sequential
from .module import LoadResult, Module, StateDictError
from .normalization import BatchNorm1d, LayerNorm
from .parameter import Parameter

__all__ = [
    "BCEWithLogitsLoss", "BatchNorm1d", "CrossEntropyLoss", "Dropout", "Embedding", "Flatten", "GELU",
    "HuberLoss", "Identity", "L1Loss", "LayerNorm", "LeakyReLU", "Linear", "LoadResult", "LogSoftmax",
    "MSELoss", "Module", "NLLLoss", "Parameter", "ReLU", "Sequential", "Sigmoid", "Softmax", "StateDictError",
    "Tanh", "binary_cross_entropy_with_logits", "costs", "cross_entropy", "functional", "huber", "init", "mae",
    "manual_seed", "mse", "nll",
]
