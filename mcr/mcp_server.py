"""`mcr mcp`: every registered tool as a Model Context Protocol server (stdio or streamable HTTP).

Other agents (Claude Desktop, an IDE, any MCP client) can then call our
video tools. Each tool is listed with its own JSON schema (the same
``Input.model_json_schema()`` the policy sees) plus one extra argument,
``session``: ``{"video": PATH, "workdir": DIR}``. A session is an episode
without a policy: the first call opens it the way the graph's observe node
does (an Observation of the video, an Instruction), and every call runs
through the graph's own act node — the same validation, ToolResult /
ToolError entries, Memory entries — so

* results are cached where an episode on that workdir caches them
  (``WORKDIR/artifacts/cache``): a client repeating a call, or an ``mcr run``
  with the same ``--workdir``, gets the cached result;
* the session is traced like an episode (``WORKDIR/traces/mcp-<id>.jsonl``:
  episode_start, entries, tool_call events), readable by ``mcr view``;
* later calls see earlier results (``search``/``ground`` index the
  transcripts a previous call produced), and a restarted server picks the
  session up from its trace.

What a client may name is confined (a client is as untrusted as the model):

* **workdirs** live under the server's ``--workdir``; ``session.workdir`` names
  a subfolder there (``my-episode``), never ``/``, ``/etc/…`` or ``../..``;
* **videos** must lie in an ``--allowed-media-path`` folder or in one of the
  roots the client declared (MCP ``roots/list``); with neither, every video is
  refused, and the message says how to allow one. Path arguments of tools may
  name files in the session's workdir and beside its video (tools/paths.py),
  so nothing outside those folders is ever read;
* over ``--http``, ``--api-key-env VAR`` requires ``Authorization: Bearer
  $VAR`` (mcr serve's guard, :mod:`mcr.serving.guard`); the SDK checks Host
  against DNS rebinding.

Tool failures, and every problem with a session (a video that is a directory,
unreadable, not a video, outside the allowed folders; a bad workdir), come
back as MCP tool errors (``isError``) with the message the policy or a
command-line user would have seen, never as "Internal server error".
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
import traceback
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mcr.context import Context
from mcr.tools import registry_with_plugins
from mcr.tools.base import ToolRegistry

__all__ = ["SessionArg", "SessionError", "ToolHost", "build_server", "mcp_main"]



def _usable_roots(roots: list[Path] | tuple[Path, ...]) -> list[Path]:
    """The client's declared roots, resolved; a root that is no usable path (a NUL byte, a loop) grants nothing."""
    usable = []
    for root in roots:
        try:
            usable.append(Path(root).resolve())
        except (OSError, RuntimeError, ValueError):
            continue
    return usable

class SessionError(ValueError):
    """A call's ``session`` names a video or workdir the server will not use; the message says why and what to do."""


class SessionArg(BaseModel):
    """The ``session`` argument of every tool: which video, which episode workdir."""

    model_config = ConfigDict(extra="forbid")

    video: str = Field(min_length=1, description="path of the video the tools work on (in a folder the server "
                                                 "allows: --allowed-media-path, or a root the client declared)")
    workdir: str | None = Field(default=None, description="the episode's workdir (cache, artifacts, trace): a "
                                                         "subfolder name under the server's workdir; default: one per video")
    question: str | None = Field(default=None, description="what the session is about (recorded in the trace)")


