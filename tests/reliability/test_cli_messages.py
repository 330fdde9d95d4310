"""What a command-line user reads: early, clean, documented.

* a bad video is reported before the model loads (it used to take ~10 s of
  loading first);
* an unreachable OTLP endpoint is one clean error line (the exporter's raw
  retry warnings used to print first);
* every option of these commands says what it does and its default.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mcr.cli import build_parser, main

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "media" / "sample.mp4"


def test_a_bad_video_is_reported_before_the_model_loads(tmp_path, monkeypatch, capsys, ledger):
    from mcr.agent import Agent

    def no_model(*args, **kwargs):
        raise AssertionError("the model policy was built before the video was checked")

    monkeypatch.setattr(Agent, "from_task", no_model)
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)  # an mp4 header, no streams
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({"video": "broken.mp4", "question": "What happens?"}))  # default: the model policy
    assert main(["run", str(task), "-q"]) == 2
    err = capsys.readouterr().err
    assert "broken.mp4" in err and "Traceback" not in err
    ledger.case("cli", "a broken video with a model policy", outcome="exit 2 before the model loads", message=err)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_otlp_endpoint_is_one_clean_line(tmp_path, ledger):
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="the otel extra is not installed")
    from mcr.agent import Agent
    from mcr.policies.scripted import ScriptedPolicy
    from mcr.task import PlanStep
    from mcr.tools.base import ToolRegistry
    from mcr.verify import Verifier

    with Agent(policy=ScriptedPolicy([PlanStep(answer="a lighthouse")]), tools=ToolRegistry(), workdir=tmp_path,
               verifier=Verifier()) as agent:
        trace = agent.run(SAMPLE, "What is it?", thread_id="otel").trace_path
    port = _free_port()  # nothing listens there
    proc = subprocess.run([sys.executable, "-m", "mcr.cli", "otel", str(trace), "--endpoint", f"http://127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcr: error: the OTLP endpoint"), proc.stderr
    assert "refused" in lines[0].lower() and "Transient error" not in proc.stderr and "Traceback" not in proc.stderr
    ledger.case("cli", "mcr otel --endpoint where nothing listens", outcome="exit 2, one line naming the cause",
                message=lines[0])


def _options(parser: argparse.ArgumentParser, path: str = "mcr"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif action.option_strings and action.dest != "help":
            yield path, action


def _convert_parser() -> argparse.ArgumentParser:
    from mcr.model.m2la.convert_cli import _parser

    return _parser()


NAMED_IN_THE_ISSUE = {("mcr view", "--port"), ("mcr mcp", "--host"), ("mcr mcp", "--port"),
                      ("mcr convert", "--calib-tokens"), ("mcr convert", "--key-weight"),
                      ("mcr convert", "--eval-tokens"), ("mcr convert", "--heal-lr")}
OURS = ("mcr run", "mcr resume", "mcr replay", "mcr view", "mcr otel", "mcr tools", "mcr mcp", "mcr convert")


def test_every_option_says_what_it_does_and_its_default():
    found = [(path, a) for path, a in _options(build_parser()) if path in OURS]
    found += [("mcr convert", a) for _, a in _options(_convert_parser())]
    assert NAMED_IN_THE_ISSUE <= {(path, a.option_strings[-1]) for path, a in found}
    missing = []
    for path, action in found:
        text = action.help or ""
        has_default = action.default not in (None, False, [], argparse.SUPPRESS) and action.nargs != 0
        if not text or (has_default and "default" not in text):
            missing.append(f"{path} {action.option_strings[-1]} (help: {text!r}, default: {action.default!r})")
    assert not missing, missing
