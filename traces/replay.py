"""Deterministic replay: a policy and tools that repeat a recorded episode.

Replaying a trace re-runs the real graph with

* a :class:`ReplayPolicy` that gives, turn by turn, the decisions the trace
  recorded (and their recorded model usage, so token budgets behave the same);
* :class:`ServedTool` wrappers that answer each call from the trace instead of
  running the tool — or, when asked, run the live tool so a replay checks that
  the tools still give the same output;

then compares the new trace with the old one, event by event, ignoring timings
(`mcr.traces.diff.first_divergence`). Both can hand over at step *k* to a live policy and
live tools, which forks the episode there.

This module is data-level: it imports the vocabulary (context, policy and tool
protocols), never the graph or a model. `mcr/replay.py` drives it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ConfigDict

from mcr.context import Context, TimeSpan
from mcr.policies.base import (
    CallRequest,
    Decision,
    DecisionUsage,
    FinalAnswer,
    InvalidOutput,
    Policy,
    PolicyError,
    ToolCalls,
)
from mcr.tools.base import Tool, ToolContext, ToolFailure

class RecordedEpisode:
    """The decisions and tool outcomes of a trace, indexed for replay."""

    def __init__(self, events: list[dict[str, Any]]):
        starts = [e for e in events if e.get("type") == "episode_start"]
        if not starts:
            raise ValueError("not an MCR trace: it has no episode_start event")
        self.start = starts[0]
        self.events = events
        self.entries = [e["entry"] for e in events if e.get("type") == "entry"]
        self.decisions: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for event in events:
            if event.get("type") == "entry" and event.get("node") == "reason":
                self.decisions[event["entry"]["step"]].append(event["entry"])
        self.usage = {e["step"]: e["usage"] for e in events if e.get("type") == "model_call"}
        by_id = {entry["id"]: entry for entry in self.entries}
        # call id -> the ToolResult / ToolError the tool node wrote for it
        self.outcomes: dict[str, dict[str, Any]] = {}
        for entry in self.entries:
            if entry["kind"] in ("tool_result", "tool_error") and entry.get("refs"):
                call = by_id.get(entry["refs"][0])
                if call is not None and call["kind"] == "tool_call" and entry["id"] != call["id"]:
                    self.outcomes.setdefault(call["id"], entry)

    @property
    def task(self) -> dict[str, Any]:
        return self.start["task"]

    @property
    def last_step(self) -> int:
        return max(self.decisions, default=0)


def _decision_from_entries(entries: list[dict[str, Any]]) -> Decision:
    thought = next((e["text"] for e in entries if e["kind"] == "thought"), None)
    calls = [e for e in entries if e["kind"] == "tool_call"]
    if calls:
        return ToolCalls(calls=tuple(CallRequest(tool=c["tool"], arguments=c["arguments"]) for c in calls), thought=thought)
    answer = next((e for e in entries if e["kind"] == "answer"), None)
    if answer is not None:
        evidence = tuple(answer.get("refs", ())) + tuple(answer.get("missing_refs", ()))
        return FinalAnswer(text=answer["text"], option=answer.get("option"), evidence=evidence, thought=thought)
    invalid = next((e for e in entries if e["kind"] == "tool_error" and e["error_type"] == "invalid_output"), None)
    if invalid is not None:
        return InvalidOutput(raw="", error=invalid["message"], thought=thought)
    raise PolicyError(f"the trace has no decision entries for step {entries[0]['step'] if entries else '?'}")


def next_step(context: Context) -> int:
    """The step the coming decision gets: one past the last step in the context."""
    return max((e.step for e in context), default=0) + 1


class ReplayPolicy:
    """Repeats recorded decisions; after ``until`` (if set) hands over to ``then``."""

    def __init__(self, recorded: RecordedEpisode, until: int | None = None, then: Policy | None = None):
        if until is not None and then is None:
            raise ValueError("forking at a step needs a policy to continue with")
        self.recorded, self.until, self.then = recorded, until, then
        self.name = recorded.start.get("policy", "replay")
        self.last_usage: DecisionUsage | None = None

    def decide(self, context: Context, tools: list[dict[str, Any]]) -> Decision:
        step = next_step(context)
        if self.until is not None and step > self.until:
            assert self.then is not None
            decision = self.then.decide(context, tools)
            self.last_usage = getattr(self.then, "last_usage", None)
            return decision
        entries = self.recorded.decisions.get(step)
        if not entries:
            raise PolicyError(f"the recorded episode has no decision at step {step} (it ended at step {self.recorded.last_step})")
        usage = self.recorded.usage.get(step)
        self.last_usage = DecisionUsage.model_validate(usage) if usage else None
        return _decision_from_entries(entries)


class _AnyInput(BaseModel):
    model_config = ConfigDict(extra="allow")


class _AnyOutput(BaseModel):
    model_config = ConfigDict(extra="allow")


class ServedTool(Tool):
    """Answers a call from the trace (or runs the live tool when it must).

    Build one with :func:`served_tool`, which gives it the live tool's name,
    description and schemas (or permissive ones when the tool is not installed).
    """

    name = "served"
    description = "A tool served from a recorded trace."
    Input = _AnyInput
    Output = _AnyOutput

    def __init__(self, recorded: RecordedEpisode, live: Tool | None, until: int | None, rerun: bool):
        self.recorded, self.live, self.until, self.rerun = recorded, live, until, rerun
        self._served: dict[str, Any] | None = None

    def _serves(self, ctx: ToolContext) -> bool:
        in_range = self.until is None or ctx.step <= self.until
        return in_range and not self.rerun and ctx.call_id in self.recorded.outcomes

    def run(self, input: Any, ctx: ToolContext) -> BaseModel:
        self._served = None
        if not self._serves(ctx):
            if self.live is None:
                raise ToolFailure(f"tool {self.name!r} is not installed here and the trace has no outcome for {ctx.call_id}",
                                  "tool_unavailable")
            return self.live.run(input, ctx)
        outcome = self.recorded.outcomes[ctx.call_id]
        if outcome["kind"] == "tool_error":
            raise ToolFailure(outcome["message"], outcome["error_type"])
        self._served = outcome
        return self.Output.model_validate(outcome["output"])

    def summarize(self, output: BaseModel) -> str:
        if self._served is not None:
            return self._served.get("summary", "")
        return self.live.summarize(output) if self.live else super().summarize(output)

    def span_of(self, input: BaseModel, output: BaseModel) -> TimeSpan | None:
        if self._served is not None:
            span = self._served.get("span")
            return TimeSpan.model_validate(span) if span else None
        return self.live.span_of(input, output) if self.live else None


def served_tool(name: str, recorded: RecordedEpisode, live: Tool | None = None,
                until: int | None = None, rerun: bool = False) -> ServedTool:
    """A tool named `name` that serves the trace's outcomes.

    Args:
        recorded: the episode whose outcomes are served.
        live: the real tool, when installed; its Input/Output validate served
            data, and it runs for calls after ``until`` or when ``rerun``.
        until: serve only calls made at or before this step.
        rerun: run the live tool even for recorded calls (to check it).
    """
    cls = type(
        f"Served_{name}",
        (ServedTool,),
        {
            "name": name,
            "description": live.description if live else f"{name} (served from a recorded trace)",
            "Input": live.Input if live else _AnyInput,
            "Output": live.Output if live else _AnyOutput,
        },
    )
    return cls(recorded, live, until, rerun)
