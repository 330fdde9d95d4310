"""The MCR loop as a LangGraph state machine: observe → reason → act → verify.

Read this file top to bottom to see every node and edge::

    START → observe → reason ─┬─► act/<tool> ─► act/<tool> … ─► reason
                              ├─► verify ─┬─► answer → END   (accepted)
                              │           └─► reason         (rejected)
                              ├─► reason                     (invalid output: try again)
                              └─► END                        (a budget ran out, or the policy gave up)

State (`EpisodeState`) is plain JSON-able data — the context entries, counters
and the queue of pending calls — so a SQLite checkpoint after every node lets a
killed episode resume by thread id. The policy, the tools, the verifier and any
model session are *runtime context* (`EpisodeDeps`), never state.

Errors the model causes (bad arguments, unknown tools, a failing tool, output
that is no decision) become ToolError entries and the loop goes on; budgets
(steps, tool calls, active wall time, tokens) always end the episode with a
recorded stop reason. Nothing relies on LangGraph's recursion limit.
"""

from __future__ import annotations

import gc
import operator
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, ConfigDict
from langgraph.runtime import Runtime

from mcr.context import (
    Answer,
    Context,
    Instruction,
    Memory,
    Observation,
    Thought,
    TimeSpan,
    ToolCall,
    ToolError,
    ToolResult,
    VideoRef,
)
from mcr.policies.base import FinalAnswer, InvalidOutput, Policy, PolicyError, ToolCalls, WindowedPolicy
from mcr.task import Budget, TaskSpec
from mcr.tools.base import ToolContext, ToolFailure, ToolRegistry
from mcr.tools.limits import LIMIT_KEYS, ToolLimits, bound_output, bound_summary, output_copy_path, run_limited
from mcr.tools.rendering import bounded_rendering
from mcr.tools.side import EpisodeModel
from mcr.verify import BUDGET_NOTE, Verifier, budget_nearly_spent
from mcr.window import OPENING_LOOK_FRAMES, ContextExhausted

ACT_PREFIX = "act/"

# Stop reasons, as recorded in state, traces and results.
ANSWERED = "answered"
MAX_STEPS = "max_steps"
MAX_TOOL_CALLS = "max_tool_calls"
WALL_TIME = "wall_time"
MAX_TOKENS = "max_tokens"
POLICY_ERROR = "policy_error"
CONTEXT_EXHAUSTED = "context_exhausted"  # the prompt cannot fit the model's window, even folded (mcr/window.py)


class EpisodeInput(BaseModel):
    """What an episode is asked: typed once when it starts, checkpointed with the state.

    Attributes:
        thread_id: the episode's id (checkpoints, traces).
        question, options: the question, and its options when multiple choice.
        video: the video and how a model samples it.
        video_info: what probing the file found (size, frame rate, audio).
        budget: the limits that end the episode.
        trace_path: where the JSONL trace goes.
        spec: the task file's spec, when the episode came from one.
    """

    model_config = ConfigDict(frozen=True)

    thread_id: str
    question: str
    options: tuple[str, ...] | None = None
    video: VideoRef | None = None
    video_info: dict[str, Any] = {}
    budget: Budget = Budget()
    trace_path: str
    spec: TaskSpec | None = None

    def trace_record(self) -> dict[str, Any]:
        """The JSON the trace's episode_start event carries (and replay reads)."""
        return self.model_dump(mode="json")


# The state's pydantic types, which the checkpoint serializer may rebuild.
STATE_TYPES = [(EpisodeInput.__module__, EpisodeInput.__name__)]


class EpisodeState(TypedDict, total=False):
    """Everything that flows between nodes: plain data, plus the typed input.

    ``entries`` (the context) is append-only; :class:`mcr.checkpoints.EpisodeSaver`
    stores each entry once, so a checkpoint's size does not grow with the episode.
    ``events`` holds only the last node's model/tool call records, which the
    agent streams into the trace.
    """

    task: EpisodeInput
    entries: Annotated[list[dict[str, Any]], operator.add]  # the context, append-only
    events: list[dict[str, Any]]  # the last node's call records (not accumulated)
    step: int  # policy turns so far
    tool_calls: int
    tokens: int
    frames: int  # frames the exploration tools decoded (budget.max_frames)
    pending: list[dict[str, str]]  # queued calls: {"id": ToolCall entry id, "tool": name}
    elapsed_s: float  # active time, summed over nodes (so a resume does not count downtime)
    stop_reason: str | None
    stop_detail: str | None


