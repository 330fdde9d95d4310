"""SIGKILL at every step of a 10-step episode, and of an `mcr eval` run at every task boundary.

Each kill point runs the real CLI in a child process that is SIGKILLed at a
chosen, deterministic moment; then ``mcr resume`` (or ``mcr eval --resume``)
finishes the work, and the outcome is compared with a run never interrupted:
the same answer and a trace equal event for event (``traces.diff``, which sets
aside timings, ids and resume markers), or the same eval result set.

Children are forked from the test process (the imports are already paid:
~0.5 s a kill point instead of ~3 s), and what kills them is real: a
``SIGKILL`` the child sends itself at the moment named below. Kill points:

* ``in tool, step k`` (k = 1..9): the step's tool call is running (a plugin
  tool kills its own process, as in tests/test_resume.py);
* ``after step k checkpointed`` (k = 1..10): the reason node's checkpoint is
  committed but its trace lines are not yet written (the worst moment for
  the trace: the resume must write back what only the checkpoint holds);
* ``after the verdict checkpointed``, and ``before episode_end``.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Callable

import pytest

from mcr.cli import main
from mcr.eval.records import read_records
from mcr.traces.diff import first_divergence
from mcr.traces.recorder import read_trace

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="kill points fork a child (POSIX only)")

STEPS = 10
PLUGIN = '''\
import os, signal
from pathlib import Path
from mcr.tools.base import ToolContext, tool

@tool
def tick(n: int, ctx: ToolContext) -> str:
    """Count a step; SIGKILL this process at step MCR_KILL_IN_TOOL (once: a marker file remembers)."""
    marker = Path(os.environ.get("MCR_KILL_MARKER", "/nonexistent/marker"))
    if os.environ.get("MCR_KILL_IN_TOOL") == str(n) and not marker.exists():
        marker.write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)
    return f"tick {n} of {ctx.video.duration:.1f} s"
'''


def _task_yaml() -> str:
    calls = "\n".join(f"    - call: tick\n      args: {{n: {k}}}" for k in range(1, STEPS))
    return (f"name: ten\nvideo: clip.mp4\nquestion: How far did it count?\nplugins: [tick.py]\ntools: [tick]\n"
            f"verify: {{evidence: false}}\nbudget: {{max_steps: {STEPS}, max_tool_calls: {STEPS}}}\n"
            f"policy:\n  name: scripted\n  plan:\n{calls}\n"
            f"    - answer: \"{{{{ results.tick.result }}}}\"\n      evidence: [tick]\n")


def killed(code: int) -> bool:
    """The forked child (``run_forked`` in conftest.py) was ended by SIGKILL."""
    return code == -signal.SIGKILL


def _setup(folder: Path, clip: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "clip.mp4").write_bytes(clip.read_bytes())
    (folder / "tick.py").write_text(PLUGIN)
    task = folder / "task.yaml"
    task.write_text(_task_yaml())
    return task


def kill_after_node(node: str, step: int | None = None) -> None:
    """In the child: SIGKILL when the agent is about to trace `node` (its checkpoint is committed)."""
    from mcr.agent import Agent

    original = Agent._record

    def record(self, recorder, name, update):
        if name == node and (step is None or update.get("step") == step):
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, recorder, name, update)

    Agent._record = record


def kill_before_end() -> None:
    """In the child: SIGKILL when the episode_end event is about to be written."""
    from mcr.traces import recorder as rec

    original = rec.TraceRecorder.write

    def write(self, event):
        if event.type == "episode_end":
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, event)

    rec.TraceRecorder.write = write


def _points() -> list[tuple[str, Callable[[Path], None]]]:
    points: list[tuple[str, Callable[[Path], None]]] = []
    for k in range(1, STEPS):
        def env(folder: Path, k: int = k) -> None:
            os.environ["MCR_KILL_IN_TOOL"] = str(k)
            os.environ["MCR_KILL_MARKER"] = str(folder / "marker")
        points.append((f"in tool, step {k}", env))
    for k in range(1, STEPS + 1):
        points.append((f"after step {k} checkpointed", lambda folder, k=k: kill_after_node("reason", k)))
    points.append(("after the verdict checkpointed", lambda folder: kill_after_node("verify")))
    points.append(("before episode_end", lambda folder: kill_before_end()))
    return points


POINTS = _points()


@pytest.mark.parametrize("name", [n for n, _ in POINTS])
def test_sigkill_at_every_step_then_resume_equals_an_uninterrupted_run(name, tmp_path, tiny_video, reference, ledger,
                                                                       run_forked):
    _kill_and_resume(name, dict(POINTS)[name], tmp_path / "k", tiny_video, reference, ledger, run_forked)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_video):
    folder = tmp_path_factory.mktemp("kill") / "reference"
    task = _setup(folder, tiny_video)
    assert main(["run", str(task), "--workdir", str(folder / "w"), "--thread", "t", "-q"]) == 0
    events = read_trace(folder / "w" / "traces" / "t.jsonl")
    assert events[-1]["type"] == "episode_end" and events[-1]["steps"] == STEPS
    return events


def _kill_and_resume(name: str, arm: Callable[[Path], None], folder: Path, clip: Path, reference, ledger,
                     run_forked) -> None:
    task = _setup(folder, clip)
    work = folder / "w"

    def child() -> int:
        arm(folder)
        return main(["run", str(task), "--workdir", str(work), "--thread", "t", "-q"])

    status = run_forked(child, folder / "child.log", timeout_s=120).wait()
    assert killed(status), f"{name}: the child was not killed (status {status}): {(folder / 'child.log').read_text()[-2000:]}"
    trace = work / "traces" / "t.jsonl"
    assert read_trace(trace, quiet=True)[-1]["type"] != "episode_end"  # it died before the end

    assert main(["resume", "t", "--workdir", str(work), "-q"]) == 0
    events = read_trace(trace)
    divergence = first_divergence(reference, events)
    assert divergence is None, f"{name}: {divergence.describe()}"
    assert events[-1]["answer"] == reference[-1]["answer"] and events[-1]["accepted"]
    assert [e["type"] for e in events].count("episode_resumed") == 1
    ledger.case("kill", f"episode, SIGKILL {name}", outcome="resumed: same answer, trace equal to the uninterrupted run's",
                message=reference[-1]["answer"])


# --------------------------------------------------------------------------- #
# mcr eval, killed at every task boundary
# --------------------------------------------------------------------------- #

SUITE_TASKS = 4


def _suite(folder: Path, clip: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "clip.mp4").write_bytes(clip.read_bytes())
    tasks = []
    for i in range(SUITE_TASKS):
        tasks.append(
            f"  - name: task-{i}\n    question: How long is the clip ({i})?\n    answer: \"2.0\"\n"
            f"    policy:\n      name: scripted\n      plan:\n        - call: video_info\n"
            f"        - answer: \"{{{{ '%.1f' | format(results.video_info.duration) }}}}\"\n"
            f"          evidence: [video_info]\n")
    suite = folder / "suite.yaml"
    suite.write_text("suite: boundaries\ndefaults:\n  video: clip.mp4\n  tools: [video_info]\n"
                     "  verify: {evidence: false}\n  scorer: exact\ntasks:\n" + "".join(tasks))
    return suite


def kill_at_boundary(n: int) -> None:
    """In the child: SIGKILL after n tasks' records were written, before task n+1 starts (n = 0..3),
    or, for n = SUITE_TASKS, after the last record, before the report."""
    from mcr.eval import runner

    if n < SUITE_TASKS:
        original, calls = runner.run_task, {"n": 0}

        def run_task(*args, **kwargs):
            if calls["n"] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            calls["n"] += 1
            return original(*args, **kwargs)

        runner.run_task = run_task
    else:
        original_append, appended = runner.append_record, {"n": 0}

        def append_record(*args, **kwargs):
            original_append(*args, **kwargs)
            appended["n"] += 1
            if appended["n"] == n:
                os.kill(os.getpid(), signal.SIGKILL)

        runner.append_record = append_record


@pytest.fixture(scope="module")
def eval_reference(tmp_path_factory, tiny_video):
    folder = tmp_path_factory.mktemp("eval-ref")
    suite = _suite(folder, tiny_video)
    assert main(["eval", str(suite), "--out", str(folder / "out"), "-q"]) == 0
    records = read_records(folder / "out")
    assert len(records) == SUITE_TASKS and all(r.correct for r in records)
    return sorted(r.outcome() for r in records)


@pytest.mark.parametrize("boundary", range(SUITE_TASKS + 1))
def test_eval_killed_at_every_task_boundary_resumes_to_the_same_results(boundary, tmp_path, tiny_video,
                                                                        eval_reference, ledger, run_forked):
    suite = _suite(tmp_path, tiny_video)
    out = tmp_path / "out"

    def child() -> int:
        kill_at_boundary(boundary)
        return main(["eval", str(suite), "--out", str(out), "-q"])

    status = run_forked(child, tmp_path / "child.log", timeout_s=120).wait()
    assert killed(status), f"boundary {boundary}: not killed (status {status}): {(tmp_path / 'child.log').read_text()[-2000:]}"
    done = len(read_records(out)) if (out / "results.jsonl").exists() else 0
    assert done == min(boundary, SUITE_TASKS)
    assert not (out / "report.md").exists()

    assert main(["eval", str(suite), "--out", str(out), "--resume", "-q"]) == 0
    after = read_records(out)
    lines = (out / "results.jsonl").read_bytes().count(b"\n")
    assert len(after) == SUITE_TASKS == lines  # one line per task, none twice
    assert sorted(r.outcome() for r in after) == eval_reference
    assert (out / "report.md").is_file()
    where = "before the report" if boundary == SUITE_TASKS else f"before task {boundary + 1} of {SUITE_TASKS}"
    ledger.case("kill", f"mcr eval, SIGKILL {where}", outcome="--resume: the same result set as an uninterrupted run",
                message=f"{done} records before the kill, {len(after)} after")
