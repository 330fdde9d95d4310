"""The MCR graph: routing, verification loops, budgets, and errors as context entries."""

from __future__ import annotations

import time

import pytest
from pydantic import BaseModel

from mcr.agent import Agent
from mcr.context import Answer, Context, ToolCall, ToolError, ToolResult, Verdict
from mcr.model.media.video import VideoNotFound, VideoOpenFailure
from mcr.policies.base import CallRequest, FinalAnswer, InvalidOutput, PolicyError, ToolCalls
from mcr.usage import Usage
from mcr.task import Budget
from mcr.tools.base import Tool, ToolRegistry, tool
from mcr.traces.recorder import read_trace
from mcr.verify import Verifier


class ListPolicy:
    """Gives pre-written decisions in order; its position comes from the context."""

    name = "list"

    def __init__(self, decisions, usage: Usage | None = None, repeat_last: bool = False):
        self.decisions, self.usage, self.repeat_last = decisions, usage, repeat_last
        self.seen_tools: list[str] = []

    def decide(self, context: Context, tools):
        self.seen_tools = [t["function"]["name"] for t in tools]
        index = len({e.step for e in context if e.kind in ("tool_call", "answer")
                     or (e.kind == "tool_error" and e.error_type == "invalid_output")})
        if index >= len(self.decisions):
            if not self.repeat_last:
                raise PolicyError("out of decisions")
            index = len(self.decisions) - 1
        return self.decisions[index].model_copy(update={"usage": self.usage})


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


@tool
def explode(reason: str) -> str:
    """Crash (a tool bug)."""
    raise ZeroDivisionError(reason)


@tool
def nap(seconds: float) -> float:
    """Sleep a little."""
    time.sleep(seconds)
    return seconds


def call(tool_name: str, **arguments) -> ToolCalls:
    return ToolCalls(calls=(CallRequest(tool=tool_name, arguments=arguments),))


def run(tmp_path, video, decisions, budget=None, tools=(add, shout, explode, nap), options=None, **policy_kwargs):
    # The built-in checks only: these tests are about routing, not about evidence.
    agent = Agent(policy=ListPolicy(decisions, **policy_kwargs), tools=ToolRegistry(tools), budget=budget,
                  workdir=tmp_path / "work", verifier=Verifier())
    steps = list(agent.stream(video, "What is 2 + 3?", options))
    return agent, steps, agent.result(agent.last_thread_id)


def test_each_tool_node_is_reached_and_the_answer_is_accepted(tmp_path, tiny_video):
    decisions = [
        ToolCalls(calls=(CallRequest(tool="add", arguments={"a": 2, "b": 3}),
                         CallRequest(tool="shout", arguments={"text": "five"})), thought="compute then shout"),
        FinalAnswer(text="5", evidence=("e5",)),
    ]
    agent, steps, result = run(tmp_path, tiny_video, decisions)
    nodes = [s.node for s in steps]
    assert nodes == ["observe", "reason", "act/add", "act/shout", "reason", "verify", "answer"]
    assert result.accepted and result.answer == "5" and result.stop_reason == "answered"
    assert [e.id for e in result.evidence] == ["e5"] and isinstance(result.evidence[0], ToolResult)
    outputs = [e.output for e in result.context if isinstance(e, ToolResult)]
    assert outputs == [{"result": 5}, {"result": "FIVE"}]
    assert agent.policy.seen_tools == ["add", "shout", "explode", "nap"]
    # The trace holds exactly the context, in order, then the end event.
    events = read_trace(result.trace_path)
    assert [e["entry"] for e in events if e["type"] == "entry"] == [e.model_dump(mode="json") for e in result.context]
    assert events[0]["type"] == "episode_start" and events[-1]["type"] == "episode_end"
    assert [e["tool"] for e in events if e["type"] == "tool_call"] == ["add", "shout"]


def test_verify_rejects_and_sends_back_to_reason(tmp_path, tiny_video):
    decisions = [FinalAnswer(text="five", option="Q"), FinalAnswer(text="five", option="b")]
    _, steps, result = run(tmp_path, tiny_video, decisions, options=["four", "five"])
    assert [s.node for s in steps] == ["observe", "reason", "verify", "reason", "verify", "answer"]
    verdicts = [e for e in result.context if isinstance(e, Verdict)]
    assert [v.accepted for v in verdicts] == [False, True]
    assert "does not exist" in verdicts[0].reason
    assert result.option == "B" and result.accepted


def test_citing_missing_evidence_is_rejected(tmp_path, tiny_video):
    decisions = [FinalAnswer(text="5", evidence=("e1", "e99")), FinalAnswer(text="5 for sure", evidence=("e1",))]
    _, _, result = run(tmp_path, tiny_video, decisions)
    first = next(e for e in result.context if isinstance(e, Answer))
    assert first.refs == ("e1",) and first.missing_refs == ("e99",)
    verdict = next(e for e in result.context if isinstance(e, Verdict))
    assert not verdict.accepted and "e99" in verdict.reason
    assert result.accepted and result.answer == "5 for sure"


