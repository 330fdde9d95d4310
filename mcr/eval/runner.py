"""Run a suite: every task as an agent episode (or a single pass), scored, one durable record each.

    from mcr.eval.runner import EvalOptions, run_suite
    summary = run_suite(EvalOptions(suite="examples/suites/bundled.yaml", out="runs/agent"))

Layout of OUT::

    results.jsonl   one record per task (mcr.eval.records), appended and fsynced as each ends
    manifest.json   versions, model hashes, sampling, media and suite hashes (mcr.eval.manifest)
    traces/         one JSONL trace per task (the agent's own trace format)
    work/           the episodes' checkpoints (SQLite) and tool artifacts
    report.md, report.json, *.png   written at the end (mcr.eval.report)

A task that raises is recorded with its error and the suite goes on.
``resume=True`` skips tasks that have a record (and tries those that raised
again: the later record replaces the earlier); a task that was running when
the process died continues from its last checkpoint (the same thread id),
so a killed-and-resumed run ends with the same result set as one that was
never interrupted. Model policies are built once per distinct policy and
tool set and kept for the whole run: loading is paid once, and questions
about the same video reuse its cached prefix.
"""

from __future__ import annotations

import re
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from mcr.agent import Agent, Result
from mcr.graph import is_infrastructure_error
from mcr.progress import progress
from mcr.eval import manifest as manifest_mod
from mcr.eval.baseline import with_baseline_plan
from mcr.eval.judges import Judge, resolve_judge
from mcr.eval.metrics import evidence_iou, trace_metrics
from mcr.eval.records import RESULTS_FILE, TaskRecord, append_record, read_records
from mcr.eval.scorers import auto_scorer, parse_number, parse_span, score_choice, score_exact, score_numeric, temporal_iou
from mcr.eval.single import empty_registry, single_pass_task
from mcr.model.media.video import frames_decoded
from mcr.task import ModelPolicySpec, ScriptedPolicySpec, TaskFileError, TaskSpec, load_task_entries, load_tasks
from mcr.tools import builtin_registry, registry_for_task
from mcr.tools.base import ToolRegistry

Mode = Literal["agent", "single"]
POLICY_NAMES = ("scripted", "offline", "internvideo3", "openai")


class EvalInputError(ValueError):
    """Bad input to `mcr eval` (the message names it and the fix); the CLI exits 2."""


class EvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: Path
    out: Path
    resume: bool = False
    limit: int | None = None
    policy: str | None = None
    mode: Mode = "agent"
    judge: str | None = None
    progress: bool | None = None  # None: a bar on a terminal only


class RunSummary(BaseModel):
    out: Path
    ran: int
    skipped: int
    records: list[TaskRecord]
    report: dict[str, Any] | None = None


# --------------------------------------------------------------------------- #
# Loading a suite
# --------------------------------------------------------------------------- #


def task_ids(tasks: list[TaskSpec]) -> list[str]:
    """Stable ids: the task name, with ``#2``, ``#3`` ... for repeated names."""
    seen: dict[str, int] = {}
    ids = []
    for task in tasks:
        seen[task.name] = seen.get(task.name, 0) + 1
        ids.append(task.name if seen[task.name] == 1 else f"{task.name}#{seen[task.name]}")
    return ids


def with_policy(task: TaskSpec, name: str | None) -> TaskSpec:
    """The task with its policy replaced by ``--policy NAME``.

    ``scripted`` keeps a task's own plan; a task without one runs the scripted
    baseline (`mcr.eval.baseline`). A model policy keeps the task's settings when
    the task already names it, else starts from its defaults.
    """
    if name is None or task.policy.name == name:
        return task
    if name not in POLICY_NAMES:
        raise EvalInputError(f"--policy {name!r} is not a policy; use one of {', '.join(POLICY_NAMES)}")
    if name == "scripted":  # a task without a plan of its own gets the scripted baseline's
        return with_baseline_plan(task)
    replaced = task.model_copy(update={"policy": ModelPolicySpec(name=name)})  # type: ignore[arg-type]
    replaced._source = task._source
    return replaced


def load_suite(options: EvalOptions, broken: list[tuple[int, TaskFileError]] | None = None) -> list[TaskSpec]:
    """The suite's tasks. With ``broken``, a task that cannot load goes there (its suite index and error)
    instead of raising, so the others still run (`run_suite` records it as an error row)."""
    entries = load_task_entries(options.suite) if broken is not None else list(load_tasks(options.suite))
    if options.limit is not None:
        if options.limit < 1:
            raise EvalInputError(f"--limit {options.limit}: give a positive number of tasks")
        entries = entries[: options.limit]
    if broken is not None:
        broken += [(i, e) for i, e in enumerate(entries) if isinstance(e, TaskFileError)]
    return [with_policy(t, options.policy) for t in entries if isinstance(t, TaskSpec)]


