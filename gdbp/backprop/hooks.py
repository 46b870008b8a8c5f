"""Hooks that run in a backward sweep as soon as a leaf's gradient is complete.

Data-parallel training starts the all-reduce of a bucket of gradients the
moment the sweep has produced all of them, so that communication overlaps the
rest of the backward pass (as PyTorch DDP's and Horovod's hooks do). The
sweep counts how many of the nodes it will visit feed each hooked leaf; after
the last one, it sets the leaf's ``.grad`` and calls its hooks, then goes on.
Nothing is counted when no hook is registered.
"""

from __future__ import annotations

import weakref

__all__ = ["on_grad_ready", "HookHandle", "hooks_of", "any_hooks"]

# id(tensor) -> (weak reference to the tensor, [hook, ...])
_registry: dict[int, tuple] = {}


class HookHandle:
    """What :func:`on_grad_ready` returns: ``handle.remove()`` unregisters the hook."""

    __slots__ = ("_key", "_fn")

    def __init__(self, key, fn):
        self._key = key
        self._fn = fn

    def remove(self) -> None:
        entry = _registry.get(self._key)
        if entry is not None and self._fn in entry[1]:
            entry[1].remove(self._fn)
            if not entry[1]:
                del _registry[self._key]


def on_grad_ready(tensor, fn) -> HookHandle:
    """Call ``fn(tensor)`` in every backward sweep once ``tensor.grad`` holds this sweep's whole gradient.

    Parameters
    ----------
    tensor : Tensor
        A leaf that requires grad (a parameter).
    fn : callable
        Called with the tensor, with recording off, before the sweep moves on
        to the next node. It may read and replace ``tensor.grad``.

    Returns
    -------
    HookHandle

    Raises
    ------
    TypeError
        tensor is not a leaf Tensor that requires grad, or fn is not callable.
    """
    from .tensor import Tensor

    if not isinstance(tensor, Tensor) or not tensor.is_leaf or not tensor.requires_grad:
        raise TypeError("on_grad_ready takes a leaf Tensor that requires grad (a parameter)")
    if not callable(fn):
        raise TypeError(f"on_grad_ready: the hook must be callable, got {type(fn).__name__}")
    key = id(tensor)
    entry = _registry.get(key)
    if entry is None or entry[0]() is not tensor:
        entry = _registry[key] = (weakref.ref(tensor, lambda _, key=key: _registry.pop(key, None)), [])
    entry[1].append(fn)
    return HookHandle(key, fn)


def any_hooks() -> bool:
    return bool(_registry)


def hooks_of(tensor) -> list:
    """The hooks registered on a tensor (empty if none)."""
    entry = _registry.get(id(tensor))
    return entry[1] if entry is not None and entry[0]() is tensor else []
