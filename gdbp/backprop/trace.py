"""Where :func:`gdbp.compile` watches a function run: the hooks its tracer is called through.

``active`` is None except while a compile traces a function (in that thread);
then every primitive the engine applies, every in-place write, every gradient
a backward sweep hands to a leaf, every array a creation function or a
random stream makes, and every opaque step (an optimizer's update) is told to
the tracer, which builds its plan from them. With no tracer, each hook is one
attribute test.
"""

from __future__ import annotations

import threading

__all__ = ["CompileError", "tracer", "set_tracer", "external", "opaque"]


class CompileError(RuntimeError):
    """Something a compiled function does cannot be replayed (a host read of a traced value, ...)."""


class _Local(threading.local):
    active = None  # this thread's tracer, while one traces


_local = _Local()
_lock = threading.Lock()
#: How many threads are tracing now: the hot paths read this plain global first (a thread-local
#: attribute costs several times as much) and ask for this thread's tracer only when it is not 0.
tracing = 0


def tracer():
    """The tracer recording this thread's computation, or None."""
    return _local.active if tracing else None


def set_tracer(t) -> None:
    """Install (or, with None, remove) this thread's tracer; only gdbp.compile calls it."""
    global tracing
    with _lock:
        if t is not None and _local.active is None:
            tracing += 1
        elif t is None and _local.active is not None:
            tracing -= 1
        _local.active = t


def external(fn, *args, **kw):
    """``fn(*args, **kw)``, a new array from outside the graph (a random draw, say).

    While a compile traces, the call is recorded so that every replay calls
    ``fn`` again, as the function would when run eagerly (a random stream
    advances on each call rather than the first draw being reused).
    """
    result = fn(*args, **kw)
    t = tracer()
    if t is not None:
        t.external(fn, args, kw, result)
    return result


def opaque(fn, *args, **kw):
    """``fn(*args, **kw)`` for its side effects (an optimizer's step, zero_grad), recorded to run again on replay.

    What ``fn`` computes inside is not traced: a replay calls it as it is, on
    the state (parameters, their ``.grad``) that the replayed steps before it
    left. Its return value is not passed back into the plan.
    """
    t = tracer()
    if t is None:
        return fn(*args, **kw)
    return t.opaque(fn, args, kw)
