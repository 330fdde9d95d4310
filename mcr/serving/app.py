"""`mcr serve`: an OpenAI-compatible chat-completions server over our own runtime.

It exists for two reasons. It is how the OpenAI-compatible policy is tested
here against a real model (SmolLM2), not canned replies; and it carries what
no general server does for an M^2LA cache: cross-request prefix reuse of a
:class:`~mcr.model.runtime.session.ModelSession` (see :mod:`.pool`), reported
as ``usage.prompt_tokens_details.cached_tokens``.

Endpoints: ``GET /health``, ``GET /v1/models``, ``GET /v1/slots`` (what each
pooled session holds), ``POST /v1/chat/completions``. Errors use OpenAI's
error body: 400 a bad request (the message names the field), 401 a missing or
wrong key (when started with ``--api-key-env``), 403 media outside the allowed
paths, 404 a model name the server does not serve, 503 busy (with
``Retry-After``). Greedy decoding unless the request sets ``temperature``;
no streaming (``stream: true`` is refused with a message).
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mcr.serving.guard import DEFAULT_MAX_BODY_BYTES, RequestGuard, loopback_hosts
from mcr.serving.pool import PoolBusy, SessionPool
from mcr.serving.protocol import (
    ChatRequest,
    MediaResolver,
    RequestError,
    chat_response,
    error_body,
    prompt_chars,
    split_tool_calls,
    to_runtime_messages,
)

__all__ = ["create_app", "load_served_model", "ServerThread", "serve_main", "check_serve_args", "bind_socket",
           "ServeArgumentError", "DEFAULT_MAX_TOKENS"]

DEFAULT_MAX_TOKENS = 256


def _error(status: int, message: str, code: str, param: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, code, param), status_code=status, headers=headers)


def create_app(
    pool: SessionPool,
    model_id: str,
    *,
    api_key: str | None = None,
    allowed_media: list[Path] | None = None,
    media_store: Path | None = None,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    allowed_hosts: list[str] | None = None,
) -> FastAPI:
    """The ASGI app serving ``pool``'s model under the name ``model_id``.

    ``allowed_hosts``: the Host names answered (None: any; see :mod:`.guard`).
    """
    app = FastAPI(title="mcr serve", docs_url=None, redoc_url=None)
    app.add_middleware(RequestGuard, max_body_bytes=max_body_bytes, allowed_hosts=allowed_hosts, api_key=api_key)
    resolver = MediaResolver(allowed_media or [], media_store or Path(".mcr/serve-media"))
    multimodal = pool.loaded.multimodal
    started = int(time.time())

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                problems.append(f"the request body is not valid JSON ({err.get('ctx', {}).get('error', err['msg'])})")
                continue
            loc = ".".join(str(p) for p in err["loc"] if p != "body") or "body"
            problems.append(f"{loc}: {err['msg']}")
        first = exc.errors()[0] if exc.errors() else {}
        param = None if first.get("type") == "json_invalid" else ".".join(str(p) for p in first.get("loc", ())[1:])
        return _error(400, "; ".join(problems), "invalid_request_error", param or None)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": model_id, "running": pool.running, "waiting": pool.waiting}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_id, "object": "model", "created": started, "owned_by": "mcr"}]}

    @app.get("/v1/slots")
    def slots() -> dict[str, Any]:
        return {"slots": pool.stats()}

    @app.post("/v1/chat/completions")
    def chat(request: ChatRequest):  # sync: FastAPI runs it in a worker thread, the pool bounds it
        try:
            return _complete(request)
        except RequestError as exc:
            return _error(exc.status, str(exc), exc.code, exc.param)
        except PoolBusy as exc:
            return _error(503, str(exc), "server_busy", headers={"Retry-After": "1"})

    def _complete(request: ChatRequest) -> dict[str, Any]:
        from mcr.model.runtime.prompt import RenderError
        from mcr.model.runtime.session import SessionError

        if request.model != model_id:
            raise RequestError(f"model {request.model!r} is not served here; this server serves {model_id!r}",
                               status=404, code="model_not_found", param="model")
        if request.stream:
            raise RequestError("stream: true is not supported by mcr serve; send stream: false", param="stream")
        if request.n != 1:
            raise RequestError("n > 1 is not supported; send one request per completion", param="n")
        messages = to_runtime_messages(request, resolver, multimodal)
        tools = request.tools if request.wants_tools() else None
        limit = pool.max_prompt_chars
        if limit and (chars := prompt_chars(messages, tools)) > limit:
            raise RequestError(f"messages: {chars:,} characters cannot fit the model's window of {pool.window} "
                               f"tokens (at most {limit:,} characters); send a shorter conversation",
                               code="context_length_exceeded", param="messages")
        from mcr.model.media.video import VideoError

        def render():  # inside the bounded queue: tokenising and media decoding are bounded too
            try:
                return pool.render(messages, tools)
            except (RenderError, VideoError, ValueError) as exc:  # ValueError: SamplingError (fps, pixel budget)
                raise RequestError(f"messages: {exc}") from None

        stops = request.stops()
        with pool.acquire(render) as slot:
            session = slot.session
            session.temperature = request.temperature or 0.0
            session.top_p = request.top_p or 1.0
            if request.seed is not None:
                import torch

                session._generator = torch.Generator().manual_seed(request.seed)
            try:
                gen = session.generate(messages, tools, max_new_tokens=request.budget(default_max_tokens), stop=stops)
            except (SessionError, RenderError) as exc:
                raise RequestError(str(exc), code="context_length_exceeded" if "window" in str(exc) else
                                   "invalid_request_error") from None
        text, finish = gen.text, {"eos": "stop", "stop": "stop", "length": "length"}[gen.stop_reason]
        for s in stops:  # OpenAI semantics: the stop sequence is not part of the reply
            if s in text:
                text = text[: text.index(s)]
        content, calls = split_tool_calls(text, tools) if tools else (text, [])
        return chat_response(model_id, content, calls, finish, gen.usage, gen.usage.prefill_s)

    return app


def load_served_model(model: str) -> tuple[Any, str]:
    """``(LoadedModel, id)`` for ``mcr serve MODEL``: ``offline`` (SmolLM2), a folder, a .gguf, an M^2LA folder."""
    from mcr.model.runtime.loader import load_model, load_smollm2

    if model in ("offline", "smollm2", "SmolLM2-135M-Instruct"):
        return load_smollm2(), "SmolLM2-135M-Instruct"
    loaded = load_model(model)
    return loaded, Path(model).name.removesuffix(".gguf")


class ServerThread:
    """Run an app with uvicorn in a background thread on a free local port (tests, benchmarks).

    Usage::

        with ServerThread(app) as url:   # e.g. http://127.0.0.1:53817
            ...
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.url = f"http://{host}:{self._sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the server thread did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


