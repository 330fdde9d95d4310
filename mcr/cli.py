"""The `mcr` command line.

    mcr run TASK.yaml [--trace PATH] [--workdir DIR]   run a task (or a suite)
    mcr resume THREAD_ID [--workdir DIR]               continue an interrupted episode
    mcr replay TRACE [--rerun-tools] [--until K --continue-with TASK.yaml]
                                                        re-run a recorded episode
    mcr view TRACE [-o OUT.html] [--diff OTHER] [--serve]
                                                        the trace viewer (one static HTML file)
    mcr otel TRACE [--endpoint URL] [--file OUT.json]   export OpenTelemetry spans
    mcr tools [--json]                                  list the registered tools
    mcr serve [MODEL] [--port N]                        OpenAI-compatible server with cache reuse
    mcr mcp [--http] [--plugin FILE] [--allowed-media-path DIR]  the tools as an MCP server
    mcr eval SUITE.yaml [--out DIR] [--resume] [--mode single|agent] | --compare A B
                                                        run and score a suite (mcr/eval/cli.py)
    mcr import FORMAT ANNOTATIONS --videos DIR -o SUITE.yaml
                                                        a benchmark's local annotations → a suite (mcr/eval/importers)

Exit codes: 0 the task was answered (and matched its ground truth, if it has
one); 1 the task failed (no accepted answer, a budget ran out, wrong answer);
2 bad input (a task file, video or tool name that is wrong, a thread id that is
used or running — the message says which file, line and key); 130 interrupted
(Ctrl-C: the running tool is stopped, the message names `mcr resume THREAD`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _console(quiet: bool):
    from rich.console import Console

    return Console(quiet=quiet, highlight=False, soft_wrap=True)


def _describe(entry: Any) -> tuple[str, str, str]:
    """(label, style, text) for one context entry, for the terminal."""
    kind = entry.kind
    if kind == "instruction":
        opts = f"  options: {', '.join(entry.options)}" if entry.options else ""
        return "question", "bold", f"{entry.text}{opts}"
    if kind == "observation":
        return "observe", "cyan", entry.text
    if kind == "thought":
        return "think", "magenta", entry.text
    if kind == "tool_call":
        return "call", "yellow", f"{entry.tool}({json.dumps(entry.arguments)})"
    if kind == "tool_result":
        summary = entry.summary if len(entry.summary) < 400 else entry.summary[:400] + " …"
        return "result", "green", f"{entry.tool}: {summary}"
    if kind == "tool_error":
        return "error", "red", f"{entry.tool or 'policy'} ({entry.error_type}): {entry.message}"
    if kind == "memory":
        return "memory", "blue", entry.text
    if kind == "verdict":
        return ("accepted", "green", entry.reason) if entry.accepted else ("rejected", "red", entry.reason)
    if kind == "answer":
        opt = f" ({entry.option})" if entry.option else ""
        cites = f"  evidence: {', '.join(entry.refs)}" if entry.refs else ""
        return "answer", "bold", f"{entry.text}{opt}{cites}"
    return kind, "", ""


_NEXT_WORK = {"observe": "thinking", "reason": "working", "verify": "checking the answer"}


def _print_steps(console, steps) -> None:
    """Print each entry as its node finishes; a spinner on a terminal, nothing extra when piped."""
    from contextlib import nullcontext

    from rich.markup import escape

    status = console.status("starting…") if console.is_terminal else nullcontext()
    with status as spinner:
        for step in steps:
            for entry in step.entries:
                label, style, text = _describe(entry)
                # What a model or a tool wrote is escaped: it is shown, never interpreted.
                text = escape(text).replace("\n", "\n" + " " * 15)  # keep continuation lines aligned
                console.print(f"{entry.id:>4} [{style or 'default'}]{label:<9}[/] {text}")
            if step.usage and step.usage.get("prompt_tokens"):
                u = step.usage
                scored = f", {u['scored_tokens']:,} scored (candidate replies)" if u.get("scored_tokens") else ""
                console.print(f"     [dim]model: {u['prompt_tokens']:,} prompt tokens ({u.get('reused_tokens', 0):,} reused "
                              f"from the cache, {u.get('prefilled_tokens', 0):,} prefilled), "
                              f"{u.get('generated_tokens', 0):,} generated{scored}, {u.get('latency_s', 0):.1f} s[/]")
            if spinner is not None:
                spinner.update(f"{_NEXT_WORK.get(step.node, 'thinking')}…")


def _report(console, task, result, workdir: str = ".mcr") -> int:
    correct = task.answer_is_correct(result.answer, result.option) if task is not None else None
    console.print()
    if result.accepted:
        opt = f" ({result.option})" if result.option else ""
        console.print(f"[bold]Answer:[/] {result.answer}{opt}")
    else:
        console.print(f"[bold red]No accepted answer[/] (stop reason: {result.stop_reason}"
                      f"{': ' + result.stop_detail if result.stop_detail else ''})")
    if correct is not None:
        console.print(f"Ground truth: {task.answer} → {'[green]correct[/]' if correct else '[red]wrong[/]'}")
    console.print(f"Steps: {result.steps}, tool calls: {result.tool_calls}, time: {result.elapsed_s:.1f} s")
    from rich.markup import escape

    view = escape(f"mcr view {shlex.quote(str(result.trace_path))}")
    console.print(f"Trace: {escape(str(result.trace_path))}   (view: {view}; resume: {escape(resume_command(result.thread_id, workdir))})")
    return EXIT_OK if result.accepted and correct is not False else EXIT_FAILED


def resume_command(thread_id: str, workdir: str | Path = ".mcr") -> str:
    """The `mcr resume` command line for an episode, quoted so that a shell runs it as printed."""
    where = "" if str(workdir) == ".mcr" else f" --workdir {shlex.quote(str(workdir))}"
    return f"mcr resume {shlex.quote(thread_id)}{where}"


class _Interrupted(Exception):
    """Ctrl-C during an episode: carries which one, so the message can say how to resume it."""

    def __init__(self, thread_id: str | None, workdir: str):
        super().__init__(thread_id)
        self.thread_id, self.workdir = thread_id, workdir


def cmd_run(args: argparse.Namespace) -> int:
    from mcr.agent import Agent
    from mcr.task import TaskFileError, load_task_entries

    console = _console(args.quiet)
    tasks = load_task_entries(args.task)  # a suite's task that cannot load is its error, in its place
    if len(tasks) == 1 and isinstance(tasks[0], TaskFileError):
        raise tasks[0]
    if args.trace and len(tasks) > 1:
        raise _BadInput(f"--trace names one file but {args.task} holds {len(tasks)} tasks; drop --trace")
    if args.thread and len(tasks) > 1:
        raise _BadInput(f"--thread names one episode but {args.task} holds {len(tasks)} tasks; drop --thread")
    worst = EXIT_OK
    for task in tasks:
        thread_id = None
        try:
            if isinstance(task, TaskFileError):
                raise task
            from mcr.model.media.video import probe

            probe(task.video)  # a bad video is reported now, not after the model has loaded
            if args.thread:
                _refuse_used_thread(args.workdir, args.thread)  # also before loading (Agent.stream checks again, locked)
            thread_id = args.thread or Agent.new_thread_id(task.name)
            with Agent.from_task(task, workdir=args.workdir) as agent:
                from rich.markup import escape

                console.print(f"[bold]Task[/] {escape(task.name)}: {escape(task.video.name)} — thread "
                              f"{escape(thread_id)}, policy {agent.policy.name}, tools {', '.join(agent.tools.names)}")
                steps = agent.stream_task(task, trace_path=args.trace, thread_id=thread_id)
                _print_steps(console, steps)
                worst = max(worst, _report(console, task, agent.result(thread_id), args.workdir))
        except KeyboardInterrupt:
            raise _Interrupted(thread_id, args.workdir) from None
        except _bad_input_errors() as exc:
            if len(tasks) == 1:
                raise
            # One bad task in a suite (its video, its plugin) does not stop the others; the exit code says 2.
            name = task.task_name if isinstance(task, TaskFileError) else task.name
            print(f"mcr: error in task {name}: {exc}", file=sys.stderr)
            worst = EXIT_BAD_INPUT
    return worst


def _bad_input_errors() -> tuple[type[BaseException], ...]:
    """The errors bad input raises (a task file, a video, a plugin, a tool name): exit code 2."""
    from mcr.threads import ThreadBusy, ThreadExists
    from mcr.model.media.video import VideoError
    from mcr.policies.factory import PolicyUnavailable
    from mcr.task import TaskFileError
    from mcr.tools.base import UnknownToolError
    from mcr.tools.errors import PluginError

    return (TaskFileError, VideoError, UnknownToolError, PolicyUnavailable, PluginError, _BadInput, FileNotFoundError,
            ThreadExists, ThreadBusy)


def cmd_resume(args: argparse.Namespace) -> int:
    from mcr.agent import Agent

    console = _console(args.quiet)
    # The task spec travels in the checkpoint, so the same agent can be rebuilt.
    probe = _open_state(args.workdir, args.thread_id)
    task = probe["task"].spec if "task" in probe else None
    if task is None:
        raise _BadInput(f"episode {args.thread_id} was started from Python, not a task file; resume it with Agent.resume()")
    try:
        with Agent.from_task(task, workdir=args.workdir) as agent:
            from rich.markup import escape

            console.print(f"[bold]Resuming[/] {escape(args.thread_id)} ({len(probe.get('entries', []))} entries so far)")
            _print_steps(console, agent.resume_stream(args.thread_id))
            return _report(console, task, agent.result(args.thread_id), args.workdir)
    except KeyboardInterrupt:
        raise _Interrupted(args.thread_id, args.workdir) from None


def _refuse_used_thread(workdir: str, thread_id: str) -> None:
    """Raise ThreadExists if ``thread_id`` already has an episode in ``workdir``'s checkpoints."""
    from mcr.threads import ThreadExists

    if not (Path(workdir) / "checkpoints.sqlite").is_file():
        return
    try:
        _open_state(workdir, thread_id)
    except _BadInput:
        return
    raise ThreadExists(f"thread {thread_id!r} already has an episode in {Path(workdir) / 'checkpoints.sqlite'}; "
                       f"use `{resume_command(thread_id, workdir)}` to continue or show it, or another `--thread`")


