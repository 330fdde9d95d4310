"""Fuzzing the parsers that read what others wrote: model output, task files, traces.

Each target is a function that meets text nobody checked: a model's reply, a
YAML file a user typed, a trace file that a killed process left behind. The
property is the same everywhere: it returns a well-formed value or raises its
*typed* error (the one its callers catch and turn into a message), never
anything else. Hypothesis generates the inputs from fragments of the real
grammar (tags, JSON, YAML keys, trace events) mixed with noise, so the
examples reach deep into each parser rather than failing at its first byte.

The default run tries ``FAST`` examples per target with a fixed seed
(``derandomize``), so CI sees the same inputs every time; the ``slow`` variants
try ``SLOW`` with fresh randomness. Every crash a run found was fixed in the
source and is kept here as an ``@example``.
"""

from __future__ import annotations

import json
import math
import tempfile
import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mcr.context import TimeSpan, letters_for
from mcr.eval.scorers import extract_choice, parse_span, score_choice
from mcr.policies.base import FinalAnswer, InvalidOutput, ToolCalls
from mcr.policies.parsing import _option_in, parse_decision
from mcr.task import TaskFileError, TaskSpec, load_tasks
from mcr.tools import builtin_registry
from mcr.tools.errors import ToolFailure
from mcr.tools.ground import parse_span as ground_parse_span
from mcr.traces.recorded import RecordedEpisode
from mcr.traces.recorder import (
    SCHEMA_VERSION, EntryEvent, EpisodeEnd, EpisodeStart, ModelCallEvent, ToolCallEvent, TraceFormatError, TraceRecorder, read_trace,
)

FAST, SLOW = 2000, 8_000  # the slow sweep: 6 x 20,000 took 14 min on 2 busy cores; CI has 90 min for everything


def fuzz_settings(n: int):
    common = dict(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    return settings(derandomize=True, **common) if n == FAST else settings(**common)


class Counter:
    """How many examples Hypothesis really ran (it may stop early once it has seen every input)."""

    def __init__(self, ledger, target: str):
        self.ledger, self.target, self.n = ledger, target, 0

    def __call__(self) -> None:
        self.n += 1

    def record(self, outcome: str) -> None:
        self.ledger.count("fuzz_examples", self.n)
        self.ledger.case("fuzz", self.target, outcome=f"{self.n} examples; {outcome}")
        assert self.n > 0


# --------------------------------------------------------------------------- #
# Strategies: fragments of the real grammars, mixed with noise
# --------------------------------------------------------------------------- #

REGISTRY = builtin_registry()
TOOLS = REGISTRY.schemas()
NAMES = REGISTRY.names

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=6,
)
# Argument objects that sometimes fit a real tool's Input (spans, queries, counts).
span_obj = st.fixed_dictionaries({"start": st.floats(-5, 1e4) | json_values, "end": st.floats(-5, 1e4) | json_values})
arguments = st.dictionaries(
    st.sampled_from(["query", "span", "top_k", "count", "scope", "sources", "language", "answer", "evidence", "x"]),
    json_values | span_obj | st.text(max_size=30), max_size=4,
)


def _dumps(value) -> str:
    return json.dumps(value, allow_nan=True)


call_json = st.builds(
    lambda name, args, key, as_string: _dumps({"name": name, key: _dumps(args) if as_string else args}),
    st.sampled_from(NAMES) | st.text(max_size=10), arguments, st.sampled_from(["arguments", "parameters"]), st.booleans(),
)
TAGS = ["<tool_call>", "</tool_call>", "<answer>", "</answer>", '<answer option="B" evidence="e1,e2">', "<answer option=",
        "<think>", "</think>", "```json", "```", "{", "}", '"name"', ":", "\n", "answer is ", "Option (C)", "(A)", "I ",
        "A ", "B.", "\u2028", "\x00", "e3", ",", '"', "'"]
model_text = st.lists(
    st.sampled_from(TAGS) | st.text(max_size=16) | call_json.map(lambda j: f"<tool_call>{j}</tool_call>") | call_json,
    max_size=6,
).map("".join)
options = st.none() | st.lists(st.text(max_size=12) | st.sampled_from(["seven", "a red car", "red car", "A", "I", ""]),
                               min_size=2, max_size=6)


