"""Re-run a recorded episode through the real graph, and check it reproduces.

`mcr replay TRACE` builds an Agent whose policy repeats the trace's decisions
and whose tools answer from the trace (or re-run, with ``rerun_tools``), runs
the episode into a new trace, and compares the two event by event, timings
aside. With ``until=k`` and a task to continue with, it replays steps 1..k and
then goes on live — a fork of the episode at step k.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from mcr.agent import Agent, Result
from mcr.context import VideoRef
from mcr.policies.factory import build_policy
from mcr.policies.scripted import ScriptedPolicy
from mcr.task import Budget, TaskSpec, VideoSettings
from mcr.tools import registry_with_plugins
from mcr.tools.base import ToolRegistry
from mcr.traces.recorder import read_trace
from mcr.traces.diff import Divergence, first_divergence
from mcr.policies.recorded import ReplayPolicy
from mcr.tools.served import served_tool
from mcr.traces.recorded import RecordedEpisode


class ReplayReport(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    original: Path
    replayed: Path
    result: Result
    divergence: Divergence | None = None
    forked_at: int | None = None

    @property
    def reproduced(self) -> bool:
        return self.forked_at is None and self.divergence is None


def replay(
    trace: str | Path,
    *,
    workdir: str | Path = ".mcr",
    out: str | Path | None = None,
    rerun_tools: bool = False,
    until: int | None = None,
    continue_with: TaskSpec | None = None,
    video: str | Path | None = None,
) -> ReplayReport:
    """Replay `trace`; see the module docstring.

    Raises:
        ValueError: the file is not a trace, or a fork lacks a task to continue with.
        VideoNotFound: the recorded video is not here (pass ``video``).
    """
    trace = Path(trace)
    recorded = RecordedEpisode(read_trace(trace))
    task = recorded.task
    spec = TaskSpec.model_validate(task["spec"]) if task.get("spec") else None
    # A plugin that no longer loads is served from the trace; re-running it will say it is missing.
    live = registry_with_plugins(spec.plugins if spec else [], skip_broken=True)
    names = list(recorded.start.get("tools", []))
    if continue_with is not None:
        names += [n for n in (continue_with.tools or live.names) if n not in names]
    registry = ToolRegistry(
        served_tool(name, recorded, live.get(name) if name in live else None, until=until, rerun=rerun_tools)
        for name in names
    )
    then = build_policy(continue_with, registry) if continue_with is not None else None
    if isinstance(then, ScriptedPolicy) and until is not None:
        then.start_after_step = until  # its plan starts where the replay stops
    if until is not None and then is None:
        raise ValueError("to fork at a step, give a task whose policy continues the episode (--continue-with)")
    ref = VideoRef.model_validate(task["video"])
    agent = Agent(
        policy=ReplayPolicy(recorded, until=until, then=then),
        tools=registry,
        budget=Budget.model_validate(task.get("budget", {})),
        workdir=workdir,
        tool_settings=spec.tool_settings if spec else {},
        verify=spec.verify if spec else None,
        video_settings=VideoSettings(fps=ref.fps, min_pixels=ref.min_pixels, max_pixels=ref.max_pixels,
                                     max_frames=ref.max_frames),
    )
    out_path = Path(out) if out else Path(workdir) / "replays" / f"{trace.stem}.replay.jsonl"
    if out_path.exists():
        out_path.unlink()
    with agent:
        for _ in agent.stream(video or ref.path, task["question"], task.get("options"), trace_path=out_path, task=spec):
            pass
        result = agent.result(agent.last_thread_id)
    divergence = None if until is not None else first_divergence(recorded.events, read_trace(out_path))
    return ReplayReport(original=trace, replayed=out_path, result=result, divergence=divergence, forked_at=until)
