"""Per-call limits on a tool: how long it may run, and how much it may return.

An unattended run over thousands of videos must not stall on one tool that
hangs (a decoder stuck on a broken stream, a web request that never returns)
nor fill its trace and checkpoint with one tool's 50 MB answer. The act node
runs every call through :func:`run_limited`:

* **time**: the call runs on a worker thread and the node waits at most
  ``timeout_s`` seconds (``tool_settings: {TOOL: {timeout_s: N}}``; default
  the tool class's ``timeout_s``, else :data:`DEFAULT_TIMEOUT_S`). A call that
  does not finish becomes a :class:`ToolTimeout` (a ``tool_timeout``
  ToolError naming the tool and the setting to raise) and the loop goes on.

  Python cannot kill a thread. A timed-out worker is *abandoned*, not
  stopped: it keeps its CPU and memory until the tool returns on its own (it
  is a daemon thread, so it never keeps the process alive; workers that
  finish in time are reused, and a forked child starts with none). It cannot touch
  the episode: it was given a snapshot of the context, not the live one, and
  whatever it returns or raises is dropped. Its ``ctx.cancelled`` event is
  set, so a tool that loops can check it and stop early. A tool that uses the
  episode's model (``ctx.fork()``) should honour it: an abandoned fork still
  runs on the same session's weights.
* **size**: the output, serialized as JSON, is cut to ``max_output_bytes``
  (default :data:`DEFAULT_MAX_OUTPUT_BYTES`, 1 MB): long strings are shortened
  and long lists lose their tail, keeping the output's shape, and the entry's
  summary says so, how big it was, and how to get more. The whole output is
  written beside the run's artifacts, so nothing is lost.
"""

from __future__ import annotations

import contextvars
import copy as copy_module
import json
import os
import queue
import re
import threading
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, TypeVar

from mcr.context import Context
from mcr.tools.base import Tool, ToolContext
from mcr.tools.errors import ToolFailure

__all__ = ["DEFAULT_TIMEOUT_S", "DEFAULT_MAX_OUTPUT_BYTES", "LIMIT_KEYS", "ToolLimits", "ToolTimeout",
           "ToolCancelled", "run_limited", "raise_if_cancelled", "running_calls", "stop_running_calls",
           "bound_output", "bound_summary", "output_copy_path"]

#: Seconds a call may run unless its tool or the task says otherwise.
DEFAULT_TIMEOUT_S = 600.0
#: Serialized JSON bytes a ToolResult's output may hold.
DEFAULT_MAX_OUTPUT_BYTES = 1_000_000
#: The keys of ``tool_settings.<tool>`` read here (not passed on to the tool).
LIMIT_KEYS = ("timeout_s", "max_output_bytes")
_MIN_OUTPUT_BYTES = 1024

T = TypeVar("T")


class ToolTimeout(ToolFailure):
    """A tool call ran past its time limit; the episode goes on without its result."""

    def __init__(self, message: str):
        super().__init__(message, "tool_timeout")


class ToolCancelled(ToolFailure):
    """A tool call stopped early because it was cancelled (timed out, or the user pressed Ctrl-C)."""

    def __init__(self, message: str = "the tool call was cancelled before it finished"):
        super().__init__(message, "tool_cancelled")


#: The running call's cancel event, set in the worker's context (see :func:`raise_if_cancelled`).
_CANCEL_EVENT: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("mcr_tool_cancel", default=None)


def raise_if_cancelled() -> None:
    """Raise :class:`ToolCancelled` if the tool call running in this thread was cancelled.

    Long tools call it between pieces of work (an ASR backend between
    segments), so a cancelled call returns within one piece instead of
    running its native threads on while the process exits (Ctrl-C during
    ``transcribe`` used to end in ``terminate called without an active
    exception``, SIGABRT).
    """
    event = _CANCEL_EVENT.get()
    if event is not None and event.is_set():
        raise ToolCancelled()


@dataclass(frozen=True)
class ToolLimits:
    """The limits of one tool's calls, from the task's ``tool_settings`` and the tool's defaults."""

    tool: str
    timeout_s: float | None = DEFAULT_TIMEOUT_S  # None: no limit
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES

    @classmethod
    def for_tool(cls, tool: Tool, settings: dict[str, Any]) -> tuple[ToolLimits, dict[str, Any]]:
        """The limits, and the settings left for the tool itself.

        Raises:
            ToolFailure (``bad_settings``): a limit is not a positive number.
        """
        rest = {k: v for k, v in settings.items() if k not in LIMIT_KEYS}
        timeout = settings.get("timeout_s", getattr(tool, "timeout_s", DEFAULT_TIMEOUT_S))
        size = settings.get("max_output_bytes", getattr(tool, "max_output_bytes", DEFAULT_MAX_OUTPUT_BYTES))
        where = f"tool_settings.{tool.name}"
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ToolFailure(f"{where}.timeout_s must be a positive number of seconds (or null for no limit), "
                              f"not {timeout!r}", "bad_settings")
        if isinstance(size, bool) or not isinstance(size, int) or size < _MIN_OUTPUT_BYTES:
            raise ToolFailure(f"{where}.max_output_bytes must be a whole number of bytes >= {_MIN_OUTPUT_BYTES}, "
                              f"not {size!r}", "bad_settings")
        return cls(tool.name, None if timeout is None else float(timeout), size), rest


