"""Tools' side queries continue the policy's prompt (issue 12, defect 1).

An InternVideo3-policy episode on the tiny Qwen3-VL with a real video calls
model-backed tools. Their forks must reuse the whole main-session prompt that
precedes the side question, because the graph hands them the policy's own
prompt head (system text with the reply format, tool schemas); and what the
fork computes must equal a fresh full prefill of the same messages.
"""

from __future__ import annotations

import pytest
import torch

from mcr.agent import Agent
from mcr.context import Context
from mcr.model.runtime.loader import load_model
from mcr.model.runtime.session import ModelSession
from mcr.policies.base import CallRequest, FinalAnswer, ToolCalls
from mcr.policies.internvideo3 import InternVideo3Policy
from mcr.task import Budget, VideoSettings
from mcr.tools.base import ToolContext, ToolRegistry, tool
from mcr.tools.ground import GroundTool

SMALL_VIDEO = VideoSettings(fps=2.0, min_pixels=64 * 64, max_pixels=96 * 64)
SIDE_QUESTION = "Is there a ship in the video? Answer yes or no."
# Measured: the fork's logits match a fresh prefill to ~2e-7 here; 1e-4 is the bound.
LOGIT_TOLERANCE = 1e-4

captured: dict[str, object] = {}


@tool
def side_look(ctx: ToolContext) -> str:
    """Ask the episode's model a side question (a test tool that records what the fork computed)."""
    fork = ctx.fork("side_look")
    messages = ctx.model.messages(ctx.context, SIDE_QUESTION)
    captured["logits"] = fork.next_token_logits(messages, ctx.model.head.tools)
    captured["usage"] = fork.last_usage
    captured["messages"], captured["tools"] = messages, ctx.model.head.tools
    return "looked"


class CallsThenAnswers(InternVideo3Policy):
    """The real policy (its prompt, its generation into the main session), with the calls fixed.

    A random tiny model cannot be relied on to ask for these tools, so after it
    has generated its turn (filling the main cache exactly as in any episode)
    the decision is replaced by a planned one.
    """

    plan = [
        ToolCalls(calls=(CallRequest(tool="side_look"),)),
        ToolCalls(calls=(CallRequest(tool="ground", arguments={"query": "a ship", "backend": "model"}),)),
        FinalAnswer(text="done"),
    ]

    def decide(self, context: Context, tools):
        real = super().decide(context, tools)
        step = sum(1 for e in context if e.kind in ("tool_call", "answer"))
        return self.plan[min(step, len(self.plan) - 1)].model_copy(update={"usage": real.usage})


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    return load_model(tiny_checkpoint, dtype="float32")


def _preceding_tokens(session: ModelSession, messages, tools) -> int:
    """Tokens of the side prompt that come before the side question (the main prompt's part)."""
    with_q = session.render(messages, tools).ids
    without_q = session.render(messages[:-1], tools).ids
    n = 0
    while n < min(len(with_q), len(without_q)) and with_q[n] == without_q[n]:
        n += 1
    return n


def test_tool_forks_reuse_the_policy_prompt_and_match_a_full_prefill(tiny, tiny_video, tmp_path):
    session = ModelSession(tiny, max_new_tokens=4)
    registry = ToolRegistry([side_look, GroundTool])
    agent = Agent(policy=CallsThenAnswers(session, registry=registry), tools=registry,
                  budget=Budget(max_steps=4, max_tool_calls=4, wall_time_s=300), workdir=tmp_path,
                  video_settings=SMALL_VIDEO, verify=None)
    result = agent.run(tiny_video, "What sails past?")
    assert [e.tool for e in result.context if e.kind == "tool_result"] == ["side_look", "ground"]

    # The custom tool's fork: reuse covers the whole preceding prompt; logits equal a fresh prefill.
    usage, messages, tools = captured["usage"], captured["messages"], captured["tools"]
    preceding = _preceding_tokens(session, messages, tools)
    assert preceding > 100  # the video is in it
    assert usage.reused_tokens >= 0.95 * preceding, (usage, preceding)
    fresh = ModelSession(tiny).next_token_logits(messages, tools)
    assert float((captured["logits"] - fresh).abs().max()) <= LOGIT_TOLERANCE

    # The real model-backed tool (ground, backend=model) reuses as much through the same seam.
    ground = next(e for e in result.context if e.kind == "tool_result" and e.tool == "ground")
    used = ground.output["model_usage"]
    at_call = Context(list(result.context)[: int(ground.refs[0][1:]) + 1])  # the context the tool saw
    side = agent.deps.model.messages(at_call, "?")
    preceding = _preceding_tokens(session, side, agent.deps.model.head.tools)
    assert used["reused_tokens"] >= 0.95 * preceding, (used, preceding)


def test_a_text_only_model_is_not_asked_about_pixels(tmp_path):
    """Grounding asks for times in the video: only a model that sees frames may answer it."""
    from mcr.context import Instruction, VideoRef
    from mcr.tools.side import EpisodeModel, NoModelError

    class TextOnly:
        class loaded:
            multimodal = False

        def fork(self):  # pragma: no cover - must never be reached
            raise AssertionError("a text-only session was forked for a question about pixels")

    ctx = Context()
    ctx.append(Instruction(text="When is the ship?", video=VideoRef(path="v.mp4", duration=10.0)))
    tc = ToolContext(context=ctx, video=VideoRef(path="v.mp4", duration=10.0), workdir=tmp_path,
                     model=EpisodeModel(TextOnly()))
    with pytest.raises(NoModelError, match="sees frames"):
        GroundTool().run(GroundTool.Input(query="the ship", backend="model"), tc)
    assert not tc.sees_pixels and tc.has_model


@tool
def exhaust_memory() -> str:
    """A model-backed tool whose allocation fails (as torch's allocators fail: a RuntimeError subclass)."""
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


class CallsExhaust(InternVideo3Policy):
    def decide(self, context: Context, tools):
        real = super().decide(context, tools)
        return ToolCalls(calls=(CallRequest(tool="exhaust_memory"),), usage=real.usage)


def test_out_of_memory_in_a_tool_raises_frees_the_cache_and_keeps_the_checkpoint(tiny, tiny_video, tmp_path):
    session = ModelSession(tiny, max_new_tokens=2)
    registry = ToolRegistry([exhaust_memory])
    agent = Agent(policy=CallsExhaust(session, registry=registry), tools=registry, workdir=tmp_path,
                  budget=Budget(max_steps=3, max_tool_calls=3, wall_time_s=300), video_settings=SMALL_VIDEO)
    with pytest.raises(torch.OutOfMemoryError):
        agent.run(tiny_video, "What sails past?")
    assert session.cached_tokens == 0 and session.cache.get_seq_length() == 0  # freed, not left half-used
    state = agent.state(agent.last_thread_id)  # the checkpoint holds the episode up to the failed call
    kinds = [e["kind"] for e in state["entries"]]
    assert kinds[-1] == "tool_call" and "tool_error" not in kinds  # not swallowed as a crashed tool
