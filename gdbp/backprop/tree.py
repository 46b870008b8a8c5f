"""Containers of arrays ("pytrees"): nested lists, tuples and dicts, flattened and rebuilt.

The functional transforms take and return them (``grad(f)`` of a dict of
weights gives a dict of gradients), and so does :func:`gdbp.descent.minimize`.
Named tuples are containers too, rebuilt as their own type (``linalg.eigh``'s
``EighResult``, as in JAX); arrays, Tensors and scalars are leaves.
"""

from __future__ import annotations

__all__ = ["flatten", "leaves", "map"]


def flatten(tree):
    """The leaves of nested lists, tuples and dicts, and a function that rebuilds the structure.

    Returns
    -------
    leaves : list
        In order: list and tuple items in turn, dict values in key order.
    rebuild : callable
        ``rebuild(values)`` puts a list of as many values back into the structure.

    Examples
    --------
    >>> leaves, rebuild = flatten({"w": a, "b": [c, d]})      # [a, c, d]
    >>> rebuild([1, 2, 3])                                     # {"w": 1, "b": [2, 3]}
    """
    if isinstance(tree, (list, tuple)):
        parts = [flatten(t) for t in tree]
        found = [leaf for p in parts for leaf in p[0]]
        sizes = [len(p[0]) for p in parts]

        def rebuild(values, kind=type(tree), named=hasattr(tree, "_fields")):
            out, start = [], 0
            for (_, sub), n in zip(parts, sizes):
                out.append(sub(values[start:start + n]))
                start += n
            return kind(*out) if named else kind(out)

        return found, rebuild
    if isinstance(tree, dict):
        keys = list(tree)
        found, rebuild_values = flatten([tree[k] for k in keys])
        return found, lambda values: dict(zip(keys, rebuild_values(values)))
    return [tree], _first


def _first(values):  # the rebuild of a leaf: one function for all, not a closure per call
    return values[0]


def leaves(tree) -> list:
    """The leaves of a tree, in :func:`flatten`'s order."""
    return flatten(tree)[0]


def map(fn, tree):
    """The same structure with ``fn`` applied to every leaf."""
    found, rebuild = flatten(tree)
    return rebuild([fn(leaf) for leaf in found])