class _Session:
    """One MCP session's episode: its context, trace and step counter."""

    def __init__(self, video: Path, workdir: Path, question: str, tool_names: list[str]):
        from mcr.graph import EpisodeInput, observe
        from mcr.model.media.video import probe
        from mcr.context import VideoRef
        from mcr.traces.recorder import EntryEvent, EpisodeStart, TraceRecorder, file_sha256, package_versions, read_trace

        self.workdir = workdir
        self.thread_id = "mcp-" + hashlib.sha256(f"{video}\0{workdir}".encode()).hexdigest()[:10]
        self.recorder = TraceRecorder(workdir / "traces" / f"{self.thread_id}.jsonl")
        self.lock = threading.Lock()
        if self.recorder.path.exists():  # a restarted server continues the session from its trace
            events = read_trace(self.recorder.path, quiet=True)
            start = next(e for e in events if e.get("type") == "episode_start")
            self.task = EpisodeInput.model_validate(start["task"])
            self.context = Context.from_dicts([e["entry"] for e in events if e.get("type") == "entry"])
            self.step = max((e.step for e in self.context), default=0)
            return
        info = probe(video)
        ref = VideoRef(path=str(video), duration=info.duration)
        self.task = EpisodeInput(thread_id=self.thread_id, question=question, video=ref,
                                 video_info=info.model_dump(mode="json"), trace_path=str(self.recorder.path))
        self.context = Context.from_dicts(observe({"task": self.task})["entries"])
        self.step = 0
        self.recorder.write(EpisodeStart(thread_id=self.thread_id, task=self.task.trace_record(), policy="mcp",
                                         tools=tool_names,
                                         video_sha256=file_sha256(video), versions=package_versions()))
        for entry in self.context:
            self.recorder.write(EntryEvent(node="observe", entry=entry.model_dump(mode="json")))


