"""The `mcr` entry point: help for newcomers, subcommand wiring, bad input exits 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mcr.cli import main


def test_help_lists_every_command():
    proc = subprocess.run([sys.executable, "-m", "mcr.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    for command in ("run", "resume", "replay", "view", "otel", "convert", "tools"):
        assert command in proc.stdout


def test_convert_is_wired_and_reports_a_missing_model(tmp_path, capsys):
    calib = tmp_path / "calib.txt"
    calib.write_text("Some calibration prose. " * 20)
    assert main(["convert", str(tmp_path / "missing.gguf"), "--calib", str(calib)]) == 2
    assert "missing.gguf" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["teleport"])
    assert info.value.code == 2


def test_printed_next_step_commands_are_shell_quoted(tmp_path, capsys):
    """`mcr view …` and `mcr resume … --workdir …` run as printed, also from a folder with spaces and quotes."""
    import shlex
    import shutil

    import yaml

    repo = __import__("pathlib").Path(__file__).resolve().parents[1]
    folder = tmp_path / "my videos" / "it's here"
    folder.mkdir(parents=True)
    shutil.copyfile(repo / "examples" / "media" / "sample.mp4", folder / "sample.mp4")
    task = folder / "task.yaml"
    task.write_text(yaml.safe_dump({"name": "quote me", "video": "sample.mp4", "question": "What is it?",
                                    "verify": {"evidence": False},
                                    "policy": {"name": "scripted", "plan": [{"answer": "a lighthouse"}]}}))
    work = folder / "work dir"
    assert main(["run", str(task), "--workdir", str(work), "--thread", "a b;c"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("Trace: "))
    view = line[line.index("view: ") + 6: line.index("; resume: ")]
    resume = line[line.index("; resume: ") + 10: line.rindex(")")]
    assert shlex.split(view) == ["mcr", "view", str(work / "traces" / "a_b_c.jsonl")]
    assert shlex.split(resume) == ["mcr", "resume", "a b;c", "--workdir", str(work)]
    assert main(shlex.split(resume)[1:] + ["-q"]) == 0  # the printed command works as printed
