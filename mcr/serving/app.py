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

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mcr.serving.pool import PoolBusy, SessionPool
from mcr.serving.protocol import (
    ChatRequest,
    MediaResolver,
    RequestError,
    chat_response,
    error_body,
    split_tool_calls,
    to_runtime_messages,
)

__all__ = ["create_app", "load_served_model", "ServerThread", "serve_main", "DEFAULT_MAX_TOKENS"]

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
) -> FastAPI:
    """The ASGI app serving ``pool``'s model under the name ``model_id``."""
    app = FastAPI(title="mcr serve", docs_url=None, redoc_url=None)
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

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        if api_key and request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            if given != f"Bearer {api_key}":
                return _error(401, "invalid or missing API key: send 'Authorization: Bearer <key>'", "invalid_api_key")
        return await call_next(request)

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
        from mcr.model.media.video import VideoError

        try:
            prompt = pool.render(messages, tools)
        except (RenderError, VideoError, ValueError) as exc:  # ValueError: SamplingError (fps, pixel budget)
            raise RequestError(f"messages: {exc}") from None
        stops = request.stops()
        with pool.acquire(prompt) as slot:
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


def serve_main(args: Any) -> int:
    """The ``mcr serve`` command (arguments from :func:`mcr.cli.build_parser`)."""
    import uvicorn

    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise ValueError(f"--api-key-env {args.api_key_env}: that environment variable is not set")
    loaded, model_id = load_served_model(args.model)
    pool = SessionPool(loaded, sessions=args.sessions, max_running=1, max_waiting=args.max_waiting)
    app = create_app(pool, args.model_id or model_id, api_key=api_key,
                     allowed_media=[Path(p) for p in args.allowed_media_path or []],
                     default_max_tokens=args.max_tokens)
    kind = "M^2LA" if loaded.m2la else loaded.kind
    print(f"serving {args.model_id or model_id} ({kind}, {args.sessions} cached sessions) on "
          f"http://{args.host}:{args.port}/v1  (OpenAI chat completions; Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
