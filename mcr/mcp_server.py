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

Tool failures come back as MCP tool errors (``isError``) with the message the
policy would have seen; unknown tools and bad sessions are protocol errors.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mcr.context import Context
from mcr.tools import registry_with_plugins
from mcr.tools.base import ToolRegistry

__all__ = ["SessionArg", "ToolHost", "build_server", "mcp_main"]


class SessionArg(BaseModel):
    """The ``session`` argument of every tool: which video, which episode workdir."""

    model_config = ConfigDict(extra="forbid")

    video: str = Field(min_length=1, description="path of the video the tools work on")
    workdir: str | None = Field(default=None, description="the episode's workdir (cache, artifacts, trace); "
                                                         "default: one per video under the server's workdir")
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
        workdir: where sessions without their own workdir live.
        tool_settings: per-tool settings, as a task's ``tool_settings``.
    """

    def __init__(self, registry: ToolRegistry, workdir: str | Path = ".mcr/mcp",
                 tool_settings: dict[str, dict[str, Any]] | None = None):
        self.registry = registry
        self.workdir = Path(workdir)
        self.tool_settings = tool_settings or {}
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

    def session(self, arg: SessionArg) -> _Session:
        video = Path(arg.video).expanduser().resolve()
        if not video.is_file():
            raise ValueError(f"session.video: {video} does not exist — pass the path of a video file")
        workdir = Path(arg.workdir).expanduser().resolve() if arg.workdir else (
            self.workdir / f"{video.stem}-{hashlib.sha256(str(video).encode()).hexdigest()[:8]}").resolve()
        key = (str(video), str(workdir))
        with self._lock:
            if key not in self._sessions:
                question = arg.question or f"Tool calls from an MCP client about {video.name}"
                self._sessions[key] = _Session(video, workdir, question, self.registry.names)
            return self._sessions[key]

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Run one call; returns ``{"ok", "text", "output", "entry", "trace"}``.

        Raises:
            KeyError: no such tool. ValueError: a missing or bad ``session``.
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
            raise ValueError(f"{problems} — every call needs session: {{video: PATH, workdir: DIR}}") from None
        session = self.session(arg)
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
        try:
            result = await anyio.to_thread.run_sync(host.call, params.name, params.arguments or {})
        except (UnknownToolError, ValueError) as exc:
            return types.CallToolResult(content=[types.TextContent(text=str(exc))], is_error=True)
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


def mcp_main(args: Any) -> int:
    """The ``mcr mcp`` command: serve over stdio (default) or streamable HTTP."""
    import anyio

    host = ToolHost(registry_with_plugins(args.plugin or []), workdir=args.workdir)
    server = build_server(host)
    if args.http:
        import uvicorn

        app = server.streamable_http_app(host=args.host)
        print(f"MCP over streamable HTTP at http://{args.host}:{args.port}/mcp "
              f"({len(host.registry)} tools; Ctrl-C to stop)", flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        return 0
    from mcp.server.stdio import stdio_server

    async def run() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(run)
    return 0
