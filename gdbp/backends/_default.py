"""The default backend: where new arrays (parameters, data) are created.

Math code never consults it: functions take their namespace from their inputs.
"""

from __future__ import annotations

from ._backend import Backend
from ._resolve import env_spec, resolve

__all__ = ["current", "use"]

_default: Backend | None = None


def current() -> Backend:
    """The default backend: set by :func:`use`, else ``GDBP_BACKEND``, else ``"auto"``."""
    global _default
    if _default is None:
        _default = resolve(env_spec())
    return _default


class use:
    """Make a backend the default for creating arrays.

    Works as a plain call (the choice stays) or as a context manager (the
    previous choice comes back on exit, even after an exception).

    Parameters
    ----------
    spec : str, Backend or namespace
        Anything :func:`gdbp.backends.resolve` accepts.

    Examples
    --------
    >>> gdbp.use("numpy")                 # from now on
    >>> with gdbp.use("cupy:1"):          # only inside the block
    ...     w = gdbp.tensor([1.0, 2.0])
    """

    __slots__ = ("backend", "_previous")

    def __init__(self, spec):
        global _default
        self.backend = resolve(spec)
        self._previous = _default
        _default = self.backend

    def __enter__(self) -> Backend:
        return self.backend

    def __exit__(self, *exc) -> None:
        global _default
        _default = self._previous

    def __repr__(self) -> str:
        return f"use({self.backend.spec!r})"
