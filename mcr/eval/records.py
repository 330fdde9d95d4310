"""One durable record per task in ``results.jsonl``: what was asked, answered, scored and spent.

An evaluation run can take hours and may be killed at any moment, so each
task's record is one line written with a single ``O_APPEND`` write and
fsynced before the next task starts: a crash loses at most the task that was
running. A line torn by a crash is dropped when the file is read and cut off
before the next append, so the file stays valid JSONL.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcr.usage import Usage

RESULTS_FILE = "results.jsonl"


class TaskRecord(BaseModel):
    """One task's outcome. ``status`` is ``error`` when the task raised (then ``error`` says why)."""

    model_config = ConfigDict(extra="ignore")

    task_id: str
    index: int
    name: str
    category: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    mode: Literal["agent", "single"] = "agent"
    policy: str = ""
    status: Literal["done", "error"] = "done"
    error_type: str | None = None
    error: str | None = None

    question: str = ""
    scorer: str | None = None
    truth: str | None = None
    truth_span: tuple[float, float] | None = None

    answer: str | None = None
    option: str | None = None
    accepted: bool = False
    low_confidence: bool = False  # accepted as the last step's guess (mcr/verify.py)
    stop_reason: str | None = None
    stop_detail: str | None = None
    predicted: str | None = Field(default=None, description="what the scorer read from the answer (letter, number, span)")
    extracted_by: str | None = Field(default=None, description="the rule that read it (see mcr.eval.scorers)")
    score: float | None = None
    correct: bool | None = None
    iou: float | None = Field(default=None, description="grounding tasks: IoU of the predicted span with the truth")

    evidence_spans: list[tuple[float, float]] = Field(default_factory=list)
    evidence_iou: float | None = None
    steps: int = 0
    tool_calls: int = 0
    model_calls: int = 0
    verifier_rejections: int = 0
    tokens: Usage = Field(default_factory=Usage)  # the episode's policy calls, summed
    frames_decoded: int = 0
    wall_s: float = 0.0
    elapsed_s: float = 0.0
    answer_step: int | None = Field(default=None, description="step of the accepted answer (for accuracy at a step budget)")
    answer_time_s: float | None = Field(default=None, description="seconds into the episode when it was accepted")
    resumed: bool = False
    thread_id: str | None = None
    trace_path: str | None = None
    finished_at: float = Field(default_factory=time.time)

    def outcome(self) -> tuple[Any, ...]:
        """What must be equal between an interrupted-and-resumed run and an uninterrupted one."""
        return (self.task_id, self.status, self.answer, self.option, self.accepted, self.stop_reason,
                self.predicted, self.score, self.correct)


def append_record(path: str | Path, record: TaskRecord) -> None:
    """Append one record as one line, durably (write + fsync)."""
    path = Path(path)
    _cut_torn_tail(path)
    line = (record.model_dump_json() + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line without its newline (a write the process died in)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        data = handle.read()
        if data.endswith(b"\n"):
            return
        handle.truncate(data.rfind(b"\n") + 1)
        handle.flush()
        os.fsync(handle.fileno())


class ResultsFileError(ValueError):
    """results.jsonl is damaged beyond a torn last line."""


def read_records(path: str | Path) -> list[TaskRecord]:
    """Every complete record in a results file (a torn last line is ignored); [] if there is none.

    When a task appears twice (it should not), the later record wins.

    Raises:
        ResultsFileError: a line other than the last is not a record.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    complete = lines[:-1]  # the part after the last newline is empty, or torn
    by_id: dict[str, TaskRecord] = {}
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            record = TaskRecord.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValueError) as exc:
            raise ResultsFileError(f"{path}:{number}: not a task record ({type(exc).__name__}); "
                                   "is this a results.jsonl written by `mcr eval`?") from None
        by_id[record.task_id] = record
    return sorted(by_id.values(), key=lambda r: r.index)
