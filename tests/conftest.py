"""Shared fixtures: the bundled sample video, small generated videos, offline env."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub look-ups in tests (they hang offline)

# Float tolerances must hold at any thread count (reductions split differently):
# `MCR_TEST_THREADS=1 make test` and `=2` both have to pass.
if os.environ.get("MCR_TEST_THREADS"):
    import torch

    torch.set_num_threads(int(os.environ["MCR_TEST_THREADS"]))

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "media" / "sample.mp4"


@pytest.fixture(scope="session", autouse=True)
def _private_video_indexes(tmp_path_factory):
    """Video indexes (`mcr.tools.video_index`) of this test session live in a folder of their own.

    Without it a test would read indexes a developer built under ~/.cache/mcr/index
    (`ground` and `search` use an existing index), and its results would depend on them.
    """
    before = os.environ.get("MCR_INDEX_DIR")
    os.environ["MCR_INDEX_DIR"] = str(tmp_path_factory.mktemp("video-indexes"))
    yield
    if before is None:
        os.environ.pop("MCR_INDEX_DIR", None)
    else:
        os.environ["MCR_INDEX_DIR"] = before


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory) -> Path:
    """A copy of the committed sample (24 s, 4 scenes, narrated) in a folder of its own.

    No subtitles ship with it, so `transcribe` in ``auto`` mode listens (Whisper).
    Facts in sample.json; `sample_with_subtitles` adds a sidecar .srt.
    """
    assert SAMPLE.is_file(), "examples/media/sample.mp4 is missing; run `make sample`"
    copy = tmp_path_factory.mktemp("sample") / "sample.mp4"
    copy.write_bytes(SAMPLE.read_bytes())
    return copy


@pytest.fixture(scope="session")
def sample_with_subtitles(tmp_path_factory) -> Path:
    """A copy of the sample with its narration as a sidecar sample.srt (for subtitle tests only)."""
    folder = tmp_path_factory.mktemp("subtitled")
    copy = folder / "sample.mp4"
    copy.write_bytes(SAMPLE.read_bytes())
    facts = json.loads(SAMPLE.with_suffix(".json").read_text())

    def stamp(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    cues = [f"{i}\n{stamp(s['narration']['start'])} --> {stamp(s['narration']['end'])}\n{s['narration']['text']}\n"
            for i, s in enumerate(facts["scenes"], start=1)]
    copy.with_suffix(".srt").write_text("\n".join(cues), encoding="utf-8")
    return copy


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
