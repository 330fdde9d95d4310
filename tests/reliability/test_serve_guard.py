"""`mcr serve` under abuse: oversized bodies, floods, a rebound Host, odd Authorization headers.

The server runs in this process (the real SmolLM2 behind uvicorn on a local
port), so its resident memory is this process's: the soak sends bodies over
the cap (declared and chunked), prompts too long for the window and a
concurrent flood, then checks the memory came back to where it was and the
server still answers. Loopback only; the number of requests and the time are
bounded.
"""

from __future__ import annotations

import gc
import json
import socket
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

MB = 1024 * 1024


@pytest.fixture(scope="module")
def smollm2():
    from mcr.serving.app import load_served_model

    return load_served_model("offline")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (4096 / MB)


def _app(smollm2, **kw):
    from mcr.serving.app import create_app
    from mcr.serving.pool import SessionPool

    loaded, model = smollm2
    return create_app(SessionPool(loaded, sessions=1, max_waiting=2), model, default_max_tokens=2, **kw), model


def _body(model: str, text: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 2}


def _raw_post(url: str, head: str, body_chunks) -> str:
    """POST by hand (a chunked body, or a Content-Length that lies); the status line the server answered, or ''."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        try:
            sock.sendall(head.encode())
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading once the body passed the cap: what we want
        try:
            return sock.recv(4096).decode("latin-1").split("\r\n", 1)[0]
        except ConnectionResetError:
            return ""


def test_oversized_and_flooding_requests_leave_memory_flat(smollm2, ledger):
    from mcr.serving.app import ServerThread

    app, model = _app(smollm2, max_body_bytes=2 * MB)
    with ServerThread(app) as url, httpx.Client(timeout=120) as client:
        ok = client.post(f"{url}/v1/chat/completions", json=_body(model, "Say hi."))
        assert ok.status_code == 200, ok.text
        gc.collect()
        before = _rss_mb()
        statuses: list[int | str] = []
        for _ in range(3):
            # 1. A declared 10 MB body: refused from its Content-Length, nothing read.
            r = client.post(f"{url}/v1/chat/completions", content=b"{" + b" " * (10 * MB) + b"}",
                            headers={"content-type": "application/json"})
            statuses.append(r.status_code)
            assert r.status_code == 413 and "at most 2,097,152" in r.json()["error"]["message"]
            # 2. A chunked body that never says its size: cut off once it passes the cap.
            head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                    "transfer-encoding: chunked\r\n\r\n")
            chunk = b" " * MB
            line = _raw_post(url, head, [b"%x\r\n" % len(chunk) + chunk + b"\r\n"] * 10 + [b"0\r\n\r\n"])
            statuses.append(line)
            assert line in ("", "HTTP/1.1 413 Request Entity Too Large") or " 413 " in line, line
            # 3. Under the byte cap but more characters than the window can hold: refused by counting.
            many = "x" * (1 * MB + 900_000)
            r = client.post(f"{url}/v1/chat/completions", json=_body(model, many))
            statuses.append(r.status_code)
            assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
        # 4. A flood: twelve at once at a queue of one running + two waiting, each near the character limit.
        near = "token " * 150_000  # 900 K characters: over the window, so it is refused after counting
        with ThreadPoolExecutor(12) as pool:
            flood = list(pool.map(lambda _: client.post(f"{url}/v1/chat/completions", json=_body(model, near)),
                                  range(12)))
        assert {r.status_code for r in flood} <= {400, 503}
        assert ok.status_code == 200 and client.post(f"{url}/v1/chat/completions",
                                                     json=_body(model, "Say hi.")).status_code == 200
        gc.collect()
        grown = _rss_mb() - before
        print(f"RSS before {before:.0f} MB, grown {grown:.1f} MB")
    # Before the cap one 10 MB body kept +1.35 GB; what is left now is allocator slack (measured: +42 MB).
    assert grown < 150, f"resident memory grew by {grown:.0f} MB over the soak"
    ledger.case("security", "mcr serve: 10 MB body (declared), x3", outcome="413 before reading; RSS flat",
                message=f"RSS grew {grown:.0f} MB over the soak")
    ledger.case("security", "mcr serve: 10 MB chunked body, x3", outcome="cut off at the cap (413)")
    ledger.case("security", "mcr serve: 1.9 M-character prompt, x3", outcome="400 context_length_exceeded, untokenised")
    ledger.case("security", "mcr serve: 12 concurrent near-limit prompts", outcome=f"{sorted({r.status_code for r in flood})}")


def test_a_prompt_longer_than_the_window_is_refused_before_the_tokeniser(smollm2, monkeypatch):
    from mcr.serving.app import ServerThread

    app, model = _app(smollm2)
    calls = []
    tokenizer = smollm2[0].tokenizer
    real = type(tokenizer).__call__
    monkeypatch.setattr(type(tokenizer), "__call__", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    with ServerThread(app) as url:
        r = httpx.post(f"{url}/v1/chat/completions", json=_body(model, "y" * 700_000), timeout=60)
    assert r.status_code == 400 and "cannot fit the model's window of 8192" in r.json()["error"]["message"]
    assert calls == []


@pytest.mark.parametrize("host, status", [
    ("127.0.0.1:8000", 200), ("localhost", 200), ("[::1]:8000", 200), ("LOCALHOST:1", 200),
    ("evil.example.com", 421), ("evil.example.com:8000", 421), ("127.0.0.1.evil.example", 421), ("", 421),
])
def test_a_rebound_host_is_refused(smollm2, host, status, ledger):
    from mcr.serving.app import ServerThread
    from mcr.serving.guard import loopback_hosts

    app, model = _app(smollm2, allowed_hosts=loopback_hosts("127.0.0.1"))
    with ServerThread(app) as url:
        r = httpx.get(f"{url}/v1/models", headers={"host": host})
    assert r.status_code == status, r.text
    if status == 421:
        assert "--allowed-host" in r.json()["error"]["message"]
        ledger.case("security", f"mcr serve: Host {host!r} (DNS rebinding)", outcome="421")


def test_a_server_bound_to_every_interface_checks_only_named_hosts():
    from mcr.serving.guard import loopback_hosts

    assert loopback_hosts("0.0.0.0") is None and "localhost" in loopback_hosts("127.0.0.1")


@pytest.mark.parametrize("header, status", [
    ("Bearer s3cret", 200), ("bearer s3cret", 200), ("BEARER  s3cret", 200),
    ("Bearer nope", 401), ("Basic s3cret", 401), ("s3cret", 401), ("Bearer", 401), ("", 401),
])
def test_the_bearer_scheme_is_case_insensitive(smollm2, header, status, ledger):
    from mcr.serving.app import ServerThread

    app, _ = _app(smollm2, api_key="s3cret")
    with ServerThread(app) as url:
        r = httpx.get(f"{url}/v1/models", headers={"authorization": header} if header else {})
    assert r.status_code == status, r.text
    if status == 401:
        assert json.loads(r.text)["error"]["code"] == "invalid_api_key"
        ledger.case("security", f"mcr serve: Authorization {header!r}", outcome="401")
