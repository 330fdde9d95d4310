"""The offline policy's candidate builder and option chooser (no model: the rules alone)."""

from __future__ import annotations

import json

import pytest

from mcr.context import Answer, Context, Instruction, Memory, Observation, ToolCall, ToolResult, TimeSpan, Verdict, VideoRef
from mcr.language.lexicon import lexicon_available
from mcr.policies.choose import citable, judge_options
from mcr.policies.explore import (call_key, candidate_calls, hints_for, listens_first, question_frame,
                                  rejected_options, relation_spans)
from mcr.tools import builtin_registry
from mcr.verify import Verifier

# The question reader tells what a question asks with WordNet (mcr.language.lexicon); without it these plans differ.
needs_wordnet = pytest.mark.skipif(not lexicon_available(),
                                   reason="needs the Debian packages wordnet-base and wordnet-sense-index")

QUESTION = "What colour fills the backdrop while the speaker explains that Tomas counts three kettles?"
OPTIONS = ("green", "navy", "red", "yellow")
TOOLS = builtin_registry().schemas()


def episode(question: str = QUESTION, options=OPTIONS) -> Context:
    ctx = Context()
    video = VideoRef(path="/v.mp4", duration=17.5)
    ctx.append(Observation(text="Video v.mp4: 17.5 s, with an audio track.", video=video))
    ctx.append(Instruction(text=question, video=video, options=options))
    return ctx


def called(ctx: Context, tool: str, output: dict, arguments: dict | None = None, span=None) -> ToolResult:
    call = ctx.append(ToolCall(step=len(ctx), tool=tool, arguments=arguments or {}))
    return ctx.append(ToolResult(step=call.step, refs=(call.id,), tool=tool, output=output, span=span))


def transcript(ctx: Context) -> ToolResult:
    return called(ctx, "transcribe", {"segments": [
        {"span": {"start": 0.5, "end": 1.7}, "text": "At the bakery,"},
        {"span": {"start": 2.5, "end": 5.0}, "text": "Thomas counts three kettles."},
        {"span": {"start": 6.1, "end": 10.0}, "text": "Oscar buys seven candles at the harbor."}],
        "text": "...", "backend": "faster_whisper"})


def summary(ctx: Context) -> ToolResult:
    scenes = [{"level": "scene", "span": {"start": a, "end": b}, "text": t}
              for a, b, t in ((0.0, 5.5, "green; said Thomas counts three kettles"), (5.5, 11.5, "yellow; said Oscar"),
                              (11.5, 17.5, "grey; objects dog"))]
    return called(ctx, "summarize", {"span": {"start": 0, "end": 17.5}, "scenes": scenes, "shots": scenes},
                  span=TimeSpan(start=0, end=17.5))


def keys(cands) -> set[str]:
    return {c.key for c in cands}


@needs_wordnet
def test_perception_one_tool_at_a_time_the_likeliest_evidence_first_then_the_question_is_grounded():
    ctx = episode()  # a colour question: pixels first, so summarize (colours, text, objects per scene) first
    order = []
    for _ in range(3):
        first = candidate_calls(ctx, TOOLS)
        perception = [c for c in first if c.tool != "ground"]
        assert len(perception) == 1 and perception[0].arguments == {}  # plain: cached and shared across questions
        assert first[0] is perception[0]
        order.append(first[0].tool)
        {"transcribe": transcript, "summarize": summary}.get(first[0].tool, lambda c: called(c, "segment", {"shots": []}))(ctx)
    assert order[0] == "summarize" and set(order) == {"transcribe", "summarize", "segment"}
    then = candidate_calls(ctx, TOOLS)
    assert [c.tool for c in then] == ["ground"]  # nothing already made is offered again
    assert then[0].arguments == {"query": "Tomas counts three kettles"}  # what is said, not the saying


@needs_wordnet
def test_a_speech_question_listens_first():
    ctx = episode("What does the guide tell the visitors about the harbour?", ("candles", "kettles"))
    assert listens_first(question_frame(ctx))
    assert candidate_calls(ctx, TOOLS)[0].tool == "transcribe"


@needs_wordnet
def test_the_grounded_span_is_looked_at_and_heard_again_with_the_options_as_hints():
    ctx = episode()
    transcript(ctx)
    summary(ctx)
    called(ctx, "segment", {"shots": []})
    called(ctx, "ground", {"query": "Tomas counts three kettles", "spans": [{"span": {"start": 2.47, "end": 5.5}, "score": 0.2}]},
           {"query": "Tomas counts three kettles"}, span=TimeSpan(start=2.47, end=5.5))
    cands = candidate_calls(ctx, TOOLS)
    where = {"start": 2.47, "end": 5.5}
    assert [c.tool for c in cands] == ["look", "transcribe"]
    assert cands[0].arguments == {"span": where, "detail": True}
    assert cands[1].arguments["span"] == where
    assert cands[1].arguments["hints"][:5] == ["green", "navy", "red", "yellow", "Tomas"]
    # once both are made, the scenes most like the question are next, then nothing repeats
    for c in cands:
        called(ctx, c.tool, {"span": where}, c.arguments, span=TimeSpan(start=2.47, end=5.5))
    scenes = candidate_calls(ctx, TOOLS)
    assert [c.tool for c in scenes] == ["look"] * 3
    assert scenes[0].arguments["span"] == {"start": 0.0, "end": 5.5}  # "Tomas counts kettles" is said there
    made = {call_key(e.tool, e.arguments) for e in ctx if isinstance(e, ToolCall)}
    assert not keys(scenes) & made


