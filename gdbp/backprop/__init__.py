"""Reverse-mode automatic differentiation over the Python array API standard.

Reading order: :mod:`.tensor` (the Tensor, and its one constructor),
:mod:`.primitive` (how an op is defined, and the registry), :mod:`.engine`
(applying an op, recording the graph), :mod:`.sweep` (the backward pass),
:mod:`.ops` (the ops themselves), :mod:`.namespace` (the differentiable
array namespace), :mod:`.functional` (grad, value_and_grad, vjp).
"""

from . import tensor as _tensor  # noqa: F401  (first: the engine and the ops build on Tensor)
from . import ops, trace, tree
from . import rewrites  # noqa: F401  (registers the engine's rewrites, once the ops exist)
from .custom import custom_vjp
from .engine import Node
from .errors import GradRequirementError, GraphFreedError, InPlaceError, NotDifferentiableError, ShapeError
from .functional import grad, value_and_grad, vjp
from .graph import Graph, graph
from .hooks import on_grad_ready
from .mode import enable_grad, is_grad_enabled, no_grad, rewriting
from .namespace import namespace_for
from .primitive import Primitive, defn, defprim
from .sweep import backprop, unbroadcast
from .creation import tensor
from .tensor import Tensor, make, unwrap

__all__ = [
    "Graph", "Node", "Primitive", "Tensor", "backprop", "custom_vjp", "defn", "defprim", "enable_grad", "grad",
    "graph", "is_grad_enabled", "make", "namespace_for", "no_grad", "on_grad_ready", "ops", "rewriting", "tensor",
    "trace", "tree", "unbroadcast",
    "unwrap", "value_and_grad", "vjp",
    "GradRequirementError", "GraphFreedError", "InPlaceError", "NotDifferentiableError", "ShapeError",
]