# --------------------------------------------------------------------------- #
# 1. The tool-call parser
# --------------------------------------------------------------------------- #


def _parse_decision_holds(text: str, opts: list[str] | None) -> None:
    decision = parse_decision(text, TOOLS, options=opts, registry=REGISTRY)
    assert isinstance(decision, (ToolCalls, FinalAnswer, InvalidOutput))
    if isinstance(decision, ToolCalls):
        for call in decision.calls:
            REGISTRY.get(call.tool).validate_input(call.arguments)  # the graph will accept every call
    elif isinstance(decision, FinalAnswer):
        if opts:
            assert decision.option in letters_for(opts)
        assert decision.text
    else:
        assert decision.error


def test_fuzz_tool_call_parser(ledger):
    count = Counter(ledger, "tool-call parser (policies/parsing.py parse_decision)")

    @fuzz_settings(FAST)
    @given(model_text, options)
    @example('<tool_call>{"name": "search", "arguments": {"query": "x", "top_k": 1e999}}</tool_call>', None)
    @example('<tool_call>{"name": "ground", "arguments": "[1, 2]"}', ["a", "b"])
    @example("<answer option=>x</answer>", ["a", "b"])
    def run(text, opts):
        count()
        _parse_decision_holds(text, opts)

    run()
    count.record("ToolCalls / FinalAnswer / InvalidOutput only, never an exception")


@pytest.mark.slow
def test_fuzz_tool_call_parser_long(ledger):
    count = Counter(ledger, "tool-call parser, long run")

    @fuzz_settings(SLOW)
    @given(model_text, options)
    def run(text, opts):
        count()
        _parse_decision_holds(text, opts)

    run()
    count.record("ToolCalls / FinalAnswer / InvalidOutput only")


# --------------------------------------------------------------------------- #
# 2. The multiple-choice extractors
# --------------------------------------------------------------------------- #

choice_text = st.none() | st.lists(
    st.sampled_from(["The answer is ", "Answer: ", "I choose ", "option ", "(", ")", "[", "]", "<think>", "</think>",
                     "A", "b", "C.", " ", "I'm", "seven", "red car", "a", "the", "*", "'", "\n"]) | st.text(max_size=10),
    max_size=10,
).map("".join)
mc_options = st.lists(st.text(max_size=10) | st.sampled_from(["seven", "red car", "a red car", "A", "I", "", " ", "."]),
                      min_size=2, max_size=26)


def _choice_holds(text: str | None, opts: list[str], truth: str, option: str | None) -> None:
    valid = letters_for(opts)
    choice = extract_choice(text, opts)
    assert choice.letter is None or choice.letter in valid
    score, picked = score_choice(option, text, truth, opts)
    assert score in (0.0, 1.0) and (picked.letter is None or picked.letter in valid)
    hit = _option_in(text or "", valid)
    assert hit is None or hit in valid
    task = TaskSpec(video="v.mp4", question="q", options=opts, answer=truth or None)
    assert task.answer_is_correct(text, option) in (True, False, None)


def test_fuzz_choice_extractor(ledger):
    count = Counter(ledger, "multiple-choice extractors (scorers.extract_choice/score_choice, parsing._option_in, answer_is_correct)")

    @fuzz_settings(FAST)
    @given(choice_text, mc_options, st.text(max_size=6), st.none() | st.text(max_size=4))
    @example("The answer is A", ["x", "y"], "A", None)
    @example("A", [".", "y"], "", " ")
    def run(text, opts, truth, option):
        count()
        _choice_holds(text, opts, truth, option)

    run()
    count.record("a valid letter or None, never an exception")


@pytest.mark.slow
def test_fuzz_choice_extractor_long(ledger):
    count = Counter(ledger, "multiple-choice extractors, long run")

    @fuzz_settings(SLOW)
    @given(choice_text, mc_options, st.text(max_size=6), st.none() | st.text(max_size=4))
    def run(text, opts, truth, option):
        count()
        _choice_holds(text, opts, truth, option)

    run()
    count.record("a valid letter or None")


# --------------------------------------------------------------------------- #
# 3. The YAML task loader
# --------------------------------------------------------------------------- #

