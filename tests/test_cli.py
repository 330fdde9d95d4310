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
