"""Tables for `mcr eval` runs read straight from their results.jsonl, so a run cut short is reported too.

`benchmarks/eval_table.py` reads report.json, which a run writes only when it
finishes; on a shared 2-core machine some runs are stopped at a deadline. This
prints, per run: tasks done, accuracy overall and per category, the share of
correct answers whose evidence overlaps the truth span with IoU >= 0.5, median
steps and seconds per question, stop reasons; and, with ``--common``, the same
figures restricted to the tasks every run finished (a paired before/after).

    python benchmarks/results_table.py runs/eval/natural-before-i runs/eval/natural-after-i --common
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter, defaultdict
from pathlib import Path


def load(folder: Path) -> list[dict]:
    """The task records of one run (the last record of a task wins, as with --resume)."""
    records: dict[str, dict] = {}
    for line in (folder / "results.jsonl").read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records[record["name"]] = record
    return list(records.values())


def figures(records: list[dict]) -> dict:
    done = [r for r in records if r.get("status") == "done" or r.get("correct") is not None]
    correct = [r for r in done if r.get("correct")]
    located = [r for r in correct if (r.get("evidence_iou") or 0.0) >= 0.5]
    per_cat: dict[str, list[bool]] = defaultdict(list)
    for r in done:
        per_cat[r.get("category") or "-"].append(bool(r.get("correct")))
    return {
        "tasks": len(done),
        "accuracy": len(correct) / len(done) if done else None,
        "located": (len(located), len(correct)),
        "median_steps": statistics.median([r["steps"] for r in done]) if done else None,
        "median_s": statistics.median([r["elapsed_s"] for r in done]) if done else None,
        "median_wall_s": statistics.median([r["wall_s"] for r in done]) if done else None,
        "stops": Counter(r.get("stop_reason") for r in done),
        "low_confidence": sum(bool(r.get("low_confidence")) for r in correct),
        "per_category": {k: (sum(v), len(v)) for k, v in sorted(per_cat.items())},
    }


def _pct(n: int, d: int) -> str:
    return "–" if not d else f"{n}/{d} ({n / d:.0%})"


def table(names: list[str], runs: list[dict]) -> str:
    rows = ["| figure | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]

    def row(label: str, cells: list[str]) -> None:
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    row("tasks done", [str(f["tasks"]) for f in runs])
    row("accuracy", [_pct(round((f["accuracy"] or 0) * f["tasks"]), f["tasks"]) for f in runs])
    row("correct with evidence IoU >= 0.5", [_pct(*f["located"]) for f in runs])
    row("correct but low-confidence (last-step guess)", [str(f["low_confidence"]) for f in runs])
    row("median steps", ["–" if f["median_steps"] is None else f"{f['median_steps']:g}" for f in runs])
    row("median seconds (active)", ["–" if f["median_s"] is None else f"{f['median_s']:.0f}" for f in runs])
    row("median seconds (wall, incl. load)", ["–" if f["median_wall_s"] is None else f"{f['median_wall_s']:.0f}"
                                              for f in runs])
    row("stop reasons", [", ".join(f"{k} {v}" for k, v in f["stops"].most_common()) for f in runs])
    cats = sorted({c for f in runs for c in f["per_category"]})
    for c in cats:
        row(f"category {c}", [_pct(*f["per_category"].get(c, (0, 0))) for f in runs])
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="mcr eval --out folders")
    parser.add_argument("--common", action="store_true", help="also the figures on the tasks every run finished")
    parser.add_argument("--by-source", action="store_true",
                        help="with --common: match tasks by metadata.source_task (a reworded suite and its truth)")
    args = parser.parse_args(argv)
    loaded = [load(f) for f in args.folders]
    names = [f.name for f in args.folders]
    print(table(names, [figures(r) for r in loaded]))
    if args.common:
        def key(r: dict) -> str:
            return (r.get("metadata") or {}).get("source_task", r["name"]) if args.by_source else r["name"]

        shared = set.intersection(*({key(r) for r in recs} for recs in loaded))
        print(f"\nOn the {len(shared)} tasks every run finished:\n")
        print(table(names, [figures([r for r in recs if key(r) in shared]) for recs in loaded]))


if __name__ == "__main__":
    main()
