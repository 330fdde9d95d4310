"""`summarize`: the sample's scenes named from real OCR + transcript, hierarchy and spans,
Memory entries, the model path through forks of a tiny Qwen3-VL session, typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mcr.context import Context, Instruction, Observation, TimeSpan, ToolCall, ToolResult, VideoRef
from mcr.tools.asr import TranscribeTool
from mcr.tools.side import EpisodeModel
from mcr.tools.base import ToolContext, ToolFailure
from mcr.tools.ground import GroundTool
from mcr.tools.summarize import SummarizeTool, respace


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "reasoning-agent" / "artifacts"  # shared with the other reasoning-tool tests


@pytest.fixture(scope="module")
def video(sample_mp4) -> VideoRef:
    return VideoRef(path=str(sample_mp4), duration=24.0, fps=0.5, min_pixels=32 * 32, max_pixels=64 * 64)


@pytest.fixture(scope="module")
def heard(video, workdir) -> Context:
    ctx = Context()
    ctx.append(Instruction(text="What happens in the video?", video=video))
    ctx.append(Observation(span=TimeSpan(start=0, end=24), video=video, text="the whole video", refs=("e0",)))
    out = TranscribeTool()({}, ToolContext(context=ctx, video=video, workdir=workdir))
    call = ctx.append(ToolCall(tool="transcribe"))
    ctx.append(ToolResult(tool="transcribe", refs=(call.id,), output=out.model_dump(mode="json")))
    return ctx


@pytest.fixture(scope="module")
def tool() -> SummarizeTool:
    return SummarizeTool()  # keeps its OCR engine loaded across tests


@pytest.fixture(scope="module")
def whole(tool, heard, video, workdir):
    return tool({}, ToolContext(context=heard, video=video, workdir=workdir))


def test_whole_video_summary_names_each_scene(whole, sample_facts):
    assert whole.sources == ["shots", "transcript", "ocr"] and whole.missing == []
    assert len(whole.scenes) == len(sample_facts["scenes"])
    for scene, truth in zip(whole.scenes, sample_facts["scenes"]):
        assert scene.span.iou(TimeSpan(start=truth["start"], end=truth["end"])) >= 0.9
        assert truth["title"] in scene.ocr  # read on screen, spaces put back
        assert truth["title"] in whole.overall.text
        assert scene.speech  # each scene's narration was heard (however roughly)
    assert whole.overall.level == "video" and whole.overall.span == TimeSpan(start=0, end=24)
    assert [s.level for s in whole.shots] == ["shot"] * len(whole.shots)


def test_summaries_become_memories_that_later_tools_use(tool, whole, heard, video, workdir):
    notes = tool.entries(None, whole)
    assert [m.span for m in notes[:-1]] == [s.span for s in whole.scenes]
    assert notes[-1].span == whole.overall.span and all(m.source == "summarize" for m in notes)
    ctx = Context(list(heard))
    for note in notes:
        ctx.append(note)
    out = GroundTool()({"query": "MORNING FIELD"}, ToolContext(context=ctx, video=video, workdir=workdir))
    assert out.spans[0].span == TimeSpan(start=12, end=18) and out.spans[0].source in ("memory", "ocr")
    # One moment found through OCR, scene summary and memory is one ranked span, not three.
    assert all(a.span.iou(b.span) < 0.8 for i, a in enumerate(out.spans) for b in out.spans[i + 1 :])


def test_a_span_is_summarised_alone(tool, heard, video, workdir):
    out = tool({"span": {"start": 6, "end": 12}}, ToolContext(context=heard, video=video, workdir=workdir))
    assert [s.ocr for s in out.scenes] == [["NIGHT WATCH"]]
    assert out.span == TimeSpan(start=6, end=12)


def test_without_a_transcript_it_says_what_is_missing(tool, video, workdir):
    ctx = Context([Instruction(id="e0", text="q", video=video)])
    out = tool({"ocr": False}, ToolContext(context=ctx, video=video, workdir=workdir))
    assert out.sources == ["shots"] and "transcribe" in out.missing[0]
    assert len(out.scenes) == 4 and all(s.text == "no text on screen and nothing said." for s in out.scenes)


def test_typed_errors(tool, heard, video, workdir):
    with pytest.raises(ToolFailure) as info:
        tool({"span": {"start": 30, "end": 40}}, ToolContext(context=heard, video=video, workdir=workdir))
    assert info.value.error_type == "span_outside_video"
    with pytest.raises(ToolFailure) as info:
        tool({}, ToolContext(context=Context(), video=None, workdir=workdir))
    assert info.value.error_type == "no_video"
    with pytest.raises(ToolFailure) as info:
        tool({"use_model": True, "ocr": False}, ToolContext(context=heard, video=video, workdir=workdir))
    assert info.value.error_type == "no_model"


def test_respace_restores_dropped_spaces():
    assert respace("THERED LIGHTHOUSE") == "THE RED LIGHTHOUSE"
    assert respace("NOONMARKET") == "NOON MARKET"
    assert respace("MorningField") == "Morning Field"
    assert respace("XQZWV 42") == "XQZWV 42"  # not words: kept as read


def test_model_path_captions_through_forks_and_keeps_the_main_cache(tool, heard, video, workdir):
    from mcr.model.runtime.loader import LoadedModel
    from mcr.model.runtime.session import ModelSession
    from mcr.model.runtime.tiny import build_tiny_qwen3vl

    model, processor = build_tiny_qwen3vl(seed=0)
    main = ModelSession(LoadedModel(model, processor.tokenizer, processor, name="tiny-qwen3vl", kind="qwen_vl"))
    main.prefill(main.render(heard.render()))
    ids, keys = list(main.state.ids), [layer.keys.clone() for layer in main.cache.layers]
    tc = ToolContext(context=heard, video=video, workdir=workdir, model=EpisodeModel(main),
                     settings={"caption_tokens": 8, "summary_tokens": 8})
    out = tool({"ocr": False, "span": {"start": 12, "end": 24}}, tc)  # two scenes: two captions + the closing
    assert "model" in out.sources and len(out.scenes) == 2
    assert all(s.caption is not None and s.caption in s.text for s in out.scenes)  # "" when the random model says nothing
    assert out.overall.caption is not None
    assert main.state.ids == ids and all(torch.equal(a, l.keys) for a, l in zip(keys, main.cache.layers))
