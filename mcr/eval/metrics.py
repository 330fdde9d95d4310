"""Agent-native metrics: what an episode looked at and spent, read from its trace; and run aggregates.

A benchmark harness scores only the final text. An agent's trace says much
more, and these are the figures a user needs to compare agents fairly:

* **evidence IoU** — how well the spans the *accepted* answer cites overlap the
  ground-truth span. A cited entry without a span (a whole-video transcript)
  stands for the whole video: it cites everything and localises nothing;
* steps, tool calls, model calls, verifier rejections, the stop reason;
* tokens prompted, reused from the cache, loaded from saved prefixes,
  prefilled and generated (summed over ``model_call`` events);
* when the answer was accepted (step, and seconds into the episode with the
  downtime of a kill-and-resume removed) — which gives **accuracy at a budget**:
  the accuracy had every episode been cut at *k* steps or *t* seconds;
* seconds and tokens per correct answer, and everything per category.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcr.eval.records import TaskRecord
from mcr.usage import Usage
from mcr.eval.scorers import recall_at, union_iou
from mcr.traces.recorder import read_trace


@dataclass
class TraceMetrics:
    steps: int = 0
    tool_calls: int = 0
    model_calls: int = 0
    verifier_rejections: int = 0
    tokens: Usage = field(default_factory=Usage)
    answer_step: int | None = None
    answer_time_s: float | None = None
    answer_span: tuple[float, float] | None = None
    evidence_spans: list[tuple[float, float]] = field(default_factory=list)
    resumed: bool = False


def trace_metrics(path: str | Path) -> TraceMetrics:
    """Read one episode's trace into its cost and evidence figures."""
    events = read_trace(path, quiet=True)
    out = TraceMetrics()
    if not events:
        return out
    start_t = events[0].get("t", 0.0)
    duration = float(((events[0].get("task") or {}).get("video") or {}).get("duration") or 0.0)
    downtime, last_t = 0.0, start_t
    entries: dict[str, dict[str, Any]] = {}
    calls: list[dict[str, Any]] = []
    for event in events:
        kind, t = event.get("type"), event.get("t", last_t)
        if kind == "episode_resumed":
            downtime += max(0.0, t - last_t)
            out.resumed = True
        last_t = t
        if kind == "model_call":
            usage = event.get("usage") or {}
            if usage.get("prompt_tokens") or usage.get("generated_tokens") or usage.get("prefilled_tokens"):
                out.model_calls += 1
            calls.append(usage)
        elif kind == "tool_call":
            out.tool_calls += 1
        elif kind == "entry":
            entry = event["entry"]
            entries[entry["id"]] = entry
            out.steps = max(out.steps, int(entry.get("step", 0)))
            if entry.get("kind") == "verdict":
                if not entry.get("accepted"):
                    out.verifier_rejections += 1
                elif out.answer_step is None and entry.get("refs"):
                    answer = entries.get(entry["refs"][0], {})
                    out.answer_step = int(answer.get("step", entry.get("step", 0)))
                    out.answer_time_s = t - start_t - downtime
                    out.evidence_spans = [_span_of(entries.get(ref), duration) for ref in answer.get("refs", ())
                                          if entries.get(ref) is not None]
                    if answer.get("span"):
                        out.answer_span = (answer["span"]["start"], answer["span"]["end"])
        elif kind == "episode_end":
            out.steps = max(out.steps, int(event.get("steps", 0)))
    out.tokens = Usage.total(calls)
    return out


def _span_of(entry: dict[str, Any], duration: float) -> tuple[float, float]:
    span = entry.get("span")
    if span:
        return (float(span["start"]), float(span["end"]))
    return (0.0, duration)


def evidence_iou(metrics: TraceMetrics, truth: tuple[float, float] | None) -> float | None:
    """IoU of the accepted answer's cited spans with the truth; None without a truth or an accepted answer."""
    if truth is None or metrics.answer_step is None:
        return None
    return union_iou(metrics.evidence_spans, truth)


