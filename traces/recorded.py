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
from mcr.traces.recorder import TraceFormatError


class RecordedEpisode:
    """The decisions and tool outcomes of a trace, indexed for replay."""

    def __init__(self, events: list[dict[str, Any]]):
        """Index `events` (from :func:`~mcr.traces.recorder.read_trace`).

        Raises:
            TraceFormatError: (a ValueError) no episode_start, or an event lacks
                what replay needs (an entry without id/kind/step, a call without usage).
        """
        starts = [e for e in events if isinstance(e, dict) and e.get("type") == "episode_start"]
        if not starts:
            raise TraceFormatError("not an MCR trace: it has no episode_start event")
        try:
            self._index(events, starts[0])
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise TraceFormatError(f"a trace event is malformed ({type(exc).__name__}: {exc}); "
                                   "the trace was edited or damaged: replay it from an intact copy") from None

    def _index(self, events: list[dict[str, Any]], start: dict[str, Any]) -> None:
        if not isinstance(start.get("task"), dict):
            raise TypeError("episode_start has no task object")
        self.start = start
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
