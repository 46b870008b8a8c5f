"""Reverse-mode automatic differentiation over the Python array API standard."""

from .custom import custom_vjp
from .engine import Primitive, backprop, enable_grad, is_grad_enabled, no_grad, primitive, unbroadcast
from .errors import GradRequirementError, GraphFreedError, InPlaceError, NotDifferentiableError, ShapeError
from .functional import grad, value_and_grad, vjp
from .graph import Graph, graph
from .tensor import Tensor, tensor

__all__ = [
    "Graph", "Primitive", "Tensor", "backprop", "custom_vjp", "enable_grad", "grad", "graph", "is_grad_enabled", "no_grad",
    "primitive", "tensor", "unbroadcast", "value_and_grad", "vjp",
    "GradRequirementError", "GraphFreedError", "InPlaceError", "NotDifferentiableError", "ShapeError",
]
