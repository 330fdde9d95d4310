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
