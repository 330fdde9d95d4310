"""Shapes drawn on a flat background: squares, rectangles, circles, counted from pixels.

An object detector knows 80 kinds of things, not drawings: a slide with six
squares, a diagram's boxes, dots on a chart. This finds them the plain way —
pixels far (in CIELAB) from the frame's background colour, split into
connected regions, each classified by how much of its bounding box it fills
and by its aspect ratio. Regions under on-screen text (the OCR boxes) are
letters, not shapes, and are skipped.

It only runs on frames whose background covers most of the picture
(``MIN_BACKGROUND``): on a photograph every region is texture and a count
would mean nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pydantic import BaseModel, Field

__all__ = ["Shape", "find_shapes", "MIN_BACKGROUND"]

MIN_BACKGROUND = 0.6  # share of the frame within BACKGROUND_DELTA of its median colour
BACKGROUND_DELTA = 25.0  # CIELAB distance that separates a drawn pixel from the background
MIN_AREA_SHARE = 0.0005  # smaller regions are noise or compression artefacts
MAX_AREA_SHARE = 0.25  # larger regions are a panel or a picture, not a shape
SOLID_FILL = 0.85  # a region filling this share of its box is a square or rectangle
ROUND_FILL = (0.65, 0.85)  # pi/4 = 0.785 for a disc
SQUARE_ASPECT = (0.8, 1.25)


class Shape(BaseModel):
    """One drawn shape. Box in frame pixels, [x0, y0, x1, y1]."""

    label: str = Field(description="square, rectangle or circle")
    box: tuple[float, float, float, float]
    t: float = Field(description="time (s) of the frame")


def find_shapes(image: np.ndarray, t: float = 0.0,
                text_boxes: Iterable[tuple[float, float, float, float]] = ()) -> list[Shape]:
    """Shapes on an (H, W, 3) uint8 RGB frame, left to right, top to bottom (see the module docstring).

    Args:
        text_boxes: boxes of text read on the frame (their regions are letters).
    """
    import cv2

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"find_shapes wants an (H, W, 3) uint8 RGB image, not {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)  # (H, W, 3), L in 0..255
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    background = np.median(lab.reshape(-1, 3), axis=0)  # (3,)
    drawn = np.linalg.norm(lab - background, axis=-1) > BACKGROUND_DELTA  # (H, W)
    if 1.0 - drawn.mean() < MIN_BACKGROUND:
        return []
    count, _labels, stats, _centres = cv2.connectedComponentsWithStats(drawn.astype(np.uint8), connectivity=8)
    letters = [tuple(float(v) for v in b) for b in text_boxes]
    out = []
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        share = area / (height * width)
        if not MIN_AREA_SHARE <= share <= MAX_AREA_SHARE:
            continue
        box = (float(x), float(y), float(x + w), float(y + h))
        if any(_overlaps(box, b, pad=3.0) for b in letters):
            continue
        label = _classify(area / (w * h), w / h)
        if label:
            out.append(Shape(label=label, box=box, t=round(t, 3)))
    return sorted(out, key=lambda s: (s.box[1] // 8, s.box[0]))


def _classify(fill: float, aspect: float) -> str | None:
    squareish = SQUARE_ASPECT[0] <= aspect <= SQUARE_ASPECT[1]
    if fill >= SOLID_FILL:
        return "square" if squareish else "rectangle"
    if ROUND_FILL[0] <= fill < ROUND_FILL[1] and squareish:
        return "circle"
    return None  # an irregular region: not counted as a shape


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float], pad: float) -> bool:
    return not (a[2] < b[0] - pad or a[0] > b[2] + pad or a[3] < b[1] - pad or a[1] > b[3] + pad)
