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


def shrink(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) frame at `ANALYSIS_WIDTH` wide (unchanged when narrower): shares and paths need no more."""
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
    lab = _to_lab(shrink(image)).reshape(-1, 3)  # (N, 3)
    nearest = np.argmin(((lab[:, None, :] - _PALETTE_LAB[None]) ** 2).sum(-1), axis=1)  # (N,)
    counts = np.bincount(nearest, minlength=len(_NAMES)) / max(1, nearest.size)
    order = np.argsort(-counts, kind="stable")
    return [ColourShare(name=_NAMES[i], share=round(float(counts[i]), 3)) for i in order if counts[i] >= min_share]


def frame_pixels(image: np.ndarray, t: float) -> FramePixels:
    """Colours, brightness and contrast of one (H, W, 3) uint8 RGB frame at time `t`."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"frame_pixels wants an (H, W, 3) uint8 RGB image, not {image.dtype} {image.shape}")
    lightness = _to_lab(shrink(image))[..., 0]  # (h, w)
    return FramePixels(
        t=round(t, 3),
        colours=colour_shares(image),
        brightness=round(float(lightness.mean()), 1),
        contrast=round(float(lightness.std()), 1),
    )


def grey_thumbnail(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) uint8 RGB frame as the (h, w) int16 grey image motion is measured on (~160 px wide).

    Small enough to keep hundreds of them in memory while a span is scanned for
    changes (`mcr.tools.change_points`), large enough that a short word appearing
    changes well over `CHANGE_SHARE` of it.
    """
    import cv2

    return cv2.cvtColor(shrink(image), cv2.COLOR_RGB2GRAY).astype(np.int16)


def changed_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels of two `grey_thumbnail`s that differ by more than `MOTION_PIXEL_DELTA` grey levels."""
    if a.shape != b.shape:
        raise ValueError(f"changed_share needs thumbnails of one size, not {a.shape} and {b.shape}")
    return float((np.abs(a - b) > MOTION_PIXEL_DELTA).mean())


def motion(a: np.ndarray, b: np.ndarray, t_a: float, t_b: float) -> Motion:
    """Change between two (H, W, 3) uint8 RGB frames of the same size."""
    if a.shape != b.shape:
        raise ValueError(f"motion needs frames of one size, not {a.shape} and {b.shape}")
    ga, gb = grey_thumbnail(a), grey_thumbnail(b)
    diff = np.abs(ga - gb)  # (h, w)
    return Motion(
        start=round(t_a, 3),
        end=round(t_b, 3),
        mean_change=round(float(diff.mean()) / 255.0, 4),
        changed_share=round(float((diff > MOTION_PIXEL_DELTA).mean()), 4),
    )


# --------------------------------------------------------------------------- #
# Colours of a region (an object's box, a line of text), not of the whole frame
# --------------------------------------------------------------------------- #

REGION_MIN_SHARE = 0.1  # a region's colours below this share are not reported
OBJECT_CORE = 0.6  # an object's colours come from the middle of its box (this fraction of width and height)
OBJECT_RING = 0.25  # ... less those of a band around the box this wide (fraction of the box's size)


def _crop(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, x1 = max(0, min(x0, w - 1)), max(0, min(x1, w))
    y0, y1 = max(0, min(y0, h - 1)), max(0, min(y1, h))
    return image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]


