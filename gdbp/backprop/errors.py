"""The errors backprop raises: each names the problem and what to do."""

from ..backends import ShapeError  # shared with the backend layer's checks

__all__ = ["GraphFreedError", "InPlaceError", "NotDifferentiableError", "ShapeError", "GradRequirementError"]


class NotDifferentiableError(TypeError):
    """A gradient was asked through an operation that has none."""


class InPlaceError(RuntimeError):
    """A value the backward pass needs was changed in place."""


class GraphFreedError(RuntimeError):
    """backward() swept a graph whose saved values were already freed."""


class GradRequirementError(TypeError):
    """requires_grad on something that cannot have a gradient, or backward() without one."""
