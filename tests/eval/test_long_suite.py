"""The long-video suite end to end with the offline default (slow, in CI: 3 m 5 s on 2 cores, 54 s of it
generating the two videos; measured 2026-12-07).

Issue 22's acceptance run: `examples/make_long_suite.py`'s 30-minute video
with all seven kinds of question, and three of the 60-minute video's (a
spoken number, the word flashed for 2 s, a "when" with time-range options),
through `mcr eval`'s runner, cold (each video's index is built by its first
question). The 60-minute video gets a subset only to keep CI's slow run short
(the full suite is
`mcr eval runs/suites/long/suite.yaml --policy offline`; its figures are in
benchmarks/RESULTS.md, "Long videos").

Nothing here asserts a score. What must hold on an hour of video: every task
ends with a scored record, no prompt of any step reaches the model's window
(before issue 22, every question ended in a window overflow), and the report
is the records' aggregate. The videos are generated once into
runs/suites/long and reused while the generator's key matches.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from mcr.eval.metrics import summarize
from mcr.eval.records import read_records
from mcr.eval.runner import EvalOptions, run_suite
from mcr.task import load_tasks
from mcr.traces.recorder import read_trace

ROOT = Path(__file__).resolve().parents[2]
SUITE_DIR = ROOT / "runs" / "suites" / "long"
SIXTY_MINUTE_SUBSET = ("needle-count", "needle-flash", "needle-when")

pytestmark = [
    pytest.mark.slow,  # an hour and a half of video through the agent; CI's make test-slow runs it
    pytest.mark.timeout(2400),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install -y espeak-ng)"),
]


@pytest.fixture(scope="module")
def ci_suite() -> Path:
    sys.path.insert(0, str(ROOT / "examples"))
    from long_questions import ALL_KINDS
    from make_long_suite import make_long_video, write_suite

    videos = [make_long_video(SUITE_DIR / "media", minutes, seed=0)[0] for minutes in (30, 60)]
    suite = SUITE_DIR / "ci-subset.yaml"
    write_suite(suite, "long-ci", videos, {"long30": ALL_KINDS, "long60": SIXTY_MINUTE_SUBSET})
    return suite


def _window() -> int:
    from mcr.model.runtime.loader import load_smollm2

    config = load_smollm2().model.config
    return int(config.get_text_config(decoder=True).max_position_embeddings)


def test_long_suite_runs_inside_the_window(ci_suite, tmp_path):
    tasks = load_tasks(ci_suite)
    assert len(tasks) == 7 + len(SIXTY_MINUTE_SUBSET)
    out = tmp_path / "agent"
    run_suite(EvalOptions(suite=ci_suite, out=out, policy="offline", mode="agent"))

    records = read_records(out)
    assert len(records) == len(tasks)
    assert all(r.status == "done" for r in records), [f"{r.name}: {r.error}" for r in records if r.status == "error"]
    assert all(r.scorer in ("choice", "span") for r in records)
    assert not [r.name for r in records if r.stop_reason == "context_exhausted"]

    window = _window()
    prompts = [int((e.get("usage") or {}).get("prompt_tokens") or 0)
               for r in records for e in read_trace(r.trace_path, quiet=True) if e.get("type") == "model_call"]
    assert prompts and max(prompts) < window, f"largest prompt {max(prompts)} tokens, window {window}"

    report = json.loads((out / "report.json").read_text())["summary"]
    assert report == json.loads(json.dumps(summarize(records)))
