"""Multiple-choice benchmarks: Video-MME, MLVU, LongVideoBench, LVBench, EgoSchema.

Each reader accepts the layouts these benchmarks are found in on disk: the
records lmms-eval's Hugging Face datasets hold (field names checked against
lmms-eval's `lmms_eval/tasks/<name>/utils.py`: what `doc_to_visual`,
`doc_to_text` and `process_results` read) and, where it differs, the
benchmark's own release files. Options become plain texts (letters stripped),
answers become letters, the benchmark's task type becomes the task's
`category`, and everything else a report may break down by goes to `metadata`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcr.eval.importers.base import (
    BenchmarkImportError,
    ImportOptions,
    as_list,
    letter_of,
    make_task,
    need,
    read_records,
    safe_name,
    seconds,
    split_embedded_options,
    strip_label,
)
from mcr.task import TaskSpec


def _choice_task(path: Path, index: int | str, opts: ImportOptions, *, benchmark: str, qid: Any, video: str,
                 question: str, options: list[str], answer: Any, category: str | None, metadata: dict[str, Any],
                 span: tuple[float, float] | None = None, subdirs: tuple[str, ...] = ()) -> TaskSpec | None:
    if not 2 <= len(options) <= 26:
        raise BenchmarkImportError(path, f"a multiple-choice question needs 2 to 26 options, found {len(options)}", index)
    unanswered = answer is None or (isinstance(answer, str) and not answer.strip()) or answer == -1
    if unanswered and not opts.keep_unanswered:
        opts.skip("answer not in the annotations")
        return None
    raw: dict[str, Any] = {
        "name": safe_name(benchmark, qid),
        "question": str(question).strip(),
        "options": options,
        "answer": None if unanswered else letter_of(path, index, answer, options),
        "category": category or benchmark,
        "metadata": {"benchmark": benchmark, "question_id": str(qid), **{k: v for k, v in metadata.items() if v is not None}},
    }
    if span is not None:
        raw["span"] = list(span)
    return make_task(path, index, opts, raw, video, subdirs)


def _collect(tasks: list[TaskSpec], task: TaskSpec | None, opts: ImportOptions) -> bool:
    """Append; True when the limit is reached."""
    if task is not None:
        tasks.append(task)
    return opts.limit is not None and len(tasks) >= opts.limit


def import_videomme(path: Path, opts: ImportOptions) -> list[TaskSpec]:
    """Video-MME: `videoID`, `question_id`, `question`, `options` ('A. ...'), `answer` (letter), `task_type`,
    `duration` (short/medium/long), `domain`, `sub_category`. Videos: VIDEOS/[data/]<videoID>.mp4."""
    tasks: list[TaskSpec] = []
    for i, r in enumerate(as_list(path, read_records(path))):
        options = [strip_label(o, k) for k, o in enumerate(need(path, r, i, "options"))]
        task = _choice_task(
            path, i, opts, benchmark="videomme", qid=need(path, r, i, "question_id"), video=need(path, r, i, "videoID"),
            question=need(path, r, i, "question"), options=options, answer=r.get("answer"), category=r.get("task_type"),
            metadata={"duration_group": r.get("duration"), "domain": r.get("domain"),
                      "sub_category": r.get("sub_category"), "video_id": r.get("video_id")},
        )
        if _collect(tasks, task, opts):
            break
    return tasks


def _mlvu_file(path: Path, opts: ImportOptions, tasks: list[TaskSpec]) -> bool:
    for i, r in enumerate(as_list(path, read_records(path))):
        if "candidates" in r:  # MLVU's own json/<n>_<task>.json: answer is the option text
            options = [str(c) for c in r["candidates"]]
            question = need(path, r, i, "question")
            category = r.get("question_type") or path.stem.split("_", 1)[-1]
            video = need(path, r, i, "video", "video_name")
        else:  # lmms-eval's MLVU_dev: the options are lines inside `question`, the answer a letter
            question, options = split_embedded_options(need(path, r, i, "question"))
            category, video = r.get("task_type"), need(path, r, i, "video_name", "video")
        qid = r.get("question_id", f"{path.stem}-{i}")
        task = _choice_task(path, i, opts, benchmark="mlvu", qid=qid, video=video, question=question, options=options,
                            answer=r.get("answer"), category=category, metadata={"duration": r.get("duration")},
                            subdirs=(path.stem, f"video/{path.stem}"))
        if _collect(tasks, task, opts):
            return True
    return False


def import_mlvu(path: Path, opts: ImportOptions) -> list[TaskSpec]:
    """MLVU: lmms-eval's `video_name`, `question` (options on '(A) ...' lines), `answer` (letter), `task_type`;
    or MLVU's own `json/` files (`video`, `question`, `candidates`, `answer` text, `question_type`), one file or
    the folder of them (videos then under VIDEOS/<file stem>/)."""
    tasks: list[TaskSpec] = []
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise BenchmarkImportError(path, "no *.json annotation files in this folder")
    for file in files:
        if _mlvu_file(file, opts, tasks):
            break
    return tasks


def import_longvideobench(path: Path, opts: ImportOptions) -> list[TaskSpec]:
    """LongVideoBench: `video_path`, `question`, `candidates` (or `option0`..`option4`, 'N/A' unused),
    `correct_choice` (index), `id`, `question_category`, `duration_group`, `topic_category`, `duration`."""
    tasks: list[TaskSpec] = []
    for i, r in enumerate(as_list(path, read_records(path))):
        if "candidates" in r:
            options = [str(c) for c in r["candidates"]]
        else:
            options = [str(r[f"option{k}"]) for k in range(26) if r.get(f"option{k}") not in (None, "N/A")]
        task = _choice_task(
            path, i, opts, benchmark="longvideobench", qid=need(path, r, i, "id"), video=need(path, r, i, "video_path"),
            question=need(path, r, i, "question"), options=options, answer=r.get("correct_choice"),
            category=r.get("question_category"),
            metadata={"duration_group": r.get("duration_group"), "topic_category": r.get("topic_category"),
                      "duration": r.get("duration"), "video_id": r.get("video_id")},
        )
        if _collect(tasks, task, opts):
            break
    return tasks


def _time_reference(path: Path, index: int | str, value: Any) -> tuple[float, float] | None:
    """LVBench's `time_reference` ('00:15-00:19' or '01:02:03-01:02:09') as a span, or None when absent."""
    if not value:
        return None
    try:
        start, end = (seconds(p) for p in str(value).split("-", 1))
    except ValueError:
        raise BenchmarkImportError(path, f"time_reference {value!r} is not 'MM:SS-MM:SS'", index, "time_reference") from None
    return (min(start, end), max(start, end)) if end != start else None


