"""Print the RESULTS.md tables for `mcr eval` runs: headline figures and accuracy per category, side by side.

    python benchmarks/eval_table.py runs/eval/truth-scripted-single runs/eval/truth-scripted-agent \\
        runs/eval/truth-offline-single runs/eval/truth-offline-agent

Each folder is an `mcr eval --out` folder; the figures come from its
report.json (computed from its results.jsonl), never typed by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _load(folder: Path) -> tuple[str, dict]:
    data = json.loads((folder / "report.json").read_text())
    run = data["run"]
    summary = dict(data["summary"])
    records = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines() if line.strip()]
    correct = [r for r in records if r.get("correct")]
    located = [r for r in correct if (r.get("evidence_iou") or 0.0) >= 0.5]
    summary["correct_located"] = (len(located), len(correct))  # issue 15's goal: IoU >= 0.5 on >= 80% of them
    return f"{run['policy']} / {run['mode']}", summary


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def main(folders: list[str]) -> None:
    runs = [_load(Path(f)) for f in folders]
    head = "| figure | " + " | ".join(name for name, _ in runs) + " |"
    print(head)
    print("|---|" + "---:|" * len(runs))
    rows = [
        ("tasks (errors)", lambda s: f"{s['tasks']} ({s['errors']})"),
        ("accuracy", lambda s: f"{_pct(s['accuracy'])} ({s['correct']}/{s['tasks']})"),
        ("answers accepted", lambda s: _pct(s["accepted_rate"])),
        ("of which low confidence (correct)", lambda s: f"{s.get('low_confidence', {}).get('n', 0)} "
                                                        f"({s.get('low_confidence', {}).get('correct', 0)})"),
        ("correct answers with evidence IoU >= 0.5", lambda s: f"{s['correct_located'][0]}/{s['correct_located'][1]} "
         f"({_pct(s['correct_located'][0] / s['correct_located'][1]) if s['correct_located'][1] else '–'})"),
        ("evidence IoU, mean (n)", lambda s: f"{_num(s['evidence_iou']['mean'])} ({s['evidence_iou']['n']})"),
        ("grounding mIoU / R@0.5", lambda s: f"{_num(s['grounding']['mIoU'])} / {_pct(s['grounding']['R@0.5'])}" if s["grounding"] else "–"),
        ("steps / tool calls / model calls per task", lambda s: f"{_num(s['steps_mean'], 1)} / {_num(s['tool_calls_mean'], 1)} / {_num(s['model_calls_mean'], 1)}"),
        ("verifier rejections", lambda s: str(s["verifier_rejections"])),
        ("steps per task, median", lambda s: _num(s.get("steps_median"), 1)),
        ("seconds per question (mean / median)", lambda s: f"{_num(s['seconds_per_question'], 1)} / {_num(s.get('seconds_median'), 1)}"),
        ("seconds per correct answer", lambda s: _num(s["seconds_per_correct"], 1)),
        ("tokens prompted", lambda s: f"{s['tokens']['prompt_tokens']:,}"),
        ("tokens reused from cache (share of prompt)", lambda s: f"{s['tokens']['reused_tokens'] + s['tokens']['prefix_loaded_tokens']:,} ({_pct(s['tokens_reused_share'])})"),
        ("tokens prefilled / generated", lambda s: f"{s['tokens']['prefilled_tokens']:,} / {s['tokens']['generated_tokens']:,}"),
        ("tokens per correct answer", lambda s: _num(s["tokens_per_correct"], 0)),
        ("frames decoded", lambda s: f"{s['frames_decoded']:,}"),
    ]
    for label, fn in rows:
        print(f"| {label} | " + " | ".join(fn(s) for _, s in runs) + " |")
    print()
    cats = sorted({c for _, s in runs for c in s["by_category"]})
    print("| category (tasks) | " + " | ".join(name for name, _ in runs) + " |")
    print("|---|" + "---:|" * len(runs))
    for c in cats:
        n = next(s["by_category"][c]["n"] for _, s in runs if c in s["by_category"])
        cells = [_pct(s["by_category"][c]["accuracy"]) if c in s["by_category"] else "–" for _, s in runs]
        print(f"| {c} ({n}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
