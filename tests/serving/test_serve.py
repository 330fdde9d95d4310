"""`mcr serve` over the real SmolLM2: cache reuse across requests, routing, errors, limits."""

from __future__ import annotations

import base64
import threading

import httpx
import pytest

from mcr.serving.pool import PoolBusy
from mcr.serving.protocol import ChatRequest, MediaResolver, RequestError, split_tool_calls, to_runtime_messages

SYSTEM = {"role": "system", "content": "You are a concise assistant. Answer in one short sentence."}


def _post(url: str, body: dict, **kw) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120, **kw)


def _ask(url: str, model: str, messages: list[dict], max_tokens: int = 8) -> dict:
    r = _post(url, {"model": model, "messages": messages, "max_tokens": max_tokens})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_continued_conversation_prefills_only_its_delta(served, smollm2):
    url, pool, model = served
    tokenizer = smollm2[0].tokenizer
    first = [SYSTEM, {"role": "user", "content": "Name a colour of the sky on a clear day."}]
    one = _ask(url, model, first)
    reply = one["choices"][0]["message"]["content"]
    assert one["usage"]["prompt_tokens"] > 20 and one["usage"]["completion_tokens"] >= 1

    turn = {"role": "user", "content": "And the colour of grass?"}
    two = _ask(url, model, first + [{"role": "assistant", "content": reply}, turn])
    usage = two["usage"]
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    # Everything the first request prefilled is reused; only the new messages are prefilled.
    assert cached >= one["usage"]["prompt_tokens"]
    def n_tokens(messages, generation_prompt):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    second = first + [{"role": "assistant", "content": reply}, turn]
    delta = n_tokens(second, True) - n_tokens(first, False)  # the reply, the new turn, the generation prompt
    assert usage["prompt_tokens"] == n_tokens(second, True)
    assert two["timings"]["prefilled_tokens"] == usage["prompt_tokens"] - cached
    assert 0 < usage["prompt_tokens"] - cached <= delta


def test_interleaved_conversations_each_return_to_their_session(served):
    url, pool, model = served
    a = [SYSTEM, {"role": "user", "content": "What is two plus two?"}]
    b = [{"role": "system", "content": "You translate English to French."}, {"role": "user", "content": "Good morning"}]
    ra = _ask(url, model, a)
    rb = _ask(url, model, b)
    a2 = a + [{"role": "assistant", "content": ra["choices"][0]["message"]["content"]},
              {"role": "user", "content": "And three plus three?"}]
    b2 = b + [{"role": "assistant", "content": rb["choices"][0]["message"]["content"]},
              {"role": "user", "content": "Good night"}]
    ra2, rb2 = _ask(url, model, a2), _ask(url, model, b2)
    assert ra2["usage"]["prompt_tokens_details"]["cached_tokens"] >= ra["usage"]["prompt_tokens"]
    assert rb2["usage"]["prompt_tokens_details"]["cached_tokens"] >= rb["usage"]["prompt_tokens"]
    slots = httpx.get(f"{url}/v1/slots").json()["slots"]
    assert len(slots) == 2 and all(s["cached_tokens"] > 0 for s in slots)


