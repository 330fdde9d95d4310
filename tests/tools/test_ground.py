"""`ground`: spoken phrases found on the real sample (embedding + BM25 index), the model
backend through a fork of a tiny Qwen3-VL session, snapping, and typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mcr.context import Context, Instruction, Observation, TimeSpan, ToolCall, ToolResult, VideoRef
from mcr.tools.asr import TranscribeTool
from mcr.tools.side import EpisodeModel
from mcr.tools.base import ToolContext, ToolFailure
from mcr.tools.ground import GroundTool, parse_span, snap
from mcr.tools.index import content_words
from mcr.tools.segment import SegmentTool


def _add_result(ctx: Context, tool: str, output) -> ToolResult:
    call = ctx.append(ToolCall(tool=tool))
    return ctx.append(ToolResult(tool=tool, refs=(call.id,), output=output.model_dump(mode="json")))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    # One folder for the whole session: transcribe/segment results cache there across test files.
    return tmp_path_factory.getbasetemp() / "reasoning-agent" / "artifacts"


@pytest.fixture(scope="module")
def video(sample_mp4) -> VideoRef:
    return VideoRef(path=str(sample_mp4), duration=24.0, fps=0.5, min_pixels=32 * 32, max_pixels=64 * 64)


@pytest.fixture(scope="module")
def evidence(video, workdir) -> Context:
    """Instruction, first look, and what segment + transcribe really produce on the sample."""
    ctx = Context()
    ctx.append(Instruction(text="When does the farmer appear?", video=video))
    ctx.append(Observation(span=TimeSpan(start=0, end=24), video=video, text="the whole video", refs=("e0",)))
    tc = ToolContext(context=ctx, video=video, workdir=workdir)
    _add_result(ctx, "segment", SegmentTool()({"mode": "temporal"}, tc))
    _add_result(ctx, "transcribe", TranscribeTool()({}, tc))
    return ctx


def _tc(ctx: Context, video: VideoRef, workdir: Path, session=None, **settings) -> ToolContext:
    model = EpisodeModel(session) if session is not None else None
    return ToolContext(context=ctx, video=video, workdir=workdir, model=model, settings=settings)


def _scene_of(t: float, facts: dict) -> dict:
    return next(s for s in facts["scenes"] if s["start"] <= t < s["end"])


def test_each_heard_phrase_grounds_to_its_narration(evidence, video, workdir, sample_facts):
    """Index what pocketsphinx actually heard; each heard line finds its narration span."""
    segments = evidence.results_of("transcribe")[-1].output["segments"]
    assert len(segments) >= 3
    tool = GroundTool()
    ious = []
    for seg in segments:
        mid = (seg["span"]["start"] + seg["span"]["end"]) / 2
        truth = _scene_of(mid, sample_facts)["narration"]
        out = tool({"query": seg["text"], "backend": "index"}, _tc(evidence, video, workdir))
        assert out.backend == "index" and out.spans[0].source == "transcript"
        ious.append(out.spans[0].span.iou(TimeSpan(start=truth["start"], end=truth["end"])))
    assert min(ious) >= 0.5, ious


def test_true_narration_grounds_where_asr_heard_its_words(evidence, video, workdir, sample_facts):
    """The generator's own sentences: wherever ASR caught a content word, the span is found."""
    heard = evidence.results_of("transcribe")[-1].output["segments"]
    tool = GroundTool()
    checked = 0
    for scene in sample_facts["scenes"]:
        n = scene["narration"]
        truth = TimeSpan(start=n["start"], end=n["end"])
        said = {w for s in heard if TimeSpan.model_validate(s["span"]).iou(truth) > 0 for w in content_words(s["text"])}
        if not said & set(content_words(n["text"])):
            continue  # ASR heard none of its words: nothing in the evidence can find it
        out = tool({"query": n["text"]}, _tc(evidence, video, workdir))
        assert out.spans[0].span.iou(truth) >= 0.5, (n["text"], out.spans[0])
        checked += 1
    assert checked >= 2


def test_spans_snap_to_shot_boundaries(evidence, video, workdir):
    seg = evidence.results_of("transcribe")[-1].output["segments"][0]
    out = GroundTool()({"query": seg["text"]}, _tc(evidence, video, workdir))
    assert out.snapped and out.spans[0].span.start == 0.0  # speech starts 0.5 s after the cut at 0
    assert snap(TimeSpan(start=6.5, end=9.4), [0, 6, 12], 0.75) == TimeSpan(start=6.0, end=9.4)
    assert snap(TimeSpan(start=6.5, end=9.4), [0, 6, 12], 0.25) == TimeSpan(start=6.5, end=9.4)
    assert snap(TimeSpan(start=5.9, end=6.2), [6], 0.75) == TimeSpan(start=5.9, end=6.2)  # would be empty


def test_within_restricts_the_search(evidence, video, workdir):
    segs = evidence.results_of("transcribe")[-1].output["segments"]
    query = f"{segs[-2]['text']} {segs[-1]['text']}"  # words of the last two lines
    tc = _tc(evidence, video, workdir)
    everywhere = GroundTool()({"query": query, "top_k": 5}, tc)
    assert {round(s.span.start) for s in everywhere.spans[:2]} == {12, 18}
    inside = GroundTool()({"query": query, "within": {"start": 18, "end": 24}, "top_k": 5}, tc)
    assert inside.spans and all(s.span.end > 18 for s in inside.spans)


