"""Durable JSONL traces: one versioned event per line, flushed as it happens.

A trace is what users read, replay and share, so it must survive the process
dying at any moment: each event is written with a single ``write`` of one line,
flushed and fsynced. A crash can tear at most the line being written; the
reader drops such a torn last line and says so instead of failing.

Traces are self-describing: the first event holds the task, the settings, the
package versions and the video's content hash.
"""

from __future__ import annotations

import errno
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
        self._cut_torn_tail()

    def write(self, event: TraceEvent) -> None:
        """Append one event as one line.

        Raises:
            TraceWriteError: the line could not be written (a full disk, above
                all). The trace keeps every whole line before it; a part-written
                line is cut off when the trace is next opened for writing.
        """
        data = (event.model_dump_json() + "\n").encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                written = os.write(fd, data)
                while written < len(data):  # a short write: the disk filled mid-line; the next write says why
                    written += os.write(fd, data[written:])
            finally:
                os.close(fd)
        except OSError as exc:
            raise TraceWriteError(self.path, exc) from exc

    def _cut_torn_tail(self) -> None:
        """Drop a part-written last line (a crash or a full disk mid-write) so the next append starts whole.

        Without this a resumed episode would append after the torn line, and
        the trace would hold a broken line in the middle, which the reader
        rightly refuses as damage.
        """
        try:
            with open(self.path, "rb+") as handle:
                size = handle.seek(0, os.SEEK_END)
                if size == 0:
                    return
                handle.seek(size - 1)
                if handle.read(1) == b"\n":
                    return
                keep = max(0, size - 65536)
                while True:  # find the last newline, reading backwards in blocks
                    handle.seek(keep)
                    block = handle.read(size - keep)
                    cut = block.rfind(b"\n")
                    if cut >= 0:
                        keep += cut + 1
                        break
                    if keep == 0:
                        break
                    size, keep = keep, max(0, keep - 65536)
                handle.truncate(keep)
            warnings.warn(f"{self.path}: cut a torn last line before appending (the last run died while writing it)",
                          TornTraceWarning, stacklevel=3)
        except FileNotFoundError:
            return
        except OSError as exc:  # e.g. a path that is not a regular file: the first write will say what is wrong
            if exc.errno not in (errno.ESPIPE, errno.EINVAL, errno.ENXIO):
                raise TraceWriteError(self.path, exc) from exc

    def finish(self) -> None:
        """Flush the trace to disk (the episode ended)."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def recorded_keys(self) -> tuple[set[str], set[tuple[str, object]]]:
        """Ids of the recorded entries, and keys of the recorded calls (``("tool_call", call_id)``,
        ``("model_call", step)``): what a resume must not write twice."""
        if not self.path.exists():
            return set(), set()
        entries, calls = set(), set()
        for event in read_trace(self.path, quiet=True):
            if event.get("type") == "entry":
                entries.add(event["entry"]["id"])
            elif event.get("type") == "tool_call":
                calls.add(("tool_call", event.get("call_id")))
            elif event.get("type") == "model_call":
                calls.add(("model_call", event.get("step")))
        return entries, calls

    def has_ended(self) -> bool:
        """Whether the trace's last event is the episode's end."""
        if not self.path.exists():
            return False
        events = read_trace(self.path, quiet=True)
        return bool(events) and events[-1].get("type") == "episode_end"

    def entry_ids(self) -> set[str]:
        """Ids of the entries already recorded (to sync after a crash without duplicates)."""
        if not self.path.exists():
            return set()
        return {e["entry"]["id"] for e in read_trace(self.path, quiet=True) if e.get("type") == "entry"}


class TornTraceWarning(UserWarning):
    """The trace's last line was cut short (the process died while writing it)."""


class TraceWriteError(OSError):
    """The trace could not be written; says which file and what to do.

    An ``OSError`` (with the original ``errno``), so callers that handle file
    errors still catch it. The checkpoint is written before the trace, so the
    episode resumes (``mcr resume THREAD_ID``) once the cause is fixed, and the
    resume writes back every entry the trace lacks.
    """

    def __init__(self, path: Path, cause: OSError):
        self.path = path
        full = cause.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        fix = ("the disk (or your quota) is full: free space there, or run with --workdir on another disk"
               if full else "check that its folder exists and is writable")
        super().__init__(cause.errno, f"cannot write the trace {path}: {cause.strerror or cause}; {fix}. "
                         "Every whole line written so far is kept, and `mcr resume THREAD_ID` continues the episode "
                         "from its checkpoint")

    def __str__(self) -> str:
        return self.strerror or super().__str__()


class TraceFormatError(ValueError):
    """A file is not a readable MCR trace: not UTF-8, a damaged line, not events, or a newer schema."""


def read_trace(path: str | Path, quiet: bool = False) -> list[dict[str, Any]]:
    """Read a trace's events. A torn last line is dropped with a warning.

    Raises:
        TraceFormatError: (a ValueError) the file is not UTF-8, a line other than
            the last is not valid JSON (not a torn write: the file is damaged or
            not a trace), a line is not an event object, or an event comes from
            a newer schema than this MCR reads.
    """
    path = Path(path)
    try:
        # Lines end at "\n" only: splitlines() also splits at U+2028, \x0c, \x85 ..., which JSON leaves raw in
        # strings, so one model output holding them made the whole trace unreadable.
        lines = path.read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the newline that ends the last whole event
    except UnicodeDecodeError as exc:
        raise TraceFormatError(f"{path}: not UTF-8 text at byte {exc.start}; is this an MCR trace file (JSONL)?") from None
    events: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            if number == len(lines):
                if not quiet:
                    warnings.warn(f"{path}: dropped a torn last line (the run was interrupted while writing it)", TornTraceWarning, stacklevel=2)
                break
            raise TraceFormatError(f"{path}:{number}: not a JSON trace event; is this an MCR trace file?") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise TraceFormatError(f"{path}:{number}: not a trace event (a JSON object with a \"type\"); is this an MCR trace file?")
        version = event.get("v", SCHEMA_VERSION)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise TraceFormatError(f"{path}:{number}: event version {version!r} is not a schema version (1..{SCHEMA_VERSION})")
        if version > SCHEMA_VERSION:
            raise TraceFormatError(f"{path}:{number}: written with trace schema v{version}, newer than this MCR reads "
                                   f"(v{SCHEMA_VERSION}); upgrade internvideo3-mcr to read it")
        events.append(event)
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
