"""Issue 22's window test: a two-hour video, the offline policy (SmolLM2) and the tiny InternVideo3 model,
and the prompt at every step inside the model's window — with the frames decoded a small share of the video's.

The video is generated cheaply (320x180, one frame a second, silent, a scene a minute, a word on screen
once; ~13 s to write). The episodes run the real tools, so on two busy cores they take minutes: slow.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mcr.agent import Agent
from mcr.context import Observation, ToolCall
from mcr.model.media.video import frames_decoded
from mcr.task import Budget
from mcr.tools import builtin_registry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from long_media import NEEDLE_WORD, write_long_video  # noqa: E402
from watching import watched  # noqa: E402

pytestmark = pytest.mark.slow

TOOLS = ["overview", "ground", "skim", "focus", "transcribe", "search"]
QUESTION = "Which word is written on screen in the middle of the video?"
OPTIONS = [NEEDLE_WORD, "STATION", "GARDEN"]


@pytest.fixture(scope="module")
def two_hours(tmp_path_factory) -> Path:
    return write_long_video(tmp_path_factory.mktemp("long") / "two_hours.mp4", minutes=120)




def run(policy, video: Path, workdir: Path, steps: int):
    agent = Agent(policy=policy, tools=builtin_registry().subset(TOOLS), workdir=workdir,
                  budget=Budget(max_steps=steps, max_tool_calls=steps, wall_time_s=3600, max_frames=400))
    before = frames_decoded()
    result = agent.run(video, QUESTION, options=OPTIONS)
    return result, frames_decoded() - before


def test_the_offline_policy_on_two_hours_stays_in_its_window(two_hours, tmp_path):
    from mcr.model.runtime.loader import load_smollm2
    from mcr.model.runtime.session import ModelSession
    from mcr.policies.offline import OfflinePolicy

    policy = watched(OfflinePolicy)(ModelSession(load_smollm2()))
    result, decoded = run(policy, two_hours, tmp_path, steps=6)
    assert policy.budgets and all(b.fits for b in policy.budgets), [b.describe() for b in policy.budgets]
    assert all(b.window == 8192 for b in policy.budgets)
    called = [e.tool for e in result.context if isinstance(e, ToolCall)]
    assert called[0] == "overview" and not {"summarize", "segment"} & set(called)
    assert all(e.arguments for e in result.context if isinstance(e, ToolCall) and e.tool == "transcribe")
    assert decoded < 0.1 * 7200  # never a full decode at 1 fps: a tenth of the frames at most (seeks included)


def test_the_tiny_internvideo3_on_two_hours_stays_in_its_window(two_hours, tmp_path):
    from mcr.model.runtime.loader import load_model
    from mcr.model.runtime.session import ModelSession
    from mcr.model.runtime.tiny import save_tiny_qwen3vl
    from mcr.policies.internvideo3 import InternVideo3Policy

    loaded = load_model(save_tiny_qwen3vl(tmp_path / "tiny"), dtype="float32", device_map="cpu")
    policy = watched(InternVideo3Policy)(ModelSession(loaded, max_new_tokens=8), on_invalid="answer",
                                        max_invalid_outputs=2)
    result, decoded = run(policy, two_hours, tmp_path, steps=3)
    assert policy.budgets and all(b.fits for b in policy.budgets), [b.describe() for b in policy.budgets]
    opening = next(e for e in result.context if isinstance(e, Observation))
    assert opening.video.max_frames == 64  # the whole two hours at a fixed cost
    assert decoded < 0.1 * 7200