class ToolHost:
    """The MCP-independent core: list the tools, run one call in its session.

    Args:
        registry: the tools to expose (built-ins plus plugins).
        workdir: the folder every session's workdir lives under.
        tool_settings: per-tool settings, as a task's ``tool_settings``.
        allowed_media: folders whose videos sessions may name (besides the
            roots a client declares with each call).
    """

    def __init__(self, registry: ToolRegistry, workdir: str | Path = ".mcr/mcp",
                 tool_settings: dict[str, dict[str, Any]] | None = None,
                 allowed_media: list[str | Path] | None = None):
        self.registry = registry
        self.workdir = Path(workdir).expanduser().resolve()
        self.tool_settings = tool_settings or {}
        self.allowed_media = [Path(p).expanduser().resolve() for p in allowed_media or []]
        self._sessions: dict[tuple[str, str], _Session] = {}
        self._lock = threading.Lock()

    def tool_specs(self) -> list[dict[str, Any]]:
        """``{name, description, input_schema, output_schema}`` for each tool; ``session`` is added and required."""
        out = []
        for t in self.registry:
            schema = dict(t.Input.model_json_schema())
            props = {"session": SessionArg.model_json_schema(), **schema.get("properties", {})}
            schema.update(properties=props, required=["session", *schema.get("required", [])])
            schema.pop("additionalProperties", None)
            out.append({"name": t.name, "description": t.description, "input_schema": schema,
                        "output_schema": t.Output.model_json_schema()})
        return out

    def session(self, arg: SessionArg, roots: list[Path] | tuple[Path, ...] = ()) -> _Session:
        """The session ``arg`` names, opened on first use.

        Args:
            roots: folders the client declared (MCP roots), allowed besides ``allowed_media``.

        Raises:
            SessionError: the video or the workdir is not one the server will use (the message says why).
        """
        from mcr.model.media.video import VideoError

        video = self._video(arg.video, roots)
        workdir = self._workdir(arg.workdir, video)
        key = (str(video), str(workdir))
        with self._lock:
            if key not in self._sessions:
                question = arg.question or f"Tool calls from an MCP client about {video.name}"
                try:
                    self._sessions[key] = _Session(video, workdir, question, self.registry.names)
                except VideoError as exc:
                    raise SessionError(f"session.video: {exc}") from None
                except OSError as exc:  # the workdir cannot be written (a file in the way, permissions, a full disk)
                    raise SessionError(f"session.workdir: cannot write the session's workdir {workdir}: "
                                       f"{exc.strerror or exc}; name another subfolder") from None
            return self._sessions[key]

    def _video(self, named: str, roots: list[Path] | tuple[Path, ...]) -> Path:
        """``named`` resolved, if it is a readable file inside an allowed folder or a declared root."""
        try:
            video = Path(named).expanduser().resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # a NUL byte, a symlink loop
            raise SessionError(f"session.video: {named[:200]!r} is not a usable path ({type(exc).__name__})") from None
        allowed = [*self.allowed_media, *_usable_roots(roots)]
        if not allowed:
            raise SessionError(f"session.video: {video} is refused: this server allows no media folders. Start it "
                               "with `mcr mcp --allowed-media-path DIR`, or declare the folder as a root in the client")
        if not any(video == root or video.is_relative_to(root) for root in allowed):
            raise SessionError(f"session.video: {video} is outside the allowed media folders "
                               f"({', '.join(map(str, allowed))}); move it into one, or start the server with "
                               "--allowed-media-path for its folder (or declare that folder as a root in the client)")
        if video.is_dir():
            raise SessionError(f"session.video: {video} is a directory, not a video file; name one file inside it")
        if not video.exists():
            raise SessionError(f"session.video: {video} does not exist — pass the path of a video file")
        if not video.is_file():
            raise SessionError(f"session.video: {video} is not a regular file (a device, pipe or socket); "
                               "name a video file")
        if not os.access(video, os.R_OK):
            raise SessionError(f"session.video: {video} cannot be read (permission denied); "
                               "make it readable by the server's user")
        return video

    def _workdir(self, named: str | None, video: Path) -> Path:
        """The session's workdir: ``named`` (a relative subfolder) under the server's workdir, or one per video."""
        if not named:
            return self.workdir / f"{video.stem}-{hashlib.sha256(str(video).encode()).hexdigest()[:8]}"
        written = PurePosixPath(named)
        if written.is_absolute() or named.startswith("~") or ".." in written.parts or "\0" in named:
            raise SessionError(f"session.workdir: {named[:200]!r} must be a subfolder name under the server's "
                               f"workdir ({self.workdir}), e.g. 'my-episode'; absolute paths, '~' and '..' are refused")
        try:
            workdir = (self.workdir / named).resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            raise SessionError(f"session.workdir: {named[:200]!r} is not a usable folder name ({type(exc).__name__})") from None
        if workdir == self.workdir or not workdir.is_relative_to(self.workdir):  # "." or a symlink leading out
            raise SessionError(f"session.workdir: {named[:200]!r} resolves to {workdir}, not a subfolder of the "
                               f"server's workdir ({self.workdir}); name a subfolder, e.g. 'my-episode'")
        return workdir

    def call(self, name: str, arguments: dict[str, Any], roots: list[Path] | tuple[Path, ...] = ()) -> dict[str, Any]:
        """Run one call; returns ``{"ok", "text", "output", "entry", "trace"}``.

        Args:
            roots: the folders the client declared (MCP roots), allowed for videos.

        Raises:
            KeyError: no such tool. SessionError (a ValueError): a missing or bad ``session``.
        """
        from mcr.context import ToolCall
        from mcr.graph import EpisodeDeps, make_act_node
        from mcr.traces.recorder import EntryEvent, ToolCallEvent

        tool = self.registry.get(name)  # UnknownToolError (a KeyError) names the registered tools
        args = dict(arguments or {})
        try:
            arg = SessionArg.model_validate(args.pop("session", None))
        except ValidationError as exc:
            problems = "; ".join(f"session.{'.'.join(map(str, e['loc']))}: {e['msg']}".rstrip(".") for e in exc.errors())
            raise SessionError(f"{problems} — every call needs session: {{video: PATH, workdir: SUBFOLDER}}") from None
        session = self.session(arg, roots)
        deps = EpisodeDeps(policy=None, tools=self.registry, workdir=session.workdir / "artifacts",  # type: ignore[arg-type]
                           tool_settings=self.tool_settings)
        runtime = type("McpRuntime", (), {"context": deps})()
        with session.lock:
            session.step += 1
            call = session.context.append(ToolCall(step=session.step, tool=name, arguments=args))
            state = {"task": session.task, "entries": session.context.to_dicts(),
                     "pending": [{"id": call.id, "tool": name}],
                     "step": session.step, "tool_calls": 0, "elapsed_s": 0.0}
            t0 = time.perf_counter()
            update = make_act_node(name)(state, runtime)
            session.recorder.write(EntryEvent(node="mcp", entry=call.model_dump(mode="json")))
            for data in update["entries"]:
                entry = session.context.append(_entry(data))
                session.recorder.write(EntryEvent(node=f"act/{name}", entry=entry.model_dump(mode="json")))
            event = dict(update["events"][0])
            event.pop("type", None)
            event["duration_s"] = event.get("duration_s", time.perf_counter() - t0)
            session.recorder.write(ToolCallEvent(**event))
        first = _entry(update["entries"][0])
        ok = first.kind == "tool_result"
        text = first.render_text()
        return {"ok": ok, "text": text, "output": getattr(first, "output", None) if ok else None,
                "entry": first.id or call.id, "trace": str(session.recorder.path), "tool": tool.name}