def _open_state(workdir: str, thread_id: str) -> dict[str, Any]:
    import sqlite3

    from mcr.checkpoints import EpisodeSaver
    from mcr.graph import STATE_TYPES

    db = Path(workdir) / "checkpoints.sqlite"
    if not db.is_file():
        raise _BadInput(f"no checkpoints in {workdir} ({db} does not exist); pass the --workdir the episode ran with")
    with sqlite3.connect(db, check_same_thread=False) as conn:
        saved = EpisodeSaver(conn, allowed_types=STATE_TYPES).get_tuple({"configurable": {"thread_id": thread_id}})
    if saved is None:
        raise _BadInput(f"no episode {thread_id!r} in {db}")
    return saved.checkpoint["channel_values"]


def cmd_replay(args: argparse.Namespace) -> int:
    from mcr.replay import replay
    from mcr.task import load_task

    console = _console(args.quiet)
    if (args.until is None) != (args.continue_with is None):
        raise _BadInput("--until K and --continue-with TASK.yaml go together (fork the episode at step K)")
    if not Path(args.trace).is_file():
        raise _BadInput(f"trace not found: {args.trace}")
    then = load_task(args.continue_with) if args.continue_with else None
    try:
        report = replay(args.trace, workdir=args.workdir, out=args.out, rerun_tools=args.rerun_tools,
                        until=args.until, continue_with=then, video=args.video)
    except ValueError as exc:
        raise _BadInput(str(exc)) from None
    if report.forked_at is not None:
        console.print(f"Forked at step {report.forked_at}; continued with {then.policy.name if then else '?'}.")
        console.print(f"Answer: {report.result.answer} (stop reason: {report.result.stop_reason})")
        console.print(f"Trace: {report.replayed}")
        return EXIT_OK if report.result.accepted else EXIT_FAILED
    if report.divergence is None:
        console.print(f"Reproduced: {report.replayed} matches {report.original} event for event (timings aside).")
        return EXIT_OK
    from rich.markup import escape

    console.print(f"[red]Diverged[/]: {escape(report.divergence.describe())}")
    return EXIT_FAILED


