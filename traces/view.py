"""Build the trace viewer: ONE self-contained, static HTML file per trace.

    from mcr.traces.view import write_viewer
    write_viewer("run.jsonl", "run.html")                 # open run.html in any browser
    write_viewer("run.jsonl", "diff.html", other="b.jsonl")  # plus a side-by-side diff

Why one static file: a trace is attached to an issue or mailed to a colleague,
so the page must work offline, from disk, with no server and no network:

* **Data** is JSON in ``<script type="application/json">`` with ``<``, ``>``, ``&``
  and U+2028/9 escaped, so no model output can close the tag; the page's script
  renders it with ``textContent`` only, never as HTML.
* **Assets** (``viewer/*``) are inlined. A Content-Security-Policy admits only our
  one script (by SHA-256), no network, and media from ``data:``/local files: a
  second line of defence should a payload ever get through.
* **Media** up to `EMBED_VIDEO_MAX_BYTES` (video) / `EMBED_IMAGE_MAX_BYTES` (each
  image), `EMBED_TOTAL_MAX_BYTES` in all, is embedded as ``data:`` URIs; larger
  files are linked by a path relative to the HTML file (keep them where they
  are; `mcr.traces.serve` serves exactly those); missing ones are shown as such.

Steps, evidence, spans inside tool outputs (shots, transcript segments), token
statistics and the diff are prepared here in Python (so tests check them without
a browser); ``viewer/viewer.js`` only draws them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from mcr.context import Answer, Verdict, parse_entry
from mcr.usage import Usage
from mcr.traces.diff import DiffView, diff_events, entry_label
from mcr.traces.recorder import read_trace

ASSETS = Path(__file__).with_name("viewer")
EMBED_VIDEO_MAX_BYTES = 20 * 1024 * 1024
EMBED_IMAGE_MAX_BYTES = 2 * 1024 * 1024
EMBED_TOTAL_MAX_BYTES = 64 * 1024 * 1024  # past this, further media is linked (the page must stay openable)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")
MAX_PARTS = 2000  # inner spans per entry drawn on the timeline (keeps the page light)


class ViewerError(ValueError):
    """The file cannot be shown as a trace (missing, not JSONL, not an MCR trace)."""


class Media(BaseModel):
    src: str | None = None  # data: URI or a URL relative to the HTML file; None when missing
    embedded: bool = False
    note: str = ""  # why it is not shown, or where it lives


class Image(Media):
    caption: str = ""
    span: dict[str, float] | None = None


class Part(BaseModel):
    """A span inside a tool's output (a shot, a transcript segment): a finer timeline mark."""

    start: float
    end: float
    label: str


class Row(BaseModel):
    """One context entry as a line of the step list."""

    id: str
    kind: str
    lane: str  # timeline lane: the tool's name for tool results, else the kind
    step: int
    node: str
    span: dict[str, float] | None = None
    refs: list[str] = []
    label: str
    text: str
    detail: str  # pretty JSON of everything known about the entry
    images: list[Image] = []
    parts: list[Part] = []
    evidence: bool = False
    ok: bool | None = None  # verdicts and tool results: green/red


class ModelCall(Usage):
    """One model call as the page shows it: the trace's usage record, with its step and policy."""

    step: int
    policy: str


class StepGroup(BaseModel):
    step: int
    rows: list[Row] = []
    calls: list[ModelCall] = []
    notes: list[str] = []


class Payload(BaseModel):
    title: str
    trace: str
    question: str
    options: list[str] = []
    policy: str = ""
    tools: list[str] = []
    thread_id: str = ""
    duration: float = 0.0
    video: Media
    end: dict[str, Any] | None = None
    steps: list[StepGroup] = []
    evidence: list[str] = []
    calls: list[ModelCall] = []
    diff: DiffView | None = None


