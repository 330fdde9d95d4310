"""What moves in a span and which way: one moving thing, found against the span's own background.

`mcr.tools.pixels.motion` says *how much* the picture changes between two
frames, which cannot tell "a ball rolls to the right" from "a ball rolls to
the left" or from a camera zoom. This module measures the direction.

How: within one shot the background is what most sampled frames show at a
pixel, so the per-pixel median of the frames (shrunk to `ANALYSIS_WIDTH`) is
the background and each frame's *foreground* is where it differs from it by
more than `FOREGROUND_DELTA` (a small opening removes speckle). A frame whose
foreground covers more than `MAX_MOVER_SHARE` is the whole picture changing
(a pan, a zoom over a photograph, a cut), not a thing moving, and the span
then reports no mover; so does one whose foreground is scattered (the
edges of a slowly zoomed photograph, many small blobs) rather than compact
(the thing, and where it stood: two blobs holding `MIN_COMPACT` of it). Otherwise the foreground's centroid and area per frame
are the thing's path; its net displacement gives the heading (left/right,
up/down; towards/away by the area's growth, only for a thing that grows in
place, since a thing that also travels across shows where it stood too), the reversals of its steps say
whether it goes back and forth, and when it starts: the first frame where it
has left its first place, moved back along its speed to the instant it set
off (constant speed between the two frames around the start).

A thing that stays put matches the median and is background: "nothing
moves" is a mover-free span whose motion was measured. Three frames are the
least that separate a background from a thing (two frames cannot say which
one is the background).

The mover's colours are its foreground pixels' palette names less those of
the whole frames (the trick of `pixels.object_colours`): where the thing left,
a frame shows the background through its foreground, and that colour is the
frames' commonest, so it drops out.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from mcr.tools.pixels import ColourShare, colour_share_vector, ranked_shares, shrink

FOREGROUND_DELTA = 40  # RGB levels (of 255, the largest channel) from the background for a pixel to be foreground
MIN_MOVER_SHARE = 0.002  # a foreground smaller than this share of the frame is noise (≈ 30 px at 160×90)
MAX_MOVER_SHARE = 0.35  # a foreground larger than this is the whole picture changing, not a thing moving
MIN_STEP = 0.02  # a centroid step shorter than this (fraction of the frame's size) is no movement
MIN_HEADING = 0.08  # a net displacement shorter than this on an axis gives no heading along it
GROWTH = 1.6  # the area grows (shrinks) by this factor: it comes towards (goes away from) the camera
MIN_COMPACT = 0.7  # a thing's foreground is one or two blobs (the thing, where it was): their share of it
MIN_FRAMES = 3


class PathPoint(BaseModel):
    """Where the moving thing is in one sampled frame: centroid and area as fractions of the frame."""

    t: float
    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1, description="0 at the top")
    area: float = Field(ge=0, le=1)


class Mover(BaseModel):
    """One thing that moves in a span, its path and heading (no model wrote any of it)."""

    start: float = Field(description="when it sets off (s)")
    end: float = Field(description="the last sampled time it was still moving (s)")
    path: list[PathPoint]
    dx: float = Field(description="net horizontal displacement, fraction of the width (+ to the right)")
    dy: float = Field(description="net vertical displacement, fraction of the height (+ downwards)")
    growth: float = Field(description="last area / first area (> 1: coming closer)")
    reversals_x: int = Field(default=0, description="times its horizontal steps change sign")
    reversals_y: int = Field(default=0, description="times its vertical steps change sign")
    colours: list[ColourShare] = Field(default_factory=list, description="its own colours")

    def depth(self) -> int:
        """+1 it comes towards the camera, -1 it goes away, 0 neither (or it travels across: see the module)."""
        if abs(self.dx) >= MIN_HEADING or abs(self.dy) >= MIN_HEADING:
            return 0
        return 1 if self.growth >= GROWTH else -1 if self.growth <= 1 / GROWTH else 0

    def heading(self) -> str:
        """The measured heading in words, e.g. ``left to right``, ``top to bottom, towards the camera``."""
        parts = []
        if abs(self.dx) >= MIN_HEADING:
            parts.append("left to right" if self.dx > 0 else "right to left")
        if abs(self.dy) >= MIN_HEADING:
            parts.append("top to bottom" if self.dy > 0 else "bottom to top")
        if self.reversals_x:
            parts.append("back and forth")
        if self.reversals_y:
            parts.append("up and down")
        if self.depth() > 0:
            parts.append("towards the camera")
        elif self.depth() < 0:
            parts.append("away from the camera")
        return ", ".join(parts) or "moving in place"

    def describe(self) -> str:
        colour = f"{self.colours[0].name} " if self.colours else ""
        return f"a {colour}thing moves {self.heading()} ({self.start:.1f}-{self.end:.1f} s)"


def _foregrounds(small: np.ndarray) -> np.ndarray:
    """(F, h, w, 3) uint8 frames → (F, h, w) bool: where each differs from the per-pixel median."""
    import cv2

    background = np.median(small, axis=0)  # (h, w, 3)
    masks = np.abs(small.astype(np.int16) - background.astype(np.int16)).max(axis=-1) > FOREGROUND_DELTA  # (F, h, w)
    kernel = np.ones((2, 2), np.uint8)
    return np.stack([cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_OPEN, kernel) > 0 for m in masks])


def _compact(mask: np.ndarray) -> bool:
    """The foreground is one thing (and where it stood), not scattered edges (see `MIN_COMPACT`)."""
    import cv2

    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
    areas = np.sort(stats[1:, cv2.CC_STAT_AREA])[::-1]  # (n-1,) largest first
    return n > 1 and areas[:2].sum() >= MIN_COMPACT * areas.sum()


def _reversals(steps: np.ndarray) -> int:
    signs = [np.sign(s) for s in steps if abs(s) >= MIN_STEP]
    return sum(a != b for a, b in zip(signs, signs[1:]))


def find_mover(images: list[np.ndarray], times: list[float]) -> Mover | None:
    """The one thing that moves across `images` (RGB frames of one shot at `times`), or None.

    None when fewer than `MIN_FRAMES` frames, when nothing moves, or when the
    whole picture changes (see the module docstring).
    """
    if len(images) < MIN_FRAMES or len(images) != len(times):
        return None
    small = [shrink(im) for im in images]
    if len({s.shape for s in small}) > 1:
        return None
    small = np.stack(small)  # (F, h, w, 3)
    masks = _foregrounds(small)
    shares = masks.reshape(len(masks), -1).mean(axis=1)  # (F,)
    if shares.max() > MAX_MOVER_SHARE:
        return None  # a pan, a zoom, a cut: the picture moves, not a thing in it
    h, w = masks.shape[1:]
    ys, xs = np.mgrid[0:h, 0:w]
    path = []
    for t, m, share in zip(times, masks, shares):
        if share < MIN_MOVER_SHARE or not _compact(m):
            continue
        path.append(PathPoint(t=round(t, 3), x=float(xs[m].mean() / max(1, w - 1)),
                              y=float(ys[m].mean() / max(1, h - 1)), area=float(share)))
    if len(path) < 2 or len(path) * 2 < sum(shares >= MIN_MOVER_SHARE):
        return None  # most frames' foreground is scattered: the picture changes, no one thing moves
    xy = np.array([[p.x, p.y] for p in path])  # (P, 2)
    from_first = np.hypot(*(xy - xy[0]).T)  # (P,)
    if from_first.max() < MIN_STEP:
        return None  # something flickers in place; nothing travels
    steps = np.diff(xy, axis=0)  # (P-1, 2)
    moved = int(np.argmax(from_first >= MIN_STEP))  # first point away from where it was first seen
    start = path[moved - 1].t
    if moved + 1 < len(path):  # back along its speed from there, to the instant it set off
        speed = float(np.hypot(*steps[moved])) / max(1e-6, path[moved + 1].t - path[moved].t)
        if speed > 0:
            start = max(path[moved - 1].t, path[moved].t - float(from_first[moved]) / speed)
    stepping = [i + 1 for i, s in enumerate(np.hypot(*steps.T)) if s >= MIN_STEP]
    end = path[stepping[-1]].t if stepping else path[-1].t
    colours = _own_colours(small, masks)
    return Mover(start=round(start, 3), end=round(end, 3), path=path, dx=round(float(xy[-1, 0] - xy[0, 0]), 4),
                 dy=round(float(xy[-1, 1] - xy[0, 1]), 4), growth=round(path[-1].area / max(1e-6, path[0].area), 3),
                 reversals_x=_reversals(steps[:, 0]), reversals_y=_reversals(steps[:, 1]), colours=colours)


def _own_colours(small: np.ndarray, masks: np.ndarray) -> list[ColourShare]:
    """The foreground's palette shares less the whole frames' (see the module docstring)."""
    fg = colour_share_vector(small[masks])
    whole = colour_share_vector(small.reshape(-1, 3))
    lift = np.clip(fg - whole, 0.0, None)
    if lift.sum() <= 0:
        return ranked_shares(fg)
    return ranked_shares(lift / lift.sum())