def _snapshot(context: Context) -> Context:
    """A copy the worker may read (or even append to) without touching the episode's context.

    Entries are immutable, so copying the two containers is enough: tens of
    microseconds at a thousand entries, where rebuilding the context entry by
    entry would make every tool call cost more as the episode grows.
    """
    copy = copy_module.copy(context)
    entries, by_id = getattr(context, "_entries", None), getattr(context, "_by_id", None)
    if not isinstance(entries, list) or not isinstance(by_id, dict):  # the Context changed shape: the slow way
        return Context(list(context), system_prompt=context.system_prompt)
    copy._entries, copy._by_id = list(entries), dict(by_id)
    return copy


class _Call:
    """One call handed to a worker: its result, and who gave up on whom (under one lock)."""

    running: set[_Call] = set()  # calls handed to a worker that have not returned (see stop_running_calls)
    running_lock = threading.Lock()

    def __init__(self, fn: Callable[[], Any], cancelled: threading.Event | None = None):
        self.fn, self.lock, self.done = fn, threading.Lock(), threading.Event()
        self.cancelled = cancelled or threading.Event()
        self.finished = self.abandoned = False
        self.value: Any = None
        self.error: BaseException | None = None

    def __call__(self) -> bool:
        """Run it; return whether the worker may take another call (it was not abandoned)."""
        try:
            self.value = self.fn()
        except BaseException as exc:  # handed to the waiting node, which decides
            self.error = exc
        finally:
            with self.lock:
                self.finished = True
                keep = not self.abandoned
            with _Call.running_lock:
                _Call.running.discard(self)
            self.done.set()
        return keep

    def wait(self, timeout_s: float) -> bool:
        """Whether it finished in time; if not, it is abandoned (its worker ends when it returns)."""
        self.done.wait(timeout_s)
        with self.lock:
            if not self.finished:
                self.abandoned = True
            return self.finished


class _Worker(threading.Thread):
    """A daemon thread that runs calls one after another, reused while none times out.

    Starting a thread per call cost ~170 µs (measured), more than the rest of a
    loop step's overhead; handing a call to an idle worker costs ~20 µs.
    """

    _idle: list[_Worker] = []
    _idle_lock = threading.Lock()
    MAX_IDLE = 8

    def __init__(self) -> None:
        super().__init__(daemon=True, name="mcr-tool-worker")
        self.calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self.start()

    def run(self) -> None:
        while (call := self.calls.get()) is not None and call():
            pass

    @classmethod
    def take(cls) -> _Worker:
        with cls._idle_lock:
            return cls._idle.pop() if cls._idle else cls()

    def give_back(self) -> None:
        with self._idle_lock:
            if len(self._idle) < self.MAX_IDLE:
                self._idle.append(self)
                return
        self.calls.put(None)  # enough idle workers: this one ends


def _forget_workers_after_fork() -> None:
    """A forked child has none of its parent's threads: the idle list would hand calls to no one."""
    _Worker._idle = []
    _Worker._idle_lock = threading.Lock()
    _Call.running = set()
    _Call.running_lock = threading.Lock()


def running_calls() -> int:
    """How many tool calls are running on workers now."""
    with _Call.running_lock:
        return len(_Call.running)


def stop_running_calls(grace_s: float) -> bool:
    """Cancel every tool call still running on a worker and wait up to ``grace_s`` for them to return.

    The process is about to exit (Ctrl-C): a worker still inside native code
    (CTranslate2, ONNX Runtime) when the interpreter tears down aborts the
    process. Tools that call :func:`raise_if_cancelled` return within one
    piece of work. Returns whether none is left running; if one is, the caller
    ends the process with ``os._exit`` (no teardown for the native threads to
    trip over: the checkpoints and trace are already on disk).
    """
    import time

    with _Call.running_lock:
        calls = list(_Call.running)
    for call in calls:
        call.cancelled.set()
    deadline = time.monotonic() + grace_s
    for call in calls:
        if not call.done.wait(max(deadline - time.monotonic(), 0)):
            return False
    return True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers_after_fork)


