"""The Python agent API: run, stream and resume episodes.

    from mcr.agent import Agent
    from mcr.policies.scripted import ScriptedPolicy

    agent = Agent(policy=my_policy, tools=["segment", "transcribe"])
    result = agent.run("video.mp4", "How many ships does the keeper count?")
    print(result.answer, result.stop_reason, result.trace_path)

Each episode has a thread id; its state is checkpointed to SQLite after every
node and its trace is appended durably, so `agent.resume(thread_id)` continues
an episode whose process was killed, with the same final answer.
"""

from __future__ import annotations

import re
import shlex
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mcr.context import Answer, Context, Entry, Verdict, VideoRef, parse_entry
from mcr.checkpoints import EpisodeSaver
from mcr.graph import ANSWERED, STATE_TYPES, EpisodeDeps, EpisodeInput, build_graph
from mcr.model.media.video import probe
from mcr.policies.base import JudgingPolicy, ModelBackedPolicy, Policy
from mcr.task import Budget, TaskSpec, VerifySettings, VideoSettings
from mcr.threads import ThreadBusy, ThreadExists, ThreadLock
from mcr.tools import builtin_registry, registry_for_task
from mcr.tools.base import Tool, ToolRegistry
from mcr.tools.side import EpisodeModel
from mcr.traces.recorder import (
    EntryEvent,
    EpisodeEnd,
    EpisodeResumed,
    EpisodeStart,
    ModelCallEvent,
    ToolCallEvent,
    TraceRecorder,
    file_sha256,
    package_versions,
)
from mcr.verify import Verifier


__all__ = ["Agent", "Result", "Step", "ThreadBusy", "ThreadExists"]


class Step(BaseModel):
    """One node's work, as `Agent.stream` yields it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    node: str
    entries: list[Entry] = Field(default_factory=list)
    step: int = 0
    stop_reason: str | None = None
    usage: dict[str, Any] | None = None  # the model call's cost, for reason steps of model policies


class Result(BaseModel):
    """What an episode produced."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    thread_id: str
    answer: str | None
    option: str | None = None
    accepted: bool
    low_confidence: bool = False  # accepted as the last step's guess (see mcr/verify.py)
    evidence: list[Entry] = Field(default_factory=list)
    stop_reason: str
    stop_detail: str | None = None
    steps: int = 0
    tool_calls: int = 0
    elapsed_s: float = 0.0
    trace_path: Path
    context: list[Entry] = Field(default_factory=list)


