"""`segment` in temporal mode: shots on our sample and on a real edited clip, errors, caching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcr.context import TimeSpan
from mcr.tools.base import ToolFailure, ToolInputError
from mcr.tools.segment import SegmentTool

# Cuts PySceneDetect 0.7.2 finds in bikes.mp4 (25 fps, 10 s); checked by eye:
# each keyframe shows a different shot.
BIKES_SHOTS = [(0.0, 1.2), (1.2, 3.04), (3.04, 5.48), (5.48, 7.48), (7.48, 9.68), (9.68, 10.0)]


@pytest.fixture(scope="module")
def tool() -> SegmentTool:
    return SegmentTool()


@pytest.mark.parametrize("detector", ["adaptive", "content"])
def test_finds_every_scene_boundary_of_the_sample(tool, tool_ctx, sample_mp4, detector):
    facts = json.loads((sample_mp4.parent / "sample.json").read_text())
    out = tool({"mode": "temporal", "detector": detector}, tool_ctx(sample_mp4))
    starts = [s.span.start for s in out.shots[1:]]
    assert len(starts) == len(facts["scene_boundaries"])
    for found, truth in zip(starts, facts["scene_boundaries"]):
        assert abs(found - truth) <= 0.5
    assert out.shots[0].span.start == 0.0 and out.shots[-1].span.end == pytest.approx(24.0)
    assert [s.index for s in out.shots] == [1, 2, 3, 4]


def test_keyframes_are_images_of_their_shot(tool, tool_ctx, sample_mp4):
    ctx = tool_ctx(sample_mp4)
    out = tool({"mode": "temporal"}, ctx)
    means = []
    for shot in out.shots:
        path = Path(shot.keyframe)
        assert path.is_file() and path.is_relative_to(ctx.workdir.resolve())
        image = Image.open(path)
        assert image.size == (640, 360)
        means.append(np.asarray(image.convert("L")).mean())
    red, night, field, market = means
    assert night < red < field < market  # the brightness ladder of the four scenes


def test_span_restricts_and_clips_shots(tool, tool_ctx, sample_mp4):
    out = tool({"span": {"start": 4.0, "end": 13.5}}, tool_ctx(sample_mp4))
    assert [(s.span.start, s.span.end) for s in out.shots] == [(4.0, 6.0), (6.0, 12.0), (12.0, 13.5)]
    assert tool.span_of(tool.Input(span=TimeSpan(start=4.0, end=13.5)), out) == TimeSpan(start=4.0, end=13.5)


def test_span_without_cut_is_one_shot(tool, tool_ctx, sample_mp4):
    out = tool({"span": {"start": 7.0, "end": 11.0}}, tool_ctx(sample_mp4))
    assert [(s.span.start, s.span.end) for s in out.shots] == [(7.0, 11.0)]


def test_real_clip_golden(tool, tool_ctx, bikes_mp4):
    """A clip we did not make: real footage with real editing cuts."""
    out = tool({"mode": "temporal"}, tool_ctx(bikes_mp4))
    assert [v for s in out.shots for v in (s.span.start, s.span.end)] == pytest.approx(
        [v for shot in BIKES_SHOTS for v in shot], abs=0.05
    )
    assert out.frame_size == (640, 272)
    sizes = {Image.open(s.keyframe).size for s in out.shots}
    assert sizes == {(640, 272)}


def test_summary_lists_shots_compactly(tool, tool_ctx, sample_mp4):
    out = tool({"mode": "temporal"}, tool_ctx(sample_mp4))
    assert tool.summarize(out) == "4 shots: #1 0.0s-6.0s, #2 6.0s-12.0s, #3 12.0s-18.0s, #4 18.0s-24.0s"


def test_repeated_calls_hit_the_cache(tool_ctx, sample_mp4, monkeypatch):
    tool = SegmentTool()
    ctx = tool_ctx(sample_mp4)
    first = tool({"mode": "temporal"}, ctx)
    import mcr.tools.segment as segment

    def fail(*args, **kwargs):
        raise AssertionError("shot detection ran again")

    monkeypatch.setattr(segment, "detect_shots", fail)
    assert tool({"mode": "temporal"}, ctx) == first  # same process: memory
    assert SegmentTool()({"mode": "temporal"}, ctx) == first  # new tool instance: disk
    Path(first.shots[0].keyframe).unlink()  # a result whose images are gone is recomputed
    with pytest.raises(AssertionError, match="ran again"):
        tool({"mode": "temporal"}, ctx)


def test_schema_is_the_function_calling_schema(tool):
    schema = SegmentTool.schema()
    params = schema["function"]["parameters"]["properties"]
    assert schema["function"]["name"] == "segment"
    assert {"mode", "span", "t", "point", "box"} <= set(params)


# -- errors ---------------------------------------------------------------- #


def test_span_outside_the_video(tool, tool_ctx, sample_mp4):
    with pytest.raises(ToolFailure, match="between 0 and 24.00s") as err:
        tool({"span": {"start": 20.0, "end": 30.0}}, tool_ctx(sample_mp4))
    assert err.value.error_type == "span_outside_video"


def test_unreadable_file(tool, tool_ctx, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    with pytest.raises(ToolFailure, match="re-encoding") as err:
        tool({"mode": "temporal"}, tool_ctx(bad))
    assert err.value.error_type == "unreadable_video"


def test_missing_file(tool, tool_ctx, tmp_path):
    with pytest.raises(ToolFailure, match="not found") as err:
        tool({}, tool_ctx(tmp_path / "missing.mp4"))
    assert err.value.error_type == "unreadable_video"


def test_no_video_in_the_episode(tool, tool_ctx):
    with pytest.raises(ToolFailure) as err:
        tool({}, tool_ctx(None))
    assert err.value.error_type == "no_video"


def test_bad_arguments_are_input_errors(tool, tool_ctx, sample_mp4):
    with pytest.raises(ToolInputError, match="mode"):
        tool({"mode": "sideways"}, tool_ctx(sample_mp4))
    with pytest.raises(ToolInputError, match="span"):
        tool({"span": {"start": 5.0, "end": 2.0}}, tool_ctx(sample_mp4))
    with pytest.raises(ToolInputError, match="threshold"):
        tool({"threshold": -1}, tool_ctx(sample_mp4))