def load_events(trace: str | Path) -> list[dict[str, Any]]:
    """A trace's events, checked to be an MCR trace.

    Raises:
        ViewerError: the file is missing, damaged or not an MCR trace.
    """
    path = Path(trace)
    if not path.is_file():
        raise ViewerError(f"trace {path} does not exist; pass the JSONL file that `mcr run --trace` wrote")
    try:
        events = read_trace(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ViewerError(f"{path} is not a readable MCR trace: {exc}") from None
    if not events or not all(isinstance(e, dict) for e in events) or events[0].get("type") != "episode_start":
        raise ViewerError(f"{path} does not start with an episode_start event; is it an MCR trace (JSONL from `mcr run`)?")
    return events


class MediaResolver:
    """Turns file paths from a trace into ``data:`` URIs or relative URLs (see module doc)."""

    def __init__(self, base_dir: Path, search: tuple[Path, ...] = (), video_limit: int = EMBED_VIDEO_MAX_BYTES,
                 image_limit: int = EMBED_IMAGE_MAX_BYTES, total_limit: int = EMBED_TOTAL_MAX_BYTES):
        self.base_dir = base_dir.resolve()
        self.search = search
        self.video_limit, self.image_limit, self.total_left = video_limit, image_limit, total_limit
        self._cache: dict[tuple[str, int], Media] = {}

    def locate(self, name: str) -> Path | None:
        path = Path(name)
        candidates = [path] if path.is_absolute() else [path, *(d / path for d in self.search)]
        try:
            return next((c.resolve() for c in candidates if c.is_file()), None)
        except (OSError, ValueError):  # a "path" from model output: too long, NUL bytes, ...
            return None

    def resolve(self, name: str, limit: int) -> Media:
        key = (name, limit)
        if key not in self._cache:
            self._cache[key] = self._resolve(name, limit)
        return self._cache[key]

    def _resolve(self, name: str, limit: int) -> Media:
        path = self.locate(name)
        if path is None:
            return Media(note=f"missing: {name}")
        size = path.stat().st_size
        if size <= min(limit, self.total_left):
            self.total_left -= size
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return Media(src=f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}", embedded=True,
                         note=path.name)
        try:
            rel = Path(os.path.relpath(path, self.base_dir)).as_posix()
        except ValueError:  # another drive: no relative path exists
            return Media(src=path.as_uri(), note=str(path))
        return Media(src="./" + quote(rel), note=f"{rel} ({size / 1e6:.1f} MB, not embedded: keep it beside the HTML)")


def _scan_output(value: Any, resolver: MediaResolver, where: str = "", span: dict | None = None,
                 found: tuple[list[Image], list[Part]] | None = None) -> tuple[list[Image], list[Part]]:
    """Every image path (keyframes, overlays) and every inner span (shots, segments) in a tool output."""
    images, parts = found if found is not None else ([], [])
    if isinstance(value, dict):
        inner = value.get("span")
        if isinstance(inner, dict) and isinstance(inner.get("start"), (int, float)) and isinstance(inner.get("end"), (int, float)):
            span = {"start": float(inner["start"]), "end": float(inner["end"])}
            if len(parts) < MAX_PARTS:
                label = value.get("text") or value.get("label") or value.get("caption") or where
                parts.append(Part(**span, label=str(label)))
        for key, item in value.items():
            _scan_output(item, resolver, f"{where}.{key}" if where else str(key), span, (images, parts))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _scan_output(item, resolver, f"{where}[{index}]", span, (images, parts))
    elif isinstance(value, str) and value.lower().endswith(IMAGE_SUFFIXES):
        caption = where + (f" ({span['start']:.1f}–{span['end']:.1f} s)" if span else "")
        images.append(Image(**resolver.resolve(value, resolver.image_limit).model_dump(), caption=caption, span=span))
    return images, parts


def _accepted_evidence(entries: list[Any]) -> tuple[str | None, list[str]]:
    """The accepted answer's id and the ids it cites (the final evidence)."""
    by_id = {e.id: e for e in entries}
    for verdict in reversed([e for e in entries if isinstance(e, Verdict)]):
        if verdict.accepted and verdict.refs and isinstance(answer := by_id.get(verdict.refs[0]), Answer):
            return answer.id, list(answer.refs)
    return None, []


