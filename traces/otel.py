"""Export an episode trace as OpenTelemetry spans, following the GenAI semantic conventions.

    from mcr.traces.otel import export_otel
    export_otel("run.jsonl", endpoint="http://localhost:4318")   # any OTLP/HTTP collector
    export_otel("run.jsonl", file="run.otlp.json")              # OTLP/JSON, for later upload

Off by default: nothing is exported unless this is called. It works from the
JSONL trace after the fact (not live instrumentation), so a trace from any
machine can be shipped to Jaeger, Tempo, Langfuse, Phoenix… later, and the
episode's own clock is kept: every span takes its start and end times from the
trace's events.

Span tree (names and attributes as the GenAI conventions say)::

    invoke_agent {agent}            the episode        gen_ai.operation.name=invoke_agent
    ├── chat {model}                one per model_call gen_ai.usage.input_tokens/output_tokens,
    │                                                  gen_ai.usage.cache_read.input_tokens (reused)
    └── execute_tool {tool}         one per tool_call  gen_ai.tool.name, gen_ai.tool.call.id,
                                                       error.type when the call failed

Events record when a node finished, so a span ends at its event's time and
starts ``latency_s`` (model) or ``duration_s`` (tool) earlier. Span and trace
ids are derived from the thread id and start time, so exporting the same trace
twice gives the same ids and a backend de-duplicates instead of doubling it.
Message content (raw model output, tool arguments and results) is opt-in
(``include_content=True``), as the conventions require.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import random
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from mcr.traces.view import ViewerError, load_events

# Attribute names, as in opentelemetry-semantic-conventions (gen_ai_attributes, error_attributes);
# tests/traces/test_otel.py checks them against the installed package.
OPERATION = "gen_ai.operation.name"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
CONVERSATION_ID = "gen_ai.conversation.id"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
ERROR_TYPE = "error.type"

_USAGE_ATTRIBUTES = {INPUT_TOKENS: "prompt_tokens", OUTPUT_TOKENS: "generated_tokens", CACHE_READ_TOKENS: "cached_tokens",
                     "mcr.usage.prefilled_tokens": "prefilled_tokens", "mcr.usage.scored_tokens": "scored_tokens",
                     "mcr.cache_bytes": "cache_bytes"}

DEFAULT_AGENT = "mcr"
PROVIDER_NAME = "mcr"  # the model runs in our own runtime, not behind a vendor API


class OtelError(ValueError):
    """The export cannot be done: no destination, a bad trace, or the collector refused it."""


class OtelExport(BaseModel):
    """What was exported."""

    trace_id: str  # 32 hex digits
    spans: int
    endpoint: str | None = None
    file: Path | None = None


def _sdk():
    try:
        from opentelemetry import trace as api
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from opentelemetry.sdk.trace.id_generator import IdGenerator
    except ImportError as exc:
        raise OtelError(f"OpenTelemetry export needs the otel extra: pip install 'internvideo3-mcr[otel]' ({exc})") from None
    return api, Resource, TracerProvider, SimpleSpanProcessor, InMemorySpanExporter, IdGenerator


def _ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


def _model_name(start: dict[str, Any], usage: dict[str, Any]) -> str:
    """The model a call used: reported by the policy, else named in the task, else the policy's name."""
    if usage.get("model"):
        return str(usage["model"])
    settings = (((start.get("task") or {}).get("spec") or {}).get("policy") or {}).get("settings") or {}
    for key in ("model", "model_path", "model_id"):
        if settings.get(key):
            return str(settings[key])
    return str(start.get("policy") or "unknown")


