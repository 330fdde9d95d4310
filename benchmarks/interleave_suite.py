"""Write a suite's tasks in an interleaved order, so that any first N of them are a stratified sample.

Why: on a shared 2-core machine a full `mcr eval` of a 60-question suite can
take longer than the time there is. Run in file order, a run cut short has
measured only the first videos. Interleaved, round-robin over a key (the
category by default, or ``metadata.kind``), the tasks done when time runs out
cover every category about equally, and ``mcr eval --resume`` on the same
``--out`` continues where it stopped. Two suites interleaved with the same
key and ``--pair`` also keep paired tasks (a reworded question and its truth
question, ``metadata.source_task``) at the same positions.

    python benchmarks/interleave_suite.py /work/data/natural/suite.yaml runs/natural-interleaved.yaml
    python benchmarks/interleave_suite.py examples/suites/truth/suite.yaml runs/truth-i.yaml --key kind
    python benchmarks/interleave_suite.py runs/reworded/suite.yaml runs/reworded-i.yaml --key kind --pair

Nothing else changes: the same tasks, answers, spans and defaults; video paths
are written absolute (the new file lives elsewhere). Deterministic.
"""

from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import yaml


def _key(task: dict[str, Any], key: str) -> str:
    if key == "category":
        return str(task.get("category") or "")
    return str((task.get("metadata") or {}).get(key) or "")


def interleave(tasks: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Round-robin over the groups of `key` (in order of first appearance), each group in file order."""
    groups: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for task in tasks:
        groups.setdefault(_key(task, key), []).append(task)
    out: list[dict[str, Any]] = []
    queues = [list(g) for g in groups.values()]
    while any(queues):
        for queue in queues:
            if queue:
                out.append(queue.pop(0))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", type=Path, help="a suite YAML (suite:, defaults:, tasks:)")
    parser.add_argument("out", type=Path, help="the interleaved suite YAML to write")
    parser.add_argument("--key", default="category", help="category (default) or a metadata key, e.g. kind")
    parser.add_argument("--pair", action="store_true",
                        help="order by metadata.source_task's name instead of the task's own (reworded suites)")
    args = parser.parse_args(argv)
    if not args.suite.is_file():
        parser.error(f"{args.suite} not found; name a suite YAML file")
    data = yaml.safe_load(args.suite.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
        parser.error(f"{args.suite} is not a suite (no tasks: list)")
    base = args.suite.resolve().parent
    tasks = []
    for task in data["tasks"]:
        task = dict(task)
        video = Path(task["video"])
        task["video"] = str(video if video.is_absolute() else (base / video).resolve())
        tasks.append(task)
    if args.pair:
        tasks.sort(key=lambda t: (t.get("metadata") or {}).get("source_task", t["name"]))
    ordered = interleave(tasks, args.key)
    defaults = {k: v for k, v in (data.get("defaults") or {}).items() if k != "media_root"}
    suite = {"suite": data.get("suite", args.suite.stem), "defaults": defaults, "tasks": ordered}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    header = f"# {args.suite} interleaved by {args.key} (benchmarks/interleave_suite.py): same tasks, another order.\n"
    args.out.write_text(header + yaml.safe_dump(suite, sort_keys=False, width=120, allow_unicode=True,
                                                default_flow_style=None))
    print(f"wrote {args.out} ({len(ordered)} tasks, {len({_key(t, args.key) for t in ordered})} groups)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
