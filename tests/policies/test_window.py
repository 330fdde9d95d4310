"""The context budget with a real model (SmolLM2): bounded renderings, folds, and context_exhausted.

The session's ``window`` setting caps SmolLM2's 8,192 tokens to 1,024 so the
windows fill in a few cheap steps; the code path is the one every policy runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mcr.agent import Agent
from mcr.context import Answer, Context, Fold, ToolResult
from mcr.policies.base import WindowedPolicy
from mcr.policies.scripted import ScriptedPolicy
from mcr.task import PlanStep
from mcr.model.runtime.loader import WeightsNotFound, load_smollm2
from mcr.model.runtime.session import ContextOverflow, ModelSession
from mcr.policies.offline import OfflinePolicy
from mcr.task import Budget
from mcr.tools.base import Tool, ToolRegistry, tool
from pydantic import BaseModel
from mcr.traces.recorder import read_trace
from mcr.window import ContextExhausted

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from watching import watched  # noqa: E402 - a helper shared with tests/test_long_window.py

WINDOW = 1024


def _lines(topic: str, n: int) -> str:
    return "\n".join(f"[{i * 5.0:.1f}s-{i * 5.0 + 4:.1f}s] the {topic} narrator describes item number {i}"
                     for i in range(n))


class LongTranscript(Tool):
    """A whole-video transcript of 400 lines, summarised one line per segment (as ``transcribe`` does)."""

    name = "long_transcript"
    description = "Read the whole transcript of a long video (hundreds of lines)."

    class Input(BaseModel):
        pass

    class Output(BaseModel):
        text: str

    def run(self, input, ctx):
        return self.Output(text=_lines("river", 400).replace("item number 317", "the lighthouse keeper counting seven ships"))

    def summarize(self, output) -> str:
        return output.text


long_transcript = LongTranscript()


def _notes(name: str):
    @tool(name=name)
    def read_notes() -> str:
        """Read one notebook of measured facts about the video."""
        return _lines(name, 24)

    return read_notes


@pytest.fixture(scope="module")
def smol():
    try:
        return load_smollm2()
    except WeightsNotFound as exc:  # pragma: no cover - the package is a test dependency
        pytest.skip(str(exc))


WatchedPolicy = watched(OfflinePolicy)  # records the prompt it is about to render at every step


def test_a_prompt_head_longer_than_the_window_says_what_takes_the_room(smol, tiny_video, tmp_path):
    policy = OfflinePolicy(ModelSession(smol, window=256))
    agent = Agent(policy=policy, tools=ToolRegistry([_notes(f"notebook_{k}") for k in range(4)]), workdir=tmp_path)
    result = agent.run(tiny_video, "What does the narrator describe?")
    assert result.stop_reason == "context_exhausted"
    assert "the system text, the tool list" in result.stop_detail and "offer fewer tools" in result.stop_detail


def test_a_question_longer_than_the_window_ends_the_episode_with_context_exhausted(smol, tiny_video, tmp_path):
    policy = OfflinePolicy(ModelSession(smol), registry=None)
    agent = Agent(policy=policy, tools=ToolRegistry([long_transcript]), workdir=tmp_path,
                  budget=Budget(max_steps=3, max_tool_calls=2, wall_time_s=600))
    result = agent.run(tiny_video, "0123456789" * 1000)  # 10,000 characters, 10,000 tokens: issue 23's overflow
    assert result.stop_reason == "context_exhausted" and not result.accepted
    assert "shorten the question" in result.stop_detail and "8,192" in result.stop_detail
    end = [e for e in read_trace(result.trace_path) if e["type"] == "episode_end"][-1]
    assert end["stop_reason"] == "context_exhausted"


def test_a_huge_result_enters_as_a_bounded_rendering_with_the_top_match(smol, tiny_video, tmp_path):
    session = ModelSession(smol, window=2 * WINDOW)
    policy = WatchedPolicy(session)
    agent = Agent(policy=policy, tools=ToolRegistry([long_transcript]), workdir=tmp_path,
                  budget=Budget(max_steps=3, max_tool_calls=1, wall_time_s=600))
    result = agent.run(tiny_video, "How many ships does the lighthouse keeper count?", options=["five", "seven"])
    entry = next(e for e in result.context if isinstance(e, ToolResult))
    limit, count = policy.entry_limit()
    assert entry.summary.count("\n") == 399  # the whole text stays in the entry
    assert entry.rendering is not None and count(entry.rendering) <= limit
    assert "lighthouse keeper counting seven ships" in entry.rendering  # the line most like the question
    assert f"of 400 lines shown" in entry.rendering and f"entry {entry.id}'s output" in entry.rendering
    assert policy.budgets and all(b.fits and b.window == 2 * WINDOW for b in policy.budgets)


class MeasuredPlan(ScriptedPolicy):
    """A fixed plan, measured and folded through the offline policy's window logic with SmolLM2's real tokens.

    The plan fixes the calls, so the test is about the window, not about what a 135M model chooses; no
    forward pass runs (only rendering and tokenising), which keeps the test fast.
    """

    def __init__(self, plan, session):
        super().__init__(plan)
        self.window_of = OfflinePolicy(session)
        self.budgets = []

    def fit_context(self, context, tools, step):
        return self.window_of.fit_context(context, tools, step)

    def entry_limit(self):
        return self.window_of.entry_limit()

    def decide(self, context, tools):
        self.budgets.append(self.window_of.prompt_budget(context, tools))
        return super().decide(context, tools)


def test_folds_keep_every_prompt_inside_the_window(smol, tiny_video, tmp_path):
    names = [f"notebook_{k}" for k in range(6)]
    plan = [PlanStep(call=name) for name in names] + [PlanStep(answer="items", evidence=["e3", "e5"])]
    policy = MeasuredPlan(plan, ModelSession(smol, window=2 * WINDOW))
    agent = Agent(policy=policy, tools=ToolRegistry([_notes(name) for name in names]), workdir=tmp_path,
                  budget=Budget(max_steps=8, max_tool_calls=6, wall_time_s=900))
    result = agent.run(tiny_video, "What does the narrator describe?")
    assert isinstance(policy, WindowedPolicy)
    folds = [e for e in result.context if isinstance(e, Fold)]
    assert folds, "six notebooks of ~400 tokens each must fill a 2,048-token window"
    assert len(policy.budgets) >= 7 and all(b.fits for b in policy.budgets), [b.describe() for b in policy.budgets]
    assert max(b.used for b in policy.budgets) > 0.6 * policy.budgets[0].usable  # the window did fill up
    # the folded results are still in the context, whole, and the answer's citations of them resolve
    results = [e for e in result.context if isinstance(e, ToolResult)]
    assert len(results) == 6 and all(r.output["result"].count("\n") == 23 for r in results)
    answer = next(e for e in result.context if isinstance(e, Answer))
    assert answer.refs == ("e3", "e5") and not answer.missing_refs
    # after a fold the prompt shows the kept entries (the opening look, the question, the budget note), the fold
    # and what follows it
    shown = Context(result.context).rendered_entries()
    fold_at = next(i for i, e in enumerate(shown) if isinstance(e, Fold))
    assert [e.id for e in shown[:2]] == ["e0", "e1"] and shown[fold_at] == folds[-1]
    assert all(e.id in folds[-1].kept for e in shown[:fold_at])
    # a replay gets the same folds and renderings back, so it reproduces the episode event by event
    from mcr.replay import replay

    report = replay(result.trace_path, workdir=tmp_path / "replay")
    assert report.divergence is None, report.divergence


def test_the_session_refuses_an_overflow_with_a_typed_error(smol):
    session = ModelSession(smol, window=256)
    messages = [{"role": "user", "content": [{"type": "text", "text": "word " * 400}]}]
    with pytest.raises(ContextOverflow, match="exceeds the model's window of 256") as info:
        session.generate(messages, max_new_tokens=1)
    assert isinstance(info.value, ContextExhausted)
