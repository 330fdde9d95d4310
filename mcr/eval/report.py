"""report.md + report.json next to a run's results, and `mcr eval --compare A B`.

The JSON holds every aggregate (`mcr.eval.metrics.summarize`) so other tools
and `--compare` never re-derive them; the Markdown is for people: the
headline figures, the per-category table, accuracy at a budget, one row per
task with its trace, and the plots. A comparison joins two runs on task id
(e.g. single pass against agent on the same suite) and counts the tasks each
got right that the other did not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mcr.eval.metrics import summarize
from mcr.eval.plots import write_compare_plot, write_plots
from mcr.eval.records import TaskRecord, read_records


class CompareError(ValueError):
    """A run folder to compare has no results (the message says which)."""


def _f(value: Any, digits: int = 2, pct: bool = False) -> str:
    if value is None:
        return "–"
    if pct:
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def headline(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) rows shared by the report and the comparison."""
    t = summary["tokens"]
    g = summary.get("grounding")
    ev = summary["evidence_iou"]
    rows = [
        ("tasks (errors)", f"{summary['tasks']} ({summary['errors']})"),
        ("accuracy", f"{_f(summary['accuracy'], pct=True)} ({summary['correct']}/{summary['tasks']})"),
        ("answers accepted", _f(summary["accepted_rate"], pct=True)),
        ("of which low confidence (correct)",
         f"{summary.get('low_confidence', {}).get('n', 0)} ({summary.get('low_confidence', {}).get('correct', 0)})"),
        ("evidence IoU (mean, n)", f"{_f(ev['mean'])} (n={ev['n']})"),
    ]
    if g:
        rows.append(("grounding mIoU / R@0.3 / R@0.5 / R@0.7",
                     f"{_f(g['mIoU'])} / {_f(g['R@0.3'], pct=True)} / {_f(g['R@0.5'], pct=True)} / {_f(g['R@0.7'], pct=True)}"))
    rows += [
        ("steps / tool calls / model calls per task",
         f"{_f(summary['steps_mean'])} / {_f(summary['tool_calls_mean'])} / {_f(summary['model_calls_mean'])}"),
        ("steps per task, median", _f(summary.get("steps_median"))),
        ("verifier rejections", _f(summary["verifier_rejections"])),
        ("frames decoded", _f(summary["frames_decoded"])),
        ("tokens prompted / reused / prefilled / generated",
         f"{t['prompt_tokens']:,} / {t['reused_tokens'] + t['prefix_loaded_tokens']:,} / {t['prefilled_tokens']:,} / {t['generated_tokens']:,}"),
        ("prompt tokens served from cache", _f(summary["tokens_reused_share"], pct=True)),
        ("seconds per question (mean / median)",
         f"{_f(summary['seconds_per_question'])} / {_f(summary.get('seconds_median'))}"),
        ("seconds per correct answer", _f(summary["seconds_per_correct"])),
        ("tokens (prefilled + generated) per correct answer", _f(summary["tokens_per_correct"], 0)),
        ("stop reasons", ", ".join(f"{k} {v}" for k, v in sorted(summary["stop_reasons"].items()))),
    ]
    return rows


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    clean = [[str(c).replace("|", "\\|").replace("\n", " ") for c in row] for row in rows]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in clean]


def render_markdown(summary: dict[str, Any], records: list[TaskRecord], manifest: dict[str, Any], plots: dict[str, str]) -> str:
    run = manifest.get("run", {})
    lines = [f"# Evaluation: {run.get('suite', '?')} — mode {run.get('mode', '?')}, policy {run.get('policy', '?')}", ""]
    lines += _table(["figure", "value"], [list(r) for r in headline(summary)]) + [""]
    lines += ["## Per category", ""]
    lines += _table(["category", "tasks", "correct", "accuracy"],
                    [[k, str(v["n"]), str(v["correct"]), _f(v["accuracy"], pct=True)] for k, v in summary["by_category"].items()])
    lines += ["", "## Accuracy at a budget", "", "Had every episode been cut after k steps (the accepted answer's step, from its trace):", ""]
    lines += _table(["k steps", "accuracy"], [[str(k), _f(a, pct=True)] for k, a in summary["accuracy_at_steps"]])
    lines += ["", "## Plots", ""] + [f"![{name}]({file})" for name, file in plots.items() if name != "overview"]
    lines += ["", "## Tasks", ""]
    rows = []
    for r in records:
        got = r.predicted if r.predicted is not None else (r.answer or "")[:60]
        verdict = "error" if r.status == "error" else ("✔" if r.correct else "✘")
        rows.append([r.task_id, r.category or "", r.truth if r.truth is not None else str(r.truth_span or ""),
                     f"{got} ({r.extracted_by})" if r.extracted_by else got, verdict, r.stop_reason or r.error_type or "",
                     str(r.steps), _f(r.evidence_iou), _f(r.wall_s, 1), r.trace_path or ""])
    lines += _table(["task", "category", "truth", "answer (rule)", "", "stop", "steps", "ev. IoU", "s", "trace"], rows)
    errors = [r for r in records if r.status == "error"]
    if errors:
        lines += ["", "## Errors", ""] + [f"- `{r.task_id}`: {r.error}" for r in errors]
    lines += ["", "## Manifest", "", f"Suite sha256 `{run.get('suite_sha256', '?')}`; packages, media hashes and "
              "sampling settings in `manifest.json`."]
    for key, model in (manifest.get("models") or {}).items():
        lines.append(f"- {model.get('policy')}: {model.get('model', '')} (weights sha256 "
                     f"`{str(model.get('model_sha256'))[:16]}`, processor `{str(model.get('processor_sha256'))[:16]}`, "
                     f"sampling {json.dumps(model.get('sampling', {}))})")
    return "\n".join(lines) + "\n"


