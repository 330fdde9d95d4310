"""Faults injected into a running episode: each is reported, and nothing the episode did is lost.

* a tool that raises → a ``tool_crashed`` entry, the loop goes on;
* a tool that hangs → a ``tool_timeout`` entry after ``tool_settings.TOOL.timeout_s``;
  the abandoned worker cannot touch the episode afterwards;
* a tool that returns 50 MB → cut to ``max_output_bytes`` with a note; trace and
  checkpoint stay small, the whole output is kept beside the artifacts;
* the model running out of memory (a real allocator failure inside the tiny
  Qwen3-VL's forward) → the session's cache is freed, the error raised, the
  checkpoint intact and the episode resumable;
* the disk filling up while the trace is written (``/dev/full``: real ENOSPC) →
  a ``TraceWriteError`` naming the file and the fix, the trace readable up to
  its last whole line, and a resume that completes it.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from pathlib import Path

import pytest

from mcr.agent import Agent
from mcr.cli import main
from mcr.context import Thought
from mcr.task import Budget, PlanStep, VerifySettings
from mcr.tools.base import ToolContext, ToolRegistry, tool
from mcr.tools.limits import DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_TIMEOUT_S, ToolLimits
from mcr.traces.recorder import TraceWriteError, read_trace
from mcr.policies.scripted import ScriptedPolicy

NO_EVIDENCE_CHECK = VerifySettings(evidence=False)


@tool
def explode(x: int = 1) -> str:
    """A tool with a bug."""
    return str(1 // (x - 1))  # ZeroDivisionError for the default


release = threading.Event()
late_append: dict[str, object] = {}


@tool
def hang(ctx: ToolContext) -> str:
    """A tool that blocks until the test releases it, ignoring its cancellation (the worst case)."""
    release.wait(60)
    late_append["cancelled"] = ctx.cancelled.is_set()
    try:  # an abandoned tool that misbehaves: it tries to write the context after the fact
        late_append["entry"] = ctx.context.append(Thought(step=99, text="written by an abandoned tool"))
    except Exception as exc:  # pragma: no cover - either way it must not reach the episode
        late_append["error"] = exc
    return "too late"


@tool
def flood(megabytes: int = 50) -> dict:
    """A tool that returns far too much: one long text and one long list."""
    return {"text": "x" * (megabytes * 500_000), "rows": [{"i": i, "v": "y" * 40} for i in range(megabytes * 10_000)]}


@tool
def ok() -> str:
    """A tool that works."""
    return "fine"


def _agent(tmp_path: Path, plan: list[PlanStep], tools, **kwargs) -> Agent:
    return Agent(policy=ScriptedPolicy(plan), tools=ToolRegistry(tools), workdir=tmp_path / "w",
                 budget=Budget(max_steps=8, max_tool_calls=8, wall_time_s=300), verify=NO_EVIDENCE_CHECK, **kwargs)


def _entries(result, kind: str):
    return [e for e in result.context if e.kind == kind]


def test_a_tool_that_raises_is_recorded_and_the_loop_goes_on(tmp_path, tiny_video, ledger):
    plan = [PlanStep(call="explode"), PlanStep(call="ok"), PlanStep(answer="{{ results.ok.result }}")]
    with _agent(tmp_path, plan, [explode, ok]) as agent:
        result = agent.run(tiny_video, "Does it go on?")
    error = _entries(result, "tool_error")[0]
    assert error.error_type == "tool_crashed" and error.tool == "explode"
    assert "ZeroDivisionError" in error.message
    assert result.accepted and result.answer == "fine" and result.steps == 3
    ledger.case("fault", "a tool raises (ZeroDivisionError)", outcome="tool_crashed entry; the episode answered",
                message=error.message)


def test_a_hanging_tool_times_out_and_cannot_touch_the_episode_later(tmp_path, tiny_video, ledger):
    release.clear()
    late_append.clear()
    plan = [PlanStep(call="hang"), PlanStep(call="ok"), PlanStep(answer="{{ results.ok.result }}")]
    with _agent(tmp_path, plan, [hang, ok], tool_settings={"hang": {"timeout_s": 0.5}}) as agent:
        t0 = time.monotonic()
        result = agent.run(tiny_video, "Does it go on?")
        waited = time.monotonic() - t0
        error = _entries(result, "tool_error")[0]
        assert error.error_type == "tool_timeout" and error.tool == "hang"
        assert "'hang'" in error.message and "tool_settings.hang.timeout_s" in error.message
        assert result.accepted and result.answer == "fine"
        assert waited < 30  # it did not wait for the tool (which blocks up to 60 s)

        before = agent.state(result.thread_id)["entries"]
        trace_before = Path(result.trace_path).read_bytes()
        release.set()  # the abandoned worker now returns and tries to append to the context
        deadline = time.monotonic() + 10
        while "entry" not in late_append and "error" not in late_append and time.monotonic() < deadline:
            time.sleep(0.01)
        assert late_append.get("cancelled") is True  # it was told it had been abandoned
        assert agent.state(result.thread_id)["entries"] == before  # the checkpoint did not change
        assert Path(result.trace_path).read_bytes() == trace_before
        assert "abandoned tool" not in json.dumps(before)
    ledger.case("fault", "a tool hangs (timeout_s: 0.5)", outcome="tool_timeout entry; the episode answered; "
                "the abandoned call's late write reached neither checkpoint nor trace", message=error.message)


def test_timeouts_have_a_default_and_bad_settings_are_reported(tmp_path, tiny_video, ledger):
    limits, rest = ToolLimits.for_tool(ok(), {"timeout_s": 120, "other": 1})
    assert limits.timeout_s == 120 and rest == {"other": 1}  # the tool never sees the limit keys
    default, _ = ToolLimits.for_tool(ok(), {})
    assert default.timeout_s == DEFAULT_TIMEOUT_S and default.max_output_bytes == DEFAULT_MAX_OUTPUT_BYTES

    plan = [PlanStep(call="ok"), PlanStep(answer="done")]
    with _agent(tmp_path, plan, [ok], tool_settings={"ok": {"timeout_s": "soon"}}) as agent:
        result = agent.run(tiny_video, "?")
    error = _entries(result, "tool_error")[0]
    assert error.error_type == "bad_settings" and "tool_settings.ok.timeout_s" in error.message
    ledger.case("fault", "a tool's timeout_s is not a number", outcome="bad_settings entry naming the key",
                message=error.message)


@pytest.mark.parametrize("bound, megabytes", [(None, 50), (4096, 2)])
def test_a_huge_output_is_cut_to_the_bound_with_a_note(tmp_path, tiny_video, ledger, bound, megabytes):
    settings = {"flood": {"max_output_bytes": bound}} if bound else {}
    limit = bound or DEFAULT_MAX_OUTPUT_BYTES
    plan = [PlanStep(call="flood", args={"megabytes": megabytes}),
            PlanStep(answer="{{ results.flood.result.rows | length }} rows")]
    with _agent(tmp_path, plan, [flood], tool_settings=settings) as agent:
        result = agent.run(tiny_video, "How much?")
    entry = _entries(result, "tool_result")[0]
    size = len(json.dumps(entry.output, ensure_ascii=False, separators=(",", ":")).encode())
    assert size <= limit
    assert size > limit * 0.5  # cut to the bound, not emptied
    rows = entry.output["result"]["rows"]
    assert rows and rows[0] == {"i": 0, "v": "y" * 40}  # the shape is kept: the head of the list, whole
    assert "[output truncated" in entry.summary and f"tool_settings.flood.max_output_bytes = {limit:,}" in entry.summary
    copy = Path(entry.summary.split("the whole output is in ")[1].split(".json")[0] + ".json")
    full = json.loads(copy.read_text())
    assert len(full["result"]["rows"]) == megabytes * 10_000 and len(full["result"]["text"]) == megabytes * 500_000
    assert result.accepted
    # Trace and checkpoint stay small: the output (~50 MB) is in neither.
    trace_bytes = Path(result.trace_path).stat().st_size
    db_bytes = sum(p.stat().st_size for p in (tmp_path / "w").glob("checkpoints.sqlite*"))
    assert trace_bytes < 4 * limit + 200_000 and db_bytes < 8 * limit + 2_000_000, (trace_bytes, db_bytes)
    ledger.case("fault", f"a tool returns ~{megabytes} MB (bound {limit:,} bytes)",
                outcome=f"output cut to {size:,} bytes with a note; trace {trace_bytes:,} B, checkpoint db "
                        f"{db_bytes:,} B; the whole output saved beside the artifacts",
                message=entry.summary[entry.summary.index("[output truncated"):])


# --------------------------------------------------------------------------- #
# Out of memory, from a real allocator failure inside the model
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from mcr.model.runtime.loader import load_model
    from mcr.model.runtime.tiny import save_tiny_qwen3vl

    return load_model(save_tiny_qwen3vl(tmp_path_factory.mktemp("tiny-qwen3vl")), dtype="float32")


def test_the_model_running_out_of_memory_frees_the_cache_and_keeps_the_checkpoint(tmp_path, tiny_video, tiny_model, ledger):
    import torch

    from mcr.model.runtime.session import ModelSession
    from mcr.policies.base import CallRequest, FinalAnswer, ToolCalls
    from mcr.policies.internvideo3 import InternVideo3Policy
    from mcr.task import VideoSettings

    class Planned(InternVideo3Policy):
        """The real policy (its prompt and its generation fill the session); the decisions fixed."""

        def decide(self, context, tools):
            real = super().decide(context, tools)
            done = sum(1 for e in context if e.kind == "tool_call")
            plan = ToolCalls(calls=(CallRequest(tool="ok"),)) if done < 2 else FinalAnswer(text="fine")
            return plan.model_copy(update={"usage": real.usage})

    armed = {"on": False}

    def exhaust(module, args):  # a real allocation the CPU allocator refuses, mid-forward
        if armed["on"]:
            torch.empty(1 << 50, dtype=torch.uint8)

    layer = tiny_model.model.model.language_model.layers[0]
    handle = layer.register_forward_pre_hook(exhaust)
    try:
        session = ModelSession(tiny_model, max_new_tokens=2)
        registry = ToolRegistry([ok])
        agent = Agent(policy=Planned(session, registry=registry), tools=registry, workdir=tmp_path / "w",
                      budget=Budget(max_steps=6, max_tool_calls=6, wall_time_s=300), verify=NO_EVIDENCE_CHECK,
                      video_settings=VideoSettings(fps=2.0, min_pixels=64 * 64, max_pixels=96 * 64))
        steps = agent.stream(tiny_video, "What is it?")
        for step in steps:  # run until the first tool result, then arm the failure
            if step.node == "act/ok":
                break
        assert session.cached_tokens > 0
        armed["on"] = True
        with pytest.raises(RuntimeError) as failure:
            for _ in steps:
                pass
        thread = agent.last_thread_id
        assert "can't allocate memory" in str(failure.value)
        assert session.cached_tokens == 0 and session.cache.get_seq_length() == 0  # freed
        kinds = [e["kind"] for e in agent.state(thread)["entries"]]
        assert kinds[-1] == "tool_result" and "tool_error" not in kinds  # intact, nothing swallowed
        events = read_trace(agent.state(thread)["task"].trace_path)
        assert [e["entry"]["id"] for e in events if e["type"] == "entry"] == [f"e{i}" for i in range(len(kinds))]

        armed["on"] = False  # memory is back: the episode resumes from its checkpoint
        result = agent.resume(thread)
        assert result.accepted and result.answer == "fine"
        assert [e.kind for e in result.context].count("tool_result") == 2
        agent.close()
    finally:
        handle.remove()
    ledger.case("fault", "the model runs out of memory (CPU allocator, mid-forward)",
                outcome="raised; session cache freed; checkpoint intact; resume answered",
                message=str(failure.value))


@tool
def exhaust() -> str:
    """A tool whose allocation fails, as torch's CUDA allocator fails."""
    import torch

    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_out_of_memory_in_a_tool_on_its_worker_thread_still_ends_the_run(tmp_path, tiny_video, ledger):
    import torch

    plan = [PlanStep(call="ok"), PlanStep(call="exhaust"), PlanStep(answer="never")]
    agent = _agent(tmp_path, plan, [ok, exhaust])
    with pytest.raises(torch.OutOfMemoryError) as failure:
        agent.run(tiny_video, "?")
    kinds = [e["kind"] for e in agent.state(agent.last_thread_id)["entries"]]
    agent.close()
    assert kinds[-1] == "tool_call" and "tool_error" not in kinds  # ours, not the tool's: not a tool_crashed entry
    ledger.case("fault", "a tool runs out of memory (torch.OutOfMemoryError on the call's worker thread)",
                outcome="raised, not recorded as tool_crashed; the checkpoint ends at the call",
                message=str(failure.value))


