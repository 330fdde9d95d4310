"""InternVideo3Policy on a tiny random Qwen3-VL: parsing, bounded retries, grammar, full episodes."""

from __future__ import annotations

import json

import pytest

from mcr.agent import Agent
from mcr.context import Context, Instruction, Memory, Observation, ToolError, VideoRef
from mcr.model.runtime.loader import WeightsNotFound, load_model
from mcr.model.runtime.session import ModelSession
from mcr.policies.base import FinalAnswer, InvalidOutput, PolicyError, ToolCalls
from mcr.policies.internvideo3 import InternVideo3Policy, ToolGrammar, invalid_streak
from mcr.policies.parsing import parse_decision
from mcr.task import Budget, VideoSettings

SMALL_VIDEO = VideoSettings(fps=2.0, min_pixels=64 * 64, max_pixels=96 * 64)
OPTIONS = ["24 frames", "48 frames"]


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    return load_model(tiny_checkpoint, dtype="float32")


def run(policy, registry, video, workdir, max_steps=4):
    agent = Agent(
        policy=policy, tools=registry, budget=Budget(max_steps=max_steps, max_tool_calls=4, wall_time_s=300),
        workdir=workdir, video_settings=SMALL_VIDEO,
    )
    return agent.run(video, "How many frames does the video have?", options=OPTIONS)


def test_random_model_episode_ends_cleanly_after_bounded_retries(tiny, test_registry, tiny_video, tmp_path):
    policy = InternVideo3Policy(ModelSession(tiny, max_new_tokens=16), registry=test_registry, max_invalid_outputs=2)
    result = run(policy, test_registry, tiny_video, tmp_path)
    assert result.stop_reason == "policy_error"
    assert "2 invalid outputs in a row" in result.stop_detail
    errors = [e for e in result.context if isinstance(e, ToolError)]
    assert len(errors) == 2 and all(e.error_type == "invalid_output" and e.message for e in errors)
    calls = [json.loads(line) for line in result.trace_path.read_text().splitlines()]
    usages = [c["usage"] for c in calls if c.get("type") == "model_call"]
    assert len(usages) >= 2 and usages[0]["prefilled_tokens"] > 0 and usages[0]["raw_output"] is not None
    assert usages[1]["reused_tokens"] > usages[1]["prefilled_tokens"]  # turn 2 reuses turn 1's cache


def test_grammar_makes_a_random_model_emit_only_valid_decisions(tiny, test_registry, tiny_video, tmp_path):
    session = ModelSession(tiny, max_new_tokens=80, temperature=1.0, seed=2)
    policy = InternVideo3Policy(session, registry=test_registry, grammar=True)
    result = run(policy, test_registry, tiny_video, tmp_path, max_steps=3)
    kinds = [e.kind for e in result.context]
    assert "tool_error" not in kinds, [e for e in result.context if e.kind == "tool_error"]
    assert "tool_call" in kinds and "tool_result" in kinds  # seed 2 calls the tool first
    assert result.stop_reason in ("answered", "max_steps")
    for answer in (e for e in result.context if e.kind == "answer"):
        assert answer.option in ("A", "B")


def test_grammar_allows_only_listed_tools_options_and_evidence():
    lark = ToolGrammar.lark(
        [{"type": "function", "function": {"name": "zoom", "parameters": {"type": "object"}}}], ["x", "y", "z"], ["e1", "e4"]
    )
    assert '"name": {"const": "zoom"}' in lark
    assert "/[ABC]/" in lark and 'cite: "e1" | "e4"' in lark


def context_with_errors(n: int) -> Context:
    ctx = Context()
    ctx.append(Instruction(text="q?", options=("a", "b")))
    for _ in range(n):
        ctx.append(ToolError(error_type="invalid_output", message="not JSON"))
    return ctx


def test_retry_limit_raises_or_answers(tiny):
    session = ModelSession(tiny, max_new_tokens=4)
    assert invalid_streak(context_with_errors(3)) == 3
    with pytest.raises(PolicyError, match="3 invalid outputs in a row; the last error: not JSON"):
        InternVideo3Policy(session, max_invalid_outputs=3).decide(context_with_errors(3), [])
    gave_up = InternVideo3Policy(session, max_invalid_outputs=3, on_invalid="answer").decide(context_with_errors(3), [])
    assert isinstance(gave_up, FinalAnswer) and "invalid outputs" in gave_up.text
    # Below the limit the model is asked again.
    again = InternVideo3Policy(session, max_invalid_outputs=3).decide(context_with_errors(2), [])
    assert isinstance(again, (InvalidOutput, FinalAnswer, ToolCalls))


