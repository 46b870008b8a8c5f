"""The C allocator's settings for host arrays: glibc's malloc, told to keep the memory a training step reuses.

A step done eagerly makes and frees its temporaries anew (forward values,
gradients): arrays of a few hundred KiB to a few MiB. With glibc's default
settings such an array is often mapped fresh from the kernel and unmapped
when freed (the mmap threshold is 128 KiB until the first large free raises
it), or the freed top of the heap is handed back at each step (the trim
threshold follows the mmap threshold): every step then page-faults its memory
in again. Measured on the attention-like benchmark (arrays of 128 KiB), that
took an eager step from 0.9 ms to 1.7 ms.

So, on Linux with glibc, importing gdbp sets two of malloc's parameters
(``mallopt``): arrays up to 4 MiB come from the heap, and up to 64 MiB of
freed heap is kept for the next step rather than returned. Larger arrays are
mapped and unmapped as before. Nothing is changed where the process already
chose: when any ``MALLOC_*`` variable or ``GLIBC_TUNABLES`` is set, or with
``GDBP_MALLOC=system``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["allocator_plan", "tune_allocator", "TUNED"]

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 4 << 20
TRIM_THRESHOLD = 64 << 20

#: What :func:`tune_allocator` did at import: a sentence, for ``gdbp info``.
TUNED = "not yet"


def allocator_plan(environ=None, platform: str | None = None) -> str | None:
    """Why the allocator is left as it is (a sentence), or None where gdbp tunes it."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if environ.get("GDBP_MALLOC", "").lower() == "system":
        return "left as it is: GDBP_MALLOC=system"
    chosen = sorted(v for v in environ if v == "GLIBC_TUNABLES" or v.startswith("MALLOC_"))
    if chosen:
        return f"left as it is: the environment sets {', '.join(chosen)}"
    if not platform.startswith("linux"):
        return f"left as it is: not glibc's (platform {platform})"
    return None


def tune_allocator(environ=None, platform: str | None = None, libc=None) -> str:
    """Set glibc's mmap and trim thresholds (see the module's text), unless the process chose; say what was done."""
    global TUNED
    why = allocator_plan(environ, platform)
    if why is None:
        try:
            libc = libc or ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            why = "left as it is: no glibc mallopt in this process (another C library)"
        else:
            if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1:
                why = (f"glibc malloc: arrays up to {MMAP_THRESHOLD >> 20} MiB from the heap, up to "
                       f"{TRIM_THRESHOLD >> 20} MiB of freed heap kept (GDBP_MALLOC=system to leave it as it is)")
            else:
                why = "left as it is: mallopt refused the settings"
    TUNED = why
    return why