# --------------------------------------------------------------------------- #
# The disk fills up while the trace is written
# --------------------------------------------------------------------------- #

FILL = {"at": None}


@tool
def fill_disk(n: int) -> str:
    """From now on the trace's disk is full: its path points at /dev/full (every write: ENOSPC)."""
    link = FILL["at"]
    if link is not None:
        tmp = link.with_suffix(".swap")
        os.symlink("/dev/full", tmp)
        os.replace(tmp, link)
        FILL["at"] = None
    return f"call {n}"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux) to give real ENOSPC")
def test_the_disk_filling_up_mid_trace_is_a_clear_error_and_the_trace_stays_readable(tmp_path, tiny_video, ledger):
    real = tmp_path / "trace.jsonl"
    link = tmp_path / "trace-link.jsonl"
    os.symlink(real, link)
    plan = [PlanStep(call="ok"), PlanStep(call="fill_disk", args={"n": 2}), PlanStep(call="ok"),
            PlanStep(answer="{{ results.fill_disk.result }}")]
    agent = _agent(tmp_path, plan, [ok, fill_disk])
    FILL["at"] = link
    with pytest.raises(TraceWriteError) as failure:
        agent.run(tiny_video, "Is the trace kept?", trace_path=link)
    err = failure.value
    assert err.errno == errno.ENOSPC and str(link) in str(err)
    assert "disk" in str(err) and "free space" in str(err) and "mcr resume" in str(err)
    lines = real.read_bytes()
    assert lines.endswith(b"\n")
    kept = read_trace(real)  # readable: every whole line
    ids = [e["entry"]["id"] for e in kept if e["type"] == "entry"]
    assert ids == [f"e{i}" for i in range(len(ids))]
    thread = agent.last_thread_id
    saved = agent.state(thread)["entries"]
    assert len(saved) > len(ids)  # the checkpoint holds what the trace could not

    os.replace(link, tmp_path / "full.link")  # space is freed: the trace path is a real file again
    os.symlink(real, link)
    result = agent.resume(thread)
    agent.close()
    assert result.accepted and result.answer == "call 2"
    events = read_trace(real)
    ids = [e["entry"]["id"] for e in events if e["type"] == "entry"]
    assert sorted(ids, key=lambda i: int(i[1:])) == [f"e{i}" for i in range(len(result.context))]
    assert len(ids) == len(set(ids)) and events[-1]["type"] == "episode_end"
    ledger.case("fault", "the disk fills up mid-trace (/dev/full: ENOSPC)",
                outcome="TraceWriteError naming the file and the fix; trace readable up to its last whole line; "
                        "resume completed the trace", message=str(err))


