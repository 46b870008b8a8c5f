"""Pictures from real runs: descent paths over their cost, and the recorded graph of a backward pass.

matplotlib is imported only when a picture is drawn (``pip install 'gdbp[plot]'``).
"""

from .backprop_graph import graph
from .descent_paths import descent

__all__ = ["descent", "graph"]
