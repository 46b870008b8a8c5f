"""Integer arguments, checked the one way every layer checks them."""

from __future__ import annotations

import operator

__all__ = ["integer"]


def integer(name: str, value, where: str, low: int = 0) -> int:
    """value as a Python int >= low: any integer (``operator.index``: int, NumPy integers), never a bool.

    Raises
    ------
    TypeError
        value is a bool, or not an integer; the message names ``where`` and ``name``.
    ValueError
        value is below ``low``.
    """
    what = "a positive int" if low == 1 else f"an int >= {low}"
    if isinstance(value, bool):
        raise TypeError(f"{where}: {name} must be {what}, got {value!r}")
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{where}: {name} must be {what}, got {type(value).__name__} {value!r}") from None
    if n < low:
        raise ValueError(f"{where}: {name} must be {what}, got {n}")
    return n
