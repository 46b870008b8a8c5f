"""gdbp.compile: trace a function of arrays once per signature, then replay its plan.

The first call with given argument shapes, dtypes and backends runs the
function eagerly while a tracer records every primitive it applies, forward
and backward, every in-place write, every gradient given to a leaf, and the
optimizer steps and random draws it makes. Later calls with the same
signature replay that plan: a straight-line list of the primitives' forward
functions on raw arrays, with no Tensors, graph nodes or sorting.

What is captured, and how data goes in:

- The function's array arguments (arrays, or Tensors that do not require
  grad; in lists, tuples and dicts) are its inputs: pass the batch as an
  argument. Other arguments (Python numbers, strings) are part of the
  signature: a new value traces again.
- Tensors the function reads without getting them as arguments (a model's
  parameters) are read afresh at every replay, and written as the function
  writes them (an optimizer step updates them, ``.grad`` is set).
- Arrays the function closes over are used as they are at each replay.
- A random draw from gdbp's streams (Dropout, ``nn.functional.dropout``)
  is drawn again at each replay, advancing the stream as a call would.

What cannot be replayed is refused at trace time with :class:`CompileError`:
a host read of a traced value (``float(x)``, ``bool(x)``, ``if x > 0``,
``x.item()``, ``x.numpy()``), and an array computed from a traced value
outside gdbp's operations (through ``.data``). Python code that does not go
through gdbp (printing, appending to a list, NumPy's own random numbers) runs
only while tracing, not at replays.
"""

from __future__ import annotations

from .compiled import Compiled, compile
from ..backprop.trace import CompileError

__all__ = ["compile", "Compiled", "CompileError"]
