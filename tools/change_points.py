"""Where the picture changes between sampled frames: the extra times on-screen text must be read at.

Text shown for half a second falls between frames sampled once a second, and
a shot shorter than the sampling step is never sampled at all (issue 21, 4a).
Reading text on every frame is out of the question (OCR costs ~1 s a frame on
2 cores), but telling whether two frames differ costs almost nothing on
`grey_thumbnail`s. So a span is scanned at `SCAN_FPS` (a word shown for 0.5 s
is on at least one scan frame), split into *runs* of unchanged picture at its
change points, and only the runs that no already-read frame falls in are
read, longest first (a still title outlasts the frames of a moving ball),
within a budget.

The pieces are pure functions of thumbnails and times, so a per-video index
that decodes the video once can call `change_points` / `runs_between` /
`unread_runs` on its own frames; `text_read_times` is the whole plan for one
span of a file, decoding in bounded chunks (memory stays flat on long spans:
`MAX_SCAN_FRAMES` per call, thumbnails of ~160x90).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from mcr.model.media.video import FrameStore, read_frames_at
from mcr.tools.pixels import changed_share, grey_thumbnail

SCAN_FPS = 4.0  # a word on screen for 0.5 s is on two scan frames, at least one fully
MAX_SCAN_FRAMES = 240  # per call: longer spans are scanned more sparsely, never decoded whole
CHANGE_SHARE = 0.005  # share of a thumbnail's pixels that must change: above the 0.25-0.4% a small animated element
# of the truth suite's videos flickers by every 0.25 s (measured), below a short word appearing (~1% and up)
INDEXED_FROM_S = 300.0  # videos this long or longer read change points from their index (as the index scans sparsely)
CHUNK_BYTES = 64 * 2**20  # decoded RGB frames held at once while scanning


class Run(BaseModel):
    """A stretch of scan frames with no change between consecutive ones (one still picture)."""

    first: float = Field(description="time (s) of its first scan frame")
    last: float = Field(description="time (s) of its last scan frame")
    frames: int = Field(ge=1, description="scan frames in it")
    middle: float = Field(description="time (s) of its middle frame: where it is read")


def scan_times(start: float, end: float, scan_fps: float = SCAN_FPS, max_frames: int = MAX_SCAN_FRAMES) -> list[float]:
    """Times ``k / scan_fps`` in [start, end), thinned evenly to at most `max_frames`."""
    if scan_fps <= 0 or max_frames < 1:
        raise ValueError(f"scan_fps ({scan_fps}) must be > 0 and max_frames ({max_frames}) >= 1")
    first, last = math.ceil(start * scan_fps - 1e-9), math.ceil(end * scan_fps - 1e-9) - 1
    grid = [k / scan_fps for k in range(first, last + 1)]
    if len(grid) > max_frames:
        picks = np.linspace(0, len(grid) - 1, max_frames).round().astype(int)  # (max_frames,)
        grid = [grid[i] for i in sorted(set(picks.tolist()))]
    return [round(t, 6) for t in grid]


def change_points(thumbs: Sequence[np.ndarray], min_changed_share: float = CHANGE_SHARE) -> list[int]:
    """Indices i >= 1 where `grey_thumbnail` i differs from i - 1 (frames in time order)."""
    return [i for i in range(1, len(thumbs)) if changed_share(thumbs[i - 1], thumbs[i]) > min_changed_share]


def runs_between(times: Sequence[float], cuts: Sequence[int]) -> list[Run]:
    """The runs of `times` split at the change-point indices `cuts`."""
    if not times:
        return []
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(times))), len(times)]
    out = []
    for a, b in zip(bounds, bounds[1:]):
        out.append(Run(first=times[a], last=times[b - 1], frames=b - a, middle=times[(a + b - 1) // 2]))
    return out


def runs_from_changes(start: float, end: float, changes: Sequence[float], scan_fps: float = SCAN_FPS) -> list[Run]:
    """The runs of still picture of [start, end] split at change times known beforehand (a video index's).

    A run's ``frames`` counts the `scan_fps` ticks it lasts, so `unread_runs`
    ranks these runs by length as it does scanned ones.
    """
    if end <= start:
        return []
    edges = [start, *sorted(t for t in set(changes) if start < t < end), end]
    out = []
    for a, b in zip(edges, edges[1:]):
        last = max(a, b - 1.0 / scan_fps) if b < end else b
        out.append(Run(first=round(a, 6), last=round(last, 6), frames=max(1, round((b - a) * scan_fps)),
                       middle=round((a + b) / 2, 6)))
    return out


def unread_runs(runs: Sequence[Run], read: Sequence[float], budget: int) -> list[Run]:
    """The runs no time in `read` falls in, longest first, at most `budget`; returned in time order."""
    if budget <= 0:
        return []
    eps = 1e-6
    unread = [r for r in runs if not any(r.first - eps <= t <= r.last + eps for t in read)]
    chosen = sorted(unread, key=lambda r: (-r.frames, r.first))[:budget]
    return sorted(chosen, key=lambda r: r.first)


def thumbnails(path: str | Path, times: Sequence[float], store: FrameStore | None = None,
               chunk_bytes: int = CHUNK_BYTES, frame_bytes: int | None = None) -> list[np.ndarray]:
    """`grey_thumbnail`s of the frames shown at `times` (sorted), decoding a bounded chunk at a time."""
    out: list[np.ndarray] = []
    chunk = 8
    i = 0
    while i < len(times):
        frames = read_frames_at(path, times[i:i + chunk], store=store)
        out.extend(grey_thumbnail(f.image) for f in frames)
        i += len(frames)
        size = frame_bytes or (frames[0].image.nbytes if frames else 0)
        chunk = max(4, min(256, chunk_bytes // max(1, size)))
    return out


def text_read_times(
    path: str | Path,
    start: float,
    end: float,
    read: Sequence[float],
    *,
    budget: int,
    scan_fps: float = SCAN_FPS,
    max_scan_frames: int = MAX_SCAN_FRAMES,
    min_changed_share: float = CHANGE_SHARE,
    store: FrameStore | None = None,
    known: Sequence[float] | None = None,
) -> list[float]:
    """Times in [start, end] whose picture no frame at `read` shows: read text there too.

    Args:
        read: times of frames whose text is (or will be) read anyway, e.g. a
            look's sampled frames or a shot's keyframe; they join the scan.
        budget: the most times returned (each costs one OCR).
        store: a `FrameStore` shared with the caller, so the frames returned
            (and the ones in `read`) are decoded once.
        known: the span's change times, already found (a video index's change
            points): then nothing is decoded to find them (`runs_from_changes`).

    Returns:
        The middle time of each chosen run, in time order (may be empty).
    """
    if budget <= 0 or end <= start:
        return []
    inside = [t for t in read if start - 1e-6 <= t <= end + 1e-6]
    if known is not None:
        return [r.middle for r in unread_runs(runs_from_changes(start, end, known, scan_fps), inside, budget)]
    times = sorted(set(scan_times(start, end, scan_fps, max_scan_frames)) | {round(t, 6) for t in inside})
    if len(times) < 2:
        return []
    thumbs = thumbnails(path, times, store=store)
    runs = runs_between(times, change_points(thumbs, min_changed_share))
    return [r.middle for r in unread_runs(runs, inside, budget)]


def indexed_changes(ctx: Any, start: float, end: float, duration: float) -> list[float] | None:
    """The change points of [start, end] from the video's index, or None (no index has looked there).

    Tools pass them as ``known`` to `text_read_times`, so a span of a long
    video is not decoded at `SCAN_FPS` again for every look at it.
    """
    if duration < INDEXED_FROM_S:  # the probed length, not the episode's VideoRef (which may not carry one)
        return None  # a short video's scan costs little, and its tools never touch the index machinery
    try:
        from mcr.tools.video_index.for_tools import known_changes
    except ImportError:  # the index's extras are not installed
        return None
    from mcr.context import TimeSpan

    return known_changes(ctx, TimeSpan(start=start, end=end))
