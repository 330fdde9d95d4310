"""Bad model output: what `parse_decision` makes of it, and what the real graph does with it.

Every bad reply must become a typed decision (InvalidOutput, or a call the tool
refuses) whose message tells the model what was wrong and what a valid reply
looks like; in the graph it is a ToolError entry and the episode goes on to an
accepted answer. (Model output is not the user's input, so no exit code 2:
the run ends normally.)
"""

from __future__ import annotations

import json

import pytest
from mcr.policies.base import CallRequest, FinalAnswer, InvalidOutput, ToolCalls
from mcr.policies.parsing import MAX_CALLS_PER_REPLY, parse_decision
from mcr.tools import builtin_registry

from mcr.agent import Agent
from mcr.context import ToolError, Verdict
from mcr.task import Budget, VerifySettings

GOOD_ANSWER = "<answer>done</answer>"


@pytest.fixture(scope="module")
def registry():
    return builtin_registry().subset(["video_info", "segment"])


@pytest.fixture(scope="module")
def clip(tmp_path_factory, corpus):
    return corpus.write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def _episode(corpus, registry, clip, workdir, replies, options=None):
    """Run the replies through the graph, then a valid answer; return (result, the policy)."""
    policy = corpus.RawTextPolicy([*replies, GOOD_ANSWER], registry)
    with Agent(policy=policy, tools=registry, workdir=workdir, verify=VerifySettings(evidence=False),
               budget=Budget(max_steps=len(replies) + 3, max_tool_calls=8)) as agent:
        result = agent.run(clip, "What happens?", options=options)
    return result, policy


CASES = [  # name, reply (a function of corpus), what the parser's message says
    ("malformed JSON", lambda c: '<tool_call>{"name": "segment", "arguments": {"mode": "temporal"</tool_call>',
     ("not valid JSON", "<tool_call>")),
    ("an unknown tool", lambda c: c.call("teleport", to="mars"),
     ("there is no tool 'teleport'", "available tools: segment, video_info")),
    ("wrong argument types", lambda c: c.call("segment", mode=5, min_shot_seconds="long"),
     ("bad arguments for segment", "mode")),
    ("arguments as a string that is not JSON",
     lambda c: '<tool_call>{"name": "segment", "arguments": "mode=temporal"}</tool_call>',
     ("is a string that is not JSON", "give an object")),
    ("a negative span", lambda c: c.call("segment", span={"start": -3.0, "end": 1.0}),
     ("bad arguments for segment", "greater than or equal to 0")),
    ("a reversed span (end before start)", lambda c: c.call("segment", span={"start": 1.5, "end": 0.5}),
     ("bad arguments for segment", "before its start")),
    ("a span of NaN", lambda c: '<tool_call>{"name": "segment", "arguments": {"span": {"start": NaN, "end": 1}}}</tool_call>',
     ("bad arguments for segment",)),
    ("endless thinking with no closing tag", lambda c: "<think>" + "Let me think again. " * 5000,
     ("never ended", "</think>")),
    ("an empty output", lambda c: "", ("empty reply", "<answer")),
    ("only whitespace and a closed empty think", lambda c: "<think></think>\n  \n", ("empty reply",)),
    ("100 tool calls in one reply", lambda c: "".join(c.call("video_info") for _ in range(100)),
     ("has 100 tool calls", f"at most {MAX_CALLS_PER_REPLY}")),
]


@pytest.mark.parametrize("name,reply,says", CASES, ids=[c[0] for c in CASES])
def test_bad_reply_is_invalid_output_and_the_loop_goes_on(name, reply, says, corpus, registry, clip, ledger, tmp_path):
    text = reply(corpus)
    decision = parse_decision(text, registry.schemas(), registry=registry)
    assert isinstance(decision, InvalidOutput), decision
    assert all(s in decision.error for s in says), decision.error

    result, _ = _episode(corpus, registry, clip, tmp_path / "w", [text])
    errors = [e for e in result.context if isinstance(e, ToolError)]
    assert [e.error_type for e in errors] == ["invalid_output"] and errors[0].message == decision.error
    assert result.accepted and result.stop_reason == "answered" and result.answer == "done"
    assert result.tool_calls == 0  # nothing ran for the bad reply
    ledger.case("model_output", name, outcome="InvalidOutput -> ToolError entry; the episode went on and answered",
                message=decision.error)


