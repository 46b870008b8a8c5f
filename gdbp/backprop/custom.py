"""custom_vjp: a user's own primitive, with the user's own gradient rule."""

from __future__ import annotations

import functools

from .engine import apply
from .errors import NotDifferentiableError
from .primitive import Primitive

__all__ = ["custom_vjp"]


class custom_vjp:
    """Decorator: make a function a primitive whose gradient you supply.

    The function runs on raw arrays (its own operations are not recorded).
    Register the rule with ``@f.defvjp``: it takes the output gradient ``g``,
    the output ``ans`` and the inputs, and returns one gradient per input
    (``None`` for an input that gets none). Write it with the namespace of
    its arguments (``array_namespace(g)``) and second derivatives flow
    through it too.

    Examples
    --------
    >>> @gdbp.custom_vjp
    ... def softplus(x):
    ...     xp = array_api_compat.array_namespace(x)
    ...     return xp.logaddexp(x, 0.0)
    >>> @softplus.defvjp
    ... def softplus_vjp(g, ans, x):
    ...     xp = array_api_compat.array_namespace(g)
    ...     return (g * (1 - xp.exp(-ans)),)      # sigmoid(x) = 1 - exp(-softplus(x))
    """

    def __init__(self, fn):
        self.fn = fn
        self.rule = None
        self.prim = Primitive(getattr(fn, "__name__", "custom"), lambda xp, *args, **kw: fn(*args, **kw),
                              vjp_all=self._vjp_all)  # run on raw arrays, so f's own operations are not recorded
        functools.update_wrapper(self, fn)

    def defvjp(self, rule):
        """Register the gradient rule ``rule(g, ans, *args) -> tuple of gradients``."""
        self.rule = rule
        return rule

    def _vjp_all(self, xp, g, ans, *args, **kw):
        if self.rule is None:
            raise NotDifferentiableError(f"custom_vjp {self.prim.name}: no gradient rule registered (use @{self.prim.name}.defvjp)")
        grads = self.rule(g, ans, *args, **kw)
        if not isinstance(grads, (tuple, list)):
            grads = (grads,)
        if len(grads) != len(args):
            raise ValueError(
                f"custom_vjp {self.prim.name}: the rule returned {len(grads)} gradient(s) for {len(args)} input(s)"
            )
        return tuple(grads)

    def __call__(self, *args, **kw):
        return apply(self.prim, args, kw)
