"""Progress bars for long work (decoding, transcription, OCR, evaluation): on a terminal only.

The design asks that long jobs show progress on a terminal and stay quiet in
tests and when piped. Every bar in the project comes from :func:`progress`,
so that rule lives in one place.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["progress", "on_terminal"]


def on_terminal() -> bool:
    """True when stderr is a terminal (a person is watching)."""
    return sys.stderr.isatty()


def progress(iterable: Iterable[Any] | None = None, *, desc: str, unit: str = "it", total: int | None = None,
             initial: int = 0, enabled: bool | None = None, min_items: int = 0, leave: bool = False) -> Any:
    """A tqdm bar that shows only on a terminal.

    Args:
        iterable: what to iterate (or None, and ``update()`` the bar yourself).
        desc, unit, total, initial, leave: as tqdm's.
        enabled: force the bar on or off (default: on a terminal only).
        min_items: stay quiet for fewer items than this (short lists finish before a bar helps).
    """
    from tqdm import tqdm

    show = on_terminal() if enabled is None else enabled
    if min_items and iterable is not None and hasattr(iterable, "__len__") and len(iterable) < min_items:  # type: ignore[arg-type]
        show = False
    return tqdm(iterable, desc=desc, unit=unit, total=total, initial=initial, leave=leave,
                disable=not show, dynamic_ncols=True)