@dataclass
class EpisodeDeps:
    """Runtime context: the live objects nodes use. Not checkpointed."""

    policy: Policy
    tools: ToolRegistry
    verifier: Verifier = field(default_factory=Verifier)
    workdir: Path = Path(".mcr")
    tool_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: EpisodeModel | None = None  # the policy's session + prompt head, for model-backed tools
    contexts: dict[str, Context] = field(default_factory=dict)  # thread id -> its parsed context

    def context_of(self, state: EpisodeState) -> Context:
        """The episode's context, parsing only the entries added since this process last saw it.

        Nodes used to rebuild the whole context from dicts each time, a cost that
        grew with the episode. The cache is per thread and checked against the
        state (its length and last id), so a resumed or foreign state rebuilds.
        """
        entries = state.get("entries", [])
        key = state["task"].thread_id
        ctx = self.contexts.get(key)
        n = len(ctx) if ctx is not None else 0
        if ctx is None or n > len(entries) or (n and ctx[n - 1].id != entries[n - 1]["id"]):
            ctx, n = Context(), 0
        ctx.extend_existing(entries[n:])
        self.contexts[key] = ctx
        return ctx


def is_infrastructure_error(exc: BaseException) -> bool:
    """Errors of our own machinery, which must end the run rather than become a ToolError.

    Out of memory above all: ``MemoryError``, and ``torch.OutOfMemoryError``
    (CUDA and CPU allocators), which is a ``RuntimeError`` and would otherwise
    pass for a crashed tool while the loop carries on into the next failure;
    and the CPU allocator's failure, which torch raises as a bare RuntimeError.
    """
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")  # no torch imported: no torch error can have been raised
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return True
    # torch's CPU allocator reports a failed allocation as a plain RuntimeError (measured, torch 2.14)
    return type(exc) is RuntimeError and "DefaultCPUAllocator: can't allocate memory" in str(exc)


def free_model_memory(deps: EpisodeDeps) -> None:
    """Drop the episode model's cache (the checkpoint keeps the context; a resume re-prefills)."""
    if deps.model is not None:
        deps.model.session.reset()
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- #
# Nodes
# --------------------------------------------------------------------------- #


def opening_look(video: VideoRef) -> VideoRef:
    """The video as the opening observation shows it: at most :data:`mcr.window.OPENING_LOOK_FRAMES` frames.

    A model that receives frames sees the whole video at this fixed cost however long it is (an hour at the
    default 2 fps would be 7,200 frames); it looks closer with ``skim`` and ``focus``. Short videos are unchanged.
    """
    frames = (video.duration or 0.0) * video.fps
    cap = min(video.max_frames or OPENING_LOOK_FRAMES, OPENING_LOOK_FRAMES)
    return video if frames <= cap else video.model_copy(update={"max_frames": cap})


def observe(state: EpisodeState) -> dict[str, Any]:
    """Open the episode: a first look at the whole video, then the question.

    The video comes first so that a model's cached video prefix does not
    depend on the question: a second question about the same video reuses it.
    """
    t0 = time.perf_counter()
    task = state["task"]
    ctx = Context()
    video = task.video
    if video is not None:
        info = task.video_info
        audio = "with an audio track" if info.get("has_audio") else "without audio"
        text = (
            f"Video {Path(video.path).name}: {video.duration or 0:.1f} s, "
            f"{info.get('width', '?')}x{info.get('height', '?')} at {info.get('fps', 0):.1f} fps, {audio}."
        )
        ctx.append(Observation(span=TimeSpan(start=0.0, end=video.duration or 0.0), video=opening_look(video),
                               text=text))
    ctx.append(Instruction(text=task.question, video=video, options=task.options or None,
                           refs=("e0",) if video is not None else ()))
    return {
        "entries": ctx.to_dicts(),
        "step": 0,
        "tool_calls": 0,
        "tokens": 0,
        "frames": 0,
        "pending": [],
        "elapsed_s": state.get("elapsed_s", 0.0) + time.perf_counter() - t0,
        "stop_reason": None,
    }


