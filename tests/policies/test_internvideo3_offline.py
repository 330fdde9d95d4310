"""The offline default policy: SmolLM2-135M (real weights) answering from the tools' text evidence."""

from __future__ import annotations

import pytest

from mcr.agent import Agent
from mcr.traces.recorder import read_trace
from mcr.context import ToolCall, ToolResult
from mcr.model.runtime.loader import WeightsNotFound, load_smollm2
from mcr.model.runtime.session import ModelSession
from mcr.policies.offline import OfflinePolicy, offline_default_policy
from mcr.task import Budget
from mcr.tools.base import ToolRegistry, tool

TRANSCRIPT = (
    "[0.5s-3.5s] The red lighthouse stands on the northern cliff. "
    "[6.5s-9.4s] At night the keeper counts seven ships. "
    "[12.5s-15.3s] In the morning a farmer plants green barley."
)


@tool
def read_transcript() -> str:
    """Read the narration transcript of the video."""
    return TRANSCRIPT


@tool
def list_shots() -> str:
    """List the shots of the video."""
    return "4 shots: #1 0.0s-6.0s, #2 6.0s-12.0s, #3 12.0s-18.0s, #4 18.0s-24.0s"


@tool
def zoom(start: float, end: float) -> str:
    """Look at a span closely (needs arguments, so the offline policy leaves it alone)."""
    return f"{start}-{end}"


@pytest.fixture(scope="module")
def smol():
    return load_smollm2()


@pytest.fixture
def registry():
    return ToolRegistry([read_transcript, list_shots, zoom])


def run(policy, registry, video, workdir, question, options=None):
    agent = Agent(policy=policy, tools=registry, budget=Budget(max_steps=5, max_tool_calls=4, wall_time_s=600), workdir=workdir)
    return agent.run(video, question, options=options)


def test_answers_multiple_choice_from_the_transcript(smol, registry, tiny_video, tmp_path):
    policy = OfflinePolicy(ModelSession(smol), registry=registry)
    result = run(policy, registry, tiny_video, tmp_path, "How many ships does the keeper count at night?",
                 ["five", "six", "seven", "eight"])
    assert result.stop_reason == "answered" and result.accepted
    assert result.option == "C" and "seven" in result.answer  # its own sentence, naming the option
    called = [e.tool for e in result.context if isinstance(e, ToolCall)]
    assert sorted(called) == ["list_shots", "read_transcript"]  # each no-argument tool once; zoom never
    transcript_id = next(e.id for e in result.context if isinstance(e, ToolResult) and e.tool == "read_transcript")
    assert transcript_id in [e.id for e in result.evidence]
    last = [e["usage"] for e in read_trace(result.trace_path) if e["type"] == "model_call"][-1]
    assert last["reused_tokens"] > last["prefilled_tokens"]  # the answer turn reuses the cache


def test_open_question_gets_one_sentence(smol, registry, tiny_video, tmp_path):
    policy = OfflinePolicy(ModelSession(smol), registry=registry, max_answer_tokens=24)
    result = run(policy, registry, tiny_video, tmp_path, "What does the farmer plant?")
    assert result.stop_reason == "answered" and result.answer
    assert "\n" not in result.answer and "<" not in result.answer
    assert result.option is None


def test_factory_reads_settings_and_rejects_unknown_ones(registry, tmp_path):
    policy = offline_default_policy({"max_new_tokens": 5, "max_answer_tokens": 9, "on_invalid": "answer"}, registry)
    assert isinstance(policy, OfflinePolicy) and policy.name == "offline"
    assert policy.session.max_new_tokens == 5 and policy.max_answer_tokens == 9 and policy.on_invalid == "answer"
    assert not policy.session.loaded.multimodal
    with pytest.raises(ValueError, match="unknown policy settings"):
        offline_default_policy({"grammar": True})
    with pytest.raises(WeightsNotFound):
        offline_default_policy({"model": str(tmp_path / "missing")})


@pytest.mark.slow
def test_demo_on_the_sample_video_with_the_builtin_tools(sample_video, tmp_path):
    """The demo's path: built-in tools (transcript by Whisper, no subtitles; shot detection), the offline policy."""
    from mcr.tools import builtin_registry

    registry = builtin_registry()
    policy = offline_default_policy({}, registry=registry)
    result = run(policy, registry, sample_video, tmp_path, "How many ships does the keeper count at night?",
                 ["five", "six", "seven", "eight"])
    assert result.stop_reason == "answered"
    assert result.option == "C"  # "seven", read from the narration
    assert {e.tool for e in result.context if isinstance(e, ToolCall)} <= set(registry.names)


def test_after_a_rejection_the_same_option_is_never_proposed_again(smol, registry, tiny_video, tmp_path):
    """A verifier that rejects 'seven' on the verify node: the policy's next answer is another option."""
    from mcr.context import Verdict
    from mcr.verify import Verifier

    def not_seven_at_first(answer, context):
        first = not any(isinstance(e, Verdict) for e in context)
        return not (first and answer.option == "C"), "rejected once, for the test; look again (search)"

    judge = Verifier()  # what the policy asks before answering: the built-in checks only
    node = Verifier()
    node.add("not_seven_at_first", not_seven_at_first)
    policy = OfflinePolicy(ModelSession(smol), registry=registry, verifier=judge)
    agent = Agent(policy=policy, tools=registry, verifier=node, workdir=tmp_path,
                  budget=Budget(max_steps=6, max_tool_calls=4, wall_time_s=600))
    result = agent.run(tiny_video, "How many ships does the keeper count at night?", ["five", "six", "seven", "eight"])
    answers = [e for e in result.context if e.kind == "answer"]
    assert len(answers) >= 2 and len({a.option for a in answers}) == len(answers)  # no option twice
    assert result.accepted and result.option != answers[0].option


@pytest.mark.parametrize("scores, expected", [
    ({"A": 0.1, "B": 0.9, "C": 0.1, "D": 0.1}, "B"),  # the scorer leads by far: it chooses, the model is not asked
    ({"A": 0.5, "B": 0.5, "C": 0.5, "D": 0.5}, "C"),  # a tie: the model ranks, and the transcript says seven
])
def test_the_verifiers_scorer_chooses_and_the_model_breaks_its_ties(smol, registry, tiny_video, tmp_path,
                                                                   scores, expected):
    """Every option passes the built-in checks; which one is answered is the scorer's call unless it ties."""
    from mcr.verify import OptionScore, Verifier

    def scorer(context):
        return [OptionScore(letter, p) for letter, p in scores.items()]

    judge = Verifier(scorer=scorer)  # the built-in checks pass every well-formed option
    policy = OfflinePolicy(ModelSession(smol), registry=registry)
    agent = Agent(policy=policy, tools=registry, verifier=judge, workdir=tmp_path,
                  budget=Budget(max_steps=5, max_tool_calls=4, wall_time_s=600))
    result = agent.run(tiny_video, "How many ships does the keeper count at night?", ["five", "six", "seven", "eight"])
    assert result.stop_reason == "answered" and result.option == expected


def test_scorer_contenders_keeps_only_options_within_the_tie_margin():
    from mcr.policies.choose import OptionJudgement
    from mcr.policies.offline import SCORER_TIE, scorer_contenders

    pool = [OptionJudgement(letter, letter, False, score=p) for letter, p in [("A", 0.2), ("B", 0.8), ("C", 0.8 - SCORER_TIE / 2)]]
    assert [j.letter for j in scorer_contenders(pool)] == ["B", "C"]
    assert [j.letter for j in scorer_contenders(pool[:2])] == ["B"]
    assert scorer_contenders([]) == []