def run_limited(limits: ToolLimits, ctx: ToolContext, fn: Callable[[ToolContext], T]) -> T:
    """Run ``fn(ctx')`` within ``limits.timeout_s``; ``ctx'`` holds a snapshot of the context.

    Returns what ``fn`` returned, or re-raises what it raised.

    Raises:
        ToolTimeout: it did not finish in time (its worker thread is abandoned).
    """
    cancelled = threading.Event()
    call_ctx = replace(ctx, context=_snapshot(ctx.context), cancelled=cancelled)
    if limits.timeout_s is None:
        return fn(call_ctx)
    context = contextvars.copy_context()
    context.run(_CANCEL_EVENT.set, cancelled)
    call = _Call(partial(context.run, fn, call_ctx), cancelled)
    with _Call.running_lock:
        _Call.running.add(call)
    worker = _Worker.take()
    worker.calls.put(call)
    try:
        finished = call.wait(limits.timeout_s)
    except BaseException:  # Ctrl-C while waiting: the call stops at its next check (see stop_running_calls)
        cancelled.set()
        raise
    if not finished:
        cancelled.set()
        raise ToolTimeout(
            f"tool {limits.tool!r} did not finish within {limits.timeout_s:g} s and was abandoned; "
            f"raise tool_settings.{limits.tool}.timeout_s in the task (or null for no limit) if it needs longer, "
            f"or call it on a shorter span"
        )
    worker.give_back()
    if call.error is not None:
        raise call.error
    return call.value


# --------------------------------------------------------------------------- #
# Output size
# --------------------------------------------------------------------------- #


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _shrink(value: Any, budget: int) -> Any:
    """``value`` cut to about ``budget`` serialized bytes, keeping its shape."""
    if isinstance(value, str):
        data = value.encode("utf-8")
        if len(data) + 2 <= budget:
            return value
        return data[: max(budget - 8, 0)].decode("utf-8", errors="ignore") + "…"
    if isinstance(value, list):
        out, used = [], 2
        for item in value:
            size = _size(item) + 1
            if used + size <= budget:
                out.append(item)
                used += size
                continue
            if budget - used > 64 and isinstance(item, (str, list, dict)):  # room for part of it
                out.append(_shrink(item, budget - used - 1))
            break
        return out
    if isinstance(value, dict):
        sizes = {k: _size(v) for k, v in value.items()}
        overhead = 2 + sum(len(json.dumps(k, ensure_ascii=False).encode("utf-8")) + 2 for k in value)
        remaining = max(budget - overhead, 0)
        kept: dict[str, Any] = {}
        order = sorted(value, key=lambda k: sizes[k])  # water-filling: small values stay whole
        for i, key in enumerate(order):
            share = remaining // (len(order) - i)
            kept[key] = value[key] if sizes[key] <= share else _shrink(value[key], share)
            remaining -= min(sizes[key], _size(kept[key]))
        return {k: kept[k] for k in value}
    return value


def output_copy_path(workdir: Path, thread_id: str, call_id: str) -> Path:
    """Where the whole output of a cut call goes: ``WORKDIR/outputs/THREAD-CALL.json``."""
    return Path(workdir) / "outputs" / (re.sub(r"[^\w.-]", "_", thread_id) + f"-{call_id}.json")


def bound_output(output: dict[str, Any], limits: ToolLimits, full_copy: Path | None = None) -> tuple[dict[str, Any], str | None]:
    """The output cut to ``limits.max_output_bytes``, and a note when it was cut.

    ``full_copy``: where to write the whole output when it is cut (the note
    names it); a failed write is said in the note rather than raised.
    """
    size = _size(output)
    if size <= limits.max_output_bytes:
        return output, None
    budget, bounded = limits.max_output_bytes, output
    for _ in range(8):  # the shares are estimates: tighten until it fits
        bounded = _shrink(output, budget)
        if _size(bounded) <= limits.max_output_bytes:
            break
        budget = int(budget * 0.8)
    saved = ""
    if full_copy is not None:
        try:
            full_copy.parent.mkdir(parents=True, exist_ok=True)
            full_copy.write_text(json.dumps(output, ensure_ascii=False), encoding="utf-8")
            saved = f"; the whole output is in {full_copy}"
        except OSError as exc:
            saved = f"; the whole output could not be saved ({exc.strerror or exc})"
    note = (f"[output truncated: {limits.tool} returned {size:,} bytes of JSON, more than "
            f"tool_settings.{limits.tool}.max_output_bytes = {limits.max_output_bytes:,}; long texts and lists "
            f"were cut{saved}. To get more, raise that setting or ask for less (a shorter span, fewer items).]")
    return bounded, note


def bound_summary(summary: str, limits: ToolLimits, note: str | None) -> str:
    """The entry's summary (what the policy reads) within the same bound, the note appended."""
    if note is None and len(summary) <= limits.max_output_bytes // 4:  # chars ≤ bytes/4: surely under the bound
        return summary
    if _size(summary) > limits.max_output_bytes:
        summary = _shrink(summary, limits.max_output_bytes)
    return f"{summary} {note}" if note else summary
