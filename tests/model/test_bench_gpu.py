"""The GPU benchmark's code runs (toy shapes, CPU), so it cannot rot while no GPU is lent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_gpu_runs_on_toy_shapes():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu/bench_gpu.py"), "--tiny", "--device", "cpu",
                          "--steps", "2", "--contexts", "64", "--fits", "128"],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    decoded = {r["attention"] for r in rows if r["figure"] == "decode" and "tokens_per_s" in r}
    assert decoded == {"gqa_dynamic", "gqa_static", "m2la", "m2la_graphs"}, rows
    assert {r["attention"] for r in rows if r["figure"] == "fits" and r["result"] == "runs"} == {"gqa_dynamic", "m2la"}
    assert all("error" not in r for r in rows), rows