def build_spans(events: list[dict[str, Any]], agent: str = DEFAULT_AGENT, include_content: bool = False,
                service_name: str = "internvideo3-mcr") -> list[Any]:
    """The episode's spans (SDK ReadableSpans, root last), built from its trace events."""
    api, Resource, TracerProvider, SimpleSpanProcessor, InMemorySpanExporter, IdGenerator = _sdk()
    start = events[0]
    thread = str(start.get("thread_id", ""))
    if not isinstance(start.get("t"), (int, float)):
        raise OtelError("the trace's episode_start has no time 't'; is it an MCR trace?")
    seed = int.from_bytes(hashlib.sha256(f"{thread}|{start.get('t')}".encode()).digest()[:8], "big")

    class SeededIds(IdGenerator):
        rng = random.Random(seed)

        def generate_span_id(self) -> int:
            return self.rng.getrandbits(64) or 1

        def generate_trace_id(self) -> int:
            return self.rng.getrandbits(128) or 1

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}), id_generator=SeededIds())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("mcr.traces.otel")

    end = next((e for e in reversed(events) if e.get("type") == "episode_end"), None)
    root = tracer.start_span(f"invoke_agent {agent}", kind=api.SpanKind.INTERNAL, start_time=_ns(start["t"]), attributes={
        OPERATION: "invoke_agent", AGENT_NAME: agent, AGENT_ID: thread, CONVERSATION_ID: thread, PROVIDER: PROVIDER_NAME,
        REQUEST_MODEL: _model_name(start, {}), "mcr.policy": str(start.get("policy", "")),
        "mcr.question": str((start.get("task") or {}).get("question", "")), "mcr.video.sha256": str(start.get("video_sha256") or ""),
    })
    parent = api.set_span_in_context(root)
    errors = {e["entry"]["refs"][0]: e["entry"]["error_type"] for e in events
              if e.get("type") == "entry" and e["entry"].get("kind") == "tool_error" and e["entry"].get("refs")}
    previous_t = start["t"]
    for event in events[1:]:
        kind, t = event.get("type"), float(event.get("t", previous_t))
        if kind == "model_call":
            usage = event.get("usage") or {}
            model = _model_name(start, usage)
            latency = float(usage.get("latency_s") or 0.0)
            attributes = {OPERATION: "chat", PROVIDER: PROVIDER_NAME, REQUEST_MODEL: model, CONVERSATION_ID: thread,
                          "mcr.step": int(event.get("step", 0))}
            # Only what the policy reported: a scripted plan has no tokens, and 0 would be a false claim.
            attributes.update({name: int(usage[key]) for name, key in _USAGE_ATTRIBUTES.items() if usage.get(key) is not None})
            if include_content and usage.get("raw_output") is not None:
                attributes[OUTPUT_MESSAGES] = json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": usage["raw_output"]}]}])
            began = max(t - latency, start["t"]) if latency else previous_t  # never before the episode
            span = tracer.start_span(f"chat {model}", context=parent, kind=api.SpanKind.CLIENT,
                                     start_time=_ns(began), attributes=attributes)
            span.end(end_time=_ns(t))
        elif kind == "tool_call":
            tool, call_id = str(event.get("tool")), str(event.get("call_id"))
            attributes = {OPERATION: "execute_tool", TOOL_NAME: tool, TOOL_CALL_ID: call_id, TOOL_TYPE: "function",
                          CONVERSATION_ID: thread, "mcr.step": int(event.get("step", 0))}
            if include_content:
                attributes[TOOL_ARGUMENTS] = json.dumps(event.get("input"))
                if event.get("output") is not None:
                    attributes[TOOL_RESULT] = json.dumps(event["output"])
            span = tracer.start_span(f"execute_tool {tool}", context=parent, kind=api.SpanKind.INTERNAL,
                                     start_time=_ns(max(t - float(event.get("duration_s") or 0.0), start["t"])),
                                     attributes=attributes)
            if event.get("error"):
                error_type = errors.get(call_id) or "tool_error"
                span.set_attribute(ERROR_TYPE, error_type)
                span.set_status(api.Status(api.StatusCode.ERROR, str(event["error"]).strip().splitlines()[-1][:500]))
            span.end(end_time=_ns(t))
        elif kind == "episode_resumed":
            root.add_event("episode_resumed", {"entries_so_far": int(event.get("entries_so_far", 0))}, timestamp=_ns(t))
        previous_t = t

    if end is None:
        root.set_attribute(ERROR_TYPE, "interrupted")
        root.set_status(api.Status(api.StatusCode.ERROR, "the trace has no episode_end: the run was interrupted"))
    else:
        root.set_attributes({"mcr.stop_reason": str(end.get("stop_reason")), "mcr.accepted": bool(end.get("accepted")),
                             "mcr.steps": int(end.get("steps") or 0), "mcr.tool_calls": int(end.get("tool_calls") or 0)})
        if end.get("answer") is not None:
            root.set_attribute("mcr.answer", str(end["answer"]))
        if end.get("option"):
            root.set_attribute("mcr.option", str(end["option"]))
        if not end.get("accepted"):
            root.set_attribute(ERROR_TYPE, str(end.get("stop_reason") or "no_answer"))
            root.set_status(api.Status(api.StatusCode.ERROR, f"no accepted answer (stop reason: {end.get('stop_reason')})"))
    root.end(end_time=_ns(float((end or events[-1]).get("t", previous_t))))
    provider.shutdown()
    return list(memory.get_finished_spans())


