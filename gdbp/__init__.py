"""gdbp: backpropagation and gradient descent on any array-API backend (NumPy, CuPy, ...)."""

from . import backends
from .backends import Backend, current, transfer, use
from .backprop import (
    GradRequirementError,
    GraphFreedError,
    InPlaceError,
    NotDifferentiableError,
    ShapeError,
    Tensor,
    custom_vjp,
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
    rewriting,
    tensor,
    value_and_grad,
    vjp,
)
from . import nn
from . import distributed
from . import descent
from . import train
from . import plot
from .compile import CompileError, Compiled
from .compile import compile  # noqa: E402  (the function: gdbp.compile(fn); the package is gdbp.compile's home)
from .train import load, save

from ._version import __version__

__all__ = [
    "Backend", "GradRequirementError", "GraphFreedError", "InPlaceError", "NotDifferentiableError",
    "ShapeError", "Tensor", "backends", "current", "custom_vjp", "enable_grad", "grad", "is_grad_enabled",
    "no_grad", "rewriting", "tensor", "transfer", "use", "value_and_grad", "vjp",
    "train", "save", "load", "plot", "compile", "Compiled", "CompileError",
]
