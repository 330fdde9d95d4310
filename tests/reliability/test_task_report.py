"""A task file with several mistakes reports all of them in one run, each with its line and key.

Before: a task with four mistakes took four runs to fix (only the first was
reported); the span message asked for a "dictionary" although the README
writes ``span: [6.0, 12.0]``; and ``answer: 3`` (a YAML number) was refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mcr.cli import main
from mcr.task import SPAN_FORMS, TaskFileError, load_task

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "media" / "sample.mp4"

FOUR_MISTAKES = """\
name: counting
video: missing.mp4
qestion: How many ships does the keeper count?
span: [12.0]
budget: {max_steps: 0}
"""


def test_every_mistake_is_reported_at_once(tmp_path, capsys, ledger):
    task = tmp_path / "task.yaml"
    task.write_text(FOUR_MISTAKES)
    with pytest.raises(TaskFileError) as info:
        load_task(task)
    found = {(p.line, p.key) for p in info.value.problems}
    assert found == {(2, "video"), (3, "qestion"), (4, "span"), (5, "budget.max_steps")}
    assert (info.value.line, info.value.key) == (2, "video")  # the first, as before
    assert main(["run", str(task), "-q"]) == 2
    err = capsys.readouterr().err
    assert "4 problems" in err and "did you mean 'question'?" in err and "video file not found" in err
    assert "required key is missing" not in err  # the typo's message already names 'question'
    ledger.case("task_yaml", "four mistakes in one task file", outcome="all four reported in one run, exit 2",
                message=err.splitlines()[1])


@pytest.mark.parametrize("span", ["[12.0]", "6-12", "{begin: 6, end: 12}"])
def test_the_span_message_names_both_forms(tmp_path, span, ledger):
    shutil.copyfile(SAMPLE, tmp_path / "sample.mp4")
    task = tmp_path / "task.yaml"
    task.write_text(f"video: sample.mp4\nquestion: When?\nspan: {span}\n")
    with pytest.raises(TaskFileError) as info:
        load_task(task)
    assert any(p.key.startswith("span") for p in info.value.problems)
    assert "[6.0, 12.0]" in str(info.value) and "{start: 6.0, end: 12.0}" in str(info.value)
    assert "dictionary" not in str(info.value)
    ledger.case("task_yaml", f"span: {span}", outcome="TaskFileError naming both span forms", message=str(info.value))


@pytest.mark.parametrize("span", ["[6.0, 12.0]", "{start: 6.0, end: 12.0}"])
def test_both_span_forms_load(tmp_path, span):
    shutil.copyfile(SAMPLE, tmp_path / "sample.mp4")
    (tmp_path / "task.yaml").write_text(f"video: sample.mp4\nquestion: When?\nspan: {span}\n")
    got = load_task(tmp_path / "task.yaml").span
    assert (got.start, got.end) == (6.0, 12.0)


def test_a_numeric_answer_is_its_text(tmp_path, ledger):
    shutil.copyfile(SAMPLE, tmp_path / "sample.mp4")
    (tmp_path / "task.yaml").write_text("video: sample.mp4\nquestion: How many ships?\nanswer: 3\n")
    task = load_task(tmp_path / "task.yaml")
    assert task.answer == "3" and task.answer_is_correct("the keeper counts 3 ships", None)
    (tmp_path / "choice.yaml").write_text("video: sample.mp4\nquestion: How many?\noptions: [2, 3, 4.5]\nanswer: B\n")
    assert load_task(tmp_path / "choice.yaml").options == ["2", "3", "4.5"]
    (tmp_path / "flag.yaml").write_text("video: sample.mp4\nquestion: Is it night?\nanswer: true\n")
    with pytest.raises(TaskFileError, match="answer"):  # a YAML boolean is not silently made "True"
        load_task(tmp_path / "flag.yaml")
    ledger.case("task_yaml", "answer: 3 (a YAML number)", outcome='accepted as the text "3"')


def test_the_span_forms_are_the_documented_ones(repo_root):
    assert "span: [6.0, 12.0]" in (repo_root / "README.md").read_text() or "[6.0, 12.0]" in SPAN_FORMS
