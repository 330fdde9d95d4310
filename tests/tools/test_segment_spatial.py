"""`segment` in spatial mode: SAM masks as COCO RLE, overlays, prompts, settings errors.

Fast tests use `tiny_sam` (segment-anything's real predictor and decoders with a
one-block encoder, random weights); the slow ones build the real ViT-B. No PyPI
package ships SAM weights: with MCR_SAM_CHECKPOINT pointing at
sam_vit_b_01ec64.pth the slow test also checks the mask covers the object.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcr.model.media.video import frame_at
from mcr.tools.base import ToolFailure
from mcr.tools.segment import Rle, SegmentTool, decode_rle, encode_rle


@pytest.fixture
def tool(tiny_sam) -> SegmentTool:
    return SegmentTool(sam=tiny_sam)


def _check_mask(mask, size=(640, 360)):
    pixels = decode_rle(mask.rle)  # (H, W) bool
    assert pixels.shape == (size[1], size[0])
    assert mask.area == int(pixels.sum())
    if mask.area:
        ys, xs = np.nonzero(pixels)
        assert mask.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    else:
        assert mask.box is None
    overlay = Path(mask.overlay)
    assert overlay.suffix == ".png" and Image.open(overlay).size == size
    return pixels


def test_point_prompt_gives_a_mask_and_overlay(tool, tool_ctx, sample_mp4):
    out = tool({"mode": "spatial", "t": 15.0, "point": [540, 100]}, tool_ctx(sample_mp4))
    assert out.mode == "spatial" and out.frame_size == (640, 360) and out.shots == []
    (mask,) = out.masks
    assert mask.t == 15.0 and np.isfinite(mask.score)
    _check_mask(mask)
    assert tool.summarize(out).startswith("1 mask(s), frame 640x360: t=15.00s")


def test_box_prompt_and_overlay_draws_it(tool, tool_ctx, sample_mp4):
    out = tool({"mode": "spatial", "t": 3.0, "box": [290, 110, 350, 300]}, tool_ctx(sample_mp4))
    pixels = _check_mask(out.masks[0])
    frame = frame_at(sample_mp4, 3.0).image.astype(int)  # (H, W, 3)
    overlay = np.asarray(Image.open(out.masks[0].overlay).convert("RGB")).astype(int)
    assert tuple(overlay[110, 320]) == (255, 220, 0)  # the yellow prompt box
    far = np.ones_like(pixels)
    far[100:310, 280:360] = False  # away from the box
    assert np.array_equal(overlay[far & ~pixels], frame[far & ~pixels])  # untouched outside the mask
    if pixels.any():
        inside = far & pixels
        assert (overlay[inside][:, 0] >= frame[inside][:, 0]).all()  # tinted red inside it
        assert not np.array_equal(overlay[inside], frame[inside])


def test_norm1000_prompt_is_the_same_request(tiny_sam, tool_ctx, sample_mp4):
    tool = SegmentTool(sam=tiny_sam)
    ctx = tool_ctx(sample_mp4)
    pixel = tool({"mode": "spatial", "t": 15.0, "point": [320, 180]}, ctx)
    calls = []
    original = tiny_sam.predict
    tiny_sam.predict = lambda *a: calls.append(a) or original(*a)
    try:
        norm = tool({"mode": "spatial", "t": 15.0, "point": [500, 500], "coordinates": "norm1000"}, ctx)
    finally:
        del tiny_sam.predict
    assert norm == pixel and calls == []  # converted to the same pixels, so a cache hit


def test_span_segments_its_keyframes(tool, tool_ctx, sample_mp4):
    args = {"mode": "spatial", "span": {"start": 4.0, "end": 13.5}, "point": [320, 200]}
    out = tool(args, tool_ctx(sample_mp4))
    assert [m.t for m in out.masks] == [5.0, 9.0, 12.75]  # the middles of the three shots in the span
    for mask in out.masks:
        _check_mask(mask)
    limited = tool(args, tool_ctx(sample_mp4, sam_max_frames=2))
    assert [m.t for m in limited.masks] == [5.0, 12.75]  # first and last, evenly spread


# -- errors ---------------------------------------------------------------- #


@pytest.mark.parametrize(
    "args,error_type,words",
    [
        ({"t": 3.0}, "missing_prompt", "point"),
        ({"point": [10, 10]}, "missing_time", "`t`"),
        ({"t": 30.0, "point": [10, 10]}, "span_outside_video", "between 0 and 24.00s"),
        ({"t": 3.0, "point": [700, 10]}, "prompt_outside_frame", "640x360"),
        ({"t": 3.0, "point": [10, 1200], "coordinates": "norm1000"}, "prompt_outside_frame", "norm1000"),
        ({"t": 3.0, "box": [300, 100, 200, 200]}, "bad_prompt", "x0 < x1"),
        ({"t": 3.0, "box": [700, 10, 800, 20]}, "prompt_outside_frame", "outside"),
    ],
)
def test_prompt_errors(tool, tool_ctx, sample_mp4, args, error_type, words):
    with pytest.raises(ToolFailure, match=words) as err:
        tool({"mode": "spatial", **args}, tool_ctx(sample_mp4))
    assert err.value.error_type == error_type


def test_no_weights_configured_names_the_setting(tool_ctx, sample_mp4):
    with pytest.raises(ToolFailure, match="sam_checkpoint.*sam_vit_b_01ec64.pth") as err:
        SegmentTool()({"mode": "spatial", "t": 3.0, "point": [5, 5]}, tool_ctx(sample_mp4))
    assert err.value.error_type == "sam_not_configured"


def test_missing_checkpoint_file(tool_ctx, sample_mp4, tmp_path):
    ctx = tool_ctx(sample_mp4, sam_checkpoint=str(tmp_path / "sam.pth"))
    with pytest.raises(ToolFailure, match="does not exist") as err:
        SegmentTool()({"mode": "spatial", "t": 3.0, "point": [5, 5]}, ctx)
    assert err.value.error_type == "sam_checkpoint_missing"


def test_unknown_model_type(tool_ctx, sample_mp4):
    ctx = tool_ctx(sample_mp4, sam_model_type="vit_q", sam_allow_random_weights=True)
    with pytest.raises(ToolFailure, match="vit_b, vit_l or vit_h") as err:
        SegmentTool()({"mode": "spatial", "t": 3.0, "point": [5, 5]}, ctx)
    assert err.value.error_type == "sam_not_configured"


# -- COCO RLE -------------------------------------------------------------- #


def _masks():
    rng = np.random.default_rng(0)
    yield np.zeros((4, 5), bool)
    yield np.ones((3, 7), bool)
    corner = np.zeros((6, 6), bool)
    corner[0, 0] = True  # starts with a one: counts begin with a zero-length run
    yield corner
    for _ in range(20):
        h, w = rng.integers(1, 80, 2)
        yield rng.random((h, w)) < rng.random()
    blob = np.zeros((360, 640), bool)
    blob[100:200, 300:420] = True
    yield blob


def test_rle_roundtrip():
    for mask in _masks():
        assert np.array_equal(decode_rle(encode_rle(mask)), mask)


def test_rle_is_coco_rle():
    coco = pytest.importorskip("pycocotools.mask", reason="pycocotools is the reference encoder")
    for mask in _masks():
        ref = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
        ours = encode_rle(mask)
        assert ours.counts == ref["counts"].decode() and list(ours.size) == list(ref["size"])


def test_rle_size_mismatch_is_an_error():
    rle = encode_rle(np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="not 5x4"):
        decode_rle(Rle(size=(5, 4), counts=rle.counts))


# -- the real ViT-B (slow: ~15-70 s per image on 2 shared cores) ---------- #


@pytest.mark.slow
def test_vit_b_returns_a_mask_for_the_prompted_object(tool_ctx, sample_mp4):
    checkpoint = os.environ.get("MCR_SAM_CHECKPOINT")
    settings = {"sam_checkpoint": checkpoint} if checkpoint else {"sam_allow_random_weights": True}
    out = SegmentTool()({"mode": "spatial", "t": 15.0, "point": [540, 100]}, tool_ctx(sample_mp4, **settings))
    pixels = _check_mask(out.masks[0])
    if checkpoint:  # trained weights: the mask is the yellow sun (centre (540, 100), radius 40)
        yy, xx = np.mgrid[:360, :640]
        sun = (xx - 540) ** 2 + (yy - 100) ** 2 <= 40**2
        iou = (pixels & sun).sum() / (pixels | sun).sum()
        assert iou > 0.7


@pytest.mark.slow
def test_invalid_checkpoint_file(tool_ctx, sample_mp4, tmp_path):
    bad = tmp_path / "sam.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ToolFailure, match="cannot load SAM checkpoint") as err:
        SegmentTool()({"mode": "spatial", "t": 3.0, "point": [5, 5]}, tool_ctx(sample_mp4, sam_checkpoint=str(bad)))
    assert err.value.error_type == "sam_checkpoint_invalid"