# --------------------------------------------------------------------------- #
# Scoring
# --------------------------------------------------------------------------- #


def score(task: TaskSpec, result: Result, answer_span: tuple[float, float] | None, judge: Judge) -> dict[str, Any]:
    """Score one result against its task's truth; only an accepted answer counts as correct."""
    scorer = task.scorer if task.scorer != "auto" else auto_scorer(task.options, task.answer, task.span)
    out: dict[str, Any] = {"scorer": scorer}
    truth_span = (task.span.start, task.span.end) if task.span else None
    if scorer == "span":
        pred, how = parse_span(result.answer), "text"
        if pred is None and answer_span is not None:
            pred, how = answer_span, "evidence"  # the hull of the spans the answer cites
        iou = temporal_iou(pred, truth_span)
        out |= {"predicted": f"[{pred[0]:.2f}, {pred[1]:.2f}]" if pred else None,
                "extracted_by": how if pred else "unparseable", "score": iou, "iou": iou}
    elif task.answer is None:
        return out | {"score": None, "correct": None}
    elif scorer == "choice":
        value, choice = score_choice(result.option, result.answer, task.answer, task.options or [])
        out |= {"predicted": choice.letter, "extracted_by": choice.rule, "score": value}
    elif scorer == "numeric":
        tolerance = float(task.metadata.get("tolerance", 0.0))
        got = parse_number(result.answer)
        out |= {"score": score_numeric(result.answer, task.answer, tolerance), "extracted_by": "number",
                "predicted": f"{got:g}" if got is not None else None}
    elif scorer == "exact":
        out |= {"score": score_exact(result.answer, task.answer), "extracted_by": "normalised"}
    else:
        verdict = judge(task.question, task.answer, result.answer)
        out |= {"score": verdict.score, "extracted_by": f"judge:{judge.name} ({verdict.reason})"}
    out["correct"] = bool(result.accepted and out["score"] is not None and out["score"] >= 0.5)
    return out


# --------------------------------------------------------------------------- #
# Running
# --------------------------------------------------------------------------- #


class _Agents:
    """Builds each task's agent; policies and the tool registry are made once per run."""

    def __init__(self, workdir: Path, on_policy: Callable[[str, Any], None]):
        self.workdir = workdir
        self.on_policy = on_policy
        self._policies: dict[str, Any] = {}
        self._builtins: ToolRegistry | None = None

    def registry(self, task: TaskSpec, mode: Mode) -> ToolRegistry:
        if mode == "single":
            return empty_registry()
        if self._builtins is None:
            self._builtins = builtin_registry()
        return registry_for_task(task, base=self._builtins)

    def policy(self, task: TaskSpec, registry: ToolRegistry) -> Any:
        from mcr.policies.factory import build_policy

        if isinstance(task.policy, ScriptedPolicySpec):  # cheap and plan-specific: one per task
            return build_policy(task, registry)
        key = f"{task.policy.model_dump_json()}|{','.join(registry.names)}"
        if key not in self._policies:
            self._policies[key] = build_policy(task, registry)
            self.on_policy(key, self._policies[key])
        return self._policies[key]

    def build(self, task: TaskSpec, mode: Mode) -> Agent:
        registry = self.registry(task, mode)
        return Agent(policy=self.policy(task, registry), tools=registry, budget=task.budget, workdir=self.workdir,
                     tool_settings=task.tool_settings, video_settings=task.video_settings, verify=task.verify)


def _base_record(task: TaskSpec, task_id: str, index: int, mode: Mode) -> dict[str, Any]:
    return {
        "task_id": task_id, "index": index, "name": task.name, "category": task.category, "metadata": task.metadata,
        "mode": mode, "policy": task.policy.name, "question": task.question, "truth": task.answer,
        "truth_span": (task.span.start, task.span.end) if task.span else None,
    }


