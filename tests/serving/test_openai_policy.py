"""The OpenAI-compatible policy: a full episode against `mcr serve` (real SmolLM2), and every failure path."""

from __future__ import annotations

import socket

import pytest

from mcr.context import Context, Instruction, Observation, TimeSpan, VideoRef
from mcr.policies.base import FinalAnswer, InvalidOutput, ToolCalls
from mcr.policies.openai import OpenAIPolicy, OpenAISettings
from mcr.policies.openai_http import AuthFailed, MalformedReply, ModelNotFound, ServerTimeout, ServerUnreachable
from mcr.tools.base import ToolRegistry

from .conftest import chat_reply


def _policy(url: str, model: str = "stub-model", **kw) -> OpenAIPolicy:
    settings = {"base_url": url, "model": model, "backoff_s": 0.01, "max_retries": 1, **kw}
    return OpenAIPolicy(OpenAISettings(**settings))


def _context(video: str, question: str = "How long is the video?", span: TimeSpan | None = None) -> Context:
    ctx = Context()
    ref = VideoRef(path=video, duration=24.0)
    ctx.append(Observation(video=ref, span=span or TimeSpan(start=0, end=24), text="the video"))
    ctx.append(Instruction(text=question, video=ref))
    return ctx


def test_a_full_episode_against_mcr_serve(openai_episodes):
    for result, usages in openai_episodes:
        assert result.stop_reason in ("answered", "max_steps", "policy_error"), result.stop_detail
        assert usages and all(u["prompt_tokens"] > 100 and u["generated_tokens"] >= 1 for u in usages)
        assert all(u["raw_output"] for u in usages)
    first, second = openai_episodes[0][1][0], openai_episodes[1][1][0]
    assert first["prefilled_tokens"] + first["reused_tokens"] == first["prompt_tokens"]
    # The server's cached_tokens: the shared system prompt and tool schemas were not prefilled again.
    assert second["reused_tokens"] > 200 and second["prefilled_tokens"] < first["prefilled_tokens"]


def test_a_bad_key_and_an_unknown_model_are_named(smollm2, served, monkeypatch):
    from mcr.serving.app import ServerThread, create_app
    from mcr.serving.pool import SessionPool

    url, _, model = served
    with pytest.raises(ModelNotFound, match="it serves: SmolLM2-135M-Instruct"):
        _policy(f"{url}/v1", "qwen3-vl-8b", media="text").decide(_context("x.mp4"), [])
    loaded, _ = smollm2
    monkeypatch.setenv("MCR_TEST_KEY", "wrong")
    with ServerThread(create_app(SessionPool(loaded, sessions=1), model, api_key="right")) as keyed:
        policy = _policy(f"{keyed}/v1", model, api_key_env="MCR_TEST_KEY", media="text")
        with pytest.raises(AuthFailed, match="refused the API key"):
            policy.decide(_context("x.mp4"), [])
    with pytest.raises(Exception, match="not set"):
        _policy(url, model, api_key_env="MCR_TEST_KEY_UNSET")


def test_an_unreachable_server_is_retried_then_named():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    policy = _policy(f"http://127.0.0.1:{port}/v1", max_retries=2, media="text")
    with pytest.raises(ServerUnreachable, match=f"127.0.0.1:{port}.*after 3 attempts"):
        policy.decide(_context("x.mp4"), [])
    assert policy.client.attempts == 3


def test_a_server_that_does_not_answer_in_time(stub):
    server = stub([(200, chat_reply("late"), 2.0)])
    policy = _policy(server.url, timeout_s=0.3, max_retries=1, media="text")
    with pytest.raises(ServerTimeout, match="did not answer within"):
        policy.decide(_context("x.mp4"), [])
    assert len(server.requests) == 2


@pytest.mark.parametrize("body, needle", [(b"<html>oops", "not JSON"), ({"choices": []}, "not a chat completion")])
def test_a_malformed_reply(stub, body, needle):
    server = stub([(200, body, 0.0)])
    with pytest.raises(MalformedReply, match=needle):
        _policy(server.url, media="text").decide(_context("x.mp4"), [])