def import_lvbench(path: Path, opts: ImportOptions) -> list[TaskSpec]:
    """LVBench: flat records (lmms-eval: `video_path`, `question`, `options` or '(A) ...' lines, `answer`
    letter, `question_type`, `time_reference`, `uid`) or LVBench's `video_info.meta.jsonl` (one video per
    line: `key`, `qa` list). `time_reference` becomes the ground-truth span."""
    data = read_records(path)
    rows: list[tuple[int | str, dict[str, Any], str]] = []
    for i, r in enumerate(as_list(path, data)):
        if "qa" in r:
            key = need(path, r, i, "key")
            rows.extend((f"{i}.qa.{j}", qa, f"{key}.mp4") for j, qa in enumerate(r["qa"]))
        else:
            rows.append((i, r, need(path, r, i, "video_path", "key")))
    tasks: list[TaskSpec] = []
    for index, r, video in rows:
        question = need(path, r, index, "question")
        options = [str(o) for o in r.get("options") or []]
        if not options:
            question, options = split_embedded_options(question)
        kinds = r.get("question_type")
        kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
        task = _choice_task(
            path, index, opts, benchmark="lvbench", qid=r.get("uid", index), video=video, question=question,
            options=options, answer=r.get("answer"), category=kinds[0] if kinds else None,
            metadata={"question_types": kinds or None, "time_reference": r.get("time_reference")},
            span=_time_reference(path, index, r.get("time_reference")),
        )
        if _collect(tasks, task, opts):
            break
    return tasks


def import_egoschema(path: Path, opts: ImportOptions) -> list[TaskSpec]:
    """EgoSchema: lmms-eval's `video_idx`, `question`, `option` (five 'A. ...'), `answer` (index); or the
    release's questions.json (`q_uid`, `question`, `option 0`..`option 4`) with answers from
    subset_answers.json (next to it, or `answers=`). Questions without a public answer are skipped."""
    records = as_list(path, read_records(path))
    answers: dict[str, Any] = {}
    answer_file = opts.answers or (path.parent / "subset_answers.json")
    if answer_file.is_file():
        loaded = read_records(answer_file)
        if not isinstance(loaded, dict):
            raise BenchmarkImportError(answer_file, "expected a mapping {q_uid: answer index}")
        answers = loaded
    elif opts.answers is not None:
        raise BenchmarkImportError(answer_file, "answer file not found")
    tasks: list[TaskSpec] = []
    for i, r in enumerate(records):
        if "option" in r:
            options = [strip_label(o, k) for k, o in enumerate(r["option"])]
            qid = need(path, r, i, "video_idx", "q_uid")
        else:
            options = [str(need(path, r, i, f"option {k}")) for k in range(5)]
            qid = need(path, r, i, "q_uid", "video_idx")
        answer = r.get("answer", answers.get(str(qid)))
        task = _choice_task(path, i, opts, benchmark="egoschema", qid=qid, video=str(qid),
                            question=need(path, r, i, "question"), options=options, answer=answer,
                            category=None, metadata={})
        if _collect(tasks, task, opts):
            break
    return tasks