def _budget_exhausted(state: EpisodeState, budget: Budget) -> str | None:
    if state["step"] >= budget.max_steps:
        return MAX_STEPS
    if state["elapsed_s"] >= budget.wall_time_s:
        return WALL_TIME
    if budget.max_tokens is not None and state["tokens"] >= budget.max_tokens:
        return MAX_TOKENS
    return None


def budget_note(state: EpisodeState, budget: Budget, step: int) -> str | None:
    """What the policy is told when this is its last step or no tool call is left (else None).

    The note is a context entry, so the policy reads it like any evidence and a
    resumed episode sees it too; the verifier accepts a ``low_confidence``
    answer only after it (see :mod:`mcr.verify`).
    """
    last_step = step >= budget.max_steps
    no_calls = state["tool_calls"] >= budget.max_tool_calls
    if not (last_step or no_calls):
        return None
    why = f"this is the last step ({step} of {budget.max_steps})" if last_step else "no tool calls are left"
    return (f"Budget: {why}. Answer now; if the evidence does not decide, give your best option "
            'marked confidence="low" (the best-backed one, even if it was rejected before as weakly backed).')


def reason(state: EpisodeState, runtime: Runtime[EpisodeDeps]) -> dict[str, Any]:
    """Ask the policy for the next decision and write it into the context."""
    t0 = time.perf_counter()
    budget = state["task"].budget
    stop = _budget_exhausted(state, budget)
    if stop:
        return {"stop_reason": stop, "stop_detail": f"budget '{stop}' reached"}
    deps = runtime.context
    ctx = deps.context_of(state)
    step = state["step"] + 1
    before = len(ctx)
    update: dict[str, Any] = {"step": step}
    note = budget_note(state, budget, step)
    if note and not budget_nearly_spent(ctx):
        ctx.append(Memory(step=step, source=BUDGET_NOTE, text=note))
    schemas = deps.tools.schemas()
    try:
        if isinstance(deps.policy, WindowedPolicy):  # keep the prompt inside the model's window: fold when near
            # the fold belongs to the steps it digests (state["step"]): a policy that counts its turns from the
            # context's steps (a replay) still sees this turn as `step`
            fold = deps.policy.fit_context(ctx, schemas, state["step"])
            if fold is not None:
                ctx.append(fold)
        decision = deps.policy.decide(ctx, schemas)
    except PolicyError as exc:
        return {"step": step, "stop_reason": POLICY_ERROR, "stop_detail": str(exc)}
    except ContextExhausted as exc:  # never a traceback: the episode ends with the reason and what to shorten
        return {"step": step, "entries": ctx.to_dicts(before), "stop_reason": CONTEXT_EXHAUSTED,
                "stop_detail": f"context exhausted: {exc}"}
    except Exception as exc:
        if is_infrastructure_error(exc):
            free_model_memory(deps)
        raise

    if decision.thought:
        ctx.append(Thought(step=step, text=decision.thought))
    pending: list[dict[str, str]] = []
    if isinstance(decision, ToolCalls):
        remaining = budget.max_tool_calls - state["tool_calls"]
        if remaining <= 0:
            return {"step": step, "stop_reason": MAX_TOOL_CALLS, "stop_detail": "budget 'max_tool_calls' reached"}
        for request in decision.calls:
            call = ctx.append(ToolCall(step=step, tool=request.tool, arguments=request.arguments))
            if request.tool not in deps.tools:
                known = ", ".join(deps.tools.names)
                ctx.append(ToolError(step=step, refs=(call.id,), tool=request.tool, error_type="unknown_tool",
                                     message=f"there is no tool {request.tool!r}; available tools: {known}"))
            elif len(pending) >= remaining:
                ctx.append(ToolError(step=step, refs=(call.id,), tool=request.tool, error_type="budget",
                                     message="not run: the episode's tool-call budget is used up"))
            else:
                pending.append({"id": call.id, "tool": request.tool})
    elif isinstance(decision, FinalAnswer):
        ctx.append(ctx.propose_answer(step=step, text=decision.text, option=decision.option, evidence=decision.evidence,
                                      low_confidence=decision.low_confidence))
    elif isinstance(decision, InvalidOutput):
        ctx.append(ToolError(step=step, error_type="invalid_output", message=decision.error))

    usage = decision.usage
    update.update(
        entries=ctx.to_dicts(before),
        pending=pending,
        tokens=state["tokens"] + (usage.spent_tokens if usage is not None else 0),
        events=[{"type": "model_call", "step": step, "policy": deps.policy.name,
                 "usage": usage.model_dump(mode="json") if usage is not None else {}}],
        elapsed_s=state["elapsed_s"] + time.perf_counter() - t0,
    )
    return update


