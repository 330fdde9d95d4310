"""A thread id names one episode: it is never started twice, and never driven by two runs at once.

Before: ``mcr run TASK --thread X`` run twice in one workdir (one after the
other, or two at once) appended a second ``episode_start`` to the finished
trace and died with ``entry id 'e0' out of order; expected 'e10'``; after the
concurrent case even ``mcr resume X`` crashed and the episode was lost. Now a
used id is refused with exit 2 naming ``mcr resume``, a running one is locked
(a second run is refused at once, never interleaved), and the episode stays
whole and resumable in every path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from mcr.agent import Agent
from mcr.cli import main
from mcr.policies.scripted import ScriptedPolicy
from mcr.task import PlanStep, VerifySettings
from mcr.threads import ThreadBusy, ThreadExists, ThreadLock
from mcr.tools.base import ToolRegistry, tool
from mcr.verify import Verifier

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "media" / "sample.mp4"

NAP_PLUGIN = textwrap.dedent('''
    import os, time
    from pathlib import Path
    from mcr.tools.base import tool

    @tool
    def nap(seconds: float = 1.0) -> str:
        """Sleep a while (or until the test creates $MCR_TEST_RELEASE): a slow tool, so that two runs overlap."""
        release = os.environ.get("MCR_TEST_RELEASE")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (release and Path(release).exists()):
            time.sleep(0.05)
        return "rested"
''')


def _task(folder: Path, seconds: float = 0.0) -> Path:
    shutil.copyfile(SAMPLE, folder / "sample.mp4")
    (folder / "nap.py").write_text(NAP_PLUGIN)
    task = folder / "nap.yaml"
    task.write_text(yaml.safe_dump({
        "name": "nap", "video": "sample.mp4", "question": "Did the tool rest?", "plugins": ["nap.py"],
        "tools": ["nap"], "verify": {"evidence": False},
        "policy": {"name": "scripted", "plan": [{"call": "nap", "args": {"seconds": seconds}},
                                                {"answer": "it rested", "evidence": ["nap"]}]}}))
    return task


def _events(trace: Path) -> list[dict]:
    return [json.loads(line) for line in trace.read_text().splitlines()]


def _assert_one_whole_episode(trace: Path) -> None:
    events = _events(trace)
    assert [e["type"] for e in events].count("episode_start") == 1
    ids = [e["entry"]["id"] for e in events if e["type"] == "entry"]
    assert ids == [f"e{i}" for i in range(len(ids))], ids  # in order, none twice


def test_a_used_thread_id_is_refused_with_exit_2(tmp_path, capsys, ledger):
    task, work = _task(tmp_path), tmp_path / "work"
    assert main(["run", str(task), "--workdir", str(work), "--thread", "X", "-q"]) == 0
    trace = work / "traces" / "X.jsonl"
    before = trace.read_bytes()
    capsys.readouterr()
    assert main(["run", str(task), "--workdir", str(work), "--thread", "X", "-q"]) == 2
    err = capsys.readouterr().err
    assert "mcr resume X" in err and "--thread" in err and str(work) in err
    assert trace.read_bytes() == before  # nothing appended to the finished episode
    _assert_one_whole_episode(trace)
    assert main(["resume", "X", "--workdir", str(work), "-q"]) == 0  # and it is still whole
    ledger.case("cli", "`mcr run --thread X` twice in one workdir", outcome="second run refused, exit 2", message=err)


def test_the_python_api_refuses_a_used_thread_id_and_a_used_trace(tmp_path):
    def agent() -> Agent:
        return Agent(policy=ScriptedPolicy([PlanStep(answer="a lighthouse")]), tools=ToolRegistry(),
                     workdir=tmp_path / "w", verifier=Verifier())

    with agent() as a:
        a.run(SAMPLE, "What stands on the cliff?", thread_id="t1", trace_path=tmp_path / "t.jsonl")
        with pytest.raises(ThreadExists, match="mcr resume t1"):
            a.run(SAMPLE, "What stands on the cliff?", thread_id="t1")
        with pytest.raises(ThreadExists, match="already holds an episode"):
            a.run(SAMPLE, "What stands on the cliff?", thread_id="t2", trace_path=tmp_path / "t.jsonl")
        assert a.result("t1").accepted
    _assert_one_whole_episode(tmp_path / "t.jsonl")


def test_a_running_thread_is_locked_against_another_agent(tmp_path):
    with ThreadLock(tmp_path, "busy"):
        with pytest.raises(ThreadBusy, match="running now"):
            ThreadLock(tmp_path, "busy").acquire()
        ThreadLock(tmp_path, "other").acquire().release()  # only that id is locked
        with Agent(policy=ScriptedPolicy([PlanStep(answer="x")]), tools=ToolRegistry(), workdir=tmp_path,
                   verifier=Verifier()) as agent:
            with pytest.raises(ThreadBusy):
                agent.run(SAMPLE, "q?", thread_id="busy")
            with pytest.raises(ThreadBusy):
                agent.resume("busy")
    ThreadLock(tmp_path, "busy").acquire().release()  # released on exit


def _mcr(*args: str, release: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **({"MCR_TEST_RELEASE": str(release)} if release else {})}
    return subprocess.Popen([sys.executable, "-m", "mcr.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def test_two_runs_at_once_on_one_thread_never_interleave_and_the_episode_resumes(tmp_path, ledger):
    task, work, release = _task(tmp_path, seconds=180.0), tmp_path / "work", tmp_path / "release"
    first = _mcr("run", str(task), "--workdir", str(work), "--thread", "X", release=release)  # naps until released
    trace = work / "traces" / "X.jsonl"
    deadline = time.monotonic() + 120
    while not (trace.exists() and '"tool_call"' in trace.read_text()):  # the first run is inside its slow tool
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the first run did not start its tool"
        time.sleep(0.1)
    second = _mcr("run", str(task), "--workdir", str(work), "--thread", "X")
    out2, err2 = second.communicate(timeout=120)
    meanwhile = _mcr("resume", "X", "--workdir", str(work))  # a resume while it runs: locked out
    out3, err3 = meanwhile.communicate(timeout=120)
    release.touch()
    out1, err1 = first.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert second.returncode == 2, (out2, err2)
    assert "mcr resume X" in err2 and "Traceback" not in err2
    assert meanwhile.returncode == 2, (out3, err3)
    assert "running now" in err3 and "Traceback" not in err3
    _assert_one_whole_episode(trace)
    # The lost-episode case: after the concurrent runs, resume works and the answer is the first run's.
    resumed = subprocess.run([sys.executable, "-m", "mcr.cli", "resume", "X", "--workdir", str(work)],
                             capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "Answer: it rested" in resumed.stdout
    _assert_one_whole_episode(trace)
    ledger.case("cli", "two `mcr run --thread X` at once, then `mcr resume X`",
                outcome="second refused (exit 2) while the first runs; resume exit 0", message=err2)
    ledger.case("cli", "`mcr resume X` while X runs", outcome="refused at once (thread lock), exit 2", message=err3)
