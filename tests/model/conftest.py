"""Fixtures that write small real videos with PyAV whose every frame is identifiable.

Frame *i* is a flat colour whose red channel is ``code(i)`` (i mod 30), so a test can tell
which frame a decoder returned by reading one pixel (H.264 keeps flat colours
within a few levels).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "media" / "sample.mp4"
MOD = 30  # frames are identifiable modulo this


def code(i: int) -> int:
    """The red level that marks frame i (distinct mod 30, 8 levels apart)."""
    return 8 + 8 * (i % MOD)


def which_frame(image: np.ndarray) -> int:
    """The index (mod 30) of the frame whose code is nearest this image's red level."""
    red = float(np.median(image[..., 0]))
    return int(round((red - 8) / 8)) % MOD


def write_video(
    path: Path,
    n_frames: int = 48,
    fps: int = 24,
    size: tuple[int, int] = (64, 48),
    *,
    times: Sequence[float] | None = None,
    rotation: int = 0,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    container: str | None = None,
    audio: bool = False,
) -> Path:
    """Write `n_frames` coded frames; `times` (s) gives a variable frame rate."""
    width, height = size
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            stream.options = {"threads": "1", "g": str(fps)}
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        a_stream = out.add_stream("aac", rate=16000, layout="mono") if audio else None
        for i in range(n_frames):
            img = np.zeros((height, width, 3), np.uint8)
            img[..., 0] = code(i)
            img[: max(1, height // 4), : max(1, width // 4), 1] = 255  # top-left marker, for rotation
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if times is not None:
                frame.pts, frame.time_base = int(round(times[i] * 1000)), Fraction(1, 1000)
            else:
                frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if a_stream is not None:
            seconds = n_frames / fps
            tone = (np.sin(np.arange(int(16000 * seconds)) * 0.1) * 8000).astype(np.int16)
            for off in range(0, len(tone), 1024):
                af = av.AudioFrame.from_ndarray(tone[None, off : off + 1024], format="s16", layout="mono")
                af.sample_rate, af.pts = 16000, off
                for packet in a_stream.encode(af):
                    out.mux(packet)
            for packet in a_stream.encode():
                out.mux(packet)
    return path


@pytest.fixture
def make_video(tmp_path):
    """Factory: make_video(name, **write_video kwargs) -> path under tmp_path."""

    def make(name: str = "clip.mp4", **kwargs) -> Path:
        return write_video(tmp_path / name, **kwargs)

    return make


@pytest.fixture(scope="session")
def sample_mp4() -> Path:
    if not SAMPLE.is_file():
        pytest.skip("examples/media/sample.mp4 missing: run python examples/make_sample.py")
    return SAMPLE


@pytest.fixture(name="which_frame")
def _which_frame():
    """which_frame(image) -> frame index mod 30 (see `code`)."""
    return which_frame


@pytest.fixture(scope="session")
def build_tiny_m2la():
    """`build(folder, seed)`: see :func:`_build_tiny_m2la`."""
    return _build_tiny_m2la


def _build_tiny_m2la(folder: Path, seed: int):
    """A tiny random-weight Qwen3-VL converted to M^2LA, saved to `folder` and loaded back (float32).

    Shared by the session and static-decode tests; each keeps its own seed so its
    fixed expectations (which tokens a short decode produces) stay what they were.
    """
    import torch

    from mcr.model.m2la.integrate import build_m2la_model, m2la_config_from_hf
    from mcr.model.runtime.loader import load_model
    from mcr.model.runtime.tiny import tiny_processor, tiny_qwen3vl_config

    config = tiny_qwen3vl_config()
    m2 = m2la_config_from_hf(config, kv_lora_rank=24, qk_rope_head_dim=16, qk_nope_head_dim=16, v_head_dim=16)
    torch.manual_seed(seed)
    build_m2la_model(config, m2).save_pretrained(folder)
    tiny_processor().save_pretrained(folder)
    return load_model(folder, dtype="float32")
