"""`mcr serve` through the official `openai` client: streaming, structured output, logprobs, refusals.

Everything runs against the real SmolLM2-135M-Instruct (the ``served``
fixture). Model text is never compared to a literal; what is checked is the
protocol (chunks, usage, tool calls, errors), that streamed and non-streamed
greedy replies agree, and that constrained replies parse under their schema.
"""

from __future__ import annotations

import json
import time

import httpx
import jsonschema
import openai
import pytest

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city now.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False}}}
CLOCK = {"type": "function", "function": {
    "name": "get_time", "description": "The local time in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False}}}
ASK = [{"role": "user", "content": "What is the weather like in Paris today?"}]


@pytest.fixture(scope="module")
def client(served):
    url, _, _ = served
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=300)


def _stream(client, model, **kw):
    chunks = list(client.chat.completions.create(model=model, stream=True, **kw))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return chunks, text


def test_a_streamed_reply_equals_the_unstreamed_one_and_ends_with_usage(client, served):
    _, _, model = served
    messages = [{"role": "user", "content": "Name three fruits, separated by commas."}]
    whole = client.chat.completions.create(model=model, messages=messages, max_tokens=12)
    chunks, text = _stream(client, model, messages=messages, max_tokens=12, stream_options={"include_usage": True})
    assert text == whole.choices[0].message.content and len([c for c in chunks if c.choices]) >= 3
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    last = chunks[-1]  # the usage chunk: no choices, the same counts; the prompt was cached by the first call
    assert last.choices == [] and last.usage.completion_tokens == whole.usage.completion_tokens
    assert last.usage.prompt_tokens == whole.usage.prompt_tokens
    assert last.usage.prompt_tokens_details.cached_tokens >= whole.usage.prompt_tokens - 1
    assert all(c.usage is None for c in chunks[:-1])
    # Without include_usage there is no usage chunk.
    plain, _ = _stream(client, model, messages=messages, max_tokens=4)
    assert all(c.usage is None for c in plain) and plain[-1].choices


def test_a_stop_string_is_never_streamed(client, served):
    _, _, model = served
    messages = [{"role": "user", "content": "Count from one to ten in words, separated by commas."}]
    free = client.chat.completions.create(model=model, messages=messages, max_tokens=24).choices[0].message.content
    assert len(free) >= 8, free
    stop = free[len(free) // 2: len(free) // 2 + 3]  # whatever the model writes mid-way
    _, text = _stream(client, model, messages=messages, max_tokens=24, stop=[stop])
    whole = client.chat.completions.create(model=model, messages=messages, max_tokens=24, stop=[stop])
    assert stop not in text and text == whole.choices[0].message.content == free[: free.index(stop)]


def test_a_named_tool_choice_forces_that_call_streamed_and_not(client, served):
    _, _, model = served
    for name in ("get_weather", "get_time"):
        choice = {"type": "function", "function": {"name": name}}
        r = client.chat.completions.create(model=model, messages=ASK, tools=[WEATHER, CLOCK], tool_choice=choice,
                                           max_tokens=48)
        call = r.choices[0].message.tool_calls[0]
        assert r.choices[0].finish_reason == "tool_calls" and call.function.name == name
        args = json.loads(call.function.arguments)
        jsonschema.validate(args, WEATHER["function"]["parameters"])
        chunks, text = _stream(client, model, messages=ASK, tools=[WEATHER, CLOCK], tool_choice=choice, max_tokens=48)
        deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
        assert text == "" and len(deltas) == 1 and deltas[0].index == 0 and deltas[0].id.startswith("call_")
        assert deltas[0].function.name == name and json.loads(deltas[0].function.arguments) == args
        assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_required_tool_choice_calls_a_declared_tool(client, served):
    _, _, model = served
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello!"}],
                                       tools=[WEATHER, CLOCK], tool_choice="required", parallel_tool_calls=False,
                                       max_tokens=48)
    calls = r.choices[0].message.tool_calls
    assert len(calls) == 1 and calls[0].function.name in ("get_weather", "get_time")
    jsonschema.validate(json.loads(calls[0].function.arguments), WEATHER["function"]["parameters"])


def test_a_json_schema_is_honoured(client, served):
    _, _, model = served
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                               "age": {"type": "integer", "minimum": 0, "maximum": 120},
                                               "colours": {"type": "array", "items": {"enum": ["red", "green", "blue"]},
                                                           "maxItems": 2}},
              "required": ["name", "age", "colours"], "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}
    messages = [{"role": "user", "content": "Describe a made-up person."}]
    r = client.chat.completions.create(model=model, messages=messages, response_format=fmt, max_tokens=120)
    assert r.choices[0].finish_reason == "stop", r.choices[0].message.content  # the grammar ended it, not the budget
    jsonschema.validate(json.loads(r.choices[0].message.content), schema)
    _, text = _stream(client, model, messages=messages, response_format=fmt, max_tokens=120)
    assert text == r.choices[0].message.content
    ask = [{"role": "user", "content": 'What is 2+2? Reply as JSON: {"answer": <number>}.'}]
    obj = client.chat.completions.create(model=model, messages=ask, response_format={"type": "json_object"},
                                         max_tokens=80).choices[0]
    assert obj.finish_reason == "stop" and isinstance(json.loads(obj.message.content), dict), obj.message.content


