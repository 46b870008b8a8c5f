"""Activation functions, as functions and as Modules.

relu, sigmoid, softmax and log_softmax are primitives of gdbp.backprop.ops
(one pass, stable); the others are composed from namespace functions, so
their gradients come from the chain rule.
"""

from __future__ import annotations

import math

from ..backprop import ops
from ._util import as_tensor
from .module import Module

__all__ = [
    "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax",
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax", "Identity",
]


def relu(x):
    """max(x, 0); relu'(0) = 0, as in PyTorch."""
    return ops.relu(x)


def leaky_relu(x, negative_slope: float = 0.01):
    """x for x > 0, negative_slope * x otherwise (the slope at 0 is negative_slope, as in PyTorch)."""
    return ops.where(x > 0, x, negative_slope * x)


def sigmoid(x):
    """1 / (1 + exp(-x)), stable for large |x|."""
    return ops.sigmoid(x)


def tanh(x):
    """The hyperbolic tangent."""
    return ops.tanh(x)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(x, approximate: str = "none"):
    """Gaussian Error Linear Unit (Hendrycks & Gimpel, 2016).

    ``approximate="none"`` (the default, as in PyTorch):
    gelu(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))), with an erf accurate
    to about 1e-16 relative in float64 and a few ulp in float32.

    ``approximate="tanh"``: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
    which differs from the exact form by up to about 5e-4 (near |x| = 2.7).
    """
    x = as_tensor(x)
    if approximate == "none":
        return 0.5 * x * (1 + ops.erf(x * (1 / math.sqrt(2.0))))
    if approximate == "tanh":
        return 0.5 * x * (1 + ops.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x))))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def softmax(x, axis: int = -1):
    """exp(x) / sum(exp(x)) along an axis, without overflow."""
    return ops.softmax(x, axis=axis)


def log_softmax(x, axis: int = -1):
    """x - logsumexp(x) along an axis, without overflow."""
    return ops.log_softmax(x, axis=axis)


class ReLU(Module):
    """max(x, 0)."""

    def forward(self, x):
        return ops.relu(x)


class LeakyReLU(Module):
    """x for x > 0, negative_slope * x otherwise."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def forward(self, x):
        return ops.sigmoid(x)


class Tanh(Module):
    """tanh(x)."""

    def forward(self, x):
        return ops.tanh(x)


class GELU(Module):
    """x * Phi(x); see :func:`gelu` for ``approximate``."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class _AlongAxis(Module):
    """An activation along one axis, ``dim`` (default: the last)."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_AlongAxis):
    """softmax along ``dim`` (default: the last axis)."""

    def forward(self, x):
        return ops.softmax(x, axis=self.dim)


class LogSoftmax(_AlongAxis):
    """log_softmax along ``dim`` (default: the last axis)."""

    def forward(self, x):
        return ops.log_softmax(x, axis=self.dim)


class Identity(Module):
    """Returns its input."""

    def forward(self, x):
        return x
