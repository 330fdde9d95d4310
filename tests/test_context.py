"""The context: typed entries, JSON round-trip, append-only ids, append-stable rendering."""

from __future__ import annotations

import json
import random

import pytest
from pydantic import ValidationError

from mcr.context import (
    Answer,
    Context,
    Instruction,
    Memory,
    Observation,
    Thought,
    TimeSpan,
    ToolCall,
    ToolError,
    ToolResult,
    Verdict,
    VideoRef,
    parse_entry,
)

VIDEO = VideoRef(path="/videos/sample.mp4", fps=2.0, min_pixels=3136, max_pixels=200704, duration=24.0)


def make_entry(kind: str, n: int, refs: tuple[str, ...] = ()):
    span = TimeSpan(start=n, end=n + 1.5)
    return {
        "instruction": lambda: Instruction(text=f"question {n}?", video=VIDEO, options=("a", "b")),
        "observation": lambda: Observation(text=f"look {n}", video=VIDEO, span=span, images=(f"/k/{n}.jpg",), refs=refs),
        "thought": lambda: Thought(step=n, text=f"hmm {n} <b>"),
        "tool_call": lambda: ToolCall(step=n, tool="segment", arguments={"mode": "temporal", "n": n}),
        "tool_result": lambda: ToolResult(step=n, tool="segment", output={"shots": [n]}, summary=f"{n} shots", refs=refs, span=span),
        "tool_error": lambda: ToolError(step=n, tool="transcribe", error_type="no_audio", message="none", refs=refs),
        "memory": lambda: Memory(step=n, text=f"fact {n}", source="summarize", span=span, refs=refs),
        "verdict": lambda: Verdict(step=n, accepted=n % 2 == 0, reason="why", checks={"a": True}, refs=refs),
        "answer": lambda: Answer(step=n, text=f"answer {n}", option="B", refs=refs),
    }[kind]()


KINDS = ["instruction", "observation", "thought", "tool_call", "tool_result", "tool_error", "memory", "verdict", "answer"]


def random_context(seed: int, length: int = 40) -> Context:
    rng = random.Random(seed)
    ctx = Context()
    for n in range(length):
        refs = tuple(rng.sample([e.id for e in ctx], k=min(len(ctx), rng.randint(0, 2))))
        ctx.append(make_entry(rng.choice(KINDS), n, refs))
    return ctx


def test_every_entry_kind_round_trips_through_json():
    ctx = Context()
    for n, kind in enumerate(KINDS):
        ctx.append(make_entry(kind, n, refs=("e0",) if n else ()))
    again = Context.from_json(ctx.to_json())
    assert again.to_dicts() == ctx.to_dicts()
    assert [type(e) for e in again] == [type(e) for e in ctx]
    assert json.loads(ctx.to_json())["entries"][3]["kind"] == "tool_call"


def test_ids_are_positions_and_entries_are_frozen():
    ctx = random_context(1, 5)
    assert [e.id for e in ctx] == ["e0", "e1", "e2", "e3", "e4"]
    with pytest.raises(ValidationError):
        ctx[0].step = 3  # type: ignore[misc]


def test_refs_must_point_backwards():
    ctx = Context()
    ctx.append(Thought(text="a"))
    with pytest.raises(ValueError, match="unknown entries"):
        ctx.append(Thought(text="b", refs=("e7",)))
    assert len(ctx) == 1


def test_loading_out_of_order_entries_is_refused():
    data = random_context(2, 3).to_dicts()
    with pytest.raises(ValueError, match="out of order"):
        Context.from_dicts([data[0], data[2]])


def test_unknown_kind_or_key_is_rejected():
    with pytest.raises(ValidationError):
        parse_entry({"kind": "telepathy", "id": "e0", "text": "x"})
    with pytest.raises(ValidationError):
        parse_entry({"kind": "thought", "id": "e0", "text": "x", "mood": "good"})


def test_time_span_validation_and_iou():
    with pytest.raises(ValidationError):
        TimeSpan(start=3, end=2)
    a, b = TimeSpan(start=0, end=4), TimeSpan(start=2, end=6)
    assert a.iou(b) == pytest.approx(2 / 6)
    assert a.iou(TimeSpan(start=5, end=6)) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_rendering_is_append_stable(seed):
    """Rendering entry k never changes when later entries are appended."""
    full = random_context(seed)
    rendered_full = full.render()
    for k in range(len(full) + 1):
        assert full.prefix(k).render() == rendered_full[: k + 1]
    # And the serialised form (what a tokenizer sees) is a strict prefix too.
    shorter = json.dumps(full.prefix(20).render())[:-1]
    assert json.dumps(rendered_full).startswith(shorter)


def test_render_gives_qwen_vl_message_parts():
    ctx = Context()
    ctx.append(Instruction(text="What happens?", video=VIDEO, options=("rain", "sun")))
    ctx.append(Observation(text="the whole video", video=VIDEO, span=TimeSpan(start=0, end=24)))
    ctx.append(ToolCall(step=1, tool="transcribe", arguments={}))
    system, instruction, observation, call = ctx.render()
    assert system["role"] == "system"
    assert instruction["role"] == "user"
    assert "A. rain" in instruction["content"][-1]["text"] and "B. sun" in instruction["content"][-1]["text"]
    video_part = observation["content"][0]
    assert video_part == {
        "type": "video", "video": "/videos/sample.mp4", "fps": 2.0, "min_pixels": 3136,
        "max_pixels": 200704, "video_start": 0.0, "video_end": 24.0,
    }
    assert call["role"] == "assistant"
    assert call["content"][0]["text"] == '<tool_call>{"arguments": {}, "name": "transcribe"}</tool_call>'


def test_lookups():
    ctx = random_context(3, 30)
    results = ctx.of_kind(ToolResult)
    assert all(isinstance(e, ToolResult) for e in results)
    if results:
        assert ctx.last(ToolResult) == results[-1]
        assert ctx.get(results[0].id) == results[0]
    assert ctx.get("e999") is None