def test_logprobs_are_returned(client, served):
    _, _, model = served
    r = client.chat.completions.create(model=model, messages=ASK, max_tokens=6, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for entry in content:
        assert len(entry.top_logprobs) == 3 and entry.logprob <= 0
        assert entry.top_logprobs[0].token == entry.token  # greedy: the chosen token is the likeliest
        assert [t.logprob for t in entry.top_logprobs] == sorted((t.logprob for t in entry.top_logprobs), reverse=True)
    assert "".join(e.token for e in content) == r.choices[0].message.content
    chunks, _ = _stream(client, model, messages=ASK, max_tokens=6, logprobs=True)
    streamed = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert [e.logprob for e in streamed] == pytest.approx([e.logprob for e in content], abs=1e-4)


@pytest.mark.parametrize("extra, needle", [
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"frequency_penalty": 1.0}, "frequency_penalty"),
    ({"logit_bias": {"42": 5}}, "logit_bias"),
    ({"n": 2}, "n > 1"),
    ({"top_logprobs": 2}, "needs logprobs"),
    ({"reasoning_effort": "high"}, "reasoning_effort"),
    ({"response_format": {"type": "grammar"}}, "response_format type 'grammar'"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "fly"}}}, "'fly'"),
    ({"tool_choice": "required"}, "needs tools"),
    ({"tools": [WEATHER], "tool_choice": "required", "response_format": {"type": "json_object"}}, "one of them"),
])
def test_unsupported_parameters_are_refused_with_a_400(client, served, extra, needle):
    _, _, model = served
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model, messages=ASK, max_tokens=2, **extra)
    assert needle in info.value.body["message"]


def test_unknown_fields_are_refused_and_bookkeeping_is_accepted(served):
    url, _, model = served
    body = {"model": model, "messages": ASK, "max_tokens": 1}
    r = httpx.post(f"{url}/v1/chat/completions", json={**body, "top_k": 5}, timeout=120)
    assert r.status_code == 400 and "top_k is not a field this server knows" in r.json()["error"]["message"]
    ok = httpx.post(f"{url}/v1/chat/completions", json={**body, "user": "u1", "store": False,
                                                        "presence_penalty": 0, "metadata": {"k": "v"}}, timeout=120)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("method, path", [
    ("POST", "/v1/completions"), ("POST", "/v1/responses"), ("POST", "/v1/embeddings"),
    ("POST", "/v1/audio/transcriptions"), ("GET", "/v1/files"),
])
def test_endpoints_not_served_answer_in_openai_error_format(served, method, path):
    url, _, _ = served
    r = httpx.request(method, f"{url}{path}", json={})
    error = r.json()["error"]
    assert r.status_code == 404 and path in error["message"] and "POST /v1/chat/completions" in error["message"]
    assert error["type"] == "not_found"


def test_the_client_library_reports_an_unserved_endpoint(client, served):
    with pytest.raises(openai.NotFoundError, match="chat/completions"):
        client.embeddings.create(model=served[2], input="hello")


def test_a_client_that_disconnects_frees_its_slot(smollm2):
    from mcr.serving.app import ServerThread, create_app
    from mcr.serving.pool import SessionPool

    loaded, model = smollm2
    pool = SessionPool(loaded, sessions=1, max_running=1, max_waiting=0)
    app = create_app(pool, model)
    with ServerThread(app) as url:
        c = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=300)
        stream = c.chat.completions.create(model=model, messages=ASK, max_tokens=2000, stream=True)
        got = [next(stream) for _ in range(3)]  # the role chunk and two tokens: it is decoding
        assert pool.running == 1 and got[0].choices[0].delta.role == "assistant"
        stream.close()  # the client goes away mid-reply
        deadline = time.monotonic() + 60
        while pool.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool.running == 0
        decoded = len(pool.slots[0].session.state.ids)
        # The only slot is free: the next request is served (not 503), and the abandoned one stopped early.
        r = c.chat.completions.create(model=model, messages=ASK, max_tokens=2)
        assert r.choices[0].message.content
        assert app.state.engine.steps < 200 and decoded < 2000