def make_act_node(tool_name: str):
    """The node that runs the first pending call, which must be for `tool_name`."""

    def act(state: EpisodeState, runtime: Runtime[EpisodeDeps]) -> dict[str, Any]:
        t0 = time.perf_counter()
        deps = runtime.context
        head, rest = state["pending"][0], state["pending"][1:]
        if head["tool"] != tool_name:  # the router sends each call to its own node
            raise RuntimeError(f"act node {tool_name!r} got a call for {head['tool']!r}")
        ctx = deps.context_of(state)
        call = ctx.get(head["id"])
        assert isinstance(call, ToolCall)
        tool = deps.tools.get(tool_name)
        instruction = ctx.instruction
        settings = deps.tool_settings.get(tool_name, {})
        tool_ctx = ToolContext(
            context=ctx,
            video=instruction.video if instruction else None,
            workdir=deps.workdir,
            settings={k: v for k, v in settings.items() if k not in LIMIT_KEYS},
            model=deps.model,
            step=state["step"],
            call_id=call.id,
            frames_left=_frames_left(state),
        )
        extra: list[Any] = []
        frames = 0
        event: dict[str, Any] = {"type": "tool_call", "step": state["step"], "tool": tool_name, "call_id": call.id,
                                 "input": call.arguments}
        try:
            tool_input = tool.prepare(call.arguments, tool_ctx)  # validated; paths only in the task's media or workdir
            limits = ToolLimits.for_tool(tool, settings)[0]  # timeout and output size (tools/limits.py)
            output = run_limited(limits, tool_ctx, lambda limited_ctx: tool.run(tool_input, limited_ctx))
            if not isinstance(output, tool.Output):
                raise TypeError(f"tool {tool_name} returned {type(output).__name__}, not {tool.Output.__name__}")
            full_copy = output_copy_path(deps.workdir, state["task"].thread_id, call.id)
            dumped, note = bound_output(output.model_dump(mode="json"), limits, full_copy)
            summary = bound_summary(tool.summarize(output), limits, note)
            entry: ToolResult | ToolError = ToolResult(
                step=state["step"], refs=(call.id,), tool=tool_name, output=dumped, summary=summary,
                rendering=_recorded_rendering(tool) or _rendering(
                    deps.policy, ctx, summary, f"entry {ctx.next_id()}'s output" + (f" (whole in {full_copy})" if note else "")),
                span=tool.span_of(tool_input, output),
            )
            event["output"] = entry.output
            frames = tool.frames_of(output)
            extra = [_bounded_memory(deps.policy, ctx, more) for more in tool.entries(tool_input, output)]
        except ToolFailure as exc:
            entry = ToolError(step=state["step"], refs=(call.id,), tool=tool_name, error_type=exc.error_type, message=str(exc))
            event["error"] = f"{exc.error_type}: {exc}"
        except ContextExhausted as exc:  # a side query on the episode's model did not fit its window
            entry = ToolError(step=state["step"], refs=(call.id,), tool=tool_name, error_type="context_exhausted",
                              message=f"{exc}; call it on a shorter span or with fewer items")
            event["error"] = f"context_exhausted: {exc}"
        except Exception as exc:
            if is_infrastructure_error(exc):  # out of memory is ours, not the tool's: free the cache, raise
                free_model_memory(deps)
                raise
            # a crashed tool must not end the episode
            entry = ToolError(step=state["step"], refs=(call.id,), tool=tool_name, error_type="tool_crashed",
                              message=f"{type(exc).__name__}: {exc}")
            event["error"] = traceback.format_exc(limit=8)
        before = len(ctx)
        stored = ctx.append(entry)
        if isinstance(entry, ToolResult):
            for more in extra:  # e.g. a summary's Memory entries, pointing at this result
                ctx.append(more.model_copy(update={"step": state["step"], "refs": (stored.id, *more.refs)}))
        duration = time.perf_counter() - t0
        event["duration_s"] = duration
        return {
            "entries": ctx.to_dicts(before),
            "pending": rest,
            "tool_calls": state["tool_calls"] + 1,
            "frames": state.get("frames", 0) + frames,
            "events": [event],
            "elapsed_s": state["elapsed_s"] + duration,
        }

    act.__name__ = f"act_{tool_name}"
    return act


