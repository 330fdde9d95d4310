"""`mcr serve`: an OpenAI-compatible chat-completions server over our own runtime.

It exists for two reasons. It is how the OpenAI-compatible policy is tested
here against a real model (SmolLM2), not canned replies; and it carries what
no general server does for an M^2LA cache: cross-request prefix reuse of a
:class:`~mcr.model.runtime.session.ModelSession` (see :mod:`.pool`), reported
as ``usage.prompt_tokens_details.cached_tokens``, with continuous batched
decode over those sessions' caches (:mod:`.engine`).

Endpoints: ``GET /health``, ``GET /v1/models``, ``GET /v1/slots`` (what each
pooled session holds), ``POST /v1/chat/completions`` (streamed as server-sent
events with ``stream: true``; ``tool_choice`` and ``response_format`` enforced
by a grammar, :mod:`.structured`; ``logprobs``). Every other path answers 404
in OpenAI's error format naming what is served. Errors use OpenAI's error
body: 400 a bad or unsupported request (the message names the field; nothing
that would change the reply is silently ignored), 401 a missing or wrong key,
403 media outside the allowed paths, 404 a model name the server does not
serve, 413 a body over the cap, 421 a Host not served (:mod:`.guard`), 503
busy (with ``Retry-After``). Greedy decoding unless the request sets
``temperature``.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from mcr.serving.engine import Engine, Finished, Job
from mcr.serving.guard import DEFAULT_MAX_BODY_BYTES, RequestGuard, loopback_hosts
from mcr.serving.pool import PoolBusy, SessionPool
from mcr.serving.protocol import (
    ChatRequest,
    MediaResolver,
    RequestError,
    error_body,
    prompt_chars,
    to_runtime_messages,
)
from mcr.serving.reply import Reply
from mcr.serving.structured import constraint_for

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

    engine = Engine(pool.loaded, release=pool.release, max_batch=pool.max_running)
    app.state.engine = engine

    @app.post("/v1/chat/completions")
    async def chat(request: ChatRequest):
        try:  # validating, rendering and waiting for a slot block: a worker thread (bounded by the pool)
            job, reply, inbox = await anyio.to_thread.run_sync(_submit, request, asyncio.get_running_loop())
        except RequestError as exc:
            return _error(exc.status, str(exc), exc.code, exc.param)
        except PoolBusy as exc:
            return _error(503, str(exc), "server_busy", headers={"Retry-After": "1"})
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            return StreamingResponse(_stream(job, reply, inbox, include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        try:
            while True:
                event = await inbox.get()
                if isinstance(event, Finished):
                    break
                reply.add(event)
        finally:
            if not job.cancelled.is_set() and not inbox.done:
                job.cancel()
                engine.wake()
        if event.reason == "error":
            return _failure(event.error)
        return reply.completion(event)

    async def _stream(job: Job, reply: Reply, inbox: _Inbox, include_usage: bool):
        """SSE: the role chunk, content deltas as tokens come, tool calls, finish, usage, ``[DONE]``.

        If the client goes away, sending fails, this generator is closed, and
        the ``finally`` cancels the job: the engine drops it at its next step
        and frees its slot.
        """
        try:
            yield _sse(reply.first_chunk())
            while True:
                event = await inbox.get()
                if isinstance(event, Finished):
                    break
                reply.add(event)
                chunk = reply.delta_chunk()
                if chunk is not None:
                    yield _sse(chunk)
            if event.reason == "error":
                failure = _failure(event.error)
                yield _sse(json.loads(failure.body))
            else:
                for chunk in reply.last_chunks(event, include_usage):
                    yield _sse(chunk)
            yield "data: [DONE]\n\n"
        finally:
            if not inbox.done:
                job.cancel()
                engine.wake()

    def _failure(error: BaseException | None) -> JSONResponse:
        from mcr.model.runtime.session import SessionError

        if isinstance(error, SessionError) and "window" in str(error):
            return _error(400, str(error), "context_length_exceeded", "messages")
        if isinstance(error, ValueError):  # bad media settings found while prefilling
            return _error(400, f"messages: {error}", "invalid_request_error", "messages")
        return _error(500, f"the model failed on this request: {type(error).__name__}: {error}", "server_error")

    def _submit(request: ChatRequest, loop: asyncio.AbstractEventLoop) -> tuple[Job, Reply, _Inbox]:
        from mcr.model.media.video import VideoError
        from mcr.model.runtime.prompt import RenderError

        if request.model != model_id:
            raise RequestError(f"model {request.model!r} is not served here; this server serves {model_id!r}",
                               status=404, code="model_not_found", param="model")
        refused = request.unsupported()
        if refused:
            raise RequestError(f"{refused[1]} (mcr serve refuses what it would otherwise ignore)", param=refused[0])
        messages = to_runtime_messages(request, resolver, multimodal)
        tools = request.tools if request.wants_tools() else None
        limit = pool.max_prompt_chars
        if limit and (chars := prompt_chars(messages, tools)) > limit:
            raise RequestError(f"messages: {chars:,} characters cannot fit the model's window of {pool.window} "
                               f"tokens (at most {limit:,} characters); send a shorter conversation",
                               code="context_length_exceeded", param="messages")
        constraint = constraint_for(request, pool.loaded.tokenizer)

        def render():  # inside the bounded queue: tokenising and media decoding are bounded too
            try:
                prompt = pool.render(messages, tools)
            except (RenderError, VideoError, ValueError) as exc:  # ValueError: SamplingError (fps, pixel budget)
                raise RequestError(f"messages: {exc}") from None
            if pool.window and len(prompt) >= pool.window:
                raise RequestError(f"messages: the prompt is {len(prompt):,} tokens; the model's window is "
                                   f"{pool.window:,}", code="context_length_exceeded", param="messages")
            return prompt

        slot = pool.take(render)
        try:
            session = slot.session
            inbox = _Inbox(loop)
            reply = Reply(pool.loaded.tokenizer, model_id, tools=tools, stops=request.stops(),
                          logprobs=request.logprobs, eos_ids=session.eos_ids)
            job = Job(slot=slot, prompt=slot.prompt, budget=request.budget(default_max_tokens), deliver=inbox.put,
                      stops=request.stops(), temperature=request.temperature or 0.0, top_p=request.top_p or 1.0,
                      seed=request.seed, constraint=constraint,
                      top_logprobs=(request.top_logprobs or 0) if request.logprobs else None)
        except BaseException:
            pool.release(slot)
            raise
        engine.submit(job)
        return job, reply, inbox

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    def not_served(path: str) -> JSONResponse:
        if path.rstrip("/") == "v1/chat/completions":
            return _error(405, "/v1/chat/completions takes POST", "method_not_allowed")
        return _error(404, f"/{path} is not served by mcr serve; it serves GET /v1/models, "
                           "POST /v1/chat/completions (streamed or not), GET /v1/slots and GET /health",
                      "not_found")

    return app


class _Inbox:
    """Events from the engine thread to one request's coroutine (thread-safe hand-off to its event loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue()
        self.done = False

    def put(self, event: Any) -> None:  # called from the engine thread
        if isinstance(event, Finished):
            self.done = True
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)
        except RuntimeError:  # the loop is closed: the server is shutting down
            pass

    async def get(self) -> Any:
        return await self.queue.get()


def _sse(obj: Any) -> str:
    return f"data: {json.dumps(obj)}\n\n"


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
        engine = getattr(getattr(self.server.config.app, "state", None), "engine", None)
        if engine is not None:
            engine.close()


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
        print(f"serving {args.model_id or model_id} ({kind}, {args.sessions} cached sessions, up to {pool.max_running} "
              f"decoding together) on "
              f"http://{shown}:{port}/v1  (OpenAI chat completions; Ctrl-C to stop)", flush=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
