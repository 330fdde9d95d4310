"""Durable JSONL traces: one versioned event per line, flushed as it happens.

A trace is what users read, replay and share, so it must survive the process
dying at any moment: each event is written with a single ``write`` of one line,
flushed and fsynced. A crash can tear at most the line being written; the
reader drops such a torn last line and says so instead of failing.

Traces are self-describing: the first event holds the task, the settings, the
package versions and the video's content hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class TraceEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: int = SCHEMA_VERSION
    type: str
    t: float = Field(default_factory=time.time)


class EpisodeStart(TraceEvent):
    type: Literal["episode_start"] = "episode_start"
    thread_id: str
    task: dict[str, Any]
    policy: str
    tools: list[str]
    video_sha256: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)


class EntryEvent(TraceEvent):
    """A context entry, as appended by a graph node."""

    type: Literal["entry"] = "entry"
    node: str
    entry: dict[str, Any]


class ModelCallEvent(TraceEvent):
    """One policy decision: what it cost (tokens, cache) and what it said."""

    type: Literal["model_call"] = "model_call"
    step: int
    policy: str
    usage: dict[str, Any]


class ToolCallEvent(TraceEvent):
    type: Literal["tool_call"] = "tool_call"
    step: int
    tool: str
    call_id: str
    input: dict[str, Any]
    output: dict[str, Any] | None = None
    error: str | None = None
    duration_s: float


class EpisodeResumed(TraceEvent):
    type: Literal["episode_resumed"] = "episode_resumed"
    thread_id: str
    entries_so_far: int


class EpisodeEnd(TraceEvent):
    type: Literal["episode_end"] = "episode_end"
    stop_reason: str
    answer: str | None = None
    option: str | None = None
    accepted: bool = False
    steps: int = 0
    tool_calls: int = 0
    elapsed_s: float = 0.0


class TraceRecorder:
    """Appends events to a JSONL file. Safe to reopen on resume.

    Each event is one ``O_APPEND`` write, straight to the operating system: a
    killed process loses nothing it wrote and tears at most the line being
    written. The file is fsynced when the episode ends (:meth:`finish`), not
    per event: the SQLite checkpoint is the durable record of every step, and
    a resume writes back any entry a power loss took from the trace
    (``Agent._sync_trace``). One fsync per event cost more than the rest of a
    step (``benchmarks/bench_loop.py``).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: TraceEvent) -> None:
        line = event.model_dump_json() + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def finish(self) -> None:
        """Flush the trace to disk (the episode ended)."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def entry_ids(self) -> set[str]:
        """Ids of the entries already recorded (to sync after a crash without duplicates)."""
        if not self.path.exists():
            return set()
        return {e["entry"]["id"] for e in read_trace(self.path, quiet=True) if e.get("type") == "entry"}


class TornTraceWarning(UserWarning):
    """The trace's last line was cut short (the process died while writing it)."""


def read_trace(path: str | Path, quiet: bool = False) -> list[dict[str, Any]]:
    """Read a trace's events. A torn last line is dropped with a warning.

    Raises:
        ValueError: a line other than the last is not valid JSON (not a torn
            write: the file is damaged or not a trace).
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    events: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                if not quiet:
                    warnings.warn(f"{path}: dropped a torn last line (the run was interrupted while writing it)", TornTraceWarning, stacklevel=2)
                break
            raise ValueError(f"{path}:{number}: not a JSON trace event; is this an MCR trace file?") from None
    return events


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def package_versions(names: tuple[str, ...] = ("internvideo3-mcr", "langgraph", "pydantic", "torch", "transformers", "av")) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
