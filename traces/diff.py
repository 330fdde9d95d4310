"""Comparing traces: what must match between two runs of one episode, and where they part.

Two users of one definition: `mcr replay` (does the new run reproduce the old
one?) and the viewer's diff tab (show two runs side by side). Both ignore what
legitimately varies between runs — timings, thread ids, package versions and
the absolute folders artifacts were written to — so "identical" means the same
episode, not the same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mcr.context import parse_entry

# Fields that differ between two runs of the same episode without meaning anything.
VOLATILE_KEYS = frozenset({"t", "duration_s", "latency_s", "elapsed_s", "thread_id", "trace_path", "versions"})




def stable_form(value: Any) -> Any:
    """An event without what legitimately varies between runs (times, ids, absolute folders)."""
    if isinstance(value, dict):
        return {k: stable_form(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [stable_form(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return Path(value).name  # artifacts live under each run's own workdir
    return value


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The dotted path of the first field where two (stable) events differ; None if equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = list(a) + [k for k in b if k not in a]
        return next((found for k in keys if (found := first_difference(a.get(k), b.get(k), f"{path}.{k}".lstrip("."))) is not None), None)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return next((found for i, (x, y) in enumerate(zip(a, b)) if (found := first_difference(x, y, f"{path}.{i}".lstrip("."))) is not None), None)
    return None if a == b else (path or "(the whole event)")


def summarize_event(event: dict[str, Any]) -> str:
    """One line that tells an event apart from its neighbours."""
    kind = event.get("type")
    if kind == "entry":
        data = event.get("entry", {})
        try:
            label, text = entry_label(parse_entry(data))
        except ValidationError:
            label, text = str(data.get("kind")), json.dumps(data)
        line = f"{data.get('id', '?')} {label}: {text}"
    elif kind == "model_call":
        u = event.get("usage") or {}
        line = (f"model call, step {event.get('step')}: {u.get('prompt_tokens', 0)} prompt tokens, "
                f"{u.get('reused_tokens', 0)} reused, {u.get('generated_tokens', 0)} generated")
    elif kind == "tool_call":
        line = f"tool {event.get('tool')} ({event.get('call_id')}): " + (f"error {event['error']}" if event.get("error") else "ok")
    else:
        line = {"episode_start": f"start: {(event.get('task') or {}).get('question', '')}",
                "episode_end": f"end: {event.get('stop_reason')}, answer {event.get('answer')!r}"}.get(str(kind), str(kind))
    return line if len(line) <= 200 else line[:199] + "…"


def diff_events(a: list[dict[str, Any]], b: list[dict[str, Any]], a_name: str = "A", b_name: str = "B") -> DiffView:
    """Align two traces event by event and find the first event that differs."""
    rows = []
    for index in range(max(len(a), len(b))):
        ea, eb = (a[index] if index < len(a) else None), (b[index] if index < len(b) else None)
        where = first_difference(stable_form(ea), stable_form(eb)) if ea is not None and eb is not None else "(missing)"
        rows.append(DiffRow(index=index, a=summarize_event(ea) if ea else None, b=summarize_event(eb) if eb else None,
                            same=where is None, where=where or ""))
    first = next((r.index for r in rows if not r.same), None)
    task_a, task_b = a[0].get("task", {}), b[0].get("task", {})
    same_task = task_a.get("question") == task_b.get("question") and a[0].get("video_sha256") == b[0].get("video_sha256")
    note = "identical (ignoring times and ids)" if first is None else f"first difference at event {first} ({rows[first].where})"
    if not same_task:
        note += "; warning: the traces are not of the same task (question or video differ)"
    return DiffView(a_name=a_name, b_name=b_name, rows=rows, first=first, same_task=same_task, note=note)


def entry_label(entry: Any) -> tuple[str, str]:
    """(label, text) for one context entry: how a step reads in the viewer and the diff."""
    kind = entry.kind
    if kind == "instruction":
        opts = "  ".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(entry.options or ()))
        return "question", entry.text + (f"\n{opts}" if opts else "")
    if kind == "tool_call":
        return f"call {entry.tool}", json.dumps(entry.arguments, ensure_ascii=False)
    if kind == "tool_result":
        return f"result {entry.tool}", entry.summary or json.dumps(entry.output, ensure_ascii=False)
    if kind == "tool_error":
        return f"error {entry.tool or 'policy'}", f"{entry.error_type}: {entry.message}"
    if kind == "verdict":
        return ("accepted" if entry.accepted else "rejected"), entry.reason
    if kind == "answer":
        opt = f" (option {entry.option})" if entry.option else ""
        cites = f"  evidence: {', '.join(entry.refs)}" if entry.refs else ""
        return "answer", f"{entry.text}{opt}{cites}"
    return kind, getattr(entry, "text", "")


class DiffRow(BaseModel):
    index: int
    a: str | None = None  # one-line summary of event `index` of each trace (None: that trace is shorter)
    b: str | None = None
    same: bool
    where: str = ""  # the first differing field, e.g. "entry.span.start"


class DiffView(BaseModel):
    a_name: str
    b_name: str
    rows: list[DiffRow]
    first: int | None  # index of the first differing event; None when the traces agree
    same_task: bool
    note: str


# --- replay's view: the first divergence ------------------------------------ #


def comparable_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events that must match between two runs, without their timings.

    The start event (thread id, versions) and resume markers are about the run,
    not the episode, and are left out.
    """
    skip = {"episode_start", "episode_resumed"}
    return [stable_form(e) for e in events if e.get("type") not in skip]


class Divergence(BaseModel):
    """The first event where two traces differ."""

    index: int
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    path: str = ""

    def describe(self) -> str:
        def label(event: dict[str, Any] | None) -> str:
            if event is None:
                return "(no event: the trace ended)"
            if event.get("type") == "entry":
                entry = event["entry"]
                return f"entry {entry.get('id')} ({entry.get('kind')})"
            return str(event.get("type"))

        where = f" at {self.path}" if self.path else ""
        return (f"traces diverge at event {self.index}{where}: old {label(self.old)}, new {label(self.new)}\n"
                f"  old: {_short(self.old, self.path)}\n  new: {_short(self.new, self.path)}")


def _short(event: dict[str, Any] | None, path: str) -> str:
    value: Any = event
    for key in filter(None, path.split(".")):
        value = value.get(key) if isinstance(value, dict) else (value[int(key)] if isinstance(value, list) and key.isdigit() and int(key) < len(value) else None)
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "…"


def first_divergence(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> Divergence | None:
    """Where `new` stops reproducing `old` (None when they match apart from timings)."""
    a, b = comparable_events(old), comparable_events(new)
    for index in range(max(len(a), len(b))):
        x = a[index] if index < len(a) else None
        y = b[index] if index < len(b) else None
        if x != y:
            path = first_difference(x, y) if x is not None and y is not None else ""
            return Divergence(index=index, old=x, new=y, path=path or "")
    return None
