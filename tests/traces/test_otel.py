"""OpenTelemetry export: GenAI span names, parentage, attributes and times; OTLP file and HTTP."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from mcr.traces import otel  # noqa: E402
from mcr.traces.otel import OtelError, export_otel  # noqa: E402
from mcr.traces.recorder import read_trace  # noqa: E402


@pytest.fixture(scope="module")
def exported(episodes):
    memory = InMemorySpanExporter()
    result = export_otel(episodes["main"], exporter=memory)
    return result, list(memory.get_finished_spans()), read_trace(episodes["main"])


def by_name(spans, name):
    return [s for s in spans if s.name == name]


def test_span_tree_follows_the_genai_conventions(exported):
    result, spans, events = exported
    (root,) = by_name(spans, "invoke_agent mcr")
    assert root.parent is None and root.kind is SpanKind.INTERNAL
    children = [s for s in spans if s is not root]
    assert all(s.parent.span_id == root.context.span_id and s.context.trace_id == root.context.trace_id for s in children)
    assert sorted(s.name for s in children) == sorted(
        ["chat list"] * 4 + ["execute_tool keyframes", "execute_tool outline", "execute_tool keyframes"])
    assert result.spans == 8 and result.trace_id == format(root.context.trace_id, "032x")
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert root.attributes["gen_ai.agent.name"] == "mcr"
    assert root.attributes["gen_ai.conversation.id"] == "viewer-main"
    assert root.attributes["mcr.answer"] == "seven" and root.attributes["mcr.accepted"] is True
    assert root.status.status_code is StatusCode.UNSET and "error.type" not in root.attributes


def test_chat_spans_carry_token_usage_and_times(exported):
    _, spans, events = exported
    calls = [e for e in events if e["type"] == "model_call"]
    chats = sorted(by_name(spans, "chat list"), key=lambda s: s.end_time)
    for span, event in zip(chats, calls, strict=True):
        usage = event["usage"]
        assert span.kind is SpanKind.CLIENT
        assert span.attributes["gen_ai.operation.name"] == "chat"
        assert span.attributes["gen_ai.request.model"] == "list"
        assert span.attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
        assert span.attributes["gen_ai.usage.output_tokens"] == usage["generated_tokens"]
        assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == usage["cached_tokens"]
        assert span.attributes["mcr.usage.prefilled_tokens"] == usage["prefilled_tokens"]
        assert span.end_time == round(event["t"] * 1e9)
        assert "gen_ai.output.messages" not in span.attributes  # content is opt-in


def test_tool_spans_name_the_call_and_record_failures(exported):
    _, spans, events = exported
    calls = {e["call_id"]: e for e in events if e["type"] == "tool_call"}
    tools = {s.attributes["gen_ai.tool.call.id"]: s for s in spans if s.name.startswith("execute_tool")}
    assert set(tools) == set(calls) == {"e3", "e6", "e7"}
    ok, failed = tools["e6"], tools["e7"]
    assert ok.attributes["gen_ai.operation.name"] == "execute_tool" and ok.attributes["gen_ai.tool.name"] == "outline"
    assert ok.attributes["gen_ai.tool.type"] == "function" and "error.type" not in ok.attributes
    assert (ok.end_time - ok.start_time) / 1e9 == pytest.approx(calls["e6"]["duration_s"], abs=1e-6)
    assert failed.attributes["error.type"] == "invalid_arguments"
    assert failed.status.status_code is StatusCode.ERROR and "integer" in failed.status.description


def test_children_lie_within_the_episode_span(exported):
    _, spans, events = exported
    (root,) = by_name(spans, "invoke_agent mcr")
    assert root.start_time == round(events[0]["t"] * 1e9) and root.end_time == round(events[-1]["t"] * 1e9)
    assert all(root.start_time <= s.start_time <= s.end_time <= root.end_time for s in spans)


def test_attribute_names_match_the_installed_semantic_conventions():
    gen_ai = pytest.importorskip("opentelemetry.semconv._incubating.attributes.gen_ai_attributes")
    from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

    pairs = {
        otel.OPERATION: gen_ai.GEN_AI_OPERATION_NAME, otel.AGENT_NAME: gen_ai.GEN_AI_AGENT_NAME,
        otel.AGENT_ID: gen_ai.GEN_AI_AGENT_ID, otel.CONVERSATION_ID: gen_ai.GEN_AI_CONVERSATION_ID,
        otel.PROVIDER: gen_ai.GEN_AI_PROVIDER_NAME, otel.REQUEST_MODEL: gen_ai.GEN_AI_REQUEST_MODEL,
        otel.INPUT_TOKENS: gen_ai.GEN_AI_USAGE_INPUT_TOKENS, otel.OUTPUT_TOKENS: gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS,
        otel.CACHE_READ_TOKENS: gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        otel.OUTPUT_MESSAGES: gen_ai.GEN_AI_OUTPUT_MESSAGES, otel.TOOL_NAME: gen_ai.GEN_AI_TOOL_NAME,
        otel.TOOL_CALL_ID: gen_ai.GEN_AI_TOOL_CALL_ID, otel.TOOL_TYPE: gen_ai.GEN_AI_TOOL_TYPE,
        otel.TOOL_ARGUMENTS: gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS, otel.TOOL_RESULT: gen_ai.GEN_AI_TOOL_CALL_RESULT,
        otel.ERROR_TYPE: ERROR_TYPE,
    }
    assert all(ours == theirs for ours, theirs in pairs.items()), pairs
    values = {v.value for v in gen_ai.GenAiOperationNameValues}
    assert {"invoke_agent", "chat", "execute_tool"} <= values


def test_content_is_exported_only_when_asked(episodes):
    memory = InMemorySpanExporter()
    export_otel(episodes["main"], exporter=memory, include_content=True)
    spans = memory.get_finished_spans()
    chat = next(s for s in spans if s.name.startswith("chat"))
    messages = json.loads(chat.attributes["gen_ai.output.messages"])
    assert messages[0]["role"] == "assistant" and messages[0]["parts"][0]["content"].startswith("<tool_call>")
    tool = next(s for s in spans if s.attributes.get("gen_ai.tool.call.id") == "e6")
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"span": {"start": 6.0, "end": 12.0}}
    assert json.loads(tool.attributes["gen_ai.tool.call.result"])["overlay"].endswith(".png")


def test_ids_are_stable_across_exports(episodes):
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    a, b = export_otel(episodes["main"], exporter=first), export_otel(episodes["main"], exporter=second)
    assert a.trace_id == b.trace_id
    assert [s.context.span_id for s in first.get_finished_spans()] == [s.context.span_id for s in second.get_finished_spans()]
    other = export_otel(episodes["variant"], exporter=InMemorySpanExporter())
    assert other.trace_id != a.trace_id


def test_unfinished_or_unanswered_episodes_mark_the_agent_span(episodes, tmp_path):
    events = read_trace(episodes["main"])
    trace = tmp_path / "cut.jsonl"
    trace.write_text("".join(json.dumps(e) + "\n" for e in events[:-1]))  # killed before episode_end
    memory = InMemorySpanExporter()
    export_otel(trace, exporter=memory)
    root = next(s for s in memory.get_finished_spans() if s.parent is None)
    assert root.attributes["error.type"] == "interrupted" and root.status.status_code is StatusCode.ERROR
    events[-1].update(stop_reason="max_steps", accepted=False, answer=None, option=None)
    trace.write_text("".join(json.dumps(e) + "\n" for e in events))
    memory = InMemorySpanExporter()
    export_otel(trace, exporter=memory)
    root = next(s for s in memory.get_finished_spans() if s.parent is None)
    assert root.attributes["error.type"] == "max_steps" and root.attributes["mcr.accepted"] is False


def test_a_policy_without_usage_still_exports(episodes, tmp_path):
    events = read_trace(episodes["main"])
    for event in events:
        if event["type"] == "model_call":
            event["usage"] = {"prompt_tokens": None} if event["step"] == 1 else {}  # scripted policies report nothing
    trace = tmp_path / "scripted.jsonl"
    trace.write_text("".join(json.dumps(e) + "\n" for e in events))
    memory = InMemorySpanExporter()
    export_otel(trace, exporter=memory)
    chats = [s for s in memory.get_finished_spans() if s.name == "chat list"]
    assert len(chats) == 4 and not any("gen_ai.usage.input_tokens" in s.attributes for s in chats)  # unknown, not 0
    assert all(s.start_time < s.end_time for s in chats)  # no latency: the call spans from the previous event


def test_file_export_writes_otlp_json(episodes, tmp_path):
    out = tmp_path / "otlp" / "spans.json"
    result = export_otel(episodes["main"], file=out)
    data = json.loads(out.read_text())
    spans = data["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert len(spans) == 8 and {s["traceId"] for s in spans} == {result.trace_id}
    root = next(s for s in spans if "parentSpanId" not in s)
    assert root["name"] == "invoke_agent mcr" and len(root["spanId"]) == 16
    assert all(s["parentSpanId"] == root["spanId"] for s in spans if s is not root)
    tool = next(s for s in spans if s["name"] == "execute_tool outline")
    attrs = {a["key"]: a["value"] for a in tool["attributes"]}
    assert attrs["gen_ai.tool.name"] == {"stringValue": "outline"} and tool["kind"] == 1  # SPAN_KIND_INTERNAL


class Collector(BaseHTTPRequestHandler):
    """A minimal OTLP/HTTP collector: decodes what it receives."""

    received: list[tuple[str, str, bytes]] = []
    status = 200

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, self.headers["Content-Type"], body))
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(Collector.status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture()
def collector():
    Collector.received, Collector.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_spans_reach_an_otlp_http_collector(episodes, collector):
    result = export_otel(episodes["main"], endpoint=collector)
    ((path, content_type, body),) = Collector.received
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    spans = request.resource_spans[0].scope_spans[0].spans
    assert sorted(s.name for s in spans)[0] == "chat list" and len(spans) == result.spans == 8
    assert {s.trace_id.hex() for s in spans} == {result.trace_id}


def test_a_refusing_collector_is_a_clear_error(episodes, collector):
    Collector.status = 400
    with pytest.raises(OtelError, match=r"did not accept the spans"):
        export_otel(episodes["main"], endpoint=collector + "/v1/traces", timeout_s=2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "nothing to export to"),
        ({"endpoint": "localhost:4318"}, "not an http"),
    ],
)
def test_bad_destinations_are_refused(episodes, kwargs, match):
    with pytest.raises(OtelError, match=match):
        export_otel(episodes["main"], **kwargs)


def test_a_missing_trace_is_refused(tmp_path):
    with pytest.raises(OtelError, match="does not exist"):
        export_otel(tmp_path / "none.jsonl", file=tmp_path / "x.json")