class ServeArgumentError(ValueError):
    """An ``mcr serve`` argument that cannot work (exit 2, before the model is loaded)."""


def check_serve_args(args: Any) -> None:
    """Refuse arguments that cannot work before paying for the model load (~10 s to minutes).

    Raises:
        ServeArgumentError: naming the argument and a value that works.
    """
    if not 0 <= args.port <= 65535:
        raise ServeArgumentError(f"--port {args.port}: a TCP port is 1-65535 (0 picks a free one)")
    for name, value, least in (("--sessions", args.sessions, 1), ("--max-waiting", args.max_waiting, 0),
                               ("--max-tokens", args.max_tokens, 1), ("--max-batch", getattr(args, "max_batch", 1), 1)):
        if value < least:
            raise ServeArgumentError(f"{name} {value}: must be at least {least}")
    if getattr(args, "max_batch", 1) > args.sessions:
        raise ServeArgumentError(f"--max-batch {args.max_batch} exceeds --sessions {args.sessions}: each running "
                                 "conversation needs its own cached session; raise --sessions or lower --max-batch")
    if not args.max_body_mb > 0:
        raise ServeArgumentError(f"--max-body-mb {args.max_body_mb}: must be positive")
    for folder in args.allowed_media_path or []:
        if not Path(folder).is_dir():
            raise ServeArgumentError(f"--allowed-media-path {folder}: not a folder")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or a :class:`ServeArgumentError` saying why not (taken, no such host)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeArgumentError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServeArgumentError(f"--port {port}: {host}:{port} is already in use (another server?); "
                                     "stop it or pick another --port") from None
        if exc.errno == errno.EACCES:
            raise ServeArgumentError(f"--port {port}: not allowed to listen on {host}:{port} "
                                     "(ports below 1024 need privileges); pick --port 8000 or above") from None
        raise ServeArgumentError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
    sock.set_inheritable(True)
    return sock


def serve_main(args: Any) -> int:
    """The ``mcr serve`` command (arguments from :func:`mcr.cli.build_parser`).

    Everything that can be checked without the model is checked first — the
    arguments, the API key variable, and the port (bound here, so "serving on"
    is printed only once it is ours) — so a mistake costs no model load.
    """
    import uvicorn

    check_serve_args(args)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise ServeArgumentError(f"--api-key-env {args.api_key_env}: that environment variable is not set")
    sock = bind_socket(args.host, args.port)
    try:
        loaded, model_id = load_served_model(args.model)
        pool = SessionPool(loaded, sessions=args.sessions, max_running=getattr(args, "max_batch", 1),
                           max_waiting=args.max_waiting)
        hosts = loopback_hosts(args.host)
        if args.allowed_host:
            hosts = (hosts or []) + list(args.allowed_host)
        app = create_app(pool, args.model_id or model_id, api_key=api_key,
                         allowed_media=[Path(p) for p in args.allowed_media_path or []],
                         default_max_tokens=args.max_tokens, max_body_bytes=int(args.max_body_mb * 1024 * 1024),
                         allowed_hosts=hosts)
        kind = "M^2LA" if loaded.m2la else loaded.kind
        port = sock.getsockname()[1]
        shown = f"[{args.host}]" if ":" in args.host else args.host
        print(f"serving {args.model_id or model_id} ({kind}, {args.sessions} cached sessions) on "
              f"http://{shown}:{port}/v1  (OpenAI chat completions; Ctrl-C to stop)", flush=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
