"""Benchmark importers: local annotation files (and lmms-eval task YAML) → suites of TaskSpec.

    tasks = import_benchmark("videomme", "videomme/test.json", videos="videomme/data")
    write_suite(tasks, "videomme.yaml", name="videomme")       # then: mcr eval videomme.yaml

Formats (one registry, built here): videomme, mlvu, longvideobench, lvbench,
egoschema (multiple choice) and charades_sta (grounding). Passing an lmms-eval
task YAML instead of a format name picks the format from the task and records
its prompt settings. By default each task gets the format's InternVideo3
preset (presets.py). Nothing downloads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mcr.eval.importers.base import BenchmarkImportError, ImportOptions
from mcr.eval.importers.choice import import_egoschema, import_longvideobench, import_lvbench, import_mlvu, import_videomme
from mcr.eval.importers.grounding import import_charades_sta
from mcr.eval.importers.lmms_yaml import LmmsTask, read_lmms_task
from mcr.eval.presets import PRESETS, apply_preset, get_preset
from mcr.task import TaskSpec

Importer = Callable[[Path, ImportOptions], list[TaskSpec]]

FORMATS: dict[str, Importer] = {
    "videomme": import_videomme,
    "mlvu": import_mlvu,
    "longvideobench": import_longvideobench,
    "lvbench": import_lvbench,
    "egoschema": import_egoschema,
    "charades_sta": import_charades_sta,
}

__all__ = ["FORMATS", "BenchmarkImportError", "ImportOptions", "LmmsTask", "import_benchmark", "read_lmms_task", "write_suite"]


def import_benchmark(
    format: str,
    annotations: str | Path,
    videos: str | Path,
    *,
    preset: str | None = "auto",
    options: ImportOptions | None = None,
    **option_fields: Any,
) -> list[TaskSpec]:
    """Read a benchmark's local annotations into tasks.

    Args:
        format: a name in FORMATS, or the path of an lmms-eval task YAML.
        annotations: the annotation file (MLVU: a file or its json/ folder).
        videos: the folder with the benchmark's videos.
        preset: "auto" (the format's InternVideo3 preset), a preset name, or None (keep task defaults).
        options / option_fields: see ImportOptions (skip_missing_videos, keep_unanswered, limit, answers).

    Raises:
        BenchmarkImportError: an unknown format, an unreadable file, or a record that cannot become a task.
    """
    lmms: LmmsTask | None = None
    if format not in FORMATS and (format.endswith((".yaml", ".yml")) or Path(format).is_file()):
        lmms = read_lmms_task(format)
        format = lmms.format
    if format not in FORMATS:
        raise BenchmarkImportError(format, f"unknown benchmark format; known: {', '.join(FORMATS)} "
                                           "(or pass an lmms-eval task .yaml)")
    videos = Path(videos)
    if not videos.is_dir():
        raise BenchmarkImportError(videos, "videos folder not found; pass --videos DIR (the benchmark's local videos)")
    opts = options or ImportOptions(videos=videos, **option_fields)
    tasks = FORMATS[format](Path(annotations), opts)
    chosen = format if preset == "auto" and format in PRESETS else None if preset == "auto" else preset
    if chosen is not None:
        get_preset(chosen)  # a clear error before touching tasks
        tasks = [apply_preset(t, chosen) for t in tasks]
    if lmms is not None:
        tasks = [t.model_copy(update={"metadata": {**t.metadata, "lmms_eval": lmms.metadata()}}) for t in tasks]
    return tasks


def _relative(video: Path, base: Path) -> str:
    try:
        return os.path.relpath(video, base)
    except ValueError:  # another drive (Windows)
        return str(video)


def write_suite(tasks: list[TaskSpec], path: str | Path, name: str | None = None, defaults: dict[str, Any] | None = None) -> Path:
    """Write tasks as a suite YAML that `mcr.task.load_tasks` reads (videos relative to the file).

    Fields equal to TaskSpec's defaults are left out, so the file stays readable
    and a suite-level ``defaults:`` can still set them.
    """
    path = Path(path)
    if not tasks:
        raise BenchmarkImportError(path, "no tasks to write (every record was skipped?)")
    base = path.resolve().parent
    rows = []
    for task in tasks:
        row = task.model_dump(mode="json", exclude_defaults=True)
        row["video"] = _relative(task.video, base)
        if task.span is not None:
            row["span"] = [task.span.start, task.span.end]
        rows.append(row)
    defaults = dict(defaults or {})
    escaping = [r["video"] for r in rows if not os.path.isabs(r["video"]) and r["video"].startswith("..")]
    if escaping and "media_root" not in defaults:  # the loader confines relative videos to media_root
        defaults["media_root"] = os.path.relpath(os.path.commonpath([os.path.normpath(base / v) for v in escaping]), base)
    suite = {"suite": name or path.stem, "defaults": defaults, "tasks": rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(suite, sort_keys=False, width=120, allow_unicode=True, default_flow_style=None), encoding="utf-8")
    return path
