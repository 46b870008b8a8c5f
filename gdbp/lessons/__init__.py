"""The two ideas gdbp is named after, shown from real computations.

``gdbp lesson descent`` (:func:`gdbp.lessons.descent.run`): gradient descent
with learning rates too small, good, too large and diverging, on a 1-D and a
2-D cost, the paths drawn. ``gdbp lesson backprop``
(:func:`gdbp.lessons.backprop.run`): the backward sweep through a 2-2-1
network walked node by node, every number checked.
"""

from . import backprop, descent

__all__ = ["backprop", "descent"]
