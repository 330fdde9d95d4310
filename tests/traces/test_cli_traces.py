"""`mcr view` and `mcr otel` from the command line, on a trace the CLI just wrote."""

from __future__ import annotations

import json

import pytest

from mcr.cli import main

TASK = """\
video: clip.mp4
question: "How long is it? <script>alert(1)</script>"
tools: [video_info]
policy:
  name: scripted
  plan:
    - call: video_info
    - answer: "{{ results.video_info.duration }} s"
"""


@pytest.fixture
def trace(tmp_path, tiny_video):
    (tmp_path / "clip.mp4").write_bytes(tiny_video.read_bytes())
    (tmp_path / "task.yaml").write_text(TASK)
    path = tmp_path / "run.jsonl"
    assert main(["run", str(tmp_path / "task.yaml"), "--workdir", str(tmp_path / "w"), "--trace", str(path), "-q"]) == 0
    return path


def test_view_writes_one_self_contained_page(trace, capsys):
    assert main(["view", str(trace)]) == 0
    page = trace.with_suffix(".html")
    html = page.read_text()
    assert str(page) in capsys.readouterr().out
    assert "<script>alert(1)</script>" not in html  # data is escaped inside the page
    assert "Content-Security-Policy" in html
    assert main(["view", str(trace), "-o", str(trace.parent / "d.html"), "--diff", str(trace)]) == 0
    assert (trace.parent / "d.html").stat().st_size > 1000


def test_otel_to_a_file(trace, tmp_path):
    out = tmp_path / "spans.json"
    assert main(["otel", str(trace), "--file", str(out)]) == 0
    spans = [s for rs in json.loads(out.read_text())["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    names = sorted(s["name"] for s in spans)
    assert names[0].startswith("chat") and "execute_tool video_info" in names and any(n.startswith("invoke_agent") for n in names)


def test_trace_commands_reject_bad_input(tmp_path, capsys):
    missing = tmp_path / "missing.jsonl"
    assert main(["view", str(missing)]) == 2
    assert main(["otel", str(missing), "--file", str(tmp_path / "x.json")]) == 2
    assert main(["otel", str(missing)]) == 2
    assert "--endpoint" in capsys.readouterr().err
