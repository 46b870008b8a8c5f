"""The inspection namespace of gdbp's array namespace: ``xp.__array_namespace_info__()`` (standard 2024.12).

It describes the namespace as it is bound to one backend: the devices and
dtypes are the backend library's (gdbp creates arrays with that library),
the default device is the backend's own, and each capability is what gdbp
supports on top of the library, which is the library's own: gdbp's
boolean indexing and functions of data-dependent shape (``unique_values``,
``nonzero``, ``x[mask]``) run on the library, boolean indexing with a
gradient.
"""

from __future__ import annotations

__all__ = ["NamespaceInfo"]

#: The capabilities of the 2024.12 standard, with the value gdbp assumes where a library leaves one out.
_CAPABILITIES = {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": None}


class NamespaceInfo:
    """``__array_namespace_info__()`` of gdbp's namespace on one backend.

    Parameters
    ----------
    backend : gdbp.backends.Backend
        The backend the namespace is bound to.
    """

    def __init__(self, backend):
        self.backend = backend
        self._library = backend.xp.__array_namespace_info__()
        self._devices = None  # asked once: some libraries probe every device to answer

    def __repr__(self):
        return f"<gdbp namespace info on {self.backend.spec}>"

    def capabilities(self) -> dict:
        """``{"boolean indexing": bool, "data-dependent shapes": bool, "max dimensions": int | None}``."""
        library = self._library.capabilities()
        return {key: library.get(key, default) for key, default in _CAPABILITIES.items()}

    def default_device(self):
        """The device the namespace creates arrays on: its backend's."""
        return self.backend.device

    def devices(self) -> list:
        """The devices of the backend's library, the default device among them (a list, as 2024.12 has it)."""
        if self._devices is None:
            found = list(self._library.devices())
            if self.backend.device not in found:
                found.insert(0, self.backend.device)
            self._devices = found
        return list(self._devices)

    def _check(self, device):
        if device is not None and device not in self.devices():
            raise ValueError(
                f"device {device!r} is not a device of gdbp's namespace on {self.backend.spec}; "
                f"choose among {self.devices()} (or None, for {self.backend.device!r})"
            )
        return self.backend.device if device is None else device

    def default_dtypes(self, *, device=None) -> dict:
        """The default dtype of each kind: ``{"real floating", "complex floating", "integral", "indexing"}``."""
        return self._library.default_dtypes(device=self._check(device))

    def dtypes(self, *, device=None, kind=None) -> dict:
        """The dtypes of a kind (a kind name, a tuple of them, or None for all), by name.

        ``kind`` is any kind of ``isdtype``: ``"bool"``, ``"signed integer"``,
        ``"unsigned integer"``, ``"integral"``, ``"real floating"``,
        ``"complex floating"``, ``"numeric"``.
        """
        return self._library.dtypes(device=self._check(device), kind=kind)