def test_a_torn_last_line_is_cut_before_a_resume_appends(tmp_path, tiny_video, ledger):
    """What a short write on a full disk (or a kill mid-write) leaves: part of a line, no newline."""
    plan = [PlanStep(call="ok"), PlanStep(call="ok"), PlanStep(answer="done")]
    agent = _agent(tmp_path, plan, [ok])
    steps = agent.stream(tiny_video, "?")
    for step in steps:
        if step.node == "act/ok":
            break
    steps.close()
    trace = Path(agent.state(agent.last_thread_id)["task"].trace_path)
    with open(trace, "ab") as handle:
        handle.write(b'{"v":1,"type":"entry","node":"act/ok","entry":{"id":"e9","ki')
    with pytest.warns(UserWarning, match="torn last line"):
        result = agent.resume(agent.last_thread_id)
    agent.close()
    events = read_trace(trace)  # no broken line in the middle
    ids = [e["entry"]["id"] for e in events if e["type"] == "entry"]
    assert ids == [f"e{i}" for i in range(len(result.context))] and result.accepted
    ledger.case("fault", "a torn last trace line, then resume", outcome="torn tail cut; the resumed trace is whole")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux) to give real ENOSPC")
def test_the_cli_says_the_disk_is_full(tmp_path, tiny_video, capsys, ledger):
    task = tmp_path / "task.yaml"
    (tmp_path / "clip.mp4").write_bytes(tiny_video.read_bytes())
    task.write_text("name: full\nvideo: clip.mp4\nquestion: Is it kept?\ntools: [video_info]\n"
                    "verify: {evidence: false}\n"
                    "policy: {name: scripted, plan: [{call: video_info}, {answer: done}]}\n")
    link = tmp_path / "t.jsonl"
    os.symlink("/dev/full", link)
    code = main(["run", str(task), "--workdir", str(tmp_path / "w"), "--trace", str(link)])
    err = capsys.readouterr().err
    assert code == 1 and "mcr: error: cannot write the trace" in err and "free space" in err
    assert "Traceback" not in err
    ledger.case("fault", "mcr run with a full disk for the trace", outcome="exit 1, one clear line",
                message=err.strip())