def test_no_call_is_ever_repeated_and_search_is_the_last_resort():
    ctx = episode("Which creature does the photo on the wall depict?", ("horses", "an eagle", "a dog"))
    seen: list[str] = []
    for _ in range(12):
        cands = candidate_calls(ctx, TOOLS)
        if not cands:
            break
        assert not keys(cands) & set(seen)
        pick = cands[0]
        seen.append(pick.key)
        if pick.tool == "summarize":
            summary(ctx)
        elif pick.tool == "ground":  # nothing matches: ground fails
            call = ctx.append(ToolCall(step=len(ctx), tool="ground", arguments=pick.arguments))
            from mcr.context import ToolError
            ctx.append(ToolError(step=call.step, refs=(call.id,), tool="ground", error_type="no_match", message="x"))
        else:
            called(ctx, pick.tool, {"shots": []} if pick.tool == "segment" else {"segments": []}, pick.arguments)
    else:
        raise AssertionError("the candidates never ran out")
    tools = [json.loads(k)[0] for k in seen]
    assert tools.count("look") == 3 and tools[-1] == "search" and len(set(seen)) == len(seen)


def test_the_question_record_says_whether_to_listen_or_look_first():
    assert listens_first(question_frame(episode("What does the host say about the weather?", None)))
    assert not listens_first(question_frame(episode()))  # the colour is asked; the speech only says when
    assert not listens_first(question_frame(episode("Which of these headlines is printed on the poster?", None)))


def test_grounding_query_and_hints_come_from_the_record():
    ctx = episode("Which colour surrounds the card labelled 'NORTH GATE'?", None)
    assert candidate_calls(ctx, TOOLS)[0].tool == "summarize"
    transcript(ctx)
    assert {"query": "NORTH GATE"} in [c.arguments for c in candidate_calls(ctx, TOOLS) if c.tool == "ground"]
    ctx = episode("Who hands seven candles to Marta?", ("Marco", "Tomas"))
    hints = hints_for(ctx)
    assert hints[:3] == ["Marco", "Tomas", "Marta"] and "candles" in hints
    assert "who" not in {h.lower() for h in hints}


def _shots(ctx: Context, *bounds) -> None:
    called(ctx, "segment", {"shots": [{"span": {"start": a, "end": b}} for a, b in bounds]})


def test_right_after_an_event_the_following_unit_is_looked_at_before_the_event_itself():
    ctx = episode("Which caption pops up right after the kettle whistles?", ("OPEN", "CLOSED"))
    transcript(ctx)
    summary(ctx)
    _shots(ctx, (0.0, 2.4), (2.4, 6.0), (6.0, 11.5), (11.5, 17.5))
    assert question_frame(ctx).grounding_query == "kettle whistles"
    called(ctx, "ground", {"query": "kettle whistles", "spans": [{"span": {"start": 2.5, "end": 5.0}, "score": 0.5}]},
           {"query": "kettle whistles"}, span=TimeSpan(start=2.5, end=5.0))
    cands = candidate_calls(ctx, TOOLS)
    assert cands[0].tool == "look" and cands[0].arguments["span"] == {"start": 6.0, "end": 11.5}
    assert relation_spans(ctx, question_frame(ctx), TimeSpan(start=2.5, end=5.0)) == [TimeSpan(start=6.0, end=11.5)]


def test_before_an_event_the_preceding_units_and_a_window_without_units():
    ctx = episode("What does the baker say before the oven door opens?", ("yes", "no"))
    transcript(ctx)
    frame = question_frame(ctx)
    assert listens_first(frame)
    # speech: the transcript segments ending before the event, nearest first (not "just before": two)
    assert relation_spans(ctx, frame, TimeSpan(start=6.1, end=10.0)) == [
        TimeSpan(start=2.5, end=5.0), TimeSpan(start=0.5, end=1.7)]
    bare = episode("Which sign is visible just after the bell rings?", None)
    # nothing measured yet: a window as long as the event (2-10 s) after it
    assert relation_spans(bare, question_frame(bare), TimeSpan(start=3.0, end=4.0)) == [TimeSpan(start=4.0, end=6.0)]


def test_a_rejection_naming_tools_puts_them_first_and_the_option_is_never_proposed_again():
    ctx = episode()
    transcript(ctx)
    answer = ctx.append(Answer(step=5, text="red", option="C", refs=()))
    ctx.append(Verdict(step=5, refs=(answer.id,), accepted=False, reason="not supported; look again (ground, search)"))
    assert rejected_options(ctx) == {"C"}
    cands = candidate_calls(ctx, TOOLS)
    assert cands[0].tool == "ground"
    judged = judge_options(ctx, Verifier(), step=6, skip=rejected_options(ctx))
    assert [j.letter for j in judged] == ["A", "B", "D"]


