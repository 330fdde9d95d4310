"""YAML tasks: strict validation with file/line/key errors, suites, and CLI exit codes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mcr.cli import main
from mcr.task import ScriptedPolicySpec, TaskFileError, load_task, load_tasks

GOOD = """\
name: length
video: clip.mp4
question: How long is the video?
options: [one second, two seconds]
answer: B
tools: [video_info]
budget: {max_steps: 4}
policy:
  name: scripted
  plan:
    - think: Look at the facts.
      call: video_info
    - answer: "{{ results.video_info.duration }} s"
      option: "{{ 'B' if results.video_info.duration > 1.5 else 'A' }}"
      evidence: [video_info]
"""


@pytest.fixture
def task_dir(tmp_path, tiny_video) -> Path:
    (tmp_path / "clip.mp4").write_bytes(tiny_video.read_bytes())
    return tmp_path


def write(task_dir: Path, text: str, name: str = "task.yaml") -> Path:
    path = task_dir / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_good_task_loads_with_absolute_paths(task_dir):
    task = load_task(write(task_dir, GOOD))
    assert task.video == (task_dir / "clip.mp4").resolve()
    assert isinstance(task.policy, ScriptedPolicySpec) and len(task.policy.plan) == 2
    assert task.budget.max_steps == 4 and task.budget.max_tool_calls == 24


def test_run_the_good_task_exits_zero_and_writes_a_trace(task_dir, capsys):
    trace = task_dir / "out.jsonl"
    code = main(["run", str(write(task_dir, GOOD)), "--workdir", str(task_dir / "w"), "--trace", str(trace)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Answer: 2.0 s (B)" in out and "correct" in out
    assert trace.is_file() and trace.read_text().count('"type":"entry"') >= 5


@pytest.mark.parametrize(
    "edit, line, key, message",
    [
        (lambda t: t.replace("budget: {max_steps: 4}", "budget: {max_steps: 4, max_stepz: 9}"), 7, "budget.max_stepz", "unknown key"),
        (lambda t: t.replace("question:", "questoin:"), 3, "questoin", "did you mean 'question'?"),
        (lambda t: t.replace("{max_steps: 4}", "{max_steps: lots}"), 7, "budget.max_steps", "valid integer"),
        (lambda t: t.replace("video: clip.mp4", "video: missing.mp4"), 2, "video", "video file not found"),
        (lambda t: t.replace("call: video_info", "call: teleport"), 12, "policy.plan.0.call", "unknown tool 'teleport'"),
        (lambda t: t.replace("    - answer:", "    - answr:"), 13, "policy.plan.1.answr", "unknown key"),
        (lambda t: t.replace("question: How long is the video?\n", ""), None, "question", "required key is missing"),
        (lambda t: t.replace("name: scripted", "name: psychic"), 9, "policy.name", "tag 'psychic'"),
    ],
)
def test_bad_tasks_name_file_line_and_key(task_dir, capsys, edit, line, key, message):
    path = write(task_dir, edit(GOOD))
    with pytest.raises(TaskFileError) as info:
        from mcr.agent import Agent

        Agent.from_task(load_task(path), workdir=task_dir / "w")
    error = info.value
    assert error.path == str(path) and error.key == key and message in str(error)
    if line is not None:
        assert error.line == line, str(error)
    assert main(["run", str(path), "--workdir", str(task_dir / "w")]) == 2
    err = capsys.readouterr().err
    assert f"{path}" in err and message in err


def test_malformed_yaml_points_at_the_line(task_dir, capsys):
    path = write(task_dir, GOOD.replace("options: [one second, two seconds]", "options: [one second, two seconds"))
    with pytest.raises(TaskFileError, match="malformed YAML") as info:
        load_task(path)
    assert info.value.line is not None and info.value.line >= 4
    assert main(["run", str(path)]) == 2
    assert "malformed YAML" in capsys.readouterr().err


def test_not_a_mapping_and_missing_file(task_dir):
    with pytest.raises(TaskFileError, match="must be a mapping"):
        load_task(write(task_dir, "- just\n- a list\n"))
    with pytest.raises(TaskFileError, match="not found"):
        load_task(task_dir / "nope.yaml")


def test_corrupt_video_exits_two(task_dir, capsys):
    (task_dir / "clip.mp4").write_bytes(b"not a video at all")
    assert main(["run", str(write(task_dir, GOOD)), "--workdir", str(task_dir / "w")]) == 2
    assert "cannot read video" in capsys.readouterr().err


def test_suite_merges_defaults(task_dir):
    suite = write(task_dir, """\
        suite: facts
        defaults:
          video: clip.mp4
          tools: [video_info]
          policy: {name: scripted, plan: [{call: video_info}, {answer: "{{ results.video_info.fps }}"}]}
        tasks:
          - {name: fps, question: "What is the frame rate?", answer: "12"}
          - {name: fps-again, question: "And again?", budget: {max_steps: 2}}
        """, "suite.yaml")
    tasks = load_tasks(suite)
    assert [t.name for t in tasks] == ["fps", "fps-again"]
    assert tasks[1].budget.max_steps == 2 and tasks[0].video == tasks[1].video
    with pytest.raises(TaskFileError, match="expected one task"):
        load_task(suite)


def test_suite_errors_point_into_the_task(task_dir):
    suite = write(task_dir, """\
        suite: facts
        defaults: {video: clip.mp4, policy: {name: scripted, plan: [{answer: x}]}}
        tasks:
          - {name: a, question: q}
          - {name: b, question: q, colour: red}
        """, "suite.yaml")
    with pytest.raises(TaskFileError) as info:
        load_tasks(suite)
    assert info.value.key == "tasks.1.colour" and info.value.line == 5


def test_wrong_answer_exits_one(task_dir, capsys):
    path = write(task_dir, GOOD.replace("answer: B", "answer: A"))
    assert main(["run", str(path), "--workdir", str(task_dir / "w")]) == 1
    assert "wrong" in capsys.readouterr().out


def test_plan_step_needs_exactly_one_action(task_dir):
    path = write(task_dir, GOOD.replace("      call: video_info\n", ""))
    with pytest.raises(TaskFileError, match="exactly one of"):
        load_task(path)


def test_user_plugin_tool_is_callable_by_the_scripted_policy(task_dir, capsys):
    (task_dir / "my_tools.py").write_text(textwrap.dedent('''\
        from pydantic import BaseModel
        from mcr.tools.base import Tool

        class Frames(Tool):
            name = "frame_count"
            description = "Count the frames of the episode's video."

            class Input(BaseModel):
                pass

            class Output(BaseModel):
                frames: int

            def run(self, input, ctx):
                import av
                with av.open(ctx.require_video().path) as c:
                    return self.Output(frames=sum(1 for _ in c.decode(video=0)))
        '''))
    path = write(task_dir, """\
        video: clip.mp4
        question: How many frames?
        answer: "24"
        plugins: [my_tools.py]
        tools: [frame_count, video_info]
        policy:
          name: scripted
          plan:
            - call: frame_count
            - answer: "{{ results.frame_count.frames }}"
        """)
    assert main(["run", str(path), "--workdir", str(task_dir / "w")]) == 0
    out = capsys.readouterr().out
    assert "frame_count: {\"frames\":24}" in out and "Answer: 24" in out
    assert main(["tools", "--plugin", str(task_dir / "my_tools.py")]) == 0
    assert "frame_count" in capsys.readouterr().out


def test_a_multiple_choice_answer_without_an_option_is_not_correct(tmp_path):
    """The letter 'c' occurs in almost any text; only the chosen option may match a letter truth."""
    from mcr.task import TaskSpec

    task = TaskSpec(name="t", video="v.mp4", question="q?", options=["five", "six", "seven"], answer="C")
    assert task.answer_is_correct("The keeper counts seven ships.", None) is False
    assert task.answer_is_correct("seven", "c") is True and task.answer_is_correct("seven", "B") is False
