"""How this process's native heap hands freed memory back: promptly, so a long session's RSS stays flat.

Why: glibc serves an allocation from its heap unless it is larger than the
mmap threshold, and it *raises* that threshold (up to 32 MB) each time a
large mapped block is freed. After the first few tool calls, the frames,
tensors and OCR buffers of every later call then come from the heap, and the
freed holes between live objects are never returned: measured on the
60-minute long suite, `malloc_trim` after a run gave back 0.39 GB of 3.26 GB.
A fixed threshold of 2 MB keeps every large buffer in its own mapping, which
is unmapped on free. Measured (`benchmarks/RESULTS.md`, "Sixth session"):
peak RSS 3.53 → 2.89 GB on the 60-minute suite, for ~20% more wall time
(fresh mappings are zero-filled page by page).

``MCR_MMAP_THRESHOLD`` (bytes) sets another threshold; 0 leaves glibc's own
dynamic one. Other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["MMAP_THRESHOLD", "release_freed_memory_promptly"]

MMAP_THRESHOLD = 2 * 2**20  # bytes: buffers at least this large get their own mapping
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
ENV = "MCR_MMAP_THRESHOLD"


def release_freed_memory_promptly(threshold: int | None = None) -> bool:
    """Fix glibc's mmap threshold (``MCR_MMAP_THRESHOLD`` or `MMAP_THRESHOLD`); True when it was set.

    Call it once, early (the CLI does, before any model loads); it changes how
    later allocations are served, not the ones already made.
    """
    if threshold is None:
        raw = os.environ.get(ENV, "").strip()
        try:
            threshold = int(raw) if raw else MMAP_THRESHOLD
        except ValueError:
            raise ValueError(f"{ENV}={raw!r} is not a number of bytes: unset it, or give e.g. {MMAP_THRESHOLD}") from None
    if threshold <= 0:
        return False
    libc = glibc()
    return libc is not None and bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)))


def glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (whose mallopt numbering `_M_MMAP_THRESHOLD` is), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt
        libc.gnu_get_libc_version
    except (OSError, AttributeError, TypeError):
        return None
    return libc