@pytest.mark.parametrize(
    "budget, decisions, kwargs, reason",
    [
        (Budget(max_steps=3), [call("add", a=1, b=1)], {"repeat_last": True}, "max_steps"),
        (Budget(max_tool_calls=2), [call("add", a=1, b=1)], {"repeat_last": True}, "max_tool_calls"),
        (Budget(wall_time_s=0.3), [call("nap", seconds=0.2)], {"repeat_last": True}, "wall_time"),
        (Budget(max_tokens=100), [call("add", a=1, b=1)],
         {"repeat_last": True, "usage": Usage(prefilled_tokens=40, generated_tokens=20)}, "max_tokens"),
    ],
)
def test_every_budget_ends_the_episode(tmp_path, tiny_video, budget, decisions, kwargs, reason):
    _, steps, result = run(tmp_path, tiny_video, decisions, budget=budget, **kwargs)
    assert result.stop_reason == reason and not result.accepted and result.answer is None
    assert steps[-1].stop_reason == reason
    assert read_trace(result.trace_path)[-1]["stop_reason"] == reason
    if reason == "max_steps":
        assert result.steps == 3
    if reason == "max_tool_calls":
        assert result.tool_calls == 2


def test_model_errors_become_entries_and_the_loop_goes_on(tmp_path, tiny_video):
    decisions = [
        call("teleport", where="mars"),
        call("add", a="two", b=3),
        call("explode", reason="bug"),
        InvalidOutput(raw="<tool_call>{oops", error="unterminated JSON in tool call"),
        call("add", a=2, b=3),
        FinalAnswer(text="5"),
    ]
    _, _, result = run(tmp_path, tiny_video, decisions)
    errors = [e for e in result.context if isinstance(e, ToolError)]
    assert [e.error_type for e in errors] == ["unknown_tool", "invalid_arguments", "tool_crashed", "invalid_output"]
    assert "available tools: add" in errors[0].message
    assert "ZeroDivisionError: bug" in errors[2].message
    unknown_call = next(e for e in result.context if e.id == errors[0].refs[0])
    assert isinstance(unknown_call, ToolCall) and unknown_call.tool == "teleport"
    assert result.accepted and result.answer == "5"
    crash = [e for e in read_trace(result.trace_path) if e["type"] == "tool_call" and e["tool"] == "explode"]
    assert "Traceback" in crash[0]["error"]


def test_policy_error_ends_the_episode(tmp_path, tiny_video):
    _, _, result = run(tmp_path, tiny_video, [call("add", a=1, b=2)])
    assert result.stop_reason == "policy_error" and "out of decisions" in result.stop_detail


def test_bad_video_is_refused_before_anything_starts(tmp_path):
    agent = Agent(policy=ListPolicy([]), tools=ToolRegistry([add]), workdir=tmp_path / "w")
    with pytest.raises(VideoNotFound, match="not found"):
        agent.run(tmp_path / "nope.mp4", "q?")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(VideoOpenFailure, match="corrupt.mp4") as info:
        agent.run(corrupt, "q?")
    assert "re-encoding" in str(info.value)
    assert not (tmp_path / "w" / "traces").exists()


def test_tool_output_type_is_checked(tmp_path, tiny_video):
    class Liar(Tool):
        name = "liar"
        description = "Returns the wrong type."

        class Input(BaseModel):
            pass

        class Output(BaseModel):
            x: int

        def run(self, input, ctx):
            return {"x": 1}

    _, _, result = run(tmp_path, tiny_video, [call("liar"), FinalAnswer(text="ok")], tools=(Liar,))
    error = next(e for e in result.context if isinstance(e, ToolError))
    assert error.error_type == "tool_crashed" and "not Output" in error.message


def test_python_api_resume_after_an_interrupted_stream(tmp_path, tiny_video):
    """Stop consuming the stream mid-episode (as a crash would), then resume."""
    decisions = [call("add", a=1, b=2), call("shout", text="three"), FinalAnswer(text="3", evidence=("e4",))]
    agent = Agent(policy=ListPolicy(decisions), tools=ToolRegistry([add, shout]), workdir=tmp_path / "w",
                  verifier=Verifier())
    stream = agent.stream(tiny_video, "1 + 2?", thread_id="t")
    for step in stream:
        if step.node == "act/add":
            break
    stream.close()
    assert agent.result("t").stop_reason == "interrupted"
    result = agent.resume("t")
    assert result.accepted and result.answer == "3" and result.tool_calls == 2
    with pytest.raises(KeyError, match="no episode"):
        agent.resume("unknown")


def test_a_tool_can_add_memory_entries_after_its_result(tmp_path, tiny_video):
    from mcr.context import Memory

    class Note(Tool):
        name = "note"
        description = "Remember a fact."

        class Input(BaseModel):
            fact: str

        class Output(BaseModel):
            saved: bool

        def run(self, input, ctx):
            return self.Output(saved=True)

        def entries(self, input, output):
            return [Memory(text=input.fact, source=self.name)]

    _, _, result = run(tmp_path, tiny_video, [call("note", fact="the sky is blue"), FinalAnswer(text="ok")], tools=(Note,))
    result_entry = next(e for e in result.context if isinstance(e, ToolResult))
    memory = next(e for e in result.context if isinstance(e, Memory))
    assert int(memory.id[1:]) == int(result_entry.id[1:]) + 1
    assert memory.refs == (result_entry.id,) and memory.step == result_entry.step and memory.text == "the sky is blue"
