"""`summarize`: the sample's scenes from measured facts (OCR, Whisper's transcript, colours,
brightness, motion, objects), hierarchy and spans, Memory entries, captions only from a model
that sees frames (a tiny Qwen3-VL through forks; the real text-only SmolLM2 is never asked),
typed errors."""

from __future__ import annotations

import re
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


# The dominant measured colour of each scene of the sample (drawn red / dark blue / green / light grey).
SCENE_COLOURS = (("red",), ("dark blue",), ("light green", "green"), ("light grey",))


def test_whole_video_summary_names_each_scene(whole, sample_facts):
    assert whole.sources == ["shots", "transcript", "ocr", "pixels", "objects"] and whole.missing == []
    assert len(whole.scenes) == len(sample_facts["scenes"])
    for scene, truth in zip(whole.scenes, sample_facts["scenes"]):
        assert scene.span.iou(TimeSpan(start=truth["start"], end=truth["end"])) >= 0.9
        assert truth["title"] in scene.ocr  # read on screen, spaces put back
        assert truth["title"] in whole.overall.text
        assert scene.speech  # each scene's narration was heard (however roughly)
    for scene, names in zip(whole.scenes, SCENE_COLOURS):
        assert scene.text.startswith("measured: ") and "Seen" not in scene.text
        assert re.match(rf"colours ({'|'.join(names)}) \d+%", scene.pixels), scene.pixels
    assert "seven" in whole.scenes[1].speech  # Whisper heard the night scene's count
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
    out = tool({"ocr": False, "pixels": False}, ToolContext(context=ctx, video=video, workdir=workdir))
    assert out.sources == ["shots"] and "transcribe" in out.missing[0]
    assert len(out.scenes) == 4 and all(s.text == "measured: no text on screen; nothing said" for s in out.scenes)


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


def test_respace_rejoins_a_word_read_letter_pair_by_letter_pair():
    assert respace("TR UM PE T") == "TRUMPET"  # widely spaced capitals come back from OCR in fragments
    assert respace("ST OR MY HARBOUR") == "STORMY HARBOUR"
    assert respace("IT IS ON") == "IT IS ON"  # common short words stay apart
    assert respace("JIGSAW") == "JIGSAW"  # a word the unigram list lacks is not split into rare fragments


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


# --------------------------------------------------------------------------- #
# A text-only model is never asked about frames
# --------------------------------------------------------------------------- #


class FrameRequests:
    """What the guard saw: every prompt rendered on a fork, and those that asked about frames."""

    def __init__(self) -> None:
        self.fork_prompts: list[str] = []
        self.violations: list[str] = []


def guard(session, seen: FrameRequests):
    """Make `session` (a real ModelSession) fail any fork prompt whose last turn carries media or asks to describe.

    Side queries (tools' and the policy's own) run on forks; a fork's last user
    turn is the side question. For a text-only model, media there would reach
    it as a line naming the file, and a "describe" request would make it invent
    what it never saw — the fault this guard exists to catch.
    """
    base = type(session)

    class Guarded(base):
        def fork(self):
            child = super().fork()
            child._guarded_fork = True
            return child

        def render(self, messages, tools=None):
            if getattr(self, "_guarded_fork", False):
                content = messages[-1].get("content")
                parts = content if isinstance(content, list) else [{"type": "text", "text": str(content)}]
                text = " ".join(p.get("text", "") for p in parts if p.get("type", "text") == "text")
                seen.fork_prompts.append(text)
                if any(p.get("type") in ("video", "image") for p in parts) or re.search(r"describ", text, re.I):
                    seen.violations.append(text)
                    raise AssertionError(f"a text-only model was asked about frames: {text!r}")
            return super().render(messages, tools)

    session.__class__ = Guarded
    return session


def _no_seen_text(out) -> None:
    texts = [s.text for s in out.shots + out.scenes] + [out.overall.text]
    assert not any("Seen" in t for t in texts) and all(s.caption is None for s in out.scenes + [out.overall])


def test_a_text_only_model_is_never_asked_to_describe_frames(tool, whole, heard, video, workdir):
    from mcr.model.runtime.loader import load_smollm2
    from mcr.model.runtime.session import ModelSession

    seen = FrameRequests()
    model = EpisodeModel(guard(ModelSession(load_smollm2()), seen))  # the real offline default, text-only
    assert not model.sees_pixels
    tc = ToolContext(context=heard, video=video, workdir=workdir, model=model)
    out = tool({}, tc)
    assert seen.violations == [] and seen.fork_prompts == []  # not asked at all
    assert "model" not in out.sources and out.scenes == whole.scenes  # the measured summary, as without a model
    _no_seen_text(out)
    assert all(not m.text.count("Seen") for m in tool.entries(None, out))
    with pytest.raises(ToolFailure) as info:  # asking for captions outright is a typed error, not a made-up caption
        tool({"use_model": True}, tc)
    assert info.value.error_type == "no_model" and "text-only" in str(info.value)
    # The other tools that could ask the model about the video refuse a text-only one the same way.
    from mcr.tools.verify import VerifyAnswerTool

    for other, args in ((GroundTool(), {"query": "the ships", "backend": "model"}),
                        (VerifyAnswerTool(), {"answer": "seven ships", "evidence": ["e3"], "recheck": True})):
        with pytest.raises(ToolFailure) as info:
            other(args, tc)
        assert info.value.error_type == "no_model", other.name
    assert GroundTool()({"query": "the ships"}, tc).backend == "index"  # auto: the evidence, not the model
    assert seen.violations == [] and seen.fork_prompts == []
    # The guard is live: a caption request on this session is caught (what summarize used to send).
    with pytest.raises(AssertionError, match="asked about frames"):
        model.side_query(heard, "Describe what happens in this clip in one sentence.",
                         [video.message_part(TimeSpan(start=0, end=6))], max_new_tokens=4)
    assert len(seen.violations) == 1


@pytest.mark.slow
def test_offline_episode_with_summarize_writes_no_seen_text(sample_video, tmp_path):
    """The demo's policy (SmolLM2, offline) calling summarize itself: measured scenes, no captions, no "Seen"."""
    from mcr.agent import Agent
    from mcr.policies.offline import offline_default_policy
    from mcr.task import Budget
    from mcr.tools import builtin_registry

    registry = builtin_registry().subset(["transcribe", "summarize"])
    policy = offline_default_policy({}, registry=registry)
    seen = FrameRequests()
    guard(policy.session, seen)
    agent = Agent(policy=policy, tools=registry, budget=Budget(max_steps=6, max_tool_calls=4, wall_time_s=900),
                  workdir=tmp_path)
    result = agent.run(sample_video, "What colour is the sky in the night scene?")
    assert seen.violations == [] and seen.fork_prompts  # the policy's own answer fork was checked too
    summaries = [e for e in result.context if isinstance(e, ToolResult) and e.tool == "summarize"]
    assert summaries and "model" not in summaries[-1].output["sources"]
    assert all(s["text"].startswith("measured: ") for s in summaries[-1].output["scenes"])
    assert "Seen" not in result.trace_path.read_text()
    assert not any("Seen" in (getattr(e, "text", "") or "") for e in result.context)
