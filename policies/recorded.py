"""ReplayPolicy: gives, turn by turn, the decisions a trace recorded (and their usage).

The recorded model usage goes back on each decision, so token budgets behave
as in the original episode. With ``until`` it hands over at step *k* to a live
policy, which forks the episode there. Driven by :mod:`mcr.replay`.
"""

from __future__ import annotations

from typing import Any

from mcr.context import Context, Fold, Memory, parse_entry
from mcr.verify import BUDGET_NOTE
from mcr.policies.base import CallRequest, Decision, FinalAnswer, InvalidOutput, Policy, PolicyError, ToolCalls
from mcr.traces.recorded import RecordedEpisode
from mcr.usage import Usage

__all__ = ["ReplayPolicy"]


class ReplayPolicy:
    """Repeats recorded decisions; after ``until`` (if set) hands over to ``then``."""

    def __init__(self, recorded: RecordedEpisode, until: int | None = None, then: Policy | None = None):
        if until is not None and then is None:
            raise ValueError("forking at a step needs a policy to continue with")
        self.recorded, self.until, self.then = recorded, until, then
        self.name = recorded.start.get("policy", "replay")

    def fit_context(self, context: Context, tools: list[dict[str, Any]], step: int) -> Fold | None:
        """The fold the recorded episode appended after ``step`` (before the next decision), so ids stay the same."""
        if self.until is not None and step + 1 > self.until:
            fit = getattr(self.then, "fit_context", None)
            return fit(context, tools, step) if fit is not None else None
        for entry in self.recorded.decisions.get(step, []):
            if entry.get("kind") == "fold":
                fold = parse_entry(entry)
                return fold.model_copy(update={"id": ""}) if isinstance(fold, Fold) else None
        return None

    def entry_limit(self) -> tuple[int, Any] | None:
        """Renderings come from the trace (the served tools), or from the live policy after ``until``."""
        limit = getattr(self.then, "entry_limit", None)
        return limit() if limit is not None else None

    def decide(self, context: Context, tools: list[dict[str, Any]]) -> Decision:
        # the graph's budget note is written at the step it precedes: it does not count as a turn taken
        step = max((e.step for e in context if not (isinstance(e, Memory) and e.source == BUDGET_NOTE)), default=0) + 1
        if self.until is not None and step > self.until:
            assert self.then is not None
            return self.then.decide(context, tools)
        entries = self.recorded.decisions.get(step)
        if not entries:
            raise PolicyError(f"the recorded episode has no decision at step {step} (it ended at step {self.recorded.last_step})")
        usage = self.recorded.usage.get(step)
        decision = _decision_from_entries(entries)
        return decision.model_copy(update={"usage": Usage.model_validate(usage) if usage else None})


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