@pytest.mark.parametrize("body, status, needle", [
    ({"model": "gpt-4", "messages": [SYSTEM]}, 404, "serves 'SmolLM2-135M-Instruct'"),
    ({"model": "SmolLM2-135M-Instruct", "messages": []}, 400, "messages"),
    ({"model": "SmolLM2-135M-Instruct", "messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages.0.role"),
    ({"model": "SmolLM2-135M-Instruct", "messages": [SYSTEM], "stream_options": {"include_usage": True}}, 400,
     "stream_options needs stream: true"),
    ({"model": "SmolLM2-135M-Instruct", "messages": [SYSTEM], "max_tokens": 0}, 400, "max_tokens"),
    ({"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "file:///tmp/x.png"}}]}]}, 400, "text-only"),
])
def test_bad_requests_get_4xx_with_a_message(served, body, status, needle):
    url, _, _ = served
    r = _post(url, body)
    assert r.status_code == status
    assert needle in r.json()["error"]["message"]


def test_a_body_that_is_not_json_is_a_400(served):
    url, _, _ = served
    r = httpx.post(f"{url}/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


def test_models_and_health(served):
    url, _, model = served
    assert [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]] == [model]
    assert httpx.get(f"{url}/health").json()["status"] == "ok"


def test_a_full_queue_gets_503_with_retry_after(smollm2):
    from mcr.serving.app import ServerThread, create_app
    from mcr.serving.pool import SessionPool

    loaded, model = smollm2
    pool = SessionPool(loaded, sessions=1, max_waiting=0)
    prompt = pool.render([{"role": "user", "content": [{"type": "text", "text": "hi"}]}], None)
    with ServerThread(create_app(pool, model)) as url, pool.acquire(prompt):  # the only session is busy
        r = _post(url, {"model": model, "messages": [SYSTEM]})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "busy" in r.json()["error"]["message"]


def test_waiting_requests_queue_then_run(smollm2):
    from mcr.serving.pool import SessionPool

    pool = SessionPool(smollm2[0], sessions=1, max_waiting=1, wait_timeout_s=0.2)
    prompt = pool.render([{"role": "user", "content": [{"type": "text", "text": "hi"}]}], None)
    release, got = threading.Event(), []

    def hold():
        with pool.acquire(prompt):
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    while pool.running == 0:
        pass
    with pytest.raises(PoolBusy, match="within"):  # waited its 0.2 s, no session came free
        with pool.acquire(prompt):
            pass
    pool.wait_timeout_s = 5
    waiter = threading.Thread(target=lambda: got.append(pool.acquire(prompt).__enter__().index))
    waiter.start()
    while pool.waiting == 0:
        pass
    with pytest.raises(PoolBusy, match="busy"):  # one running, one waiting: the queue is full
        with pool.acquire(prompt):
            pass
    release.set()
    holder.join()
    waiter.join()
    assert got == [0]


def test_an_api_key_is_required_when_configured(smollm2):
    from mcr.serving.app import ServerThread, create_app
    from mcr.serving.pool import SessionPool

    loaded, model = smollm2
    app = create_app(SessionPool(loaded, sessions=1), model, api_key="s3cret")
    with ServerThread(app) as url:
        assert _post(url, {"model": model, "messages": [SYSTEM]}).status_code == 401
        wrong = _post(url, {"model": model, "messages": [SYSTEM]}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "API key" in wrong.json()["error"]["message"]
        ok = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_tool_call_blocks_become_openai_tool_calls():
    tools = [{"type": "function", "function": {"name": "transcribe", "parameters": {}}}]
    text = 'Let me listen.<tool_call>{"name": "transcribe", "arguments": {"backend": "auto"}}</tool_call>'
    content, calls = split_tool_calls(text, tools)
    assert content == "Let me listen." and calls[0]["function"]["name"] == "transcribe"
    assert calls[0]["function"]["arguments"] == '{"backend": "auto"}'
    # Unknown tools and broken JSON stay in the text, for the client's parser to explain.
    for bad in ('<tool_call>{"name": "fly"}</tool_call>', "<tool_call>{oops</tool_call>"):
        assert split_tool_calls(bad, tools) == (bad, [])


def test_media_urls_are_resolved_within_the_allowed_paths(tmp_path):
    allowed = tmp_path / "media"
    allowed.mkdir()
    (allowed / "a.png").write_bytes(b"png")
    resolve = MediaResolver([allowed], tmp_path / "store")
    assert resolve((allowed / "a.png").as_uri(), "p") == str((allowed / "a.png").resolve())
    stored = resolve("data:image/png;base64," + base64.b64encode(b"pixels").decode(), "p")
    assert stored.endswith(".png") and open(stored, "rb").read() == b"pixels"
    for url, status, needle in [
        ((tmp_path / "elsewhere.png").as_uri(), 403, "outside the allowed"),
        ("https://example.com/v.mp4", 400, "offline"),
        ("data:image/png;base64,@@@", 400, "does not decode"),
        ((allowed / "missing.png").as_uri(), 400, "not found"),
        ("file:///tmp/a%00b.png", 400, "not a usable path"),  # a NUL byte: was a ValueError from realpath
    ]:
        with pytest.raises(RequestError, match=needle) as info:
            resolve(url, "p")
        assert info.value.status == status


def test_openai_messages_map_to_the_runtime_format(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    request = ChatRequest.model_validate({
        "model": "m", "mm_processor_kwargs": {"fps": 1.0, "max_pixels": 50176, "ignored": 1},
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                                         {"type": "video_url", "video_url": {"url": video.as_uri()}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "1", "type": "function", "function": {"name": "segment", "arguments": '{"mode": "temporal"}'}}]},
            {"role": "tool", "name": "segment", "tool_call_id": "1", "content": "3 shots"},
        ]})
    out = to_runtime_messages(request, MediaResolver([tmp_path], tmp_path / "s"), multimodal=True)
    assert out[0] == {"role": "system", "content": [{"type": "text", "text": "be brief"}]}
    assert out[1]["content"][1] == {"type": "video", "video": str(video.resolve()), "fps": 1.0, "max_pixels": 50176}
    assert out[2]["content"][-1]["text"] == '<tool_call>{"arguments": {"mode": "temporal"}, "name": "segment"}</tool_call>'
    assert out[3] == {"role": "user", "content": [{"type": "text", "text": '<tool_response name="segment">3 shots</tool_response>'}]}