def _name_counts(pixels: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 RGB pixels -> (P,) share of each palette name."""
    if pixels.size == 0:
        return np.zeros(len(_NAMES))
    lab = _to_lab(pixels.reshape(-1, 1, 3)).reshape(-1, 3)  # (N, 3)
    nearest = np.argmin(((lab[:, None, :] - _PALETTE_LAB[None]) ** 2).sum(-1), axis=1)  # (N,)
    return np.bincount(nearest, minlength=len(_NAMES)) / nearest.size


def _sampled(pixels: np.ndarray, most: int = 4096) -> np.ndarray:
    """At most `most` of (N, 3) pixels, evenly strided (shares do not need more)."""
    step = max(1, len(pixels) // most)
    return pixels[::step]


def colour_share_vector(pixels: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 RGB pixels -> (P,) share of each palette name (at most 4,096 pixels are read)."""
    return _name_counts(_sampled(pixels.reshape(-1, 3)))


def ranked_shares(shares: np.ndarray, min_share: float = REGION_MIN_SHARE) -> list[ColourShare]:
    """(P,) palette shares as named colours of at least `min_share`, largest first."""
    return _ranked(shares, min_share)


def _ranked(shares: np.ndarray, min_share: float) -> list[ColourShare]:
    order = np.argsort(-shares, kind="stable")
    return [ColourShare(name=_NAMES[i], share=round(float(shares[i]), 3)) for i in order if shares[i] >= min_share]


def region_colours(image: np.ndarray, box: tuple[float, float, float, float],
                   min_share: float = REGION_MIN_SHARE) -> list[ColourShare]:
    """Named colours inside `box` ([x0, y0, x1, y1] pixels) of an RGB frame, largest share first."""
    return _ranked(_name_counts(_sampled(_crop(image, box).reshape(-1, 3))), min_share)


def object_colours(image: np.ndarray, box: tuple[float, float, float, float],
                   min_share: float = REGION_MIN_SHARE) -> list[ColourShare]:
    """The colours of the object in `box`, not of what is around it.

    A detector's box also holds background (road under a van, sky around a
    kite), so the middle of the box (`OBJECT_CORE`) is measured and each
    colour's share of a band around the box (`OBJECT_RING`) is taken off it:
    what remains is over-represented on the object. Shares are renormalised
    over what remains; if nothing does (an object the colour of its
    surroundings) the middle's own colours are returned.
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(np.clip(box[0], 0, w)), float(np.clip(box[1], 0, h)),
                      float(np.clip(box[2], 0, w)), float(np.clip(box[3], 0, h)))
    bw, bh = max(1.0, x1 - x0), max(1.0, y1 - y0)
    mx, my = bw * (1 - OBJECT_CORE) / 2, bh * (1 - OBJECT_CORE) / 2
    core = _name_counts(_sampled(_crop(image, (x0 + mx, y0 + my, x1 - mx, y1 - my)).reshape(-1, 3)))
    ox0, oy0 = int(max(0.0, x0 - bw * OBJECT_RING)), int(max(0.0, y0 - bh * OBJECT_RING))
    ox1, oy1 = int(min(float(w), x1 + bw * OBJECT_RING)), int(min(float(h), y1 + bh * OBJECT_RING))
    around = image[oy0:oy1, ox0:ox1]
    outside = np.ones(around.shape[:2], bool)  # (h', w') True on the band around the box
    outside[int(y0) - oy0:int(np.ceil(y1)) - oy0, int(x0) - ox0:int(np.ceil(x1)) - ox0] = False
    ring = _name_counts(_sampled(around[outside]))
    if ring.sum() == 0:  # the box fills the frame: nothing around it to take off
        return _ranked(core, min_share)
    lift = np.clip(core - ring, 0.0, None)
    if lift.sum() < min_share:
        return _ranked(core, min_share)
    return _ranked(lift / lift.sum(), min_share)


def text_colours(image: np.ndarray, box: tuple[float, float, float, float]) -> tuple[str | None, str | None]:
    """(ground, ink) of a line of text: the colour behind the letters and the letters' own colour.

    The ground is the commonest name on the box's border (text boxes hug the
    letters, so their edge is background); the ink is the commonest name
    inside the box that is not the ground. Either is None when not measurable.
    """
    crop = _crop(image, box)
    if crop.shape[0] < 3 or crop.shape[1] < 3:
        return None, None
    border = np.concatenate([crop[0], crop[-1], crop[1:-1, 0], crop[1:-1, -1]])  # (N, 3)
    ground_shares = _name_counts(border)
    ground = int(np.argmax(ground_shares))
    inner = _name_counts(_sampled(crop[1:-1, 1:-1].reshape(-1, 3)))
    inner[ground] = 0.0
    ink = _NAMES[int(np.argmax(inner))] if inner.max() >= 0.03 else None
    return _NAMES[ground], ink


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
