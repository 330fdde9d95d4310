"""Top-down exploration of long videos (policies/coarse_to_fine.py): locate, skim, focus — never the whole video."""

from __future__ import annotations

from mcr.context import Context, Instruction, Observation, TimeSpan, ToolCall, ToolResult, VideoRef
from mcr.policies.explore import candidate_calls
from mcr.tools import builtin_registry

SCHEMAS = builtin_registry().schemas()


def episode(duration: float, question: str = "What word is written on the harbour sign?",
            options=("HARBOUR", "STATION")) -> Context:
    video = VideoRef(path="/videos/v.mp4", duration=duration)
    ctx = Context()
    ctx.append(Observation(span=TimeSpan(start=0, end=duration), video=video, text="the video"))
    ctx.append(Instruction(text=question, video=video, options=options, refs=("e0",)))
    return ctx


def result(ctx: Context, tool: str, arguments: dict, output: dict) -> None:
    call = ctx.append(ToolCall(step=len(ctx), tool=tool, arguments=arguments))
    ctx.append(ToolResult(step=len(ctx), tool=tool, refs=(call.id,), output=output))


def test_a_long_video_is_never_perceived_whole():
    calls = candidate_calls(episode(7200.0), SCHEMAS)
    tools = [c.tool for c in calls]
    assert tools[:2] == ["overview", "ground"]
    assert not {"transcribe", "summarize", "segment"} & {c.tool for c in calls if not c.arguments}


def test_a_short_video_keeps_its_whole_video_perception_and_no_overview():
    calls = candidate_calls(episode(24.0), SCHEMAS)
    assert "overview" not in [c.tool for c in calls]
    assert {c.tool for c in calls if not c.arguments} & {"transcribe", "summarize", "segment"}


def test_after_locating_it_skims_around_the_grounded_span_then_focuses_where_the_skim_points():
    ctx = episode(7200.0)
    result(ctx, "overview", {}, {"scenes": [], "frames": []})
    result(ctx, "ground", {"query": "harbour sign"},
           {"spans": [{"span": {"start": 4380.0, "end": 4386.0}, "score": 0.8}]})
    skim = next(c for c in candidate_calls(ctx, SCHEMAS) if c.tool == "skim")
    span = skim.arguments["span"]
    assert span["end"] - span["start"] == 60.0 and span["start"] <= 4380.0 <= 4386.0 <= span["end"]
    result(ctx, "skim", skim.arguments, {"frames": [
        {"t": 4360.0, "text": [], "objects": []},
        {"t": 4392.5, "text": [{"text": "HARBOUR"}], "objects": []}]})
    focus = next(c for c in candidate_calls(ctx, SCHEMAS) if c.tool == "focus")
    span = focus.arguments["span"]
    assert span["end"] - span["start"] <= 16.0 and span["start"] <= 4392.5 <= span["end"]


def test_without_a_grounded_span_it_skims_the_overview_scenes_most_like_the_question():
    ctx = episode(3600.0)
    result(ctx, "overview", {}, {"scenes": [
        {"span": {"start": 0.0, "end": 600.0}, "text": "a field"},
        {"span": {"start": 1800.0, "end": 1860.0}, "text": "a harbour sign by the water"}], "frames": []})
    result(ctx, "ground", {"query": "harbour sign"}, {"spans": []})
    skims = [c for c in candidate_calls(ctx, SCHEMAS) if c.tool == "skim"]
    assert skims and skims[0].arguments["span"] == {"start": 1800.0, "end": 1860.0}
