"""The sample generator writes the video its facts file describes.

The lead's tasks and the demo are written against sample.json, so these tests
check the facts against the media itself (decoded back), not against constants.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from mcr.model.media.video import probe

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "make_sample.py"
COMMITTED = ROOT / "examples" / "media"

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install -y espeak-ng); the committed sample is still tested",
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install -y espeak-ng)")
    out = tmp_path_factory.mktemp("sample")
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True, capture_output=True)
    return out


def _audio(path: Path) -> tuple[np.ndarray, int]:
    """The decoded audio track as float mono samples, and its rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [frame.to_ndarray().mean(axis=0) for frame in container.decode(stream)]
        return np.concatenate(chunks), stream.rate


def _check_facts(folder: Path) -> None:
    facts = json.loads((folder / "sample.json").read_text())
    info = probe(folder / "sample.mp4")
    assert info.duration == pytest.approx(facts["duration"], abs=0.05) == pytest.approx(24.0)
    assert info.fps == facts["fps"]
    assert [info.width, info.height] == facts["size"]
    assert info.has_audio
    assert facts["scene_boundaries"] == [6.0, 12.0, 18.0]
    assert [s["title"] for s in facts["scenes"]] == [
        "THE RED LIGHTHOUSE",
        "NIGHT WATCH",
        "MORNING FIELD",
        "NOON MARKET",
    ]
    assert (folder / "sample.mp4").stat().st_size < 2_000_000

    samples, rate = _audio(folder / "sample.mp4")
    loud = np.abs(samples) > 0.02  # (N,) bool
    for scene in facts["scenes"]:
        nar = scene["narration"]
        assert scene["start"] < nar["start"] < nar["end"] < scene["end"], scene
        # The narration span is where the speech really is in the decoded track.
        inside = loud[int(nar["start"] * rate) : int(nar["end"] * rate)]
        assert inside.mean() > 0.2, f"scene {scene['index']} narration span is mostly silent"
        before = loud[int(scene["start"] * rate) : int((nar["start"] - 0.05) * rate)]
        after = loud[int((nar["end"] + 0.05) * rate) : int(scene["end"] * rate)]
        assert not before.any() and not after.any(), f"speech outside the narration span of scene {scene['index']}"


def _mean_frame_at(path: Path, t: float) -> np.ndarray:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time >= t:
                return frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)  # (3,)
    raise AssertionError(f"no frame at {t}s")


def test_committed_sample_matches_its_facts():
    if not (COMMITTED / "sample.mp4").is_file():
        pytest.skip("examples/media/sample.mp4 not generated yet: run python examples/make_sample.py")
    _check_facts(COMMITTED)


@needs_espeak
def test_regenerated_sample_matches_its_facts(generated):
    _check_facts(generated)


@needs_espeak
def test_scenes_differ_in_brightness_and_colour(generated):
    red, night, field, market = (_mean_frame_at(generated / "sample.mp4", t) for t in (3, 9, 15, 21))
    assert red[0] > 2 * red[1] and red[0] > 2 * red[2]  # red dominates
    assert night.mean() < 50  # dark
    assert field[1] > field[0] and field[1] > field[2]  # green dominates
    assert market.mean() > field.mean() + 20 > night.mean() + 100  # brightness ladder
    assert red.mean() < field.mean()


@needs_espeak
def test_generation_is_deterministic(generated, tmp_path):
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], check=True, capture_output=True)
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(tmp_path / "sample.mp4") == digest(generated / "sample.mp4")
    assert (tmp_path / "sample.json").read_text() == (generated / "sample.json").read_text()
    assert not (tmp_path / "sample.srt").exists() and not (COMMITTED / "sample.srt").exists()  # no subtitles ship


def test_missing_espeak_is_a_clear_error(tmp_path):
    """Without espeak-ng on PATH the script stops with the install command."""
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # a PATH with no espeak-ng
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "espeak-ng is not installed" in proc.stderr
    assert not (tmp_path / "sample.mp4").exists()


@needs_espeak
def test_sidecar_subtitles_match_the_narration(generated, tmp_path):
    """--subtitles writes sample.srt with each narration sentence at its measured span (subtitle tests only)."""
    from mcr.context import Context, VideoRef
    from mcr.tools.asr import TranscribeTool
    from mcr.tools.base import ToolContext

    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--subtitles"], check=True, capture_output=True)
    facts = json.loads((tmp_path / "sample.json").read_text())
    assert facts == json.loads((generated / "sample.json").read_text())
    ctx = ToolContext(context=Context(), video=VideoRef(path=str(tmp_path / "sample.mp4")), workdir=tmp_path / "w")
    out = TranscribeTool()({"backend": "subtitles"}, ctx)
    assert [seg.text for seg in out.segments] == [s["narration"]["text"] for s in facts["scenes"]]
    for seg, scene in zip(out.segments, facts["scenes"]):
        assert seg.span.start == pytest.approx(scene["narration"]["start"], abs=0.002)
        assert seg.span.end == pytest.approx(scene["narration"]["end"], abs=0.002)
