"""results.jsonl: durable appends, a torn last line, damage elsewhere."""

from __future__ import annotations

import pytest

from mcr.eval.records import ResultsFileError, TaskRecord, append_record, read_records


def _rec(i: int, **kw) -> TaskRecord:
    return TaskRecord(task_id=f"t{i}", index=i, name=f"t{i}", **kw)


def test_append_and_read_back(tmp_path):
    path = tmp_path / "results.jsonl"
    for i in range(3):
        append_record(path, _rec(i, answer=f"a{i}", correct=i % 2 == 0))
    records = read_records(tmp_path)  # a folder works too
    assert [r.task_id for r in records] == ["t0", "t1", "t2"]
    assert [r.correct for r in records] == [True, False, True]


def test_a_torn_last_line_is_dropped_then_cut_before_the_next_append(tmp_path):
    path = tmp_path / "results.jsonl"
    append_record(path, _rec(0))
    with path.open("ab") as handle:
        handle.write(_rec(1).model_dump_json().encode()[:25])  # the process died mid-write
    assert [r.task_id for r in read_records(path)] == ["t0"]
    append_record(path, _rec(2))
    assert [r.task_id for r in read_records(path)] == ["t0", "t2"]
    assert path.read_text().count("\n") == 2


def test_damage_before_the_last_line_is_an_error(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text("not json\n" + _rec(0).model_dump_json() + "\n")
    with pytest.raises(ResultsFileError, match="results.jsonl:1"):
        read_records(path)


def test_a_repeated_task_keeps_its_later_record(tmp_path):
    path = tmp_path / "results.jsonl"
    append_record(path, _rec(0, answer="old"))
    append_record(path, _rec(0, answer="new"))
    assert [r.answer for r in read_records(path)] == ["new"]


def test_no_file_is_no_records(tmp_path):
    assert read_records(tmp_path / "nothing.jsonl") == []