def otlp_json(spans: list[Any]) -> dict[str, Any]:
    """Spans as an OTLP/JSON ExportTraceServiceRequest (hex ids, integer enums, as the spec says)."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    data = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource in data.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:  # protobuf's JSON mapping gives base64; OTLP/JSON wants hex
                        span[key] = base64.b64decode(span[key]).hex()
    return data


def _traces_url(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OtelError(f"OTLP endpoint {endpoint!r} is not an http(s) URL; use e.g. http://localhost:4318")
    return endpoint if parts.path.rstrip("/") else endpoint.rstrip("/") + "/v1/traces"


@contextlib.contextmanager
def _exporter_logs():
    """Hold back the OTLP exporter's log records (retry warnings with tracebacks) and hand them to the caller."""
    records: list[logging.LogRecord] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("opentelemetry.exporter.otlp")
    handler, propagate = _Keep(level=logging.DEBUG), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _first_cause(records: list[logging.LogRecord]) -> str:
    """The reason the exporter logged, short: e.g. "[Errno 111] Connection refused"."""
    text = records[0].getMessage()
    found = re.search(r"\[Errno -?\d+\][^\")']*|timed? ?out[^\")']*|\b[45]\d\d\b[^\")']*", text)
    return (found.group(0) if found else text)[:200].strip()


def export_otel(trace: str | Path, endpoint: str | None = None, file: str | Path | None = None, *,
                exporter: Any = None, agent: str = DEFAULT_AGENT, include_content: bool = False,
                headers: dict[str, str] | None = None, timeout_s: float = 10.0) -> OtelExport:
    """Export one episode trace as OpenTelemetry spans.

    Args:
        trace: the JSONL trace.
        endpoint: an OTLP/HTTP collector: a base URL (``http://host:4318``; ``/v1/traces`` is added) or the full traces URL.
        file: write the spans here as OTLP/JSON (one ExportTraceServiceRequest on one line).
        exporter: any SDK ``SpanExporter`` (e.g. ``InMemorySpanExporter`` in tests).
        agent: the agent name in ``invoke_agent {agent}``.
        include_content: also export raw model output and tool arguments/results (may be sensitive).
        headers, timeout_s: for the OTLP endpoint (e.g. an authorization header).

    Raises:
        OtelError: no destination given, the trace is unreadable, or the endpoint refused the spans.
    """
    if endpoint is None and file is None and exporter is None:
        raise OtelError("nothing to export to: pass endpoint= (an OTLP/HTTP collector URL) or file= (an OTLP/JSON path)")
    try:
        events = load_events(trace)
    except ViewerError as exc:
        raise OtelError(str(exc)) from None
    spans = build_spans(events, agent=agent, include_content=include_content)
    trace_id = format(spans[-1].context.trace_id, "032x")
    if exporter is not None:
        exporter.export(spans)
    if file is not None:
        file = Path(file)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(otlp_json(spans)) + "\n", encoding="utf-8")
    if endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import SpanExportResult

        url = _traces_url(endpoint)
        otlp = OTLPSpanExporter(endpoint=url, headers=headers, timeout=timeout_s)
        with _exporter_logs() as logged:  # its retry warnings become one line of our error, not raw log lines
            try:
                result = otlp.export(spans)
            finally:
                otlp.shutdown()
        if result is not SpanExportResult.SUCCESS:
            why = f" — {_first_cause(logged)}" if logged else ""
            raise OtelError(f"the OTLP endpoint {url} did not accept the spans (is a collector listening there?){why}")
    return OtelExport(trace_id=trace_id, spans=len(spans), endpoint=endpoint, file=file)
