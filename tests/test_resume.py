"""A killed episode resumes from its checkpoint and ends with the same answer."""

from __future__ import annotations

import signal
import subprocess
import sys

from mcr.cli import main
from mcr.traces.recorder import read_trace

PLUGIN = '''\
import os, signal
from pathlib import Path
from mcr.tools.base import tool

@tool
def fragile(marker: str) -> str:
    """Kill the whole process the first time it runs (a crash mid-episode)."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died once")
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"
'''

TASK = """\
name: crash
video: clip.mp4
question: Does it survive?
plugins: [fragile.py]
tools: [video_info, fragile]
policy:
  name: scripted
  plan:
    - call: video_info
    - call: fragile
      args: {{marker: "{marker}"}}
    - answer: "{{{{ results.fragile.result }}}} after {{{{ results.video_info.duration }}}} s"
      evidence: [fragile, video_info]
"""


def _setup(tmp_path, tiny_video, name):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(tiny_video.read_bytes())
    (folder / "fragile.py").write_text(PLUGIN)
    task = folder / "task.yaml"
    task.write_text(TASK.format(marker=folder / "marker"))
    return folder, task


def test_killed_episode_resumes_to_the_same_answer(tmp_path, tiny_video, capsys):
    # Reference: the same task, not interrupted (the marker already exists).
    ref_dir, ref_task = _setup(tmp_path, tiny_video, "reference")
    (ref_dir / "marker").write_text("already")
    assert main(["run", str(ref_task), "--workdir", str(ref_dir / "w"), "--thread", "ref"]) == 0
    reference = capsys.readouterr().out.split("Answer:")[1].splitlines()[0]

    folder, task = _setup(tmp_path, tiny_video, "killed")
    work = folder / "w"
    proc = subprocess.run(
        [sys.executable, "-m", "mcr.cli", "run", str(task), "--workdir", str(work), "--thread", "t1"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    trace = work / "traces" / "t1.jsonl"
    before = read_trace(trace)
    assert before[-1]["type"] != "episode_end"  # it really died mid-episode
    assert any(e.get("entry", {}).get("tool") == "fragile" for e in before)

    # The killed run's trace already opens in the viewer.
    from mcr.traces.view import build_viewer_html

    assert '"id":"e2"' in build_viewer_html(trace).replace(" ", "")

    assert main(["resume", "t1", "--workdir", str(work)]) == 0
    out = capsys.readouterr().out
    assert out.split("Answer:")[1].splitlines()[0] == reference
    events = read_trace(trace)
    ids = [e["entry"]["id"] for e in events if e["type"] == "entry"]
    assert ids == [f"e{i}" for i in range(len(ids))]  # complete, in order, no duplicates
    assert [e["type"] for e in events].count("episode_resumed") == 1
    assert events[-1]["type"] == "episode_end" and events[-1]["accepted"]

    # Resuming a finished episode changes nothing.
    assert main(["resume", "t1", "--workdir", str(work)]) == 0
    assert read_trace(trace) == events


def test_resume_errors_are_bad_input(tmp_path, capsys):
    assert main(["resume", "nope", "--workdir", str(tmp_path)]) == 2
    assert "no checkpoints" in capsys.readouterr().err