TASK_KEYS = sorted(TaskSpec.model_fields) + ["suite", "tasks", "defaults", "vidoe", "max_steps"]
yaml_scalars = (st.none() | st.booleans() | st.integers(-10**13, 10**13) | st.floats() | st.text(max_size=12)
                | st.sampled_from(["v.mp4", "missing.mp4", "../v.mp4", "/etc/passwd", "plug.py", "a/b.py", "scripted",
                                   "offline", "internvideo3", "choice", "auto", "{{ x }}", "[1, 2]"]))
_SUB_KEYS = st.sampled_from(TASK_KEYS + ["name", "plan", "call", "answer", "start", "end", "max_steps"]) | st.text(max_size=6)
yaml_values = (yaml_scalars | st.lists(yaml_scalars, max_size=3)
               | st.dictionaries(_SUB_KEYS, yaml_scalars | st.lists(yaml_scalars, max_size=2), max_size=3))
task_dicts = st.dictionaries(st.sampled_from(TASK_KEYS), yaml_values, max_size=8).map(
    lambda d: {"video": "v.mp4", "question": "q?", **d} if len(d) % 2 else d
)
YAML_BITS = ["name: ", "video: v.mp4\n", "question: q\n", "options: [", "]", "\n", "  ", "- ", "&a ", "*a", "!!python/object:os.system ",
             "!!binary ", "{", "}", ": ", "'", '"', "\t", "---\n", "...\n", "%YAML 1.1\n", "<<: *a\n", "? ", "|\n", "\ufeff", "\x00",
             "!!str ", "!!int ", "tasks:\n", "suite: s\n"]
yaml_text = st.lists(st.sampled_from(YAML_BITS) | st.text(max_size=8), max_size=10).map("".join)
task_files = (task_dicts.map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode("utf-8"))
              | task_dicts.map(lambda d: yaml.safe_dump({"suite": "s", "tasks": [d, d]}).encode("utf-8"))
              | yaml_text.map(lambda t: t.encode("utf-8", "surrogatepass"))
              | st.binary(max_size=64))

_TASK_DIR = tempfile.TemporaryDirectory(prefix="mcr-fuzz-task-")
TASK_DIR = Path(_TASK_DIR.name)
(TASK_DIR / "v.mp4").write_bytes(b"")  # load time checks only that the video is a file


def _loader_holds(data: bytes) -> None:
    path = TASK_DIR / "task.yaml"
    path.write_bytes(data)
    try:
        tasks = load_tasks(path)
    except TaskFileError as exc:
        assert str(exc).startswith(str(path))  # names the file
        return
    assert tasks and all(isinstance(t, TaskSpec) and t.video.is_file() for t in tasks)


def test_fuzz_task_loader(ledger):
    count = Counter(ledger, "YAML task loader (mcr/task.py load_tasks): YAML documents, YAML-ish text, raw bytes")

    @fuzz_settings(FAST)
    @given(task_files)
    @example(b"\xff\xfe\x00garbage")  # not UTF-8: was a UnicodeDecodeError
    @example(b"video: v.mp4\nquestion: q\n" + b"x: " + b"[" * 5000)  # deep nesting: was a RecursionError
    @example(b"!!int")  # an empty tagged int: was an IndexError inside PyYAML
    @example(b"video: v.mp4\nquestion: q\nspan: [1, 2, 3]\n")
    @example(b"suite: s\ntasks: [{video: v.mp4, question: q}]\ndefaults: [1]\n")
    @example(b'question: q?\nvideo: "\\0"\n')  # a NUL in the path: was a ValueError from os.path.realpath (CI's long run)
    @example(b'answer: null\nvideo: "\\0"\n')  # the same NUL behind a missing question
    def run(data):
        count()
        _loader_holds(data)

    run()
    count.record("TaskSpec list or TaskFileError naming the file, never another exception")


@pytest.mark.slow
def test_fuzz_task_loader_long(ledger):
    count = Counter(ledger, "YAML task loader, long run")

    @fuzz_settings(SLOW)
    @given(task_files)
    def run(data):
        count()
        _loader_holds(data)

    run()
    count.record("TaskSpec list or TaskFileError")


# --------------------------------------------------------------------------- #
# 4. The trace reader
# --------------------------------------------------------------------------- #

