"""Shared fixtures: the bundled sample video, small generated videos, offline env."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub look-ups in tests (they hang offline)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "media" / "sample.mp4"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def sample_video() -> Path:
    """The committed sample (24 s, 4 scenes, narrated); facts in sample.json."""
    assert SAMPLE.is_file(), "examples/media/sample.mp4 is missing; run `make sample`"
    return SAMPLE


@pytest.fixture(scope="session")
def sample_facts() -> dict:
    return json.loads(SAMPLE.with_suffix(".json").read_text())


def write_test_video(path: Path, seconds: float = 2.0, fps: int = 12, size: tuple[int, int] = (64, 48)) -> Path:
    """A tiny silent H.264 clip whose brightness ramps (for fast loop tests)."""
    import av
    import numpy as np

    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = np.full((height, width, 3), (i * 7) % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory) -> Path:
    return write_test_video(tmp_path_factory.mktemp("media") / "tiny.mp4")