def test_usage_reports_cache_hits(tiny, tiny_video):
    ctx = Context()
    ctx.append(Instruction(text="q?", video=VideoRef(path=str(tiny_video), **SMALL_VIDEO.model_dump())))
    policy = InternVideo3Policy(ModelSession(tiny, max_new_tokens=4))
    first = policy.decide(ctx, []).usage
    ctx.append(Observation(text="more"))
    second = policy.decide(ctx, []).usage
    assert first.prompt_tokens == first.prefilled_tokens and first.reused_tokens == 0
    # All but the generation prompt "assistant\n" (10 byte tokens) is reused.
    assert second.reused_tokens == first.prompt_tokens - len("assistant\n")
    assert second.cache_bytes > first.cache_bytes
    assert second.generated_tokens <= 4 and second.latency_s > 0


def test_from_settings_builds_the_policy(tiny_checkpoint, test_registry):
    policy = InternVideo3Policy.from_settings(
        {"model": str(tiny_checkpoint), "dtype": "float32", "max_new_tokens": 7, "grammar": True, "max_invalid_outputs": 5},
        registry=test_registry,
    )
    assert policy.session.max_new_tokens == 7 and policy.grammar and policy.max_invalid_outputs == 5
    assert policy.registry is test_registry and policy.name == "internvideo3"


def test_from_settings_rejects_unknown_keys_and_missing_weights(tiny_checkpoint, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown policy settings \\['temprature'\\]"):
        InternVideo3Policy.from_settings({"model": str(tiny_checkpoint), "temprature": 0.5})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFound, match="huggingface-cli download"):
        InternVideo3Policy.from_settings({})
    with pytest.raises(ValueError, match="on_invalid"):
        InternVideo3Policy(None, on_invalid="ignore")


def test_grammar_builds_for_every_builtin_tool_schema(tiny):
    """Tool inputs with nested models ($defs, e.g. TimeSpan) must compile into the grammar."""
    import llguidance

    from mcr.tools import builtin_registry

    schemas = builtin_registry().schemas()
    assert any("$defs" in s["function"]["parameters"] for s in schemas)  # the case that used to break
    grammar = llguidance.grammar_from("lark", ToolGrammar.lark(schemas, ["a", "b"], ["e1"]))
    assert llguidance.LLMatcher.validate_grammar(grammar) == ""  # "" means no error
    ToolGrammar(tiny.tokenizer, schemas)  # builds a matcher without error


def _accepts(tokenizer, lark: str, text: str) -> bool:
    from mcr.model.runtime.grammar import GrammarConstraint

    constraint = GrammarConstraint(tokenizer, lark)
    ids = tokenizer.encode(text, add_special_tokens=False)
    ok = all(constraint.matcher.consume_token(t) for t in ids)
    return ok and constraint.matcher.is_accepting() and not constraint.matcher.is_error()


def test_grammar_allows_a_low_confidence_answer_and_nothing_else(tiny):
    lark = ToolGrammar.lark([], ["x", "y"], ["e1", "e4"])
    tok = tiny.tokenizer
    assert _accepts(tok, lark, '<answer option="A" evidence="e1">x</answer>')
    assert _accepts(tok, lark, '<answer option="B" evidence="e4" confidence="low">y</answer>')
    assert not _accepts(tok, lark, '<answer option="B" evidence="e4" confidence="high">y</answer>')


def test_the_prompt_carries_the_exploration_rules(tiny, test_registry):
    from mcr.policies.internvideo3 import EXPLORE_GUIDE

    policy = InternVideo3Policy(ModelSession(tiny), registry=test_registry)
    ctx = Context()
    ctx.append(Instruction(text="q?", options=("a", "b")))
    system = policy.messages(ctx)[0]
    text = system["content"] if isinstance(system["content"], str) else system["content"][0]["text"]
    assert EXPLORE_GUIDE in text and "ground(query=" in text and 'confidence="low"' in text
    parsed = parse_decision('<answer option="B" evidence="e1" confidence="low">b</answer>', [], options=("a", "b"))
    assert parsed.low_confidence and parsed.option == "B"


def test_the_prompt_cites_the_question_reading_after_the_question(tiny, test_registry):
    """The model is told how the question was read (the same record the explorer and verifier use),
    in the question's own message, so the prompt stays append-stable."""
    from mcr.language.lexicon import lexicon_available

    policy = InternVideo3Policy(ModelSession(tiny), registry=test_registry)
    ctx = Context()
    ctx.append(Instruction(text="Which word is shown right after the bell rings?", options=("OPEN", "SHUT")))
    first = policy.messages(ctx)
    question = first[1]["content"]
    assert question[0]["text"].startswith("Question:")
    reading = question[-1]["text"]
    assert reading.startswith("Reading of the question:") and "'bell rings'" in reading
    if lexicon_available():
        assert "text shown on screen" in reading and "right after" in reading
    ctx.append(Memory(step=1, text="a note", source="test"))
    assert policy.messages(ctx)[: len(first)] == first  # append-stable
