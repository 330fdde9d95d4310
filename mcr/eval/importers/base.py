"""What every benchmark importer shares: reading annotation files, naming bad records, finding videos.

Why: each benchmark ships its questions in its own layout (a JSON list, JSON
lines, a dict keyed by video, parquet from a Hugging Face dataset), spells the
same ideas differently ("options", "candidates", "option0".."option4") and
puts letters in front of option texts or not. The importers turn each layout
into one shape, `TaskSpec`, and every problem becomes a `BenchmarkImportError`
that names the file, the record and the field, and says what to do.
Nothing here downloads: annotations and videos are local paths.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mcr.task import TaskSpec

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
VIDEO_SUFFIXES = (".mp4", ".MP4", ".mkv", ".webm", ".avi", ".mov")
# "A. text", "A) text", "(A) text", "A: text" — a letter label in front of an option.
_LABEL = re.compile(r"^\s*\(?([A-Z])[\).:]\s+(.*\S)\s*$", re.S)
_OPTION_LINE = re.compile(r"^\s*\(([A-Z])\)\s*(.+?)\s*$|^\s*([A-Z])[.:]\s+(.+?)\s*$")


class BenchmarkImportError(ValueError):
    """An annotation file (or one of its records) cannot become a task. Says where and how to fix it."""

    def __init__(self, path: Path | str, message: str, record: int | str | None = None, key: str | None = None):
        self.path, self.record, self.key, self.reason = str(path), record, key, message
        where = str(path) + (f" (record {record})" if record is not None else "") + (f" field '{key}'" if key else "")
        super().__init__(f"{where}: {message}")


@dataclass
class ImportOptions:
    """How an importer resolves and filters records."""

    videos: Path  # the folder holding the benchmark's videos
    skip_missing_videos: bool = False  # drop tasks whose video is absent (a partial download) instead of failing
    keep_unanswered: bool = False  # keep questions whose answer the annotations hide (scored as no truth)
    limit: int | None = None
    answers: Path | None = None  # a separate answer file (EgoSchema's subset_answers.json)
    skipped: dict[str, int] = field(default_factory=dict)  # why records were dropped → how many

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def read_records(path: Path) -> Any:
    """The parsed annotation file: JSON, JSON lines, or parquet (with pyarrow installed)."""
    if not path.is_file():
        raise BenchmarkImportError(path, "annotation file not found; pass the benchmark's local JSON/JSONL/parquet file")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise BenchmarkImportError(path, "reading parquet needs pyarrow: `pip install pyarrow`, "
                                             "or export the split to JSON first") from None
        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        records = []
        for n, line in enumerate(text.split("\n"), start=1):  # not splitlines(): JSON strings may hold U+2028
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise BenchmarkImportError(path, f"line {n} is not JSON: {exc.msg}") from None
        return records
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchmarkImportError(path, f"not valid JSON (line {exc.lineno}: {exc.msg}); "
                                         "JSON lines files need the .jsonl suffix") from None


def as_list(path: Path, data: Any, what: str = "a list of question records") -> list[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise BenchmarkImportError(path, f"expected {what}, found {type(data).__name__}")
    return data


def need(path: Path, record: dict[str, Any], index: int | str, *keys: str) -> Any:
    """The first of `keys` present in `record`; a named error when none is."""
    for key in keys:
        if key in record and record[key] is not None:
            return record[key]
    have = ", ".join(sorted(record)) or "(none)"
    raise BenchmarkImportError(path, f"missing; this record has: {have}", record=index, key=" or ".join(keys))


def strip_label(option: str, position: int) -> str:
    """'B. a cat' → 'a cat' when the label is the option's own letter; other text is kept whole."""
    match = _LABEL.match(str(option))
    if match and match.group(1) == LETTERS[position]:
        return match.group(2)
    return str(option).strip()


def split_embedded_options(question: str) -> tuple[str, list[str]]:
    """A question whose options are lines after it ('(A) x' or 'A. x'): (the question, the option texts)."""
    lines = question.splitlines()
    options: list[str] = []
    body: list[str] = []
    for line in lines:
        match = _OPTION_LINE.match(line)
        letter = match and (match.group(1) or match.group(3))
        if match and letter == LETTERS[len(options)]:
            options.append(match.group(2) or match.group(4))
        elif not options:
            body.append(line)
        elif line.strip():
            options[-1] += " " + line.strip()  # an option's text wrapped onto the next line
    return "\n".join(body).strip(), options


def letter_of(path: Path, index: int | str, answer: Any, options: list[str], key: str = "answer") -> str:
    """The answer as a letter: from a letter, '(C)', 'C. text', an index, or the option text itself."""
    if isinstance(answer, bool):
        answer = str(answer)
    if isinstance(answer, int) or (isinstance(answer, str) and answer.strip().isdigit()):
        i = int(answer)
        if 0 <= i < len(options):
            return LETTERS[i]
        raise BenchmarkImportError(path, f"answer index {i} is out of range for {len(options)} options", index, key)
    text = str(answer).strip()
    bare = text.strip("()").rstrip(".")
    if len(bare) == 1 and bare.upper() in LETTERS[: len(options)]:
        return bare.upper()
    labelled = _LABEL.match(text)
    if labelled and labelled.group(1) in LETTERS[: len(options)]:
        return labelled.group(1)
    folded = [o.strip().lower() for o in options]
    if text.lower() in folded:
        return LETTERS[folded.index(text.lower())]
    raise BenchmarkImportError(path, f"answer {text!r} is neither a letter, an index nor one of the options", index, key)


def find_video(options: ImportOptions, name: str, subdirs: Iterable[str] = ("", "data", "videos", "video")) -> Path | None:
    """The video file for `name` (with or without a suffix) under the videos folder, or None."""
    stem = Path(name)
    names = [stem.name] if stem.suffix in VIDEO_SUFFIXES else [stem.name + s for s in VIDEO_SUFFIXES]
    relative = [str(stem.parent / n) if str(stem.parent) not in ("", ".") else n for n in names]
    for sub in subdirs:
        for rel in dict.fromkeys([*relative, *names]):
            candidate = options.videos / sub / rel
            if candidate.is_file():
                return candidate.resolve()
    return None


def make_task(path: Path, index: int | str, options: ImportOptions, raw: dict[str, Any], video_name: str,
              subdirs: Iterable[str] = ()) -> TaskSpec | None:
    """Validate one task (video resolved); None when its video is absent and skipping is on."""
    video = find_video(options, video_name, ("", "data", "videos", "video", *subdirs))
    if video is None:
        if options.skip_missing_videos:
            options.skip("video not found")
            return None
        raise BenchmarkImportError(path, f"video {video_name!r} not found under {options.videos} "
                                         "(also tried data/, videos/ and common suffixes); pass --videos DIR, "
                                         "or --skip-missing for a partial download", record=index)
    try:
        return TaskSpec.model_validate({**raw, "video": video})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or None
        raise BenchmarkImportError(path, err["msg"], record=index, key=key) from None


def safe_name(*parts: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(str(p) for p in parts if p not in (None, ""))).strip("_") or "task"


def seconds(value: Any) -> float:
    """'00:01:05.5', '01:05', '65.5' or 65.5 → seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    parts = [float(p) for p in str(value).strip().split(":")]
    total = 0.0
    for p in parts:
        total = total * 60 + p
    return total
