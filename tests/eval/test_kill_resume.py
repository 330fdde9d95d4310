"""SIGKILL `mcr eval` mid-suite, resume it: the same result set as a run never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mcr.eval.records import read_records

from .conftest import scene_tasks, write_suite


def _eval(suite: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.Popen([sys.executable, "-m", "mcr.cli", "eval", str(suite), "--out", str(out), "-q", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_killed_and_resumed_run_ends_with_the_same_result_set(tmp_path):
    tasks = scene_tasks()
    tasks += [dict(t, name=t["name"] + "-again") for t in tasks]  # 16 tasks: time to kill mid-way
    suite = write_suite(tmp_path / "suite.yaml", tasks)
    killed, clean = tmp_path / "killed", tmp_path / "clean"

    proc = _eval(suite, killed)
    results = killed / "results.jsonl"
    deadline = time.monotonic() + 120
    while _lines(results) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done_before = len(read_records(killed))
    assert 3 <= done_before < len(tasks), f"the kill landed after {done_before} of {len(tasks)} tasks"

    resumed = _eval(suite, killed, "--resume")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()
    uninterrupted = _eval(suite, clean)
    out, err = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, err.decode()

    after, reference = read_records(killed), read_records(clean)
    assert len(after) == len(tasks) == _lines(killed / "results.jsonl")  # one line per task, no duplicates
    assert sorted(r.outcome() for r in after) == sorted(r.outcome() for r in reference)
    assert all(r.correct for r in reference)
    assert (killed / "report.md").is_file()