def _frames_left(state: EpisodeState) -> int | None:
    """Frames the episode's budget still allows the exploration tools (None: no limit)."""
    cap = state["task"].budget.max_frames
    return None if cap is None else max(cap - state.get("frames", 0), 0)


def _rendering(policy: Policy, ctx: Context, text: str, handle: str) -> str | None:
    """A bounded rendering of ``text`` for a windowed policy (None: it fits, or the policy has no window)."""
    limit = policy.entry_limit() if isinstance(policy, WindowedPolicy) else None
    if limit is None:
        return None
    max_tokens, count = limit
    instruction = ctx.instruction
    return bounded_rendering(text, max_tokens=max_tokens, count=count, handle=handle,
                             question=" ".join([instruction.text, *(instruction.options or ())]) if instruction else "")


def _recorded_rendering(tool: Any) -> str | None:
    """A replayed result's rendering as recorded (:mod:`mcr.tools.served`), so a replay reads the same prompt."""
    recorded = getattr(tool, "recorded_rendering", None)
    return recorded() if callable(recorded) else None


def _bounded_memory(policy: Policy, ctx: Context, entry: Any) -> Any:
    """A tool's extra Memory entry, with a bounded rendering when its text is too long for the window."""
    if not isinstance(entry, Memory):
        return entry
    rendering = _rendering(policy, ctx, entry.text, "the summary's output (search or ground it)")
    return entry.model_copy(update={"rendering": rendering}) if rendering else entry


def verify(state: EpisodeState, runtime: Runtime[EpisodeDeps]) -> dict[str, Any]:
    """Judge the proposed answer; a rejection's reason goes back to the policy."""
    t0 = time.perf_counter()
    ctx = runtime.context.context_of(state)
    answer = ctx[-1]
    assert isinstance(answer, Answer)
    verdict = ctx.append(runtime.context.verifier.verify(answer, ctx))
    return {"entries": [verdict.model_dump(mode="json")], "elapsed_s": state["elapsed_s"] + time.perf_counter() - t0}


def answer(state: EpisodeState) -> dict[str, Any]:
    """The accepted answer goes out: the episode ends."""
    return {"stop_reason": ANSWERED, "stop_detail": None}


# --------------------------------------------------------------------------- #
# Routers
# --------------------------------------------------------------------------- #


def route_after_reason(state: EpisodeState) -> str:
    if state.get("stop_reason"):
        return END
    if state["pending"]:
        return ACT_PREFIX + state["pending"][0]["tool"]
    last = state["entries"][-1]
    if last["kind"] == "answer":
        return "verify"
    return "reason"  # an invalid output or only failed calls: the policy tries again


def route_after_act(state: EpisodeState) -> str:
    return ACT_PREFIX + state["pending"][0]["tool"] if state["pending"] else "reason"


def route_after_verify(state: EpisodeState) -> str:
    last = state["entries"][-1]
    if last["kind"] != "verdict":
        raise RuntimeError(f"verify must end with a verdict, got {last['kind']}")
    return "answer" if last["accepted"] else "reason"


# --------------------------------------------------------------------------- #
# Wiring
# --------------------------------------------------------------------------- #


def build_graph(tools: ToolRegistry, checkpointer: Any = None):
    """Compile the MCR graph with one act node per registered tool."""
    graph = StateGraph(EpisodeState, context_schema=EpisodeDeps)
    graph.add_node("observe", observe)
    graph.add_node("reason", reason)
    graph.add_node("verify", verify)
    graph.add_node("answer", answer)
    act_nodes = [ACT_PREFIX + name for name in tools.names]
    for name in tools.names:
        graph.add_node(ACT_PREFIX + name, make_act_node(name))

    graph.add_edge(START, "observe")
    graph.add_edge("observe", "reason")
    graph.add_conditional_edges("reason", route_after_reason, [*act_nodes, "verify", "reason", END])
    for node in act_nodes:
        graph.add_conditional_edges(node, route_after_act, [*act_nodes, "reason"])
    graph.add_conditional_edges("verify", route_after_verify, ["answer", "reason"])
    graph.add_edge("answer", END)
    return graph.compile(checkpointer=checkpointer)