def test_citations_are_tried_most_specific_first():
    ctx = episode()
    whole = summary(ctx)
    scene = ctx.append(Memory(step=3, refs=(whole.id,), span=TimeSpan(start=0, end=5.5), text="green", source="summarize"))
    ctx.append(Memory(step=3, source="budget", text="Budget: last step"))
    order = [e.id for e in citable(ctx)]
    assert order[0] == scene.id and whole.id in order
    assert all(ctx.get(i).source != "budget" for i in order if isinstance(ctx.get(i), Memory))


def test_when_grounding_finds_nothing_a_speech_question_listens_again_to_the_likeliest_segments():
    from mcr.context import ToolError

    ctx = episode("What does Oskar purchase at the harbour, as the speaker tells it?", ("candles", "kettles"))
    transcript(ctx)
    summary(ctx)
    called(ctx, "segment", {"shots": []})
    call = ctx.append(ToolCall(step=9, tool="ground", arguments={"query": question_frame(ctx).grounding_query}))
    ctx.append(ToolError(step=9, refs=(call.id,), tool="ground", error_type="no_match", message="nothing matches"))
    cands = candidate_calls(ctx, TOOLS)
    assert cands and all(c.tool == "transcribe" for c in cands)
    assert cands[0].arguments["span"] == {"start": 6.1, "end": 10.0}  # "Oscar buys seven candles at the harbor."
    assert "Oskar" in cands[0].arguments["hints"] and "candles" in cands[0].arguments["hints"]


@needs_wordnet
def test_a_rejected_span_answer_is_never_repeated_the_next_grounded_span_is_offered():
    from mcr.policies.offline import OfflinePolicy

    ctx = episode("At what moment does the voice mention that Oskar buys candles?", None)
    transcript(ctx)
    summary(ctx)
    called(ctx, "segment", {"shots": []})
    ground = called(ctx, "ground", {"query": "Oskar buys candles", "spans": [
        {"span": {"start": 6.1, "end": 10.0}, "score": 0.6}, {"span": {"start": 2.5, "end": 5.0}, "score": 0.2}]},
        {"query": "Oskar buys candles"}, span=TimeSpan(start=6.1, end=10.0))
    policy = OfflinePolicy(session=None, verifier=Verifier())  # the span path asks no model
    first = policy.decide(ctx, TOOLS)
    assert first.text == "from 6.1 s to 10.0 s" and first.evidence == (ground.id,)
    answer = ctx.append(ctx.propose_answer(step=9, text=first.text, option=None, evidence=first.evidence))
    ctx.append(Verdict(step=9, refs=(answer.id,), accepted=False, reason="not supported"))
    second = policy.decide(ctx, TOOLS)
    assert second.text == "from 2.5 s to 5.0 s"


@needs_wordnet
def test_when_grounding_finds_nothing_a_when_question_is_answered_from_the_likeliest_segment():
    from mcr.context import ToolError
    from mcr.policies.offline import OfflinePolicy

    ctx = episode("At what moment does the voice mention that Oskar buys candles?", None)
    transcript(ctx)
    summary(ctx)
    called(ctx, "segment", {"shots": []})
    policy = OfflinePolicy(session=None, verifier=Verifier())
    assert policy.decide(ctx, TOOLS).kind == "tool_calls"  # ground first
    call = ctx.append(ToolCall(step=9, tool="ground", arguments={"query": "Oskar buys candles"}))
    ctx.append(ToolError(step=9, refs=(call.id,), tool="ground", error_type="no_match", message="nothing matches"))
    answer = policy.decide(ctx, TOOLS)
    assert answer.kind == "final_answer" and answer.text == "from 6.1 s to 10.0 s"


@needs_wordnet
def test_a_question_about_movement_looks_first_at_the_scene_where_a_thing_was_measured_moving():
    from mcr.context import ToolError

    ctx = episode("Which way does the little cart roll?", ("to the left", "to the right", "it stays put"))
    transcript(ctx)
    scenes = [{"level": "scene", "span": {"start": a, "end": b}, "text": t, "movers": m}
              for a, b, t, m in ((0.0, 5.5, "green; a cart", []), (5.5, 11.5, "yellow", [{"start": 6.0}]),
                                 (11.5, 17.5, "grey; a little cart", []))]
    called(ctx, "summarize", {"span": {"start": 0, "end": 17.5}, "scenes": scenes, "shots": scenes},
           span=TimeSpan(start=0, end=17.5))
    called(ctx, "segment", {"shots": []})
    call = ctx.append(ToolCall(step=9, tool="ground", arguments={"query": question_frame(ctx).grounding_query}))
    ctx.append(ToolError(step=9, refs=(call.id,), tool="ground", error_type="no_match", message="nothing matches"))
    looks = [c for c in candidate_calls(ctx, TOOLS) if c.tool == "look"]
    assert looks[0].arguments["span"] == {"start": 5.5, "end": 11.5}  # the mover's scene, though no word says cart
    assert looks[1].arguments["span"] == {"start": 11.5, "end": 17.5}  # then the scenes most like the question