def run_task(agents: _Agents, task: TaskSpec, task_id: str, index: int, mode: Mode, traces: Path,
             judge: Judge) -> TaskRecord:
    """Run (or continue) one task's episode and score it; an exception becomes an error record."""
    base = _base_record(task, task_id, index, mode)
    thread_id = f"{mode}-{task_id}".replace("#", "-")
    trace = traces / (re.sub(r"[^\w.-]", "_", thread_id) + ".jsonl")  # a task's name must not lead out of the folder
    t0, frames0 = time.perf_counter(), frames_decoded()
    try:
        spec = single_pass_task(task) if mode == "single" else task
        with agents.build(spec, mode) as agent:
            if agent.state(thread_id):  # it was running when the last process died: continue it
                result = agent.resume(thread_id)
            else:
                if trace.exists():  # started, but died before its first checkpoint: keep the old trace aside
                    trace.rename(trace.with_suffix(f".interrupted-{int(time.time())}.jsonl"))
                result = agent.run_task(spec, thread_id=thread_id, trace_path=trace)
        metrics = trace_metrics(result.trace_path)
        scored = score(task, result, metrics.answer_span, judge)
        return TaskRecord(
            **base, **scored,
            answer=result.answer, option=result.option, accepted=result.accepted, low_confidence=result.low_confidence,
            stop_reason=result.stop_reason, stop_detail=result.stop_detail,
            evidence_spans=metrics.evidence_spans, evidence_iou=evidence_iou(metrics, base["truth_span"]),
            steps=result.steps, tool_calls=result.tool_calls, model_calls=metrics.model_calls,
            verifier_rejections=metrics.verifier_rejections, tokens=metrics.tokens,
            frames_decoded=frames_decoded() - frames0, wall_s=time.perf_counter() - t0, elapsed_s=result.elapsed_s,
            answer_step=metrics.answer_step, answer_time_s=metrics.answer_time_s, resumed=metrics.resumed,
            thread_id=result.thread_id, trace_path=str(result.trace_path),
        )
    except Exception as exc:  # one broken task must not end the suite; running out of memory must
        if is_infrastructure_error(exc):
            raise
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return TaskRecord(**base, status="error", error_type=type(exc).__name__, error=detail,
                          correct=False, wall_s=time.perf_counter() - t0, frames_decoded=frames_decoded() - frames0,
                          thread_id=thread_id, trace_path=str(trace) if trace.exists() else None)


def prepare_out(options: EvalOptions, tasks: list[TaskSpec]) -> dict[str, Any]:
    """Check OUT against the run about to start, and write its manifest. Returns the manifest."""
    out = options.out
    results = out / RESULTS_FILE
    previous = manifest_mod.read_manifest(out)
    current = manifest_mod.build_manifest(options, tasks)
    if results.exists() and results.stat().st_size and not options.resume:
        raise EvalInputError(f"{out} already holds results ({results}); continue it with --resume, "
                             "or give another --out")
    if options.resume and previous is not None:
        changed = manifest_mod.incompatible(previous, current)
        if changed:
            raise EvalInputError(f"--resume: {out} holds a run with a different {changed} "
                                 f"({previous['run'].get(changed)!r}, now {current['run'].get(changed)!r}); "
                                 "give another --out for this run")
        current["models"] = previous.get("models", {})
    out.mkdir(parents=True, exist_ok=True)
    manifest_mod.write_manifest(out, current)
    return current


def run_suite(options: EvalOptions, report: bool = True) -> RunSummary:
    """Run every task of ``options.suite`` not yet recorded in ``options.out``, then write the report.

    Raises:
        TaskFileError: the suite file is invalid (file, line and key are named).
        EvalInputError: bad options, or OUT holds another run.
    """
    broken: list[tuple[int, TaskFileError]] = []
    tasks = load_suite(options, broken)
    ids = task_ids(tasks)
    manifest = prepare_out(options, tasks)
    out = options.out
    # A task that raised is tried again on resume (its cause may be fixed); its new record replaces the old.
    finished = {r.task_id for r in read_records(out) if r.status == "done"} if options.resume else set()

    def remember_policy(key: str, policy: Any) -> None:
        manifest.setdefault("models", {})[key] = manifest_mod.describe_policy(policy)
        manifest_mod.write_manifest(out, manifest)

    agents = _Agents(out / "work", remember_policy)
    judge = resolve_judge(options.judge)
    todo = [(i, t, task_id) for i, (t, task_id) in enumerate(zip(tasks, ids)) if task_id not in finished]
    ran = 0
    with progress(total=len(tasks), initial=len(tasks) - len(todo), desc="eval", unit="task",
                  enabled=options.progress, leave=True) as bar:
        for index, task, task_id in todo:
            bar.set_postfix_str(task_id[:30])
            record = run_task(agents, task, task_id, index, options.mode, out / "traces", judge)
            append_record(out / RESULTS_FILE, record)
            ran += 1
            bar.update()
    for index, err in broken:  # a task that could not load is an error row; the others ran
        ids.append(f"{err.task_name}@{index}")
        append_record(out / RESULTS_FILE, TaskRecord(task_id=ids[-1], index=index, name=err.task_name or "task",
                                                     mode=options.mode, status="error", error_type="TaskFileError",
                                                     error=str(err), correct=False))
    if (out / "work" / "artifacts").exists() and not any((out / "work" / "artifacts").iterdir()):
        shutil.rmtree(out / "work" / "artifacts", ignore_errors=True)
    records = [r for r in read_records(out) if r.task_id in set(ids)]
    summary = RunSummary(out=out, ran=ran, skipped=len(tasks) - len(todo), records=records)
    if report:
        from mcr.eval.report import write_report

        summary.report = write_report(out, records, manifest)
    return summary