def cmd_view(args: argparse.Namespace) -> int:
    from mcr.traces.serve import ServeError, serve
    from mcr.traces.view import ViewerError, write_viewer

    try:
        out = write_viewer(args.trace, args.output, other=args.diff)
        print(f"wrote {out}  (open it in any browser; it needs no server and no network)")
        if args.serve:
            serve(out, port=args.port)
    except (ViewerError, ServeError) as exc:
        raise _BadInput(str(exc)) from None
    return EXIT_OK


def cmd_otel(args: argparse.Namespace) -> int:
    from mcr.traces.otel import OtelError, export_otel

    if not args.endpoint and not args.file:
        raise _BadInput("give --endpoint URL (an OTLP/HTTP collector) and/or --file OUT.json")
    try:
        export = export_otel(args.trace, endpoint=args.endpoint, file=args.file, include_content=args.include_content)
    except OtelError as exc:
        raise _BadInput(str(exc)) from None
    where = ", ".join(str(w) for w in (export.endpoint, export.file) if w)
    print(f"exported {export.spans} spans (trace id {export.trace_id}) to {where}")
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    from mcr.model.m2la.convert_cli import main as convert_main

    return convert_main(args.convert_args)


def cmd_tools(args: argparse.Namespace) -> int:
    from mcr.tools import UNAVAILABLE, registry_with_plugins

    registry = registry_with_plugins(args.plugin or [])
    if args.json:
        print(json.dumps(registry.schemas(), indent=2))
        return EXIT_OK
    from rich.markup import escape

    console = _console(False)
    for t in registry:
        schema = t.Input.model_json_schema()
        console.print(f"[bold]{t.name}[/]  {escape(t.description)}")
        required = set(schema.get("required", []))
        for pname, prop in schema.get("properties", {}).items():
            default = "" if pname in required else f" = {json.dumps(prop.get('default'))}"
            console.print(f"    {pname}: {escape(_type_name(prop))}{escape(default)}  [dim]{escape(prop.get('description', ''))}[/]")
    for name, why in UNAVAILABLE.items():
        console.print(f"[dim]{name}  (unavailable: {escape(why)})[/]")
    return EXIT_OK