def test_typed_errors(evidence, video, workdir):
    tool = GroundTool()
    cases = [
        ({"query": "   "}, evidence, None, "empty_query"),
        ({"query": "ships"}, Context(evidence[:2]), None, "no_evidence"),
        ({"query": "ships", "within": {"start": 40, "end": 50}}, evidence, None, "span_outside_video"),
        ({"query": "qqxz vvbn", "backend": "index"}, evidence, None, "no_match"),
        ({"query": "ships", "backend": "model"}, evidence, None, "no_model"),
    ]
    for args, ctx, session, kind in cases:
        with pytest.raises(ToolFailure) as info:
            tool(args, _tc(ctx, video, workdir, session))
        assert info.value.error_type == kind, (args, info.value)
    with pytest.raises(ToolFailure) as info:
        tool({"query": ""}, _tc(evidence, video, workdir))
    assert info.value.error_type == "invalid_arguments"


def test_parse_span_orders_and_clamps():
    assert parse_span("30 - 12", 24.0) == TimeSpan(start=12.0, end=24.0)
    assert parse_span(" 3.5-4", 24.0, TimeSpan(start=4, end=10)) == TimeSpan(start=4.0, end=4.5)
    with pytest.raises(ToolFailure) as info:
        parse_span("soon", 24.0)
    assert info.value.error_type == "malformed_model_output"


def test_span_constraint_keeps_random_scores_inside_the_span_grammar():
    import regex

    from mcr.model.runtime.tiny import tiny_tokenizer
    from mcr.model.runtime.grammar import GrammarConstraint
    from mcr.tools.ground import SPAN_PATTERN

    tok = tiny_tokenizer()
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    constraint = GrammarConstraint.regex(tok, SPAN_PATTERN)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        out: list[int] = []
        for _ in range(24):
            scores = torch.randn(1, len(tok), generator=gen)  # (1, V) a model with no idea
            token = int(constraint(torch.tensor([out], dtype=torch.long), scores).argmax())
            if token == eos:
                break
            out.append(token)
        text = tok.decode(out)
        assert regex.fullmatch(SPAN_PATTERN, text), text
        parse_span(text, 24.0)


@pytest.fixture(scope="module")
def tiny_session():
    from mcr.model.runtime.loader import LoadedModel
    from mcr.model.runtime.session import ModelSession
    from mcr.model.runtime.tiny import build_tiny_qwen3vl

    model, processor = build_tiny_qwen3vl(seed=0)
    return ModelSession(LoadedModel(model, processor.tokenizer, processor, name="tiny-qwen3vl", kind="qwen_vl"))


def _snapshot(session) -> tuple[list[int], list[torch.Tensor]]:
    return list(session.state.ids), [layer.keys.clone() for layer in session.cache.layers]


def test_model_backend_uses_a_fork_and_leaves_the_main_cache_alone(evidence, video, workdir, tiny_session):
    main = tiny_session
    main.reset()
    main.prefill(main.render(evidence.render()))  # as if the policy had just taken its turn
    ids, keys = _snapshot(main)
    out = GroundTool()({"query": "the farmer", "backend": "model"}, _tc(evidence, video, workdir, main))
    assert out.backend == "model" and len(out.spans) == 1
    span = out.spans[0].span
    assert 0.0 <= span.start < span.end <= 24.0  # constrained decoding: always 'start - end', clamped
    # The fork reused the whole cached prefix (video included) up to the main turn's generation prompt.
    gen_prompt = len(main.tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"])
    assert len(ids) - gen_prompt <= out.model_usage["reused_tokens"] < len(ids)
    assert out.model_usage["prefilled_tokens"] > 0
    after_ids, after_keys = _snapshot(main)
    assert after_ids == ids and all(torch.equal(a, b) for a, b in zip(keys, after_keys))
    assert main.cache.get_seq_length() == len(ids)
    # auto: with no time-aligned text yet but a model at hand, the model grounds.
    first_look = Context(evidence[:2])
    assert GroundTool()({"query": "the farmer"}, _tc(first_look, video, workdir, main)).backend == "model"


@pytest.mark.slow
def test_phrases_pocketsphinx_heard_ground_to_their_narration(video, workdir, sample_facts):
    """The same acceptance on the rough transcript of the bundled ASR model (no subtitles)."""
    ctx = Context([Instruction(id="e0", text="q", video=video)])
    tc = _tc(ctx, video, workdir)
    _add_result(ctx, "segment", SegmentTool()({"mode": "temporal"}, tc))
    _add_result(ctx, "transcribe", TranscribeTool()({"backend": "pocketsphinx"}, tc))
    segments = ctx.results_of("transcribe")[-1].output["segments"]
    assert len(segments) >= 3
    for seg in segments:
        truth = _scene_of((seg["span"]["start"] + seg["span"]["end"]) / 2, sample_facts)["narration"]
        top = GroundTool()({"query": seg["text"]}, tc).spans[0]
        assert top.span.iou(TimeSpan(start=truth["start"], end=truth["end"])) >= 0.5, (seg["text"], top)
