"""`mcr.tools.movers`: which way a thing moves and when it sets off, measured on encoded H.264 video.

Every clip is written here (OpenCV drawing, x264 through PyAV) with its path
known, decoded by the project's own reader and measured by `measure_span`
as `look` and `summarize` do. The start time is estimated back along the
thing's speed from the first frame it has moved in (`START_TOLERANCE_S` is
from the measured error).
"""

from __future__ import annotations

import numpy as np
import pytest

from mcr.tools.movers import MIN_HEADING, find_mover
from mcr.tools.span_facts import measure_span

from .conftest import write_h264

FPS = 10
START_TOLERANCE_S = 0.5  # measured: 3.08 s and 3.09 s for a start at 3.0 s, at 1 fps and at summarize's 3 frames
SIZE = (320, 180)  # width, height


def _textured(seed: int = 3) -> np.ndarray:
    """A photograph-like background: smooth blobs of colour with fine grain (BGR)."""
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 255, (9, 16, 3), np.uint8)
    img = cv2.resize(coarse, SIZE, interpolation=cv2.INTER_CUBIC)
    grain = rng.integers(-25, 25, img.shape)
    return np.clip(img.astype(int) + grain, 0, 255).astype(np.uint8)


def _clip(tmp_path, name: str, seconds: float, paint) -> str:
    frames = [paint(i / FPS) for i in range(int(seconds * FPS))]
    return str(write_h264(tmp_path / f"{name}.mp4", frames, fps=FPS))


def _disc_at(background: np.ndarray, x: float, y: float, colour=(40, 40, 220), radius: int = 14) -> np.ndarray:
    import cv2

    img = background.copy()
    cv2.circle(img, (int(x * SIZE[0]), int(y * SIZE[1])), radius, colour, -1)
    return img


def _path(t: float, t0: float, t1: float, a: float, b: float) -> float:
    """Rest at `a` until t0, glide to `b` by t1, rest there."""
    return a + (b - a) * min(1.0, max(0.0, (t - t0) / (t1 - t0)))


def _measure(video: str, start: float, end: float, fps: float = 2.0, frames: int = 8):
    return measure_span(video, start, end, fps=fps, max_frames=frames, detect_objects=False, ocr=False)


def test_a_square_sliding_right_is_measured_moving_right(scene_video):
    facts = _measure(scene_video, 4.0, 5.95, fps=4)  # the yellow scene: a black square slides right
    assert len(facts.movers) == 1
    mover = facts.movers[0]
    assert mover.dx > 0.3 and abs(mover.dy) < MIN_HEADING
    assert mover.colours[0].name == "black"
    assert mover.depth() == 0 and mover.heading().startswith("left to right")
    assert all(not f.movers for f in [_measure(scene_video, 0.0, 1.95, fps=4), _measure(scene_video, 6.0, 7.95, fps=4)])


def test_a_disc_that_rests_then_falls_sets_off_when_it_starts(tmp_path):
    ground = _textured()
    video = _clip(tmp_path, "fall", 8.0, lambda t: _disc_at(ground, 0.5, _path(t, 3.0, 6.5, 0.15, 0.85)))
    for fps, frames in ((1.0, 8), (0.5, 3)):  # look's sampling, and summarize's three frames a scene
        facts = _measure(video, 0.0, 7.9, fps=fps, frames=frames)
        assert len(facts.movers) == 1, (fps, facts.movers)
        mover = facts.movers[0]
        assert mover.dy > 0.3 and abs(mover.dx) < MIN_HEADING  # down the picture, not across
        assert abs(mover.start - 3.0) <= START_TOLERANCE_S, (facts.times, mover.start)


def test_a_bounce_goes_up_and_down_and_a_still_picture_has_no_mover(tmp_path):
    ground = _textured(5)
    bounce = _clip(tmp_path, "bounce", 6.0, lambda t: _disc_at(ground, 0.4, 0.5 + 0.3 * np.sin(2 * np.pi * t / 2.0)))
    mover = _measure(bounce, 0.0, 5.9, fps=4, frames=16).movers[0]
    assert mover.reversals_y >= 2 and mover.reversals_x == 0

    still = _clip(tmp_path, "still", 4.0, lambda t: _disc_at(ground, 0.3, 0.6))
    facts = _measure(still, 0.0, 3.9, fps=2)
    assert "motion" in facts.measured and facts.movers == []


def test_a_slow_zoom_over_a_photograph_is_the_picture_moving_not_a_thing(tmp_path):
    import cv2

    ground = _textured(7)
    w, h = SIZE

    def zoomed(t: float) -> np.ndarray:
        scale = 1.0 + 0.15 * t / 6.0  # the slow push-in of a slideshow
        cw, ch = int(w / scale), int(h / scale)
        x0, y0 = (w - cw) // 2, (h - ch) // 2
        return cv2.resize(ground[y0:y0 + ch, x0:x0 + cw], SIZE, interpolation=cv2.INTER_LINEAR)

    video = _clip(tmp_path, "zoom", 6.0, zoomed)
    for fps, frames in ((1.0, 8), (0.5, 3)):
        assert _measure(video, 0.0, 5.9, fps=fps, frames=frames).movers == []


def test_two_frames_cannot_say_what_is_background():
    frame = np.zeros((90, 160, 3), np.uint8)
    assert find_mover([frame, frame], [0.0, 1.0]) is None
    assert find_mover([frame] * 3, [0.0, 1.0]) is None  # times and frames must pair up
