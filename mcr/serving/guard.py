"""What `mcr serve` checks before a request reaches the model: its size, its Host, its key.

An HTTP server on a laptop is reachable by every web page the laptop's browser
opens (DNS rebinding) and by anyone who can send it a large body. These checks
run first, in one ASGI middleware, before FastAPI parses anything:

* **Body size**: a body larger than ``max_body_bytes`` is refused with 413,
  from its ``Content-Length`` before a byte is read, or as soon as a chunked
  body passes the cap; nothing over the cap is ever held in memory.
* **Host**: bound to a loopback address (or given ``allowed_hosts``), the
  server answers only requests whose ``Host`` names an allowed host (any port),
  so a page whose name was rebound to 127.0.0.1 gets 421, as the MCP SDK's
  transport does for ``mcr mcp --http``.
* **API key**: ``Authorization: Bearer KEY`` with the scheme in any case
  (RFC 7235 §2.1), compared in constant time.

Each refusal is an OpenAI error body, so a client library reports it as such.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any

__all__ = ["RequestGuard", "loopback_hosts", "DEFAULT_MAX_BODY_BYTES"]

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024  # room for a data: image; send a video as a file:// URL

_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def loopback_hosts(bind_host: str) -> list[str] | None:
    """The Host names to accept for a server bound to ``bind_host``: None (no check) unless it is loopback."""
    if bind_host in _LOOPBACK or bind_host.startswith("127."):
        return ["127.0.0.1", "localhost", "[::1]", bind_host]
    return None


def _host_name(header: str) -> str:
    """``Host`` without its port (``[::1]:8000`` -> ``[::1]``, ``localhost:8000`` -> ``localhost``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class _TooLarge(Exception):
    pass


class RequestGuard:
    """ASGI middleware: body cap (413), Host check (421), API key on ``/v1/`` (401).

    Args:
        app: the ASGI app it guards.
        max_body_bytes: the largest request body accepted.
        allowed_hosts: Host names (without port) to accept; None accepts any.
        api_key: the key requests under ``key_prefix`` must carry; None: no key.
        key_prefix: the paths the key protects (``/v1/`` for mcr serve; ``/``, every
            path, for ``mcr mcp --http``).
    """

    def __init__(self, app: Any, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 allowed_hosts: list[str] | None = None, api_key: str | None = None, key_prefix: str = "/v1/"):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.allowed_hosts = {h.lower() for h in allowed_hosts} if allowed_hosts is not None else None
        self.api_key = api_key
        self.key_prefix = key_prefix

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.allowed_hosts is not None and _host_name(headers.get("host", "")) not in self.allowed_hosts:
            allowed = ", ".join(sorted(self.allowed_hosts))
            return await _refuse(send, 421, f"Host {headers.get('host', '(none)')!r} is not served here "
                                 f"(allowed: {allowed}; start with --allowed-host NAME to add one)", "invalid_host")
        if self.api_key and scope.get("path", "").startswith(self.key_prefix) and not self._key_ok(headers):
            return await _refuse(send, 401, "invalid or missing API key: send 'Authorization: Bearer <key>'",
                                 "invalid_api_key")
        declared = headers.get("content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_body_bytes
            except ValueError:
                return await _refuse(send, 400, f"Content-Length {declared!r} is not a number", "invalid_request_error")
            if too_large:
                await _discard(receive)
                return await _refuse(send, 413, self._too_large(int(declared)), "request_too_large")
        if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        try:  # read the body here, bounded, then hand it on
            body = await self._read(receive)
        except _TooLarge:
            await _discard(receive)
            return await _refuse(send, 413, self._too_large(None), "request_too_large")
        except ConnectionAbortedError:  # the client left before sending its body: nothing to answer
            return None
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: http.disconnect, as the server reports it

        await self.app(scope, replay, send)

    async def _read(self, receive: Any) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _TooLarge() if size > self.max_body_bytes else ConnectionAbortedError("client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self, size: int | None) -> str:
        got = f"{size:,} bytes" if size is not None else "more"
        return (f"the request body is {got}; this server accepts at most {self.max_body_bytes:,} "
                "(--max-body-mb); send media as a file:// URL under an allowed media path")

    def _key_ok(self, headers: dict[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key.encode())


DISCARD_BYTES = 64 * 1024 * 1024  # the most of a refused body read (and dropped) before answering
DISCARD_SECONDS = 5.0


async def _discard(receive: Any, budget: int = DISCARD_BYTES, seconds: float = DISCARD_SECONDS) -> None:
    """Read and drop the rest of a refused body, chunk by chunk (memory stays flat), bounded in bytes and time.

    Why: a server that answers 413 and closes while the client is still sending makes the kernel reset
    the connection, and the client sees "connection closed" instead of the 413 and its message.
    """
    deadline = asyncio.get_running_loop().time() + seconds
    try:
        while budget > 0:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            message = await asyncio.wait_for(receive(), timeout=left)
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                return
            budget -= len(message.get("body", b""))
    except (asyncio.TimeoutError, ConnectionError):
        return


async def _refuse(send: Any, status: int, message: str, code: str) -> None:
    body = json.dumps({"error": {"message": message, "type": code, "param": None, "code": code}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
