"""`mcr eval` end to end on small scripted suites over the sample: records, scores, errors, resume, report."""

from __future__ import annotations

import json

import pytest

from mcr.cli import main
from mcr.eval.records import read_records
from mcr.eval.runner import EvalInputError, EvalOptions, _Agents, run_suite, run_task, task_ids
from mcr.eval.judges import resolve_judge
from mcr.task import load_tasks

from .conftest import FACTS, scene_tasks, write_suite


def test_a_suite_runs_and_every_task_is_scored_from_what_the_tools_returned(sample_suite, tmp_path):
    out = tmp_path / "run"
    summary = run_suite(EvalOptions(suite=sample_suite, out=out))
    records = read_records(out)
    assert summary.ran == len(records) == 8
    by_id = {r.task_id: r for r in records}
    for scene in FACTS["scenes"]:
        said, when = by_id[f"said-{scene['index']}"], by_id[f"when-{scene['index']}"]
        assert said.correct and said.scorer == "open" and said.answer == scene["narration"]["text"]
        truth = (scene["narration"]["start"], scene["narration"]["end"])
        assert when.scorer == "span" and when.correct
        assert when.iou == pytest.approx(1.0, abs=0.02)  # the subtitles' times, to their rounding
        # The plan cites the whole-video transcript: its evidence localises nothing.
        assert when.evidence_iou == pytest.approx((truth[1] - truth[0]) / FACTS["duration"], abs=1e-3)
        assert when.trace_path and (out / "traces").is_dir()
        assert when.steps == 2 and when.tool_calls == 1 and when.answer_step == 2
    report = json.loads((out / "report.json").read_text())["summary"]
    assert report["accuracy"] == 1.0 and report["by_category"]["grounding"]["n"] == 4
    assert report["grounding"]["R@0.7"] == 1.0
    for name in ("report.md", "manifest.json", "report.png", "accuracy_per_category.png", "evidence_iou.png",
                 "steps_per_task.png", "accuracy_vs_budget.png"):
        assert (out / name).stat().st_size > 0, name
    manifest = json.loads((out / "manifest.json").read_text())
    video = str(load_tasks(sample_suite)[0].video)
    assert len(manifest["media"][video]) == 64  # its sha256
    assert manifest["run"]["suite_sha256"] and manifest["packages"]["pydantic"]


def test_a_failing_task_is_recorded_and_the_suite_goes_on(tmp_path):
    tasks = scene_tasks()[:2]
    tasks.insert(1, {"name": "no-weights", "question": "How many ships?", "answer": "7", "category": "counting",
                     "policy": {"name": "internvideo3", "settings": {"model": str(tmp_path / "missing-model")}}})
    suite = write_suite(tmp_path / "suite.yaml", tasks)
    out = tmp_path / "run"
    code = main(["eval", str(suite), "--out", str(out), "-q"])
    assert code == 1  # a task raised
    records = read_records(out)
    assert [r.task_id for r in records] == ["said-1", "no-weights", "when-1"]
    broken = records[1]
    assert broken.status == "error" and broken.error_type == "WeightsNotFound" and "missing-model" in broken.error
    assert records[0].correct and records[2].correct
    assert "no-weights" in (out / "report.md").read_text()
    # --resume tries the task that raised again (it still raises); its new record replaces the old one.
    assert main(["eval", str(suite), "--out", str(out), "-q", "--resume"]) == 1
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
    assert [r.task_id for r in read_records(out)] == ["said-1", "no-weights", "when-1"]


def test_resume_skips_finished_tasks_and_a_new_run_refuses_to_overwrite(sample_suite, tmp_path):
    out = tmp_path / "run"
    first = run_suite(EvalOptions(suite=sample_suite, out=out, limit=3), report=False)
    assert first.ran == 3
    with pytest.raises(EvalInputError, match="--resume"):
        run_suite(EvalOptions(suite=sample_suite, out=out))
    with pytest.raises(EvalInputError, match="mode"):
        run_suite(EvalOptions(suite=sample_suite, out=out, resume=True, mode="single"))
    second = run_suite(EvalOptions(suite=sample_suite, out=out, resume=True))
    assert (second.ran, second.skipped) == (5, 3)
    assert len(read_records(out)) == 8 and len((out / "results.jsonl").read_text().splitlines()) == 8