def test_busy_is_retried_and_usage_read_from_the_reply(stub):
    usage = {"prompt_tokens": 900, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 850}}
    server = stub([(503, {"error": {"message": "busy"}}, 0.0), (200, chat_reply("<answer>24 seconds</answer>", usage=usage), 0.0)])
    policy = _policy(server.url, media="text")
    decision = policy.decide(_context("x.mp4"), [])
    assert isinstance(decision, FinalAnswer) and decision.text == "24 seconds"
    assert policy.client.attempts == 2
    u = policy.last_usage
    assert (u.prompt_tokens, u.reused_tokens, u.prefilled_tokens, u.generated_tokens) == (900, 850, 50, 7)


def test_native_tool_calls_are_validated_by_the_local_parser(stub):
    from mcr.tools.probe import VideoInfoTool

    registry = ToolRegistry([VideoInfoTool])
    tools = registry.schemas()
    call = {"id": "1", "type": "function", "function": {"name": "video_info", "arguments": "{}"}}
    bad = {"id": "2", "type": "function", "function": {"name": "video_info", "arguments": '{"nope": 1}'}}
    server = stub([(200, chat_reply("I will probe.", [call]), 0.0), (200, chat_reply(None, [bad]), 0.0)])
    policy = OpenAIPolicy(OpenAISettings(base_url=server.url, model="m", media="text"), registry=registry)
    decision = policy.decide(_context("x.mp4"), tools)
    assert isinstance(decision, ToolCalls) and decision.calls[0].tool == "video_info"
    assert decision.thought == "I will probe."
    assert server.requests[0]["tools"] == tools
    invalid = policy.decide(_context("x.mp4"), tools)
    assert isinstance(invalid, InvalidOutput) and "nope" in invalid.error


def test_a_server_without_native_tools_falls_back_to_text(stub):
    refuse = {"error": {"message": '"auto" tool choice requires --enable-auto-tool-choice'}}
    text_call = '<tool_call>{"name": "video_info", "arguments": {}}</tool_call>'
    server = stub([(400, refuse, 0.0), (200, chat_reply(text_call), 0.0), (200, chat_reply(text_call), 0.0)])
    from mcr.tools.probe import VideoInfoTool

    tools = ToolRegistry([VideoInfoTool]).schemas()
    policy = _policy(server.url, media="text")
    assert isinstance(policy.decide(_context("x.mp4"), tools), ToolCalls)
    assert "tools" in server.requests[0] and "tools" not in server.requests[1]
    system = " ".join(p["text"] for p in server.requests[1]["messages"][0]["content"])
    assert "<tools>" in system and '"video_info"' in system
    policy.decide(_context("x.mp4"), tools)  # later turns go straight to text
    assert len(server.requests) == 3 and "tools" not in server.requests[2]


def test_video_goes_as_video_url_and_spans_as_frames(sample_with_subtitles):
    video = str(sample_with_subtitles.resolve())
    policy = _policy("http://127.0.0.1:9/v1", max_frames=4)
    whole = policy.request_messages(_context(video), [])
    part = whole[1]["content"][0]
    assert part == {"type": "video_url", "video_url": {"url": sample_with_subtitles.resolve().as_uri()}}
    assert policy._video_settings == {"fps": 2.0, "min_pixels": 64 * 28 * 28, "max_pixels": 256 * 28 * 28}
    span = policy.request_messages(_context(video, span=TimeSpan(start=6.0, end=12.0)), [])[1]["content"]
    images = [p for p in span if p["type"] == "image_url"]
    stamps = [p["text"] for p in span if p["type"] == "text" and p["text"].endswith("seconds>")]
    assert len(images) == 4 and images[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert stamps == ["<6.8 seconds>", "<8.2 seconds>", "<9.8 seconds>", "<11.2 seconds>"]
    text_only = _policy("http://127.0.0.1:9/v1", media="text")
    assert text_only.request_messages(_context(video), [])[1]["content"][0] == {"type": "text", "text": "[video sample.mp4 0.0s-24.0s]"}
    assert not text_only.sees_pixels


def test_bad_settings_name_the_key():
    from mcr.policies.factory import PolicyUnavailable, build_policy
    from mcr.task import TaskSpec

    task = TaskSpec.model_validate({"video": "x.mp4", "question": "q", "policy": {
        "name": "openai", "settings": {"base_url": "http://h/v1", "model": "m", "timeout": 3}}})
    with pytest.raises(PolicyUnavailable, match="timeout: Extra inputs"):
        build_policy(task, ToolRegistry())
