"""A recorded episode, indexed for replay: its decisions per step and each call's outcome.

Pure data and reading: it imports only the shared vocabulary. The replay
pieces that act are where the design puts them: the policy that repeats the
decisions is :mod:`mcr.policies.recorded`, the tools that answer from the trace
are :mod:`mcr.tools.served`, and :mod:`mcr.replay` drives both through the graph.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from mcr.context import Context


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


def next_step(context: Context) -> int:
    """The step the coming decision gets: one past the last step in the context."""
    return max((e.step for e in context), default=0) + 1
