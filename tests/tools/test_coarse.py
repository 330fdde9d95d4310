"""The exploration tools (tools/coarse.py): fixed frame costs, the episode's frame budget, focus's 16 s bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcr.agent import Agent
from mcr.context import Context, ToolError, ToolResult, VideoRef
from mcr.policies.scripted import ScriptedPolicy
from mcr.task import Budget, PlanStep
from mcr.tools import builtin_registry
from mcr.tools.base import ToolContext, ToolFailure
from mcr.tools.coarse import FocusTool, OverviewTool, SkimTool


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from long_media import write_long_video

    return write_long_video(tmp_path_factory.mktemp("coarse") / "ten_minutes.mp4", minutes=10, size=(160, 96))


def tool_ctx(clip: Path, tmp_path: Path, frames_left=None) -> ToolContext:
    return ToolContext(context=Context(), video=VideoRef(path=str(clip), duration=600.0), workdir=tmp_path,
                       frames_left=frames_left)


def test_an_overview_costs_its_fixed_frames_whatever_the_length(clip, tmp_path):
    out = OverviewTool()({"frames": 8, "ocr": False}, tool_ctx(clip, tmp_path))
    assert 8 <= out.frames_used <= 12 and out.span.end == pytest.approx(600.0, abs=1.0)
    assert len(out.scenes) >= 3  # the scene a minute shows as changes between the overview's frames
    assert all(0.0 <= f.t <= 600.0 for f in out.frames)


def test_the_frame_budget_caps_a_call_and_refuses_one_it_cannot_pay(clip, tmp_path):
    out = SkimTool()({"span": {"start": 100, "end": 200}, "frames": 8, "ocr": False, "objects": False},
                     tool_ctx(clip, tmp_path, frames_left=3))
    assert out.frames_used <= 4
    with pytest.raises(ToolFailure, match="frame budget") as info:
        SkimTool()({"span": {"start": 100, "end": 200}, "ocr": False, "objects": False},
                   tool_ctx(clip, tmp_path, frames_left=1))
    assert info.value.error_type == "frame_budget"


def test_focus_looks_at_most_16_seconds(clip, tmp_path):
    with pytest.raises(ToolFailure, match="at most 16 s") as info:
        FocusTool()({"span": {"start": 100, "end": 130}}, tool_ctx(clip, tmp_path))
    assert info.value.error_type == "span_too_long"


def test_the_graph_counts_frames_against_the_episode_budget(clip, tmp_path):
    plan = [PlanStep(call="overview", args={"frames": 8, "ocr": False}),
            PlanStep(call="skim", args={"span": {"start": 0, "end": 60}, "frames": 8, "ocr": False, "objects": False}),
            PlanStep(answer="done")]
    registry = builtin_registry().subset(["overview", "skim"])
    agent = Agent(policy=ScriptedPolicy(plan), tools=registry, workdir=tmp_path,
                  budget=Budget(max_steps=4, max_tool_calls=3, max_frames=10))
    result = agent.run(clip, "What is shown?")
    overview, skim = [e for e in result.context if isinstance(e, (ToolResult, ToolError))][:2]
    assert isinstance(overview, ToolResult) and overview.output["frames_used"] >= 8
    left = 10 - overview.output["frames_used"]
    if left >= 2:  # what the overview left is all the skim gets
        assert isinstance(skim, ToolResult) and skim.output["frames_used"] <= left + 1
    else:
        assert isinstance(skim, ToolError) and skim.error_type == "frame_budget"


def test_with_an_index_a_skim_reads_text_at_its_changes_without_scanning_for_them(tmp_path, monkeypatch):
    """The index found every change once: a skim decodes its samples and the frames it reads, not a 4 fps scan."""
    pytest.importorskip("rapidocr_onnxruntime")
    import sys

    from mcr.model.media.video import frames_decoded
    from mcr.tools.video_index import VideoIndex

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from slides import make_slides

    video = make_slides(tmp_path / "slides.mp4", seconds=40, slide_s=5.0, fps=12, keyint=24)  # 8 words
    monkeypatch.setenv("MCR_INDEX_DIR", str(tmp_path / "indexes"))
    monkeypatch.setattr("mcr.tools.change_points.INDEXED_FROM_S", 0.0)  # 40 s stands in for a long video
    built = {"video_index_settings": {"scan": "bitstream", "speech": False, "objects": False}}
    VideoIndex.for_tool(video, built).build()

    def skim(settings: dict) -> tuple[set[str], int]:
        ctx = ToolContext(context=Context(), video=VideoRef(path=str(video), duration=40.0), workdir=tmp_path,
                          settings=settings)
        before = frames_decoded()
        out = SkimTool()({"span": {"start": 0, "end": 40}, "frames": 4, "objects": False}, ctx)
        return {line.text.upper() for line in out.text}, frames_decoded() - before

    scanned_words, scanned_frames = skim({**built, "video_index": "off"})
    indexed_words, indexed_frames = skim(built)
    assert len(scanned_words) == 7  # 4 samples (a slide each) and 3 of the 4 slides between them
    assert indexed_words == scanned_words
    assert scanned_frames >= 4 * 40  # every frame of a 4 fps scan
    assert indexed_frames <= 4 + 3, indexed_frames  # the samples and the three frames read


def test_change_runs_from_known_changes_rank_like_scanned_ones():
    from mcr.tools.change_points import runs_from_changes, unread_runs

    runs = runs_from_changes(0.0, 20.0, [5.0, 7.0, 15.0, 25.0])  # 25 s is outside the span
    assert [(r.first, r.middle) for r in runs] == [(0.0, 2.5), (5.0, 6.0), (7.0, 11.0), (15.0, 17.5)]
    assert [r.frames for r in runs] == [20, 8, 32, 20]
    # the samples at 1 s and 16 s read the first and last runs: the longest unread one comes first
    assert [r.middle for r in unread_runs(runs, [1.0, 16.0], budget=1)] == [11.0]
