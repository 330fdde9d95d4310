"""Small suites over the bundled sample, written from its facts (examples/media/sample.json).

Every truth here is read from sample.json, never typed: the questions ask
what each scene's narration says and when, and the scripted plans answer from
what `transcribe` really returns (the sample's sidecar subtitles), so the
suites run in about a second per task and their scores are computed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "media" / "sample.mp4"
FACTS = json.loads(SAMPLE.with_suffix(".json").read_text())


def keyword(text: str) -> str:
    """The narration's longest word: unique to its scene in the sample."""
    return max((w.strip(".,") for w in text.split()), key=len)


def scene_tasks() -> list[dict]:
    """Per scene: an open question (what is said) and a grounding question (when), with scripted plans."""
    tasks = []
    for scene in FACTS["scenes"]:
        said = scene["narration"]
        word = keyword(said["text"])
        tasks.append({
            "name": f"said-{scene['index']}", "category": "what is said",
            "question": f"What does the narrator say about the {word}?", "answer": said["text"],
            "span": [scene["start"], scene["end"]], "metadata": {"scene": scene["index"]},
            "policy": {"name": "scripted", "plan": [
                {"call": "transcribe"},
                {"answer": f"{{{{ spoken('{word}').text if spoken('{word}') else 'not heard' }}}}", "evidence": ["transcribe"]},
            ]},
        })
        tasks.append({
            "name": f"when-{scene['index']}", "category": "grounding",
            "question": f"When does the narrator mention the {word}?", "span": [said["start"], said["end"]],
            "verify": {"evidence": False},
            "policy": {"name": "scripted", "plan": [
                {"call": "transcribe"},
                {"answer": f"from {{{{ spoken('{word}').span.start }}}} to {{{{ spoken('{word}').span.end }}}} seconds",
                 "evidence": ["transcribe"]},
            ]},
        })
    return tasks


def _srt_time(t: float) -> str:
    ms = round(t * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def subtitled_sample(folder: Path) -> Path:
    """A copy of the sample with sidecar subtitles written from its facts (the narration, at its times).

    `transcribe` reads sidecar subtitles first, as it would a real video's, so
    these suites do not depend on how well speech recognition hears espeak-ng.
    """
    video = folder / "sample.mp4"
    if not video.exists():
        folder.mkdir(parents=True, exist_ok=True)
        video.write_bytes(SAMPLE.read_bytes())
        cues = [f"{i}\n{_srt_time(s['narration']['start'])} --> {_srt_time(s['narration']['end'])}\n{s['narration']['text']}\n"
                for i, s in enumerate(FACTS["scenes"], start=1)]
        video.with_suffix(".srt").write_text("\n".join(cues), encoding="utf-8")
    return video


def write_suite(path: Path, tasks: list[dict], name: str = "sample-suite") -> Path:
    suite = {
        "suite": name,
        "defaults": {"video": str(subtitled_sample(path.parent / "media")), "tools": ["transcribe"],
                     "budget": {"max_steps": 4, "max_tool_calls": 4, "wall_time_s": 120}},
        "tasks": tasks,
    }
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


@pytest.fixture
def sample_suite(tmp_path) -> Path:
    """8 scripted tasks over the sample (4 'what is said', 4 grounding)."""
    return write_suite(tmp_path / "suite.yaml", scene_tasks())


@pytest.fixture
def facts() -> dict:
    return FACTS