def write_report(out: Path, records: list[TaskRecord], manifest: dict[str, Any]) -> dict[str, Any]:
    """Write report.json, report.md and the plots into ``out``; returns the summary."""
    out = Path(out)
    summary = summarize(records)
    plots = write_plots(out, records, summary)
    data = {"run": manifest.get("run", {}), "summary": summary, "plots": plots}
    (out / "report.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(summary, records, manifest, plots), encoding="utf-8")
    return summary


def _load_run(folder: Path) -> tuple[list[TaskRecord], dict[str, Any]]:
    records = read_records(folder)
    if not records:
        raise CompareError(f"{folder} holds no results.jsonl with records; give a folder written by `mcr eval --out`")
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    return records, manifest


def compare(a: Path, b: Path, out: Path | None = None) -> tuple[str, dict[str, Any]]:
    """Two runs side by side: headline figures, per category, and per-task agreement.

    Returns the Markdown and the JSON data; with ``out``, also writes
    compare.md, compare.json and compare.png there.

    Raises:
        CompareError: a folder without results.
    """
    (ra, ma), (rb, mb) = _load_run(Path(a)), _load_run(Path(b))
    sa, sb = summarize(ra), summarize(rb)
    name_a = f"A: {ma.get('run', {}).get('mode', '?')}/{ma.get('run', {}).get('policy', '?')}"
    name_b = f"B: {mb.get('run', {}).get('mode', '?')}/{mb.get('run', {}).get('policy', '?')}"
    by_a, by_b = {r.task_id: r for r in ra}, {r.task_id: r for r in rb}
    common = [t for t in by_a if t in by_b]
    agreement = {
        "both_correct": sum(bool(by_a[t].correct and by_b[t].correct) for t in common),
        "only_a": sum(bool(by_a[t].correct and not by_b[t].correct) for t in common),
        "only_b": sum(bool(by_b[t].correct and not by_a[t].correct) for t in common),
        "neither": sum(bool(not by_a[t].correct and not by_b[t].correct) for t in common),
        "common_tasks": len(common),
    }
    lines = [f"# Comparison", "", f"- A = `{a}` ({name_a[3:]})", f"- B = `{b}` ({name_b[3:]})", ""]
    ha, hb = headline(sa), dict(headline(sb))
    lines += _table(["figure", "A", "B"], [[k, v, hb.get(k, "–")] for k, v in ha])
    cats = sorted(set(sa["by_category"]) | set(sb["by_category"]))
    lines += ["", "## Per category", ""]
    lines += _table(["category", "A", "B"], [[c, _cat(sa, c), _cat(sb, c)] for c in cats])
    lines += ["", "## Per task", "", f"Of {len(common)} tasks in both: {agreement['both_correct']} right in both, "
              f"{agreement['only_a']} only in A, {agreement['only_b']} only in B, {agreement['neither']} in neither.", ""]
    lines += _table(["task", "A", "B"], [[t, _mark(by_a[t]), _mark(by_b[t])] for t in common])
    text = "\n".join(lines) + "\n"
    data = {"a": str(a), "b": str(b), "summary_a": sa, "summary_b": sb, "agreement": agreement}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(text, encoding="utf-8")
        (out / "compare.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
        write_compare_plot(out / "compare.png", sa, sb, (name_a, name_b))
    return text, data


def _cat(summary: dict[str, Any], cat: str) -> str:
    c = summary["by_category"].get(cat)
    return f"{c['accuracy']:.0%} ({c['correct']}/{c['n']})" if c else "–"


def _mark(r: TaskRecord) -> str:
    if r.status == "error":
        return f"error ({r.error_type})"
    return f"{'✔' if r.correct else '✘'} {r.predicted if r.predicted is not None else (r.answer or '')[:40]}"
