"""Temporal grounding benchmarks in the Charades-STA style: a sentence, a video, a span.

Three layouts, all read into span-scored tasks (``scorer: span``, the truth in
``span``, no options):

* Charades-STA's release text files: ``VIDEO START END##sentence`` per line;
* lmms-eval's `charades_sta` records: ``video``, ``caption``, ``timestamp``
  (a pair, or its string form; field names from lmms-eval's
  `tasks/charades_sta/utils.py`);
* keyed JSON, one entry per video: ``{VIDEO: {duration, queries|sentences,
  spans|timestamps}}`` (InternVideo3's `*-timelens.json` files read by its
  `eval_grounding.py`, and ActivityNet Captions).

The question is InternVideo3's grounding prompt (see presets.py), with the
video's duration when it is known.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from mcr.eval.importers.base import BenchmarkImportError, ImportOptions, as_list, find_video, make_task, need, read_records, safe_name
from mcr.eval.presets import grounding_question
from mcr.task import TaskSpec


def _pair(path: Path, index: int | str, value: Any, key: str) -> tuple[float, float]:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise BenchmarkImportError(path, f"{value!r} is not a [start, end] pair", index, key) from None
    try:
        start, end = (float(v) for v in value)
    except (TypeError, ValueError):
        raise BenchmarkImportError(path, f"{value!r} is not a [start, end] pair of seconds", index, key) from None
    if start == end:
        raise BenchmarkImportError(path, f"the span {value!r} is empty", index, key)
    return min(start, end), max(start, end)


def _rows(path: Path) -> list[tuple[str, str, Any, tuple[float, float], float | None]]:
    """(record id, video, query, span, duration) for every query in the file."""
    rows: list[tuple[str, str, Any, tuple[float, float], float | None]] = []
    if path.suffix == ".txt":
        if not path.is_file():
            raise BenchmarkImportError(path, "annotation file not found")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            head, sep, sentence = line.partition("##")
            fields = head.split()
            if not sep or len(fields) != 3:
                raise BenchmarkImportError(path, f"line {n} is not 'VIDEO START END##sentence': {line[:80]!r}")
            rows.append((f"line {n}", fields[0], sentence, _pair(path, f"line {n}", fields[1:], "span"), None))
        return rows
    data = read_records(path)
    if isinstance(data, dict) and not isinstance(data.get("data"), list):
        for vid, info in data.items():
            if not isinstance(info, dict):
                raise BenchmarkImportError(path, "expected {video: {duration, queries, spans}}", record=vid)
            queries = need(path, info, vid, "queries", "sentences")
            spans = need(path, info, vid, "spans", "timestamps")
            if len(queries) != len(spans):
                raise BenchmarkImportError(path, f"{len(queries)} queries but {len(spans)} spans", record=vid)
            for q, (query, span) in enumerate(zip(queries, spans)):
                rows.append((f"{vid}.{q}", vid, query, _pair(path, f"{vid}.{q}", span, "spans"), info.get("duration")))
        return rows
    for i, r in enumerate(as_list(path, data)):
        span = _pair(path, i, need(path, r, i, "timestamp", "span", "timestamps"), "timestamp")
        rows.append((str(i), need(path, r, i, "video", "video_id"), need(path, r, i, "caption", "query", "sentence"),
                     span, r.get("duration")))
    return rows


def import_charades_sta(path: Path, opts: ImportOptions) -> list[TaskSpec]:
    """Charades-STA-style grounding tasks (any of the three layouts above)."""
    from mcr.model.media.video import probe

    tasks: list[TaskSpec] = []
    for index, video, query, span, duration in _rows(path):
        query = str(query).strip().rstrip(".")
        if not query:
            raise BenchmarkImportError(path, "the query sentence is empty", record=index)
        found = find_video(opts, video)
        if duration is None and found is not None:
            duration = probe(found).duration
        raw = {
            "name": safe_name("charades_sta", video, index.split(".")[-1] if "." in index else index),
            "question": grounding_question(query, duration),
            "span": list(span),
            "scorer": "span",
            "category": "grounding",
            "metadata": {"benchmark": "charades_sta", "query": query, "record": index, "duration": duration},
        }
        task = make_task(path, index, opts, raw, video)
        if task is not None:
            tasks.append(task)
        if opts.limit is not None and len(tasks) >= opts.limit:
            break
    return tasks