@tool
def blob(n: int) -> str:
    """A tool whose result is a few kilobytes (so a small disk fills within a few steps)."""
    return f"{n}:" + "z" * 1000


@pytest.fixture
def small_disk(tmp_path):
    """A real 64 KiB filesystem (tmpfs), where a write past its end is a short write, then ENOSPC."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_really_full_disk_mid_trace_then_resume_after_freeing_space(tmp_path, tiny_video, small_disk, ledger):
    filler = small_disk / "filler"
    filler.write_bytes(b"f" * 48_000)  # the trace gets what is left: a few steps' worth
    trace = small_disk / "trace.jsonl"
    plan = [PlanStep(call="blob", args={"n": k}) for k in range(1, 13)] + [PlanStep(answer="{{ results.blob.result[:2] }}")]
    agent = Agent(policy=ScriptedPolicy(plan), tools=ToolRegistry([blob]), workdir=tmp_path / "w",
                  budget=Budget(max_steps=14, max_tool_calls=14, wall_time_s=300), verify=NO_EVIDENCE_CHECK)
    with pytest.raises(TraceWriteError) as failure:
        agent.run(tiny_video, "How far?", trace_path=trace)
    err = failure.value
    assert err.errno == errno.ENOSPC and str(trace) in str(err) and "free space" in str(err)
    with pytest.warns(UserWarning, match="torn"):  # the disk ended mid-line: that line is dropped, the rest reads
        kept = read_trace(trace)
    ids = [e["entry"]["id"] for e in kept if e["type"] == "entry"]
    assert ids == [f"e{i}" for i in range(len(ids))] and len(ids) >= 3

    filler.unlink()  # space is freed
    with pytest.warns(UserWarning, match="cut a torn last line"):
        result = agent.resume(agent.last_thread_id)
    agent.close()
    events = read_trace(trace)  # whole again: the torn tail was cut before the resume appended
    ids = [e["entry"]["id"] for e in events if e["type"] == "entry"]
    assert sorted(ids, key=lambda i: int(i[1:])) == [f"e{i}" for i in range(len(result.context))]
    assert len(ids) == len(set(ids)) and result.accepted and result.answer == "12"
    ledger.case("fault", "a real 64 KiB disk (tmpfs) fills mid-trace, then space is freed",
                outcome="short write then ENOSPC: TraceWriteError; trace readable but for its torn last line; "
                        "resume cut the tail and completed the trace", message=str(err))
