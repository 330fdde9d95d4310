"""Drawn shapes counted from pixels (tools/shapes.py), and through `look` on a real clip."""

from __future__ import annotations

import numpy as np
import pytest

from mcr.tools.shapes import find_shapes


def canvas(colour=(230, 232, 228)):
    return np.full((216, 384, 3), colour, np.uint8)


def test_squares_rectangles_and_circles_are_told_apart():
    import cv2

    img = canvas()
    for i in range(5):
        cv2.rectangle(img, (40 + 60 * i, 100), (62 + 60 * i, 122), (20, 20, 20), -1)
    cv2.rectangle(img, (40, 160), (140, 180), (200, 30, 30), -1)
    cv2.circle(img, (300, 170), 14, (30, 30, 200), -1)
    labels = [s.label for s in find_shapes(img, 1.5)]
    assert labels.count("square") == 5 and labels.count("rectangle") == 1 and labels.count("circle") == 1


def test_letters_under_text_boxes_are_not_shapes():
    import cv2

    img = canvas()
    cv2.putText(img, "OLD RIVER", (110, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (10, 10, 10), 3)
    cv2.rectangle(img, (100, 100), (124, 124), (10, 10, 10), -1)
    bare = find_shapes(img)
    covered = find_shapes(img, text_boxes=[(105.0, 12.0, 290.0, 48.0)])
    assert len(bare) > 1 and [s.label for s in covered] == ["square"]


def test_a_photograph_yields_no_shapes():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (216, 384, 3), dtype=np.uint8)
    assert find_shapes(photo) == []
    with pytest.raises(ValueError, match="uint8"):
        find_shapes(photo.astype(np.float32))


def test_look_reports_the_shapes_it_counts(tmp_path):
    import cv2

    from mcr.context import Context, VideoRef
    from mcr.tools.base import ToolContext
    from mcr.tools.look import LookTool

    from .conftest import write_h264

    img = canvas()
    cv2.putText(img, "SIX", (150, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (10, 10, 10), 3)
    for i in range(6):
        cv2.rectangle(img, (50 + 50 * i, 110), (72 + 50 * i, 132), (15, 15, 15), -1)
    video = write_h264(tmp_path / "squares.mp4", (img for _ in range(16)), fps=8)
    tool = LookTool()
    out = tool({"span": {"start": 0, "end": 2}, "objects": False}, ToolContext(context=Context(),
               video=VideoRef(path=str(video)), workdir=tmp_path / "w"))
    assert out.shapes == {"square": 6}, (out.shapes, [f.text for f in out.frames[:1]])
    summary = tool.summarize(out)
    assert "shapes drawn: 6 squares" in summary
    assert len(out.frames) == 2 and "t=0.00-1.00s: " in summary  # identical frames read as one line
