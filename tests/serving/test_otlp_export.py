"""`mcr otel TRACE --endpoint URL` end to end: a served episode's trace reaches an OTLP/HTTP receiver.

The opentelemetry-collector is not installable here, so the receiver is a
minimal one written for the test: it accepts ``POST /v1/traces`` as a real
collector does (protobuf ``ExportTraceServiceRequest``, answered with an
``ExportTraceServiceResponse``) and decodes what it got with
opentelemetry-proto, so the assertions are on the wire format a Jaeger,
Phoenix or Langfuse endpoint would receive.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("opentelemetry.proto")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from mcr.cli import main  # noqa: E402


@pytest.fixture
def receiver():
    got: list[tuple[str, dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(int(self.headers["Content-Length"]))))
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", got
    server.shutdown()
    server.server_close()


def _value(any_value):
    return getattr(any_value, any_value.WhichOneof("value"))


def test_a_served_episode_reaches_an_otlp_receiver(openai_episodes, receiver, capsys):
    url, got = receiver
    result, usages = openai_episodes[1]
    assert main(["otel", str(result.trace_path), "--endpoint", url]) == 0
    assert "exported" in capsys.readouterr().out

    ((path, headers, body),) = got
    assert path == "/v1/traces" and headers["content-type"] == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    resource = {a.key: _value(a.value) for a in request.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "internvideo3-mcr"
    spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    names = [s.name for s in spans]
    assert "invoke_agent mcr" in names
    chats = [s for s in spans if s.name == "chat SmolLM2-135M-Instruct"]  # the model named in the task's settings
    assert len(chats) == len(usages)
    root = next(s for s in spans if s.name == "invoke_agent mcr")
    assert all(s.parent_span_id == root.span_id and s.trace_id == root.trace_id for s in spans if s is not root)
    first = {a.key: _value(a.value) for a in chats[0].attributes}
    assert first["gen_ai.operation.name"] == "chat"
    assert first["gen_ai.usage.input_tokens"] == usages[0]["prompt_tokens"]
    assert first["gen_ai.usage.output_tokens"] == usages[0]["generated_tokens"]
    # What `mcr serve` reported as cached_tokens arrives as the cache-read count.
    assert first["gen_ai.usage.cache_read.input_tokens"] == usages[0]["reused_tokens"] > 0
    assert "gen_ai.output.messages" not in first  # content is opt-in
    root_attrs = {a.key: _value(a.value) for a in root.attributes}
    assert root_attrs["mcr.policy"] == "openai" and root_attrs["mcr.stop_reason"] == result.stop_reason


def test_content_goes_out_only_with_include_content(openai_episodes, receiver):
    url, got = receiver
    result, usages = openai_episodes[0]
    assert main(["otel", str(result.trace_path), "--endpoint", url + "/v1/traces", "--include-content"]) == 0
    spans = ExportTraceServiceRequest.FromString(got[0][2]).resource_spans[0].scope_spans[0].spans
    chat = next(s for s in spans if s.name.startswith("chat "))
    messages = json.loads(next(_value(a.value) for a in chat.attributes if a.key == "gen_ai.output.messages"))
    assert messages[0]["parts"][0]["content"] == usages[0]["raw_output"]


def test_an_endpoint_where_nothing_listens_is_a_clear_error(openai_episodes, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    trace = str(openai_episodes[0][0].trace_path)
    assert main(["otel", trace, "--endpoint", f"http://127.0.0.1:{port}"]) == 2
    assert "did not accept the spans" in capsys.readouterr().err