def _entry(data: dict[str, Any]):
    from mcr.context import parse_entry

    return parse_entry(data)


def build_server(host: ToolHost):
    """The MCP low-level server over ``host`` (tools/list and tools/call)."""
    import anyio
    import mcp_types as types
    from mcp.server.lowlevel.server import Server

    from mcr.tools.base import UnknownToolError

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(**spec) for spec in host.tool_specs()])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        def failed(text: str) -> types.CallToolResult:
            return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)

        try:
            roots = await _client_roots(ctx)
            result = await anyio.to_thread.run_sync(host.call, params.name, params.arguments or {}, roots)
        except (UnknownToolError, ValueError) as exc:  # SessionError is a ValueError
            return failed(str(exc))
        except Exception as exc:  # a bug of ours: the client still gets the message, the server log the traceback
            traceback.print_exc(file=sys.stderr)
            return failed(f"internal error in mcr mcp while running {params.name!r}: {type(exc).__name__}: {exc}")
        return types.CallToolResult(
            content=[types.TextContent(text=result["text"])],
            structured_content=result["output"] if result["ok"] else None,
            is_error=not result["ok"],
            _meta={"mcr/entry": result["entry"], "mcr/trace": result["trace"]},
        )

    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("internvideo3-mcr")
    except PackageNotFoundError:  # pragma: no cover - a source checkout without install
        ours = "0"
    return Server("mcr", version=ours, instructions="Video tools of InternVideo3-MCR. Every call takes "
                  "session: {video, workdir}; results are cached and traced per session.",
                  on_list_tools=list_tools, on_call_tool=call_tool)


async def _client_roots(ctx: Any) -> list[Path]:
    """The local folders the client declared as its roots (``file://`` URIs), or none.

    Asked on each call (``roots/list``), so a client that changes its roots is
    followed. A client without the roots capability declares none, and so does
    one on the 2026-07-28 protocol, which dropped roots (SEP-2577) and has no
    way back to the client: for it, ``--allowed-media-path`` names the folders.
    """
    import warnings

    session = getattr(ctx, "session", None)
    caps = getattr(session, "client_capabilities", None)
    if session is None or caps is None or getattr(caps, "roots", None) is None:
        return []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the SDK marks roots deprecated (SEP-2577); clients still send them
            listed = await session.list_roots()
    except Exception:  # no back-channel, or the client failed to answer: no roots
        return []
    found = []
    for root in listed.roots:
        uri = urlparse(str(root.uri))
        if uri.scheme == "file" and uri.path:
            found.append(Path(unquote(uri.path)))
    return found


def mcp_main(args: Any) -> int:
    """The ``mcr mcp`` command: serve over stdio (default) or streamable HTTP."""
    import anyio

    api_key = None
    if getattr(args, "api_key_env", None):
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            print(f"mcr mcp: error: --api-key-env {args.api_key_env}: that environment variable is not set",
                  file=sys.stderr)
            return 2
    host = ToolHost(registry_with_plugins(args.plugin or []), workdir=args.workdir,
                    allowed_media=getattr(args, "allowed_media_path", None) or [])
    server = build_server(host)
    if not host.allowed_media:
        print("mcr mcp: no --allowed-media-path: only videos under the roots a client declares can be used",
              file=sys.stderr, flush=True)
    if args.http:
        import uvicorn

        from mcr.serving.guard import RequestGuard

        app = RequestGuard(server.streamable_http_app(host=args.host), api_key=api_key, key_prefix="/")
        print(f"MCP over streamable HTTP at http://{args.host}:{args.port}/mcp "
              f"({len(host.registry)} tools{'; API key required' if api_key else ''}; Ctrl-C to stop)", flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        return 0
    from mcp.server.stdio import stdio_server

    async def run() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(run)
    return 0