# --------------------------------------------------------------------------- #
# Aggregates over a run
# --------------------------------------------------------------------------- #


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def accuracy_at_steps(records: list[TaskRecord], max_k: int | None = None) -> list[tuple[int, float]]:
    """[(k, accuracy had every episode been cut after k steps)] for k = 1..max_k."""
    if not records:
        return []
    max_k = max_k or max([r.steps for r in records] + [1])
    return [(k, sum(bool(r.correct) and (r.answer_step or 0) <= k for r in records) / len(records))
            for k in range(1, max_k + 1)]


def accuracy_at_seconds(records: list[TaskRecord], points: int = 12) -> list[tuple[float, float]]:
    """[(t, accuracy had every episode been cut at t seconds)] on a grid up to the slowest accepted answer."""
    if not records:
        return []
    times = [r.answer_time_s for r in records if r.correct and r.answer_time_s is not None]
    top = max(times + [1e-3])
    grid = [top * i / points for i in range(1, points + 1)]
    return [(t, sum(bool(r.correct) and (r.answer_time_s or 0.0) <= t + 1e-9 for r in records) / len(records))
            for t in grid]


def _group(records: list[TaskRecord]) -> dict[str, Any]:
    n = len(records)
    correct = sum(bool(r.correct) for r in records)
    return {"n": n, "correct": correct, "accuracy": correct / n if n else 0.0}


def _median(values: list[float]) -> float | None:
    import statistics

    return statistics.median(values) if values else None


def summarize(records: list[TaskRecord]) -> dict[str, Any]:
    """Every aggregate the report shows, as plain JSON data."""
    done = [r for r in records if r.status == "done"]
    n = len(records)
    correct = sum(bool(r.correct) for r in records)
    by_category: dict[str, list[TaskRecord]] = defaultdict(list)
    by_scorer: dict[str, list[TaskRecord]] = defaultdict(list)
    for r in records:
        by_category[r.category or "(none)"].append(r)
        by_scorer[r.scorer or "(error)"].append(r)
    # As for accuracy, only an accepted answer counts: a rejected span scores 0.
    grounding = [(r.iou or 0.0) if r.accepted else 0.0 for r in records if r.scorer == "span"]
    ev = [r.evidence_iou for r in records if r.evidence_iou is not None]
    tokens = Usage.total(r.tokens for r in records)
    wall = sum(r.wall_s for r in records)
    prompt = tokens.prompt_tokens
    return {
        "tasks": n,
        "finished": len(done),
        "errors": n - len(done),
        "correct": correct,
        "accuracy": correct / n if n else 0.0,
        "accepted_rate": sum(r.accepted for r in records) / n if n else 0.0,
        "low_confidence": {"n": sum(r.low_confidence for r in records),
                           "correct": sum(bool(r.correct) for r in records if r.low_confidence)},
        "by_category": {k: _group(v) for k, v in sorted(by_category.items())},
        "by_scorer": {k: _group(v) for k, v in sorted(by_scorer.items())},
        "grounding": recall_at(grounding) | {"n": len(grounding)} if grounding else None,
        "evidence_iou": {"mean": _mean(ev), "n": len(ev), "values": ev},
        "steps_mean": _mean([float(r.steps) for r in done]),
        "steps_median": _median([float(r.steps) for r in done]),
        "tool_calls_mean": _mean([float(r.tool_calls) for r in done]),
        "model_calls_mean": _mean([float(r.model_calls) for r in done]),
        "verifier_rejections": sum(r.verifier_rejections for r in records),
        "stop_reasons": dict(Counter(r.stop_reason or r.error_type or "error" for r in records)),
        "frames_decoded": sum(r.frames_decoded for r in records),
        "tokens": tokens.model_dump(),
        "tokens_reused_share": (tokens.reused_tokens + tokens.prefix_loaded_tokens) / prompt if prompt else None,
        "wall_s": wall,
        "seconds_per_question": wall / n if n else None,
        "seconds_median": _median([r.wall_s for r in records]),
        "seconds_per_correct": wall / correct if correct else None,
        "tokens_per_correct": tokens.spent_tokens / correct if correct else None,
        "accuracy_at_steps": accuracy_at_steps(records),
        "accuracy_at_seconds": accuracy_at_seconds(records),
    }
