"""Graph paths of the budget note and low-confidence answers, driven by the scripted policy."""

from __future__ import annotations

from mcr.agent import Agent
from mcr.context import Memory, Verdict
from mcr.policies.scripted import ScriptedPolicy
from mcr.task import Budget, PlanStep
from mcr.verify import Verifier


def never_backed(answer, context):
    """An evidence check that always fails (stands in for 'the evidence does not support it')."""
    return False, "the evidence does not back it; look again (ground)"


def agent(plan, tmp_path, max_steps):
    verifier = Verifier()
    verifier.add("evidence_support", never_backed)
    return Agent(policy=ScriptedPolicy([PlanStep(**p) for p in plan]), tools=["video_info"], verifier=verifier,
                 budget=Budget(max_steps=max_steps, max_tool_calls=5), workdir=tmp_path)


def notes(result):
    return [e for e in result.context if isinstance(e, Memory) and e.source == "budget"]


def test_the_last_step_is_announced_and_its_low_confidence_answer_accepted_marked(tiny_video, tmp_path):
    plan = [{"call": "video_info"}, {"answer": "six", "option": "B"}, {"answer": "seven", "option": "C", "confidence": "low"}]
    result = agent(plan, tmp_path, max_steps=3).run(tiny_video, "How many?", options=["five", "six", "seven"])
    assert result.stop_reason == "answered" and result.accepted and result.low_confidence
    assert result.option == "C"
    verdicts = [e for e in result.context if isinstance(e, Verdict)]
    assert [v.accepted for v in verdicts] == [False, True]
    assert verdicts[-1].low_confidence and verdicts[-1].reason.startswith("accepted with low confidence")
    (note,) = notes(result)
    assert "last step (3 of 3)" in note.text and note.step == 3  # written once, before the last decision


def test_low_confidence_before_the_note_changes_nothing(tiny_video, tmp_path):
    plan = [{"answer": "six", "option": "B", "confidence": "low"}, {"answer": "seven", "option": "C"}]
    result = agent(plan, tmp_path, max_steps=2).run(tiny_video, "How many?", options=["five", "six", "seven"])
    assert not result.accepted and result.stop_reason == "max_steps"
    assert [v.accepted for v in result.context if isinstance(v, Verdict)] == [False, False]


def test_an_answer_rejected_only_as_weakly_backed_may_be_the_last_guess(tiny_video, tmp_path):
    """Weak support is no evidence against an option: the last step may guess it again, marked low."""
    plan = [{"answer": "six", "option": "B"}, {"answer": "six", "option": "B", "confidence": "low"}]
    result = agent(plan, tmp_path, max_steps=2).run(tiny_video, "How many?", options=["five", "six", "seven"])
    assert result.accepted and result.low_confidence and result.option == "B"
    last = [v for v in result.context if isinstance(v, Verdict)][-1]
    assert last.low_confidence and last.checks["not_repeated"] is True


def test_a_repeated_invalid_answer_is_rejected_even_with_low_confidence(tiny_video, tmp_path):
    plan = [{"answer": "six", "option": "E"}, {"answer": "six", "option": "E", "confidence": "low"}]
    result = agent(plan, tmp_path, max_steps=2).run(tiny_video, "How many?", options=["five", "six", "seven"])
    assert not result.accepted
    last = [v for v in result.context if isinstance(v, Verdict)][-1]
    assert not last.accepted and last.checks["not_repeated"] is False


def test_a_repeated_answer_before_the_last_step_is_rejected(tiny_video, tmp_path):
    plan = [{"answer": "six", "option": "B"}, {"answer": "six", "option": "B", "confidence": "low"},
            {"answer": "five", "option": "A"}]
    result = agent(plan, tmp_path, max_steps=3).run(tiny_video, "How many?", options=["five", "six", "seven"])
    second = [v for v in result.context if isinstance(v, Verdict)][1]
    assert not second.accepted and second.checks["not_repeated"] is False


def test_no_tool_call_left_is_announced_too(tiny_video, tmp_path):
    plan = [{"call": "video_info"}, {"answer": "five", "option": "A", "confidence": "low"}]
    a = agent(plan, tmp_path, max_steps=8)
    a.budget = Budget(max_steps=8, max_tool_calls=1)
    result = a.run(tiny_video, "How many?", options=["five", "six", "seven"])
    assert "no tool calls are left" in notes(result)[0].text and result.low_confidence