_ENTRY = {"id": "e1", "kind": "tool_call", "step": 1, "tool": "search", "arguments": {"query": "x"}, "refs": []}
VALID_EVENTS = [
    EpisodeStart(thread_id="t", task={"question": "q"}, policy="scripted", tools=["search"]).model_dump_json(),
    EntryEvent(node="reason", entry=_ENTRY).model_dump_json(),
    EntryEvent(node="act", entry={"id": "e2", "kind": "tool_result", "step": 1, "tool": "search", "output": {},
                                  "summary": "", "refs": ["e1"]}).model_dump_json(),
    ModelCallEvent(step=1, policy="scripted", usage={"prompt_tokens": 3}).model_dump_json(),
    ToolCallEvent(step=1, tool="search", call_id="e1", input={}, duration_s=0.1).model_dump_json(),
    EpisodeEnd(stop_reason="answered").model_dump_json(),
]


def _mutate(line: str, how: str, noise: str, cut: int) -> str:
    if how == "keep":
        return line
    if how == "cut":
        return line[: cut % (len(line) + 1)]
    if how == "noise":
        at = cut % (len(line) + 1)
        return line[:at] + noise + line[at:]
    event = json.loads(line)
    if how == "version":
        event["v"] = noise if cut % 3 == 0 else SCHEMA_VERSION + 1 + cut % 5 if cut % 3 == 1 else -cut
    elif how == "drop":
        event.pop(sorted(event)[cut % len(event)])
    elif how == "retype":
        key = sorted(event)[cut % len(event)]
        event[key] = [noise, None, 3, {"x": noise}, noise * 2][cut % 5]
    elif how == "scalar":
        return json.dumps([noise, 7, None, True][cut % 4])
    return json.dumps(event)


trace_lines = st.lists(
    st.tuples(st.sampled_from(VALID_EVENTS),
              st.sampled_from(["keep", "keep", "cut", "noise", "version", "drop", "retype", "scalar"]),
              st.text(max_size=8), st.integers(0, 10**6)).map(lambda t: _mutate(*t)),
    max_size=8,
)
trace_files = (trace_lines.map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))
               | st.tuples(trace_lines, st.binary(max_size=40)).map(lambda t: "\n".join(t[0]).encode("utf-8", "surrogatepass") + t[1])
               | st.binary(max_size=80))

_TRACE_DIR = tempfile.TemporaryDirectory(prefix="mcr-fuzz-trace-")
TRACE_PATH = Path(_TRACE_DIR.name) / "trace.jsonl"


def _reader_holds(data: bytes) -> None:
    TRACE_PATH.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a torn last line is dropped with a TornTraceWarning
        try:
            events = read_trace(TRACE_PATH)
        except TraceFormatError as exc:
            assert str(TRACE_PATH) in str(exc)
            return
    assert all(isinstance(e, dict) and isinstance(e.get("type"), str) for e in events)
    assert all(isinstance(e.get("v", SCHEMA_VERSION), int) and e.get("v", SCHEMA_VERSION) <= SCHEMA_VERSION for e in events)
    try:
        recorded = RecordedEpisode(events)
    except TraceFormatError:
        return
    assert isinstance(recorded.last_step, int) and isinstance(recorded.task, dict)


def test_fuzz_trace_reader(ledger):
    count = Counter(ledger, "trace reader (read_trace + RecordedEpisode): torn lines, random bytes, wrong versions")

    @fuzz_settings(FAST)
    @given(trace_files)
    @example(b"\xff\xfe\xfa")  # not UTF-8: was a UnicodeDecodeError
    @example(b"7\n")  # JSON but not an event: was an AttributeError in its readers
    @example(VALID_EVENTS[0].replace('"v":1', '"v":99').encode())  # a newer schema: was read silently
    @example((VALID_EVENTS[0] + "\n" + VALID_EVENTS[1].replace('"entry":{', '"entry":{"x":')).encode())
    @example((VALID_EVENTS[0] + '\n{"type": "entry", "node": "reason", "entry": 5}').encode())  # was a TypeError
    def run(data):
        count()
        _reader_holds(data)

    run()
    count.record("events or TraceFormatError naming the file, never another exception")


@pytest.mark.slow
def test_fuzz_trace_reader_long(ledger):
    count = Counter(ledger, "trace reader, long run")

    @fuzz_settings(SLOW)
    @given(trace_files)
    def run(data):
        count()
        _reader_holds(data)

    run()
    count.record("events or TraceFormatError")