def build_payload(events: list[dict[str, Any]], trace_name: str, resolver: MediaResolver) -> Payload:
    """Everything the page shows, from a trace's events (no HTML here)."""
    start = events[0]
    task = start.get("task", {})
    video_ref = task.get("video") or {}
    video_path = video_ref.get("path")  # resolved first: the video has the first claim on the embedding budget
    video = resolver.resolve(video_path, resolver.video_limit) if video_path else Media(note="the task has no video")
    rows: list[Row] = []
    entries: list[Any] = []
    calls: list[ModelCall] = []
    tool_events: dict[str, dict[str, Any]] = {}
    notes: dict[int, list[str]] = {}
    end = None
    for number, event in enumerate(events, start=1):
        kind = event.get("type")
        try:
            if kind == "entry":
                entry = parse_entry(event["entry"])
                entries.append(entry)
                rows.append(Row(id=entry.id, kind=entry.kind, step=entry.step, node=str(event.get("node", "")),
                                lane=entry.tool if entry.kind == "tool_result" else entry.kind,
                                span=entry.span.model_dump() if entry.span else None, refs=list(entry.refs),
                                label="", text="", detail=""))
            elif kind == "model_call":
                usage = {k: v for k, v in (event.get("usage") or {}).items() if v is not None}
                calls.append(ModelCall(**usage, step=event["step"], policy=event.get("policy", "")))
            elif kind == "tool_call":
                tool_events[event["call_id"]] = event
            elif kind == "episode_resumed":
                step = rows[-1].step if rows else 0
                notes.setdefault(step, []).append(f"episode resumed after an interruption ({event.get('entries_so_far', '?')} entries so far)")
            elif kind == "episode_end":
                end = {k: event.get(k) for k in ("stop_reason", "answer", "option", "accepted", "steps", "tool_calls", "elapsed_s")}
        except (KeyError, TypeError, ValidationError) as exc:
            raise ViewerError(f"{trace_name}: event {number} ({kind}) is malformed: {exc}") from None

    answer_id, evidence = _accepted_evidence(entries)
    for row, entry in zip(rows, entries):
        row.label, row.text = entry_label(entry)
        detail: dict[str, Any] = {"entry": entry.model_dump(mode="json")}
        if entry.kind in ("tool_result", "tool_error") and entry.refs and entry.refs[0] in tool_events:
            call = tool_events[entry.refs[0]]
            detail["tool_call"] = {k: call.get(k) for k in ("tool", "input", "duration_s", "error")}
        row.detail = json.dumps(detail, indent=2, ensure_ascii=False)
        row.evidence = entry.id in evidence or entry.id == answer_id
        if entry.kind == "tool_result":
            row.images, row.parts = _scan_output(entry.output, resolver)
            row.ok = True
        elif entry.kind == "observation":
            row.images = [Image(**resolver.resolve(p, resolver.image_limit).model_dump(), caption=Path(p).name)
                          for p in entry.images]
        elif entry.kind in ("tool_error", "verdict"):
            row.ok = entry.kind == "verdict" and entry.accepted

    groups: dict[int, StepGroup] = {}
    for row in rows:
        groups.setdefault(row.step, StepGroup(step=row.step)).rows.append(row)
    for call in calls:
        groups.setdefault(call.step, StepGroup(step=call.step)).calls.append(call)
    for step, texts in notes.items():
        groups.setdefault(step, StepGroup(step=step)).notes += texts

    question = task.get("question", "")
    return Payload(
        title=f"MCR trace — {question[:80]}", trace=trace_name, question=question, options=task.get("options") or [],
        policy=start.get("policy", ""), tools=start.get("tools", []), thread_id=start.get("thread_id", ""),
        duration=float(video_ref.get("duration") or (task.get("video_info") or {}).get("duration") or 0.0),
        video=video, end=end, steps=[groups[k] for k in sorted(groups)], evidence=evidence, calls=calls,
    )


def json_for_script(value: Any) -> str:
    """JSON safe to place inside a <script> element: nothing in it can end the tag."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def render_html(payload: Payload) -> str:
    """Fill the template: inline CSS, JS and the data; a CSP that admits only our script."""
    template = (ASSETS / "template.html").read_text(encoding="utf-8")
    css = (ASSETS / "viewer.css").read_text(encoding="utf-8")
    js = (ASSETS / "viewer.js").read_text(encoding="utf-8")
    if "</" in css or "</script" in js.lower():
        raise RuntimeError("viewer assets must not contain '</' (it would end their inline element)")
    digest = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
           "img-src data: file: 'self'; media-src data: file: 'self'; base-uri 'none'; form-action 'none'")
    values = {"CSP": csp, "TITLE": _html_escape(payload.title), "CSS": css, "JS": js,
              "DATA": json_for_script(payload.model_dump(mode="json"))}
    # One pass over the template only: text in the data is never re-scanned for placeholders.
    return re.sub(r"\{\{(CSP|TITLE|CSS|JS|DATA)\}\}", lambda m: values[m.group(1)], template)


def build_viewer_html(trace: str | Path, other: str | Path | None = None, *, base_dir: str | Path | None = None,
                      video_limit: int = EMBED_VIDEO_MAX_BYTES, image_limit: int = EMBED_IMAGE_MAX_BYTES,
                      total_limit: int = EMBED_TOTAL_MAX_BYTES) -> str:
    """The viewer page for `trace` (and a diff against `other`, a trace of the same task).

    Args:
        trace: a JSONL trace written by `mcr run` / `Agent`.
        other: a second trace to diff against (side by side, first difference highlighted).
        base_dir: where the HTML will live; media too large to embed is linked
            relative to it (default: the trace's folder).
        video_limit, image_limit: embed a video / an image up to this many bytes, and
            all media together up to `total_limit`; larger media is linked.

    Raises:
        ViewerError: a trace is missing or not an MCR trace.
    """
    trace = Path(trace)
    base = Path(base_dir) if base_dir is not None else trace.parent
    resolver = MediaResolver(base, search=(trace.parent.resolve(),), video_limit=video_limit, image_limit=image_limit,
                             total_limit=total_limit)
    events = load_events(trace)
    payload = build_payload(events, trace.name, resolver)
    if other is not None:
        payload.diff = diff_events(events, load_events(other), trace.name, Path(other).name)
    return render_html(payload)


def write_viewer(trace: str | Path, out: str | Path | None = None, other: str | Path | None = None, **kwargs: Any) -> Path:
    """Write the viewer for `trace` to `out` (default: the trace path with ``.html``); returns the path."""
    out = Path(out) if out is not None else Path(trace).with_suffix(".html")
    out.parent.mkdir(parents=True, exist_ok=True)
    html = build_viewer_html(trace, other, base_dir=out.parent, **kwargs)
    out.write_text(html, encoding="utf-8")
    return out