def _type_name(schema: dict[str, Any]) -> str:
    """A JSON schema as a short type, e.g. `TimeSpan | null`, `[number, number]`."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "anyOf" in schema:
        return " | ".join(_type_name(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        if "prefixItems" in schema:
            return "[" + ", ".join(_type_name(s) for s in schema["prefixItems"]) + "]"
        return f"list[{_type_name(schema.get('items', {}))}]"
    return str(schema.get("type", "any"))


class _BadInput(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcr",
        description="InternVideo3-MCR: an agent that explores a video (observe → reason → act → verify).",
        epilog="Start with: mcr run examples/tasks/ships.yaml   (see README.md for the task format)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a task (or suite) YAML file", description="Run the episode(s) a task file describes and print each step.")
    run.add_argument("task", help="task or suite YAML file")
    run.add_argument("--trace", help="write the trace here (default: WORKDIR/traces/THREAD.jsonl)")
    run.add_argument("--workdir", default=".mcr", help="checkpoints, traces and artifacts (default: .mcr)")
    run.add_argument("--thread", help="thread id for the episode (default: TASKNAME-random)")
    run.add_argument("-q", "--quiet", action="store_true", help="print nothing; use the exit code")
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="continue an interrupted episode", description="Continue an episode from its last checkpoint.")
    resume.add_argument("thread_id", help="the thread id printed by `mcr run`")
    resume.add_argument("--workdir", default=".mcr", help="the workdir the episode ran with (default: .mcr)")
    resume.add_argument("-q", "--quiet", action="store_true", help="print nothing; use the exit code")
    resume.set_defaults(func=cmd_resume)

    rep = sub.add_parser("replay", help="re-run a recorded episode and check it reproduces",
                         description="Re-run TRACE's decisions through the graph. Exit 0 when the new trace "
                                     "matches event for event (timings aside), 1 at the first divergence.")
    rep.add_argument("trace", help="a trace written by `mcr run`")
    rep.add_argument("--rerun-tools", action="store_true",
                     help="run the tools again instead of serving their recorded outputs (checks the tools)")
    rep.add_argument("--until", type=int, metavar="K", help="replay steps 1..K, then continue live (a fork)")
    rep.add_argument("--continue-with", metavar="TASK.yaml", help="the task whose policy continues after step K")
    rep.add_argument("--video", help="the video, if it moved since the trace was recorded")
    rep.add_argument("--out", help="where to write the new trace")
    rep.add_argument("--workdir", default=".mcr", help="checkpoints and artifacts of the replay (default: .mcr)")
    rep.add_argument("-q", "--quiet", action="store_true", help="print nothing; use the exit code")
    rep.set_defaults(func=cmd_replay)

    view = sub.add_parser("view", help="write a trace's viewer: one self-contained HTML file",
                          description="Write TRACE as one static HTML page (video, timeline, steps, token chart); "
                                      "it works offline from disk. --diff adds a side-by-side comparison.")
    view.add_argument("trace", help="a trace written by `mcr run`")
    view.add_argument("-o", "--output", help="the HTML file (default: TRACE with .html)")
    view.add_argument("--diff", metavar="OTHER", help="a second trace of the same task to compare with")
    view.add_argument("--serve", action="store_true", help="also serve it on localhost (Ctrl-C to stop)")
    view.add_argument("--port", type=int, default=8000, help="with --serve: the localhost port (default: %(default)s)")
    view.set_defaults(func=cmd_view)

    otel = sub.add_parser("otel", help="export a trace as OpenTelemetry spans (GenAI conventions)")
    otel.add_argument("trace", help="a trace written by `mcr run`")
    otel.add_argument("--endpoint", help="OTLP/HTTP collector, e.g. http://localhost:4318")
    otel.add_argument("--file", help="write the spans as OTLP JSON here")
    otel.add_argument("--include-content", action="store_true", help="also export prompts and outputs (off: counts only)")
    otel.set_defaults(func=cmd_otel)

    convert = sub.add_parser("convert", help="convert a GQA model (Llama-family or Qwen3-VL folder, or .gguf) "
                             "to M^2LA, with a fidelity report",
                             add_help=False, prefix_chars="\0")
    convert.add_argument("convert_args", nargs=argparse.REMAINDER, help="see `mcr convert --help`")
    convert.set_defaults(func=cmd_convert)

    tools = sub.add_parser("tools", help="list the registered tools and their arguments")
    tools.add_argument("--json", action="store_true", help="print the JSON schemas the policy sees")
    tools.add_argument("--plugin", action="append", help="also load tools from this module or .py file")
    tools.set_defaults(func=cmd_tools)

    from mcr.eval.cli import add_parser as add_eval_parser  # mcr eval: suites, scores, reports (mcr/eval/cli.py)

    add_eval_parser(sub)
    from mcr.eval.importers.cli import register as add_import_parser  # mcr import: benchmarks → suites

    add_import_parser(sub)
    from mcr.serving.cli import add_parsers as add_serving_parsers  # mcr serve, mcr mcp (mcr/serving/cli.py)

    add_serving_parsers(sub)
    from mcr.tools.video_index.cli import add_parser as add_index_parser  # mcr index: per-video indexes

    add_index_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # offline-first: never hang on a hub look-up
    args = build_parser().parse_args(argv)
    from mcr.memory import release_freed_memory_promptly

    try:
        release_freed_memory_promptly()  # before any model loads: RSS stays flat over a long session
    except ValueError as exc:
        print(f"mcr: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from mcr.traces.recorder import TraceWriteError

    try:
        return args.func(args)
    except _bad_input_errors() as exc:
        print(f"mcr: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, _Interrupted) as exc:
        thread_id = getattr(exc, "thread_id", None)
        if thread_id:
            print(f"mcr: interrupted; episode {thread_id} can be resumed with "
                  f"`{resume_command(thread_id, exc.workdir)}`", file=sys.stderr)
        else:
            print("mcr: interrupted", file=sys.stderr)
        return _exit_interrupted()
    except TraceWriteError as exc:  # a full disk: the checkpoint holds the episode, the message says what to do
        print(f"mcr: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _exit_interrupted() -> int:
    """Exit code 130 after Ctrl-C, with no tool left running native code.

    A tool call runs on a worker thread (tools/limits.py); Ctrl-C reaches only
    the main thread. Left running, a worker inside CTranslate2 or ONNX Runtime
    aborts the interpreter's teardown (``terminate called without an active
    exception``, SIGABRT). So the running calls are cancelled and given a few
    seconds to stop at their next check; one that does not (or a second
    Ctrl-C) ends the process at once with ``os._exit``, which runs no teardown —
    nothing is lost: checkpoints are committed and trace lines written as they happen.
    """
    from mcr.tools.limits import running_calls, stop_running_calls

    try:
        if running_calls():
            print(f"mcr: stopping the running tool call (up to {INTERRUPT_GRACE_S:g} s; Ctrl-C again to stop at once)",
                  file=sys.stderr, flush=True)
        stopped = stop_running_calls(grace_s=INTERRUPT_GRACE_S)
    except KeyboardInterrupt:
        stopped = False
    if not stopped:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    return 130


INTERRUPT_GRACE_S = 5.0  # how long Ctrl-C waits for a running tool to stop between pieces of work


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
