"""`mcr eval --ray`: a local Ray cluster with 2 workers — affinity, results identical to a local run,
resume on a restarted cluster, a worker death retried once then recorded."""

from __future__ import annotations

import json
import textwrap

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


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


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
    ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
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