class Agent:
    """Explores videos with a policy and tools, within a budget.

    Args:
        policy: who decides (scripted, a local model, ...).
        tools: a registry, tools/tool classes, or tool names from the built-in
            registry; ``None`` means every built-in tool.
        budget: limits that always end an episode.
        verifier: judges answers before they are accepted.
        workdir: checkpoints, traces and tool artifacts go here.
        tool_settings: per-tool settings by tool name (e.g. model paths).
        video_settings: how a model samples the video.
        model: the model for model-backed tools, when the policy has none of
            its own (a :class:`~mcr.model.runtime.session.ModelSession`, or an
            :class:`~mcr.tools.side.EpisodeModel` with a prompt head). A
            model policy's own session and prompt head are used otherwise, so
            tools' forks continue its prompt and reuse its cache.
        verify: which checks the default verifier runs (ignored when
            ``verifier`` is given): by default the built-in checks plus
            evidence support (tools/evidence/).
    """

    def __init__(
        self,
        policy: Policy,
        tools: ToolRegistry | Iterable[Tool | type[Tool] | str] | None = None,
        budget: Budget | None = None,
        verifier: Verifier | None = None,
        workdir: str | Path = ".mcr",
        tool_settings: dict[str, dict[str, Any]] | None = None,
        video_settings: VideoSettings | None = None,
        model: EpisodeModel | Any = None,
        verify: VerifySettings | None = None,
    ):
        self.policy = policy
        self.tools = _as_registry(tools)
        self.budget = budget or Budget()
        self.workdir = Path(workdir)
        self.video_settings = video_settings or VideoSettings()
        episode_model = _episode_model(policy, self.tools, model)
        self.deps = EpisodeDeps(
            policy=policy,
            tools=self.tools,
            verifier=verifier or _default_verifier(verify or VerifySettings(), episode_model),
            workdir=self.workdir / "artifacts",
            tool_settings=tool_settings or {},
            model=episode_model,
        )
        if isinstance(policy, JudgingPolicy):  # it judges options with the episode's verifier, never its own
            policy.use_verifier(self.deps.verifier)
        self.last_thread_id: str | None = None  # the episode the latest run/stream/resume drove
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Many agents (threads, processes) may share one workdir: a writer waits up to 60 s for the
        # database lock rather than failing with "database is locked" (sqlite3's default is 5 s).
        self._conn = sqlite3.connect(self.workdir / "checkpoints.sqlite", check_same_thread=False, timeout=60)
        self.graph = build_graph(self.tools, checkpointer=EpisodeSaver(self._conn, allowed_types=STATE_TYPES))

    @classmethod
    def from_task(cls, task: TaskSpec, workdir: str | Path = ".mcr", **kwargs: Any) -> Agent:
        """Build the agent a task file describes: its tools, plugins, policy and budget.

        Raises:
            TaskFileError: the task names a tool that is not registered.
        """
        from mcr.policies.factory import build_policy

        registry = registry_for_task(task)
        return cls(
            policy=build_policy(task, registry),
            tools=registry,
            budget=task.budget,
            workdir=workdir,
            tool_settings=task.tool_settings,
            video_settings=task.video_settings,
            verify=task.verify,
            **kwargs,
        )

    def run_task(self, task: TaskSpec, **kwargs: Any) -> Result:
        """Run a task spec's episode (video, question and options from the spec)."""
        for _ in self.stream_task(task, **kwargs):
            pass
        return self.result(self.last_thread_id)

    def stream_task(self, task: TaskSpec, **kwargs: Any) -> Iterator[Step]:
        return self.stream(task.video, task.question, task.options, task=task, **kwargs)

    # -- public API ---------------------------------------------------------- #
    def run(self, video: str | Path, question: str, options: list[str] | None = None, **kwargs: Any) -> Result:
        """Run one episode to its end and return the result."""
        for _ in self.stream(video, question, options, **kwargs):
            pass
        return self.result(self.last_thread_id)

    def stream(
        self,
        video: str | Path,
        question: str,
        options: list[str] | None = None,
        *,
        thread_id: str | None = None,
        trace_path: str | Path | None = None,
        task: TaskSpec | None = None,
    ) -> Iterator[Step]:
        """Run one episode, yielding each node's step as it finishes.

        Raises:
            VideoNotFound, VideoOpenFailure: the video cannot be read (nothing is
                started, no trace is written).
            ThreadExists: ``thread_id`` already has an episode (resume it instead),
                or ``trace_path`` already holds one.
            ThreadBusy: another run is driving ``thread_id`` right now.
        """
        info = probe(video)
        thread_id = thread_id or self.new_thread_id(task.name if task else None)
        # The id may come from a task's name: only a plain file name, so "../../x" cannot write outside the workdir.
        trace = Path(trace_path) if trace_path else self.workdir / "traces" / (re.sub(r"[^\w.-]", "_", thread_id) + ".jsonl")
        with ThreadLock(self.workdir, thread_id):  # ThreadBusy while another run drives this id
            self._refuse_existing(thread_id, trace)
            ref = VideoRef(path=str(Path(video).resolve()), duration=info.duration, **self.video_settings.model_dump())
            episode = EpisodeInput(
                thread_id=thread_id,
                question=question,
                options=tuple(options) if options else None,
                video=ref,
                video_info=info.model_dump(mode="json"),
                budget=self.budget,
                trace_path=str(trace),
                spec=task,
            )
            state = {"task": episode}
            recorder = TraceRecorder(trace)
            recorder.write(
                EpisodeStart(
                    thread_id=thread_id,
                    task=episode.trace_record(),
                    policy=self.policy.name,
                    tools=self.tools.names,
                    video_sha256=file_sha256(video),
                    versions=package_versions(),
                )
            )
            self.last_thread_id = thread_id
            yield from self._drive(state, thread_id, recorder)

    @staticmethod
    def new_thread_id(name: str | None = None) -> str:
        """A fresh thread id: ``NAME-8 hex digits`` (``episode-…`` without a name)."""
        return f"{name or 'episode'}-{uuid.uuid4().hex[:8]}"

    def _refuse_existing(self, thread_id: str, trace: Path) -> None:
        """Raise ThreadExists when ``thread_id`` has checkpoints, or ``trace`` already holds events.

        Starting again on a used id would append a second episode to its
        checkpoints and trace (entry ids out of order; the episode lost).
        """
        quoted = shlex.quote(thread_id)
        if self.graph.get_state(self._config(thread_id)).values:
            raise ThreadExists(
                f"thread {thread_id!r} already has an episode in {self.workdir / 'checkpoints.sqlite'}; "
                f"use `mcr resume {quoted} --workdir {shlex.quote(str(self.workdir))}` (Agent.resume) to continue "
                "or show it, or another `--thread`")
        if trace.exists() and trace.stat().st_size:
            raise ThreadExists(
                f"the trace {trace} already holds an episode; give another `--trace` or `--thread` "
                "(or move the old trace aside)")

    def resume(self, thread_id: str) -> Result:
        """Continue an interrupted episode from its last checkpoint."""
        for _ in self.resume_stream(thread_id):
            pass
        return self.result(thread_id)

    def resume_stream(self, thread_id: str) -> Iterator[Step]:
        with ThreadLock(self.workdir, thread_id):  # ThreadBusy while another run drives this id
            yield from self._resume_locked(thread_id)

    def _resume_locked(self, thread_id: str) -> Iterator[Step]:
        snapshot = self.graph.get_state(self._config(thread_id))
        if not snapshot.values:
            raise KeyError(f"no episode with thread id {thread_id!r} in {self.workdir / 'checkpoints.sqlite'}")
        recorder = TraceRecorder(snapshot.values["task"].trace_path)
        self.last_thread_id = thread_id
        if not snapshot.next:  # already finished; the process may have died before the trace said so
            if not recorder.has_ended():
                recorder.write(EpisodeResumed(thread_id=thread_id, entries_so_far=len(snapshot.values.get("entries", []))))
                self._sync_trace(recorder, thread_id)
                self._write_end(recorder, thread_id)
            return
        recorder.write(EpisodeResumed(thread_id=thread_id, entries_so_far=len(snapshot.values.get("entries", []))))
        self._sync_trace(recorder, thread_id)
        yield from self._drive(None, thread_id, recorder)

    def result(self, thread_id: str) -> Result:
        """The result of an episode, finished or not, from its checkpoint."""
        values = self.graph.get_state(self._config(thread_id)).values
        if not values:
            raise KeyError(f"no episode with thread id {thread_id!r}")
        context = Context.from_dicts(values.get("entries", []))
        final = _final_answer(context)
        stop = values.get("stop_reason") or "interrupted"
        accepted = stop == ANSWERED and final is not None
        return Result(
            thread_id=thread_id,
            answer=final.text if final else None,
            option=final.option if final else None,
            accepted=accepted,
            low_confidence=accepted and any(v.accepted and v.low_confidence for v in context.of_kind(Verdict)),
            evidence=[e for ref in (final.refs if final else ()) if (e := context.get(ref)) is not None],
            stop_reason=stop,
            stop_detail=values.get("stop_detail"),
            steps=values.get("step", 0),
            tool_calls=values.get("tool_calls", 0),
            elapsed_s=values.get("elapsed_s", 0.0),
            trace_path=Path(values["task"].trace_path),
            context=list(context),
        )

    def state(self, thread_id: str) -> dict[str, Any]:
        """The raw checkpointed state of an episode (plain data)."""
        return dict(self.graph.get_state(self._config(thread_id)).values)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- internals ----------------------------------------------------------- #
    @staticmethod
    def _config(thread_id: str) -> dict[str, Any]:
        # Budgets end episodes; the recursion limit only guards against a bug.
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": 100_000}

    def _drive(self, state: dict[str, Any] | None, thread_id: str, recorder: TraceRecorder) -> Iterator[Step]:
        config = self._config(thread_id)
        try:
            yield from self._steps(state, config, recorder)
        finally:
            self.deps.contexts.pop(thread_id, None)  # the parsed context is only a cache: free it
        self._write_end(recorder, thread_id)

    def _write_end(self, recorder: TraceRecorder, thread_id: str) -> None:
        final = self.result(thread_id)
        recorder.write(
            EpisodeEnd(
                stop_reason=final.stop_reason,
                answer=final.answer,
                option=final.option,
                accepted=final.accepted,
                steps=final.steps,
                tool_calls=final.tool_calls,
                elapsed_s=final.elapsed_s,
            )
        )
        recorder.finish()

    def _steps(self, state: dict[str, Any] | None, config: dict[str, Any], recorder: TraceRecorder) -> Iterator[Step]:
        for chunk in self.graph.stream(state, config, context=self.deps, stream_mode="updates", durability="sync"):
            for node, update in chunk.items():
                update = update or {}
                self._record(recorder, node, update)
                yield Step(
                    node=node,
                    entries=[parse_entry(e) for e in update.get("entries", [])],
                    step=update.get("step", 0),
                    stop_reason=update.get("stop_reason"),
                    usage=next((e["usage"] for e in update.get("events", []) if e["type"] == "model_call"), None),
                )

    def _record(self, recorder: TraceRecorder, node: str, update: dict[str, Any]) -> None:
        for entry in update.get("entries", []):
            recorder.write(EntryEvent(node=node, entry=entry))
        for event in update.get("events", []):
            if event["type"] == "model_call":
                recorder.write(ModelCallEvent(step=event["step"], policy=event["policy"], usage=event["usage"]))
            elif event["type"] == "tool_call":
                recorder.write(ToolCallEvent(**{k: v for k, v in event.items() if k != "type"}))

    def _sync_trace(self, recorder: TraceRecorder, thread_id: str) -> None:
        """Write what the checkpoints hold and the trace lacks (the process died between the two).

        Each node's checkpoint is committed before its trace lines are written,
        so a kill in between leaves the trace short of that node's entries and
        call records. They are written back as the node would have written
        them: under its own name, entries first, then its model/tool call
        records, so the trace equals an uninterrupted run's. The node that made
        a checkpoint is the one its parent checkpoint was about to run.
        """
        seen_entries, seen_calls = recorder.recorded_keys()
        for limit in (32, None):  # the lost part is the last node or two: read only the newest checkpoints first
            lost, reached = self._lost_updates(thread_id, seen_entries, set(seen_calls), limit)
            if reached:
                break
        for node, update in reversed(lost):
            self._record(recorder, node, update)

    def _lost_updates(self, thread_id: str, seen_entries: set[str], seen_calls: set[tuple[str, Any]],
                      limit: int | None) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
        """Node updates the trace lacks, newest first, from the newest ``limit`` checkpoints;
        and whether that reached a node the trace has (or the first checkpoint)."""
        lost: list[tuple[str, dict[str, Any]]] = []
        newer, count = None, 0
        for older in self.graph.get_state_history(self._config(thread_id), limit=limit):  # newest first
            count += 1
            if newer is not None and older.next:
                entries = newer.values.get("entries", [])[len(older.values.get("entries", [])):]
                made = newer.values.get("events") or []
                if made == (older.values.get("events") or []):
                    made = []  # the channel keeps the last calls: this node made none
                events = [e for e in made if _call_key(e) not in seen_calls]
                if entries and all(e["id"] in seen_entries for e in entries):
                    return lost, True  # this node and every older one are in the trace
                new = [e for e in entries if e["id"] not in seen_entries]
                if new or events:
                    lost.append((older.next[0], {"entries": new, "events": events}))
                    seen_calls |= {_call_key(e) for e in events}
            newer = older
        return lost, limit is None or count < limit


