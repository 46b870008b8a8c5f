"""Grad mode, kept per thread (as PyTorch keeps it).

Two threads training two models, or one thread inside ``no_grad()`` while
another differentiates, must not see each other's mode. Each thread starts
with recording on and no transform running.
"""

from __future__ import annotations

import contextlib
import threading

__all__ = ["is_grad_enabled", "no_grad", "enable_grad", "GradMode", "rewriting", "state"]


class _State(threading.local):
    # Class attributes are what every new thread starts from.
    grad_enabled = True  # operations on Tensors that require grad are recorded
    depth = 0  # how many of gdbp's transforms (grad, vjp...) are running their function
    rewrite = True  # the engine applies gdbp.backprop.rewrites as it records


#: This thread's grad mode; the engine reads ``state.grad_enabled`` on every operation.
state = _State()


def is_grad_enabled() -> bool:
    """Whether operations on Tensors that require grad are being recorded (in this thread)."""
    return state.grad_enabled


class GradMode:
    """Set grad mode inside a ``with`` block (or a decorated function); restore it after, even on error."""

    __slots__ = ("_mode", "_previous")

    def __init__(self, mode: bool):
        self._mode = mode

    def __enter__(self):
        self._previous = state.grad_enabled
        state.grad_enabled = self._mode

    def __exit__(self, *exc):
        state.grad_enabled = self._previous

    def __call__(self, fn):
        """Use as a decorator: run fn with this grad mode."""
        mode = self._mode

        def wrapper(*args, **kw):
            with GradMode(mode):
                return fn(*args, **kw)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


def no_grad() -> GradMode:
    """Context manager (or decorator) in which no graph is recorded.

    Inside it, operations on Tensors that require grad give Tensors that do
    not, and in-place updates of parameters are allowed (as in an optimizer).
    It applies to the current thread only.
    """
    return GradMode(False)


def enable_grad() -> GradMode:
    """Context manager (or decorator) that turns recording back on inside :func:`no_grad`."""
    return GradMode(True)


@contextlib.contextmanager
def rewriting(flag: bool):
    """Inside the block, whether the engine rewrites composed code as it records (gdbp.backprop.rewrites).

    With False, the graph is the operations as written (the log-sum-exp built from max, exp, sum and log
    keeps the shift's gradient and max's rule for ties). For the current thread only.
    """
    previous = state.rewrite
    state.rewrite = bool(flag)
    try:
        yield
    finally:
        state.rewrite = previous
