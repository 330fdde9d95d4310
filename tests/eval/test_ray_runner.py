"""`mcr eval --ray`: a local Ray cluster with 2 workers — affinity, results identical to a local run,
resume on a restarted cluster, a worker death retried once then recorded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from mcr.eval.ray_runner import plan_placement, run_suite_ray  # noqa: E402
from mcr.eval.records import read_records  # noqa: E402
from mcr.eval.runner import EvalOptions, run_suite  # noqa: E402
from mcr.task import load_tasks  # noqa: E402

COMPARED = ("task_id", "index", "answer", "option", "accepted", "stop_reason", "score", "correct", "steps", "tool_calls",
            "status")

PLAN = """
    policy:
      name: scripted
      plan:
        - call: video_info
        - answer: "{{ results.video_info.duration | round(1) }} seconds, {{ results.video_info.width }} wide"
          evidence: [video_info]
"""


def _suite(folder, videos, extra_tasks: str = "", plugins: str = "") -> str:
    tasks = []
    for q in range(2):  # interleaved videos, so the placement has something to group
        for v, video in enumerate(videos):
            tasks.append(f"- {{name: v{v}-q{q}, video: {video}, question: 'How long is the video? ({q})', "
                         f"answer: 'x'}}")
    text = "suite: tiny\ndefaults:\n" + textwrap.indent(textwrap.dedent(PLAN).strip("\n"), "  ") + "\n"
    text += f"  tools: [video_info{plugins}]\n  budget: {{max_steps: 4}}\n"
    text += "tasks:\n" + "\n".join(tasks) + "\n" + extra_tasks
    path = folder / "suite.yaml"
    path.write_text(text)
    return path


NODE_IP = "127.0.0.1"  # the cluster never leaves this machine


class _Cluster:
    """A 2-CPU Ray cluster that `ray start --head --block` runs in its own process; this process only connects.

    Why not ``ray.init()`` here: it forks Ray's GCS and raylet with a Python
    ``preexec_fn`` from this process, which by then has threads that earlier
    tests left (tool workers, tqdm monitors, native pools). A child forked from a
    threaded process can block on a lock another thread held at the fork; CI hit
    exactly that, a ``ray.init`` hung for 600 s. ``ray start`` forks from a
    fresh single-threaded process, and stopping it (SIGTERM) takes down only
    this cluster's processes, unlike ``ray stop``.
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.temp_dir = tempfile.mkdtemp(prefix="mcr-ray-")  # short: Ray's unix sockets live under it
        self.log = Path(self.temp_dir) / "ray-start.log"

    def start(self) -> None:
        port = _free_port()
        ray_cli = Path(sys.executable).with_name("ray")
        self.process = subprocess.Popen(
            [str(ray_cli), "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
             f"--node-ip-address={NODE_IP}", "--disable-usage-stats", f"--temp-dir={self.temp_dir}"],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:  # the GCS accepts a driver once the head node is up
            if self.process.poll() is not None:
                pytest.fail(f"`ray start --head` exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                ray.init(address=f"{NODE_IP}:{port}", log_to_driver=False, configure_logging=False)
                return
            except (ConnectionError, RuntimeError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(1)

    def stop(self) -> None:
        ray.shutdown()
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its whole session: the head and what it started
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            self.process = None

    def restart(self) -> None:
        """A new cluster: nothing of the old one's workers or object store survives."""
        self.stop()
        self.start()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    # Ray's token auth guards a cluster others can reach; this one listens on loopback for this test only, and a
    # driver that names an address would need RAY_AUTH_MODE=token read before Ray's config is first loaded.
    auth_mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    running = _Cluster()
    try:
        running.start()
        yield running
    finally:
        running.stop()
        shutil.rmtree(running.temp_dir, ignore_errors=True)
        if auth_mode is None:
            os.environ.pop("RAY_AUTH_MODE")
        else:
            os.environ["RAY_AUTH_MODE"] = auth_mode


@pytest.fixture
def videos(tmp_path, sample_with_subtitles, repo_root):
    return [str(sample_with_subtitles), str(repo_root / "tests" / "data" / "bikes.mp4")]


def _compared(records):
    return [{k: getattr(r, k) for k in COMPARED} for r in records]


def test_affinity_deals_whole_videos_to_the_least_loaded_worker(tmp_path, videos):
    tasks = load_tasks(_suite(tmp_path, videos))
    assert [t.video.name for t in tasks] == ["sample.mp4", "bikes.mp4"] * 2
    assert plan_placement(tasks, 2) == [0, 1, 0, 1]
    assert plan_placement(tasks, 1) == [0, 0, 0, 0]
    assert plan_placement(tasks, 3) == [0, 1, 0, 1]  # two videos: the third worker idles
    spread = plan_placement(tasks * 8, 2, "random")
    assert set(spread) == {0, 1} and len({(t.video.name, w) for t, w in zip(tasks * 8, spread)}) > 2


def test_two_workers_with_affinity_match_a_local_run_and_resume_on_a_new_cluster(cluster, tmp_path, videos):
    suite = _suite(tmp_path, videos)
    local = run_suite(EvalOptions(suite=suite, out=tmp_path / "local"), report=False)
    sharded = run_suite_ray(EvalOptions(suite=suite, out=tmp_path / "ray"), workers=2, report=False)
    # Tasks about the same video ran in the same worker process; both workers were used.
    by_video: dict[str, set[int]] = {}
    for task, task_id in zip(load_tasks(suite), [r.task_id for r in sharded.records]):
        by_video.setdefault(task.video.name, set()).add(sharded.pid_of[task_id])
    assert all(len(pids) == 1 for pids in by_video.values())
    assert len(set(sharded.pid_of.values())) == 2
    # The same records, in the same order, as the local run.
    assert _compared(read_records(tmp_path / "ray")) == _compared(local.records)
    assert all(r.status == "done" and "seconds" in r.answer for r in sharded.records)

    # The cluster goes away before the last record is written; a new cluster resumes.
    results = tmp_path / "ray" / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[:-1]))
    cluster.restart()
    again = run_suite_ray(EvalOptions(suite=suite, out=tmp_path / "ray", resume=True), workers=2, report=False)
    assert (again.ran, again.skipped) == (1, 3)
    assert _compared(read_records(tmp_path / "ray")) == _compared(local.records)


CRASH_PLUGIN = textwrap.dedent('''
    import os
    from pathlib import Path

    from mcr.tools.base import tool

    @tool
    def crash(marker: str, times: int = 1) -> str:
        """Kill this process the first `times` calls (counted in the marker file)."""
        path = Path(marker)
        n = int(path.read_text()) if path.exists() else 0
        if n < times:
            path.write_text(str(n + 1))
            os._exit(1)
        return "survived"
''')


@pytest.mark.slow
def test_a_dead_worker_is_replaced_and_its_task_retried_once_then_recorded(cluster, tmp_path, videos):
    plugin = tmp_path / "crash_tools.py"
    plugin.write_text(CRASH_PLUGIN)
    extra = ""
    for name, times in (("dies-once", 1), ("dies-always", 5)):
        extra += textwrap.dedent(f"""
            - name: {name}
              video: {videos[0]}
              question: Does it survive?
              plugins: [{plugin}]
              tools: [crash]
              policy:
                name: scripted
                plan:
                  - call: crash
                    args: {{marker: {tmp_path / name}, times: {times}}}
                  - answer: "{{{{ results.crash.result }}}}"
            """)
    suite = tmp_path / "crash.yaml"
    suite.write_text("suite: crash\ntasks:" + textwrap.indent(extra, ""))
    summary = run_suite_ray(EvalOptions(suite=suite, out=tmp_path / "out"), workers=2, report=False)
    once, always = summary.records
    assert once.status == "done" and once.answer == "survived"
    assert always.status == "error" and always.error_type == "WorkerDied" and "died" in always.error
    assert sorted(summary.retried) == ["dies-always", "dies-once"]
    assert json.loads((tmp_path / "dies-always").read_text()) == 2  # two attempts, then recorded
