"""Replay: a recorded episode reproduces event for event; a changed tool output is caught."""

from __future__ import annotations

import json
import textwrap

import pytest

from mcr.cli import main
from mcr.replay import replay
from mcr.task import load_task
from mcr.traces.recorder import read_trace
from mcr.traces.diff import first_divergence

PLUGIN = '''\
from mcr.tools.base import ToolContext, ToolFailure, tool

@tool
def brightness(frame: int, ctx: ToolContext) -> float:
    """Mean brightness of one frame of the episode video (0-255)."""
    import av
    with av.open(ctx.require_video().path) as container:
        for i, image in enumerate(container.decode(video=0)):
            if i == frame:
                return round(float(image.to_ndarray(format="gray").mean()), 3)
    raise ToolFailure(f"frame {frame} is past the end of the video", "frame_out_of_range")
'''


TASK = """\
name: bright
video: clip.mp4
question: Does it get brighter?
plugins: [bright.py]
tools: [video_info, brightness]
verify: {evidence: false}  # the answer is computed from numbers; no text can support "yes"
policy:
  name: scripted
  plan:
    - think: Compare the first and the last frame.
      calls:
        - {tool: brightness, args: {frame: 0}}
        - {tool: brightness, args: {frame: 23}}
        - {tool: brightness, args: {frame: 999}}
    - call: video_info
    - answer: "{{ 'yes' if all_results.brightness[1].result > all_results.brightness[0].result else 'no' }}"
      evidence: [e4, e5]
"""


@pytest.fixture
def recorded(tmp_path, tiny_video):
    (tmp_path / "clip.mp4").write_bytes(tiny_video.read_bytes())
    (tmp_path / "bright.py").write_text(PLUGIN)
    (tmp_path / "task.yaml").write_text(TASK)
    trace = tmp_path / "original.jsonl"
    assert main(["run", str(tmp_path / "task.yaml"), "--workdir", str(tmp_path / "w"), "--trace", str(trace), "-q"]) == 0
    return tmp_path, trace


def test_replay_reproduces_event_for_event(recorded):
    folder, trace = recorded
    for rerun in (False, True):
        report = replay(trace, workdir=folder / "w", rerun_tools=rerun, out=folder / f"r{rerun}.jsonl")
        assert report.reproduced, report.divergence and report.divergence.describe()
        assert report.result.answer == "yes"
        errors = [e for e in report.result.context if e.kind == "tool_error"]
        assert [e.error_type for e in errors] == ["frame_out_of_range"]
    assert main(["replay", str(trace), "--workdir", str(folder / "w")]) == 0


def test_a_changed_tool_output_is_reported_at_its_event(recorded, capsys):
    folder, trace = recorded
    events = read_trace(trace)
    index = next(i for i, e in enumerate(events)
                 if e["type"] == "entry" and e["entry"]["kind"] == "tool_result" and e["entry"]["tool"] == "brightness")
    events[index]["entry"]["output"]["result"] = 1234.5
    tampered = folder / "tampered.jsonl"
    tampered.write_text("".join(json.dumps(e) + "\n" for e in events))

    report = replay(tampered, workdir=folder / "w", rerun_tools=True, out=folder / "r.jsonl")
    assert report.divergence is not None
    assert report.divergence.index == index - 1  # the start event is not compared
    assert report.divergence.path == "entry.output.result"
    assert report.divergence.old["entry"]["id"] == events[index]["entry"]["id"]
    assert main(["replay", str(tampered), "--rerun-tools", "--workdir", str(folder / "w")]) == 1
    out = capsys.readouterr().out
    assert f"entry {events[index]['entry']['id']} (tool_result)" in out and "1234.5" in out


def test_fork_at_a_step_continues_with_another_policy(recorded):
    folder, trace = recorded
    (folder / "other.yaml").write_text(textwrap.dedent("""\
        video: clip.mp4
        question: unused
        tools: [video_info]
        policy:
          name: scripted
          plan:
            - answer: "forked after {{ all_results.brightness | length }} brightness calls"
        """))
    report = replay(trace, workdir=folder / "w", until=1, continue_with=load_task(folder / "other.yaml"),
                    out=folder / "fork.jsonl")
    assert report.forked_at == 1 and report.result.accepted
    assert report.result.answer == "forked after 2 brightness calls"
    original, forked = read_trace(trace), read_trace(folder / "fork.jsonl")
    divergence = first_divergence(original, forked)
    assert divergence is not None
    assert divergence.new["entry"]["kind"] == "answer"  # identical up to the fork point


def test_replay_errors(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "missing.jsonl")]) == 2
    not_trace = tmp_path / "x.jsonl"
    not_trace.write_text('{"type": "entry", "entry": {}}\n')
    assert main(["replay", str(not_trace)]) == 2
    assert "no episode_start" in capsys.readouterr().err
    assert main(["replay", str(not_trace), "--until", "1"]) == 2


def _record_example(repo_root, tmp_path, name: str) -> tuple:
    trace = tmp_path / f"{name}.jsonl"
    task = repo_root / "examples" / "tasks" / f"{name}.yaml"
    assert main(["run", str(task), "--workdir", str(tmp_path / "w"), "--trace", str(trace), "-q"]) == 0
    return trace, tmp_path / "w"


def test_scripted_example_replays_with_real_tools_rerun(repo_root, tmp_path):
    trace, work = _record_example(repo_root, tmp_path, "ships")
    report = replay(trace, workdir=work, rerun_tools=True, out=tmp_path / "again.jsonl")
    assert report.reproduced, report.divergence and report.divergence.describe()


@pytest.mark.slow
def test_the_demo_trace_replays_event_for_event(repo_root, tmp_path):
    """`make demo`'s episode (SmolLM2 decisions) replays exactly, served and with the tools re-run."""
    trace, work = _record_example(repo_root, tmp_path, "demo")
    for rerun in (False, True):
        report = replay(trace, workdir=work, rerun_tools=rerun, out=tmp_path / f"demo-{rerun}.jsonl")
        assert report.reproduced, report.divergence and report.divergence.describe()