def _call_key(event: dict[str, Any]) -> tuple[str, Any]:
    """What identifies a model or tool call record in a trace (to write none twice)."""
    return (event.get("type"), event.get("call_id") if event.get("type") == "tool_call" else event.get("step"))


def _episode_model(policy: Policy, tools: ToolRegistry, model: EpisodeModel | Any) -> EpisodeModel | None:
    """What model-backed tools get: the policy's session and prompt head, else the model given, else none."""
    if isinstance(policy, ModelBackedPolicy):
        return policy.episode_model(tools.schemas())
    if model is None or isinstance(model, EpisodeModel):
        return model
    return EpisodeModel(model)  # a bare ModelSession: side queries start from the default prompt head


def _default_verifier(settings: VerifySettings, model: EpisodeModel | None) -> Verifier:
    if not settings.evidence and not settings.recheck:
        return Verifier(require_evidence=settings.require_evidence)
    from mcr.tools.evidence import build_verifier

    return build_verifier(model, recheck=settings.recheck,
                          require_evidence=settings.require_evidence, min_support=settings.min_support)


def _final_answer(context: Context) -> Answer | None:
    """The accepted answer if any, else the last proposed one."""
    for verdict in reversed(context.of_kind(Verdict)):
        if verdict.accepted and verdict.refs:
            found = context.get(verdict.refs[0])
            if isinstance(found, Answer):
                return found
    return context.last(Answer)


def _as_registry(tools: ToolRegistry | Iterable[Tool | type[Tool] | str] | None) -> ToolRegistry:
    if tools is None:
        return builtin_registry()
    if isinstance(tools, ToolRegistry):
        return tools
    registry = ToolRegistry()
    builtins: ToolRegistry | None = None
    for item in tools:
        if isinstance(item, str):
            builtins = builtins or builtin_registry()
            registry.register(builtins.get(item))
        else:
            registry.register(item)
    return registry
