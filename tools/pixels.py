"""Facts measured straight from pixels: colour names with shares, brightness, contrast, motion.

No model is involved, so these are evidence in the strictest sense: anyone
with the frame gets the same numbers. Colours are named with a fixed palette
in CIELAB, where Euclidean distance roughly follows perceived difference, so
"dark blue" and "black" separate the way a viewer would separate them (in RGB
they are close). Each pixel (of a frame shrunk to ~160 px wide: shares do not
need more) takes its nearest palette name; a frame's colours are the names
covering at least `MIN_SHARE` of it.

Brightness is the mean CIELAB lightness L* (0 black – 100 white), contrast
its standard deviation (RMS contrast in L* units). Motion between two frames
is the mean absolute difference of their grey levels (0–1) and the share of
pixels that changed by more than `MOTION_PIXEL_DELTA` grey levels.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

# Name -> sRGB. Chosen to cover the hues and lightness levels people name
# (the basic colour terms, plus light/dark variants for the common ones).
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "dark grey": (70, 70, 70),
    "grey": (128, 128, 128),
    "light grey": (225, 225, 225),
    "white": (255, 255, 255),
    "dark red": (120, 20, 20),
    "red": (210, 30, 30),
    "pink": (240, 140, 180),
    "orange": (240, 130, 20),
    "brown": (125, 75, 35),
    "beige": (225, 205, 165),
    "yellow": (250, 220, 30),
    "olive": (120, 120, 30),
    "dark green": (20, 80, 30),
    "green": (40, 170, 50),
    "light green": (140, 230, 100),
    "teal": (0, 128, 128),
    "cyan": (60, 210, 220),
    "light blue": (150, 200, 245),
    "blue": (30, 70, 210),
    "dark blue": (15, 20, 80),
    "purple": (120, 40, 150),
    "magenta": (210, 40, 170),
}
MIN_SHARE = 0.05  # colours covering less of the frame are not reported
ANALYSIS_WIDTH = 160  # frames are shrunk to this width before colour statistics
MOTION_PIXEL_DELTA = 25  # grey levels (of 255) for a pixel to count as changed


class ColourShare(BaseModel):
    """One named colour and the share of the frame (or span) it covers."""

    name: str
    share: float = Field(ge=0, le=1)


class FramePixels(BaseModel):
    """Pixel statistics of one frame."""

    t: float = Field(description="time (s) of the frame")
    colours: list[ColourShare] = Field(description="named colours, largest share first")
    brightness: float = Field(description="mean CIELAB L*, 0 (black) - 100 (white)")
    contrast: float = Field(description="standard deviation of L* (RMS contrast)")


class Motion(BaseModel):
    """How much changed between two sampled frames."""

    start: float
    end: float
    mean_change: float = Field(description="mean absolute grey-level difference, 0-1")
    changed_share: float = Field(description=f"share of pixels that changed by > {MOTION_PIXEL_DELTA}/255")


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 sRGB → (..., 3) float32 CIELAB (L* 0-100, D65)."""
    import cv2

    flat = rgb.reshape(-1, 1, 3).astype(np.float32) / 255.0
    return cv2.cvtColor(flat, cv2.COLOR_RGB2LAB).reshape(rgb.shape)


_NAMES = list(PALETTE)
_PALETTE_LAB = _to_lab(np.array(list(PALETTE.values()), np.uint8))  # (P, 3)


def _small(image: np.ndarray) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    if w <= ANALYSIS_WIDTH:
        return image
    return cv2.resize(image, (ANALYSIS_WIDTH, max(1, round(h * ANALYSIS_WIDTH / w))), interpolation=cv2.INTER_AREA)


def colour_name(rgb: tuple[int, int, int]) -> str:
    """The palette name nearest (in CIELAB) to one sRGB colour."""
    lab = _to_lab(np.array([rgb], np.uint8))  # (1, 3)
    return _NAMES[int(np.argmin(((_PALETTE_LAB - lab) ** 2).sum(-1)))]


def colour_shares(image: np.ndarray, min_share: float = MIN_SHARE) -> list[ColourShare]:
    """Named colours of an (H, W, 3) uint8 RGB image covering ≥ `min_share`, largest first."""
    lab = _to_lab(_small(image)).reshape(-1, 3)  # (N, 3)
    nearest = np.argmin(((lab[:, None, :] - _PALETTE_LAB[None]) ** 2).sum(-1), axis=1)  # (N,)
    counts = np.bincount(nearest, minlength=len(_NAMES)) / max(1, nearest.size)
    order = np.argsort(-counts, kind="stable")
    return [ColourShare(name=_NAMES[i], share=round(float(counts[i]), 3)) for i in order if counts[i] >= min_share]


def frame_pixels(image: np.ndarray, t: float) -> FramePixels:
    """Colours, brightness and contrast of one (H, W, 3) uint8 RGB frame at time `t`."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"frame_pixels wants an (H, W, 3) uint8 RGB image, not {image.dtype} {image.shape}")
    lightness = _to_lab(_small(image))[..., 0]  # (h, w)
    return FramePixels(
        t=round(t, 3),
        colours=colour_shares(image),
        brightness=round(float(lightness.mean()), 1),
        contrast=round(float(lightness.std()), 1),
    )


def motion(a: np.ndarray, b: np.ndarray, t_a: float, t_b: float) -> Motion:
    """Change between two (H, W, 3) uint8 RGB frames of the same size."""
    import cv2

    if a.shape != b.shape:
        raise ValueError(f"motion needs frames of one size, not {a.shape} and {b.shape}")
    ga = cv2.cvtColor(_small(a), cv2.COLOR_RGB2GRAY).astype(np.int16)
    gb = cv2.cvtColor(_small(b), cv2.COLOR_RGB2GRAY).astype(np.int16)
    diff = np.abs(ga - gb)  # (h, w)
    return Motion(
        start=round(t_a, 3),
        end=round(t_b, 3),
        mean_change=round(float(diff.mean()) / 255.0, 4),
        changed_share=round(float((diff > MOTION_PIXEL_DELTA).mean()), 4),
    )


def merge_shares(frames: list[FramePixels]) -> list[ColourShare]:
    """Colour shares over several frames (each frame weighs the same)."""
    if not frames:
        return []
    total: dict[str, float] = {}
    for f in frames:
        for c in f.colours:
            total[c.name] = total.get(c.name, 0.0) + c.share / len(frames)
    ranked = sorted(total.items(), key=lambda kv: -kv[1])
    return [ColourShare(name=n, share=round(s, 3)) for n, s in ranked if s >= MIN_SHARE]
