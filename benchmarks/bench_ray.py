"""`mcr eval --ray` benchmark: 1 vs 2 local workers, and what video affinity saves over random placement.

One run, the configurations one after another on the same machine, each into
a fresh results folder (so every run starts with cold tool caches and cold
model sessions):

* ``local``: the plain runner in this process (torch's own thread count);
* ``ray-1``: one Ray worker (Ray gives an actor with 1 CPU one torch thread);
* ``ray-2-affinity``: two workers, the tasks of each video on one worker;
* ``ray-2-random``: two workers, tasks dealt at random (seed 0).

Figures per run (one JSON line each): wall seconds of the whole run (Ray's
start included), accuracy, and the tokens the model prefilled vs reused from
its session cache, summed from the records. Affinity's saving is the
prefill of ``random`` minus that of ``affinity``: a question about a video
the worker's session has already seen reuses that prefix.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_ray.py --policy offline --limit 18``
(``--policy scripted`` for the whole suite without a model).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from mcr.eval.ray_runner import run_suite_ray
from mcr.eval.runner import EvalOptions, run_suite

ROOT = Path(__file__).resolve().parents[1]


def figures(name: str, summary, wall: float) -> dict:
    records = summary.records
    prefilled = sum(r.tokens.prefilled_tokens for r in records)
    reused = sum(r.tokens.reused_tokens + r.tokens.prefix_loaded_tokens for r in records)
    return {"figure": "ray_eval", "run": name, "tasks": len(records), "errors": sum(r.status == "error" for r in records),
            "correct": sum(bool(r.correct) for r in records), "wall_s": round(wall, 1),
            "prefilled_tokens": prefilled, "reused_tokens": reused,
            "workers_used": len(set(getattr(summary, "pid_of", {}).values())) or 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=str(ROOT / "examples/suites/truth/suite.yaml"))
    parser.add_argument("--policy", default="offline")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--runs", default="local,ray-1,ray-2-affinity,ray-2-random")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    for name in args.runs.split(","):
        options = EvalOptions(suite=Path(args.suite), out=root / name, policy=args.policy, limit=args.limit,
                              progress=False)
        t0 = time.perf_counter()
        if name == "local":
            summary = run_suite(options, report=False)
        else:
            _, workers, *placement = name.split("-")
            summary = run_suite_ray(options, workers=int(workers), placement=(placement or ["affinity"])[0],
                                    report=False)
        print(json.dumps({**figures(name, summary, time.perf_counter() - t0), "policy": args.policy,
                          "limit": args.limit, "machine": f"{platform.machine()}, {os.cpu_count()} cores"}), flush=True)


if __name__ == "__main__":
    main()
