"""Fixtures for serving: `mcr serve` over the real SmolLM2 (loaded once), and a scripted HTTP stub.

The stub is for what a real server will not do on demand — hang, answer
garbage, fail once then recover, refuse native tools — and records every
request body it got, so a test can check what the policy sent.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@pytest.fixture(scope="session")
def smollm2():
    from mcr.serving.app import load_served_model

    return load_served_model("offline")  # (LoadedModel, "SmolLM2-135M-Instruct")


@pytest.fixture(scope="session")
def m2la_folder(tmp_path_factory):
    """The tiny Qwen3-VL (random weights, real architecture) converted to M^2LA with `mcr convert`."""
    from mcr.cli import main
    from mcr.model.runtime.tiny import save_tiny_qwen3vl

    root = tmp_path_factory.mktemp("m2la-serve")
    src = save_tiny_qwen3vl(root / "tiny")
    calib = root / "calib.txt"
    calib.write_text("The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs. " * 8)
    out = root / "tiny-m2la"
    assert main(["convert", str(src), "--calib", str(calib), "--calib-tokens", "256", "--rope-dim", "8",
                 "--kv-lora-rank", "16", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def served(smollm2):
    """``(url, pool, model_id)`` of a running `mcr serve` app with two cached sessions."""
    from mcr.serving.app import ServerThread, create_app
    from mcr.serving.pool import SessionPool

    loaded, model_id = smollm2
    pool = SessionPool(loaded, sessions=2, max_waiting=4)
    with ServerThread(create_app(pool, model_id, default_max_tokens=16)) as url:
        yield url, pool, model_id


def chat_reply(content: str | None = "ok", tool_calls: list | None = None, usage: dict | None = None) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"id": "x", "object": "chat.completion", "model": "stub",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage or {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}


class StubServer:
    """Answers each POST with the next scripted ``(status, body, delay_s)``; the last one repeats."""

    def __init__(self, script: list[tuple[int, Any, float]]):
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "stub-model", "object": "model"}]})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                stub.requests.append(json.loads(body or b"{}"))
                status, reply, delay = stub.script.pop(0) if len(stub.script) > 1 else stub.script[0]
                time.sleep(delay)
                self._send(status, reply)

            def _send(self, status: int, reply: Any) -> None:
                data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stub():
    """``stub(script)`` starts a StubServer (stopped after the test)."""
    started: list[StubServer] = []

    def start(script: list[tuple[int, Any, float]]) -> StubServer:
        server = StubServer(script).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)


def _model_calls(trace) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in open(trace)]
    return [e["usage"] for e in events if e.get("type") == "model_call"]


@pytest.fixture(scope="session")
def openai_episodes(served, sample_with_subtitles, tmp_path_factory):
    """Two episodes of a task file's ``policy: openai`` against `mcr serve` (SmolLM2): ``[(result, usages)]``.

    Two, so the second's first request finds the first's system prompt and tool schemas cached.
    """
    from mcr.agent import Agent
    from mcr.task import TaskSpec

    url, _, model = served
    root = tmp_path_factory.mktemp("openai-episodes")
    runs = []
    for i in range(2):
        task = TaskSpec.model_validate({
            "name": f"length{i}", "video": str(sample_with_subtitles), "question": "How long is the video?",
            "tools": ["video_info"], "budget": {"max_steps": 3},
            "policy": {"name": "openai", "settings": {"base_url": f"{url}/v1", "model": model, "media": "text",
                                                     "max_tokens": 24, "backoff_s": 0.01}},
        })
        with Agent.from_task(task, workdir=root / f"w{i}") as agent:
            result = agent.run_task(task)
        runs.append((result, _model_calls(result.trace_path)))
    return runs
