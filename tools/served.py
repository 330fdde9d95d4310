"""Tools that answer from a recorded trace (or run the live tool when they must).

A replay re-runs the real graph; its tools are :class:`ServedTool` wrappers
that give each call the outcome the trace recorded for it, or, when asked
(``rerun``), run the live tool so the replay checks the tools still give the
same output. Driven by :mod:`mcr.replay`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from mcr.context import TimeSpan
from mcr.tools.base import Tool, ToolContext, ToolFailure
from mcr.traces.recorded import RecordedEpisode

__all__ = ["ServedTool", "served_tool"]


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

    def recorded_rendering(self) -> str | None:
        """The bounded rendering the recorded result had (the policy read that, not the whole summary)."""
        return self._served.get("rendering") if self._served is not None else None

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