def test_an_episode_killed_mid_way_continues_from_its_checkpoint(sample_suite, tmp_path):
    task = load_tasks(sample_suite)[0]
    out = tmp_path / "run"
    agents = _Agents(out / "work", lambda *_: None)
    with agents.build(task, "agent") as agent:  # the first two nodes, then "the process dies"
        steps = agent.stream_task(task, thread_id="agent-said-1", trace_path=out / "traces" / "agent-said-1.jsonl")
        next(steps), next(steps)
        steps.close()
    record = run_task(agents, task, "said-1", 0, "agent", out / "traces", resolve_judge(None))
    assert record.resumed and record.correct and record.stop_reason == "answered"
    fresh = run_task(_Agents(tmp_path / "w2", lambda *_: None), task, "said-1", 0, "agent", tmp_path / "t2",
                     resolve_judge(None))
    assert record.outcome() == fresh.outcome()


def test_single_pass_mode_has_no_tools_and_scripted_plans_answer_without_evidence(sample_suite, tmp_path):
    out = tmp_path / "single"
    run_suite(EvalOptions(suite=sample_suite, out=out, mode="single", limit=2), report=True)
    records = read_records(out)
    assert [r.mode for r in records] == ["single", "single"]
    assert all(r.tool_calls == 0 and r.steps <= 1 for r in records)
    said = records[0]
    assert said.answer == "not heard" and not said.correct  # no transcript to answer from
    text, data = __import__("mcr.eval.report", fromlist=["compare"]).compare(out, out)
    assert data["agreement"]["common_tasks"] == 2


def test_compare_two_runs(sample_suite, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    run_suite(EvalOptions(suite=sample_suite, out=a, limit=2), report=False)
    run_suite(EvalOptions(suite=sample_suite, out=b, limit=2, mode="single"), report=False)
    assert main(["eval", "--compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out
    assert "| accuracy | 100.0% (2/2) | 0.0% (0/2) |" in printed
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert data["agreement"]["only_a"] == 2
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 0


@pytest.mark.parametrize("argv,fragment", [
    (["eval"], "give a suite"),
    (["eval", "/no/such/suite.yaml"], "not found"),
    (["eval", "--compare", "/no/a", "/no/b"], "no results"),
    (["eval", "SUITE", "--policy", "gpt"], "not a policy"),
    (["eval", "SUITE", "--policy", "offline", "--limit", "0"], "positive"),
    (["eval", "SUITE", "--judge", "nonsense"], "unknown judge"),
])
def test_bad_input_exits_2_with_a_message(argv, fragment, sample_suite, tmp_path, capsys):
    argv = [str(sample_suite) if a == "SUITE" else a for a in argv] + ["--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert fragment in capsys.readouterr().err


def test_policy_scripted_gives_a_task_without_a_plan_the_scripted_baseline(tmp_path, facts):
    night = facts["scenes"][1]  # "At night the keeper counts seven ships."
    suite = write_suite(tmp_path / "s.yaml", [{"name": "ships", "question": "How many ships does the keeper count?",
                                                "options": ["five", "six", "seven", "eight"], "answer": "C",
                                                "span": [night["start"], night["end"]]}])
    summary = run_suite(EvalOptions(suite=suite, out=tmp_path / "o", policy="scripted"), report=False)
    (record,) = summary.records
    assert record.policy == "scripted" and record.tool_calls == 2  # transcribe, then summarize
    assert record.correct and record.predicted == "C"
    assert record.answer.startswith(f"from {night['start']} to {night['end']} seconds")  # the night shot


def test_repeated_task_names_get_distinct_ids(sample_suite):
    tasks = load_tasks(sample_suite)
    assert task_ids([tasks[0], tasks[0], tasks[1]]) == ["said-1", "said-1#2", "when-1"]
