"""Agent-native metrics read from real traces, and the run aggregates (accuracy at a budget, per category)."""

from __future__ import annotations

import json

import pytest

from mcr.eval.metrics import accuracy_at_seconds, accuracy_at_steps, summarize, trace_metrics
from mcr.eval.records import TaskRecord, read_records
from mcr.eval.runner import EvalOptions, run_suite

from .conftest import FACTS, keyword, write_suite


def test_a_rejected_then_accepted_answer_is_counted_from_the_trace(tmp_path):
    night = FACTS["scenes"][1]
    word = keyword(night["narration"]["text"])
    task = {
        "name": "ships-twice", "category": "what is said", "question": f"What is said about the {word}?",
        "answer": night["narration"]["text"], "span": [night["start"], night["end"]],
        "policy": {"name": "scripted", "plan": [
            {"call": "transcribe"},
            {"answer": "Purple elephants dance quietly.", "evidence": ["transcribe"]},  # unsupported: rejected
            {"answer": f"{{{{ spoken('{word}').text }}}}", "evidence": ["transcribe"]},
        ]},
    }
    out = tmp_path / "run"
    run_suite(EvalOptions(suite=write_suite(tmp_path / "s.yaml", [task]), out=out))
    (record,) = read_records(out)
    assert record.correct and record.verifier_rejections == 1
    assert (record.steps, record.tool_calls, record.answer_step) == (3, 1, 3)
    assert record.answer_time_s is not None and 0 < record.answer_time_s <= record.wall_s
    metrics = trace_metrics(record.trace_path)
    assert metrics.evidence_spans == [(0.0, FACTS["duration"])]  # the whole-video transcript
    report = json.loads((out / "report.json").read_text())["summary"]
    assert report["accuracy_at_steps"] == [[1, 0.0], [2, 0.0], [3, 1.0]]


def test_resume_downtime_is_not_counted_as_answer_time(tmp_path):
    trace = tmp_path / "t.jsonl"
    events = [
        {"type": "episode_start", "t": 100.0, "task": {"video": {"duration": 10.0}}},
        {"type": "entry", "t": 101.0, "entry": {"id": "e0", "kind": "tool_result", "step": 1, "span": {"start": 2, "end": 4}}},
        {"type": "model_call", "t": 101.5, "step": 2, "usage": {"prompt_tokens": 50, "reused_tokens": 40, "prefilled_tokens": 10, "generated_tokens": 5}},
        {"type": "episode_resumed", "t": 500.0},
        {"type": "entry", "t": 502.0, "entry": {"id": "e1", "kind": "answer", "step": 2, "refs": ["e0"]}},
        {"type": "entry", "t": 502.5, "entry": {"id": "e2", "kind": "verdict", "step": 2, "accepted": True, "refs": ["e1"]}},
    ]
    trace.write_text("".join(json.dumps(e) + "\n" for e in events))
    m = trace_metrics(trace)
    assert m.resumed and m.answer_step == 2 and m.model_calls == 1
    assert m.answer_time_s == pytest.approx(502.5 - 100.0 - (500.0 - 101.5))
    assert m.evidence_spans == [(2.0, 4.0)]
    assert (m.tokens.reused_tokens, m.tokens.prefilled_tokens, m.tokens.generated_tokens) == (40, 10, 5)


def _rec(i, correct, step, seconds, category="c", **kw):
    return TaskRecord(task_id=f"t{i}", index=i, name=f"t{i}", correct=correct, accepted=correct, answer_step=step,
                      answer_time_s=seconds, steps=step or 4, category=category, wall_s=2.0, **kw)


def test_accuracy_at_a_budget_and_cost_per_correct_answer():
    records = [_rec(0, True, 1, 1.0), _rec(1, True, 3, 5.0), _rec(2, False, None, None, "d"), _rec(3, True, 2, 2.0, "d")]
    assert accuracy_at_steps(records) == [(1, 0.25), (2, 0.5), (3, 0.75), (4, 0.75)]
    curve = accuracy_at_seconds(records, points=5)  # a grid up to the slowest accepted answer (5 s)
    assert [a for _, a in curve] == [0.25, 0.5, 0.5, 0.5, 0.75] and curve[-1][0] == pytest.approx(5.0)
    s = summarize(records)
    assert s["accuracy"] == 0.75 and s["by_category"]["d"] == {"n": 2, "correct": 1, "accuracy": 0.5}
    assert s["seconds_per_question"] == 2.0 and s["seconds_per_correct"] == pytest.approx(8.0 / 3)


def test_a_rejected_grounding_answer_scores_zero_in_the_recall_figures():
    records = [_rec(0, True, 1, 1.0, scorer="span", iou=0.9),
               TaskRecord(task_id="t1", index=1, name="t1", scorer="span", iou=0.8, accepted=False, correct=False)]
    g = summarize(records)["grounding"]
    assert g["mIoU"] == pytest.approx(0.45) and g["R@0.5"] == 0.5
