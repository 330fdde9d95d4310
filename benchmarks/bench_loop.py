"""Loop overhead: what one step of graph + SQLite checkpoint + JSONL trace costs, by episode length.

An episode of N steps with the scripted policy and a trivial tool (``ping``,
no work): every step is a reason node and an act node, each checkpointed to
SQLite (``durability="sync"``) and traced (fsynced JSONL). Episodes of 10, 100
and 1,000 steps run one after another in one process, each in a fresh
workdir, and report (one JSON line each):

* ``ms_per_step``: wall time of the whole episode / steps;
* ``ms_per_step_last10``: the last tenth of the steps alone (growth shows here);
* ``checkpoint_bytes_per_step``: bytes the SQLite file (and its WAL) grew per step;
* ``trace_bytes_per_step``: bytes of the trace per step.

The goal (issue 12): per-step overhead <= 5 ms and flat from step 10 to 1,000.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_loop.py [--steps 10 100 1000]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from mcr.agent import Agent
from mcr.policies.scripted import ScriptedPolicy
from mcr.task import Budget, PlanStep, VerifySettings
from mcr.tools.base import ToolRegistry, tool

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT / "examples" / "media" / "sample.mp4"


@tool
def ping(n: int = 0) -> int:
    """Return n (a tool that does no work: the loop's own cost is what is measured)."""
    return n


def _size(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.glob(pattern) if p.is_file())


def run_episode(steps: int, workdir: Path) -> dict[str, float]:
    plan = [PlanStep(call="ping", args={"n": i}) for i in range(steps - 1)] + [PlanStep(answer="done")]
    agent = Agent(policy=ScriptedPolicy(plan), tools=ToolRegistry([ping]), workdir=workdir,
                  budget=Budget(max_steps=steps + 1, max_tool_calls=steps + 1, wall_time_s=3600),
                  verify=VerifySettings(evidence=False))
    times: list[float] = []
    t0 = time.perf_counter()
    last = t0
    for step in agent.stream(VIDEO, "ping?"):
        if step.node == "reason":  # one reason per step; its act node follows before the next reason
            now = time.perf_counter()
            times.append(now - last)
            last = now
    total = time.perf_counter() - t0
    result = agent.result(agent.last_thread_id)
    agent.close()
    assert result.stop_reason == "answered" and result.steps == steps, result
    tail = times[-max(1, steps // 10):]
    return {
        "steps": steps,
        "ms_per_step": round(1000 * total / steps, 3),
        "ms_per_step_last10": round(1000 * sum(tail) / len(tail), 3),
        "checkpoint_bytes_per_step": round(_size(workdir, "checkpoints.sqlite*") / steps),
        "trace_bytes_per_step": round(_size(workdir / "traces", "*.jsonl") / steps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 100, 1000])
    args = parser.parse_args()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    with tempfile.TemporaryDirectory() as tmp:
        run_episode(3, Path(tmp) / "warm-up")  # imports, first SQLite connection
        for n in args.steps:
            row = run_episode(n, Path(tmp) / f"run{n}")
            print(json.dumps({"figure": "loop_overhead", **row, "machine": machine}), flush=True)


if __name__ == "__main__":
    main()