def test_timestamps_beyond_the_video(corpus, registry, clip, ledger, tmp_path):
    """Well-formed, so the parser passes it; the tool refuses the span and says which times exist."""
    text = corpus.call("segment", mode="temporal", span={"start": 100.0, "end": 200.0})
    decision = parse_decision(text, registry.schemas(), registry=registry)
    assert isinstance(decision, ToolCalls)
    result, _ = _episode(corpus, registry, clip, tmp_path / "w", [text])
    (error,) = [e for e in result.context if isinstance(e, ToolError)]
    assert error.tool == "segment" and error.error_type == "span_outside_video"
    assert "100.00s-200.00s" in error.message and "between 0 and 2.00s" in error.message
    assert result.accepted and result.tool_calls == 1
    ledger.case("model_output", "timestamps beyond the video (100-200 s of a 2 s clip)",
                outcome="the tool's ToolError span_outside_video; the episode went on and answered",
                message=error.message)


def test_an_unknown_tool_that_skips_the_parser(corpus, registry, clip, ledger, tmp_path):
    """A policy that builds its own decision (no parser) naming a tool that does not exist: the graph's ToolError."""

    class Direct:
        name = "direct"

        def __init__(self):
            self.turn = 0

        def decide(self, context, tools):
            self.turn += 1
            if self.turn == 1:
                return ToolCalls(calls=(CallRequest(tool="teleport", arguments={}), CallRequest(tool="video_info")))
            return FinalAnswer(text="done")

    with Agent(policy=Direct(), tools=registry, workdir=tmp_path / "w", verify=VerifySettings(evidence=False)) as agent:
        result = agent.run(clip, "What happens?")
    (error,) = [e for e in result.context if isinstance(e, ToolError)]
    assert error.error_type == "unknown_tool" and "teleport" in error.message and "video_info" in error.message
    assert result.accepted and result.tool_calls == 1  # the valid call beside it still ran
    ledger.case("model_output", "an unknown tool in a decision built without the parser",
                outcome="ToolError unknown_tool; the valid call beside it ran; answered", message=error.message)


def test_an_option_that_does_not_exist(corpus, registry, clip, ledger, tmp_path):
    text = '<answer option="F">the fifth</answer>'
    options = ["red", "green", "blue"]
    decision = parse_decision(text, registry.schemas(), options=options, registry=registry)
    assert isinstance(decision, InvalidOutput) and "choose one of A, B, C" in decision.error
    policy = corpus.RawTextPolicy([text, '<answer option="B">green</answer>'], registry)
    with Agent(policy=policy, tools=registry, workdir=tmp_path / "w", verify=VerifySettings(evidence=False)) as agent:
        result = agent.run(clip, "Which colour?", options=options)
    assert result.accepted and result.option == "B"
    ledger.case("model_output", "an option letter that does not exist (F of A-C)",
                outcome="InvalidOutput -> ToolError; answered B next turn", message=decision.error)


def test_evidence_ids_that_do_not_exist(corpus, registry, clip, ledger, tmp_path):
    text = '<answer evidence="e99,e100">it is dark</answer>'
    decision = parse_decision(text, registry.schemas(), registry=registry)
    assert isinstance(decision, FinalAnswer) and decision.evidence == ("e99", "e100")
    result, _ = _episode(corpus, registry, clip, tmp_path / "w", [text])
    rejected = [v for v in result.context if isinstance(v, Verdict) and not v.accepted]
    assert len(rejected) == 1 and "e99" in rejected[0].reason
    assert result.accepted and result.answer == "done"
    ledger.case("model_output", "an answer citing entries that do not exist",
                outcome="verifier rejects it (its reason goes back to the model); answered next turn",
                message=rejected[0].reason)


def test_the_parser_never_raises_on_the_whole_corpus(corpus, registry):
    """Every reply above, and their concatenation, parses to a decision (the fuzz tests cover random text)."""
    replies = [reply(corpus) for _, reply, _ in CASES]
    for text in [*replies, "".join(replies), json.dumps(replies)]:
        assert isinstance(parse_decision(text, registry.schemas(), registry=registry), (InvalidOutput, ToolCalls, FinalAnswer))