def _round_trip_holds(texts: list[str]) -> None:
    TRACE_PATH.unlink(missing_ok=True)
    recorder = TraceRecorder(TRACE_PATH)
    events = [EntryEvent(node="act", entry={"id": f"e{i}", "kind": "thought", "step": 1, "text": t})
              for i, t in enumerate(texts)]
    for event in events:
        recorder.write(event)
    if not events:
        return
    assert read_trace(TRACE_PATH) == [json.loads(e.model_dump_json()) for e in events]


def test_fuzz_trace_round_trip(ledger):
    count = Counter(ledger, "trace writer → reader round trip (any text a model writes)")

    @fuzz_settings(FAST)
    @given(st.lists(st.text(max_size=20) | st.sampled_from(["\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x85", "\r"]),
                    max_size=4))
    @example(["a\u2028b", "c"])  # splitlines() cut the line at U+2028: the whole trace became unreadable
    def run(texts):
        count()
        _round_trip_holds(texts)

    run()
    count.record("every event read back equal, never a torn or extra line")


@pytest.mark.slow
def test_fuzz_trace_round_trip_long(ledger):
    count = Counter(ledger, "trace round trip, long run")

    @fuzz_settings(SLOW)
    @given(st.lists(st.text(max_size=40), max_size=6))
    def run(texts):
        count()
        _round_trip_holds(texts)

    run()
    count.record("every event read back equal")


# --------------------------------------------------------------------------- #
# 5. The span parsers
# --------------------------------------------------------------------------- #

span_text = st.lists(
    st.sampled_from(["[", "]", "(", ")", ",", ";", " - ", "–", " to ", "from ", "between ", " and ", "s", " seconds", ":",
                     ".", "0", "6", "12.5", "1:02", "99999999999999999999999999", "9" * 400, "-", " "]) | st.text(max_size=6),
    max_size=12,
).map("".join)
span_values = (span_text | st.none() | st.lists(json_values, max_size=3) | st.tuples(json_values, json_values))
bounds = st.none() | st.floats(0, 1e6)
within = st.none() | st.tuples(st.floats(0, 1e6), st.floats(0, 1e6)).map(lambda t: TimeSpan(start=min(t), end=max(t)))


def _spans_hold(value, text: str, duration: float | None, inside: TimeSpan | None, obj) -> None:
    span = parse_span(value)
    if span is not None:
        assert all(math.isfinite(x) and x >= 0 for x in span) and span[0] <= span[1]
    try:
        grounded = ground_parse_span(text, duration, inside)
    except ToolFailure as exc:
        assert exc.error_type in ("malformed_model_output", "span_outside_video")
    else:
        assert math.isfinite(grounded.start) and math.isfinite(grounded.end) and grounded.start <= grounded.end
        if duration is not None:
            assert grounded.end <= duration + 1e-6
    try:
        parsed = TimeSpan.model_validate(obj)
    except ValidationError:
        return
    assert math.isfinite(parsed.start) and math.isfinite(parsed.end) and 0 <= parsed.start <= parsed.end


def test_fuzz_span_parsers(ledger):
    count = Counter(ledger, "span parsers (scorers.parse_span, ground.parse_span, TimeSpan from model JSON)")

    @fuzz_settings(FAST)
    @given(span_values, span_text, bounds, within, span_obj | json_values)
    @example("9" * 400 + " - 1", "9" * 400 + " - " + "9" * 401, None, None, {"start": 0, "end": float("inf")})
    @example("[1, 2]", "5 - 9", 3.0, TimeSpan(start=10, end=20), {"start": 1, "end": 2})  # within beyond the video
    @example(None, "6[0", 1.09375, None, None)  # rounding to ms stepped past the video's end
    def run(value, text, duration, inside, obj):
        count()
        _spans_hold(value, text, duration, inside, obj)

    run()
    count.record("a finite ordered span, None, or ToolFailure/ValidationError")


@pytest.mark.slow
def test_fuzz_span_parsers_long(ledger):
    count = Counter(ledger, "span parsers, long run")

    @fuzz_settings(SLOW)
    @given(span_values, span_text, bounds, within, span_obj | json_values)
    def run(value, text, duration, inside, obj):
        count()
        _spans_hold(value, text, duration, inside, obj)

    run()
    count.record("a finite ordered span, None, or a typed error")
