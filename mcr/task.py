"""YAML task definitions: one task, or a suite of tasks with shared defaults.

A task file becomes a validated pydantic spec once, at load time; nothing
downstream touches raw dicts. Validation is strict (unknown keys, wrong types,
missing files) and every error names the file, the line and the key, because a
newcomer's first contact with the framework is usually a typo in a YAML file.

Task format (paths are relative to the YAML file)::

    name: ships
    video: ../media/sample.mp4
    media_root: ..                         # relative videos may point here (default: this folder)
    question: How many ships does the keeper count at night?
    options: [five, six, seven, eight]     # optional: multiple choice
    answer: C                              # optional ground truth (letter, text or a number)
    span: [6.0, 12.0]                      # optional ground-truth span, seconds ({start: 6.0, end: 12.0} too)
    category: counting                     # optional, for `mcr eval` breakdowns (+ metadata: {...})
    scorer: auto                           # how `mcr eval` scores: auto|choice|span|exact|numeric|open
    tools: [segment, transcribe]           # allowed tools (default: all)
    plugins: [my_tools.py]                 # extra tool modules (file or dotted name)
    budget: {max_steps: 8, max_tool_calls: 8, wall_time_s: 300}
    verify: {evidence: true, recheck: false}   # how answers are checked
    policy:
      name: scripted
      plan:
        - think: Listen to the narration.
          call: transcribe
        - answer: "{{ spoken('ships').text }}"
          option: "{{ choose(spoken('ships').text) }}"
          evidence: [transcribe]

A suite file has ``suite: NAME``, optional ``defaults:`` (any task key) and
``tasks:`` (a list of tasks); each task is the defaults updated by its own keys.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from mcr.context import TimeSpan
from mcr.window import DEFAULT_WINDOW_TOKENS, question_char_limit

# --------------------------------------------------------------------------- #
# Shared settings types (also used by the Agent API)
# --------------------------------------------------------------------------- #


class Budget(BaseModel):
    """Limits that always end an episode; the one that did is the stop reason."""

    model_config = ConfigDict(extra="forbid")

    # Upper bounds catch a typo (an extra digit, 10**12) before it becomes an episode that never ends.
    max_steps: int = Field(default=12, ge=1, le=100_000, description="policy turns (reason steps)")
    max_tool_calls: int = Field(default=24, ge=0, le=1_000_000)
    wall_time_s: float = Field(default=900.0, gt=0, le=30 * 86_400, description="active seconds, summed over resumes (at most 30 days)")
    max_tokens: int | None = Field(default=None, ge=1, le=10**11, description="model tokens run (prefilled + scored + generated)")
    max_frames: int | None = Field(
        default=2000, ge=1, le=10**8,
        description="frames the exploration tools (overview, skim, focus, look) may decode in the episode; null: no limit")


class VideoSettings(BaseModel):
    """How the policy's model looks at the video (Qwen-VL sampling semantics)."""

    model_config = ConfigDict(extra="forbid")

    fps: float = Field(default=2.0, gt=0)
    min_pixels: int = Field(default=64 * 28 * 28, gt=0)
    max_pixels: int = Field(default=256 * 28 * 28, gt=0)
    max_frames: int | None = Field(default=None, ge=1, description="frame cap per look (default: Qwen-VL's 768)")


class VerifySettings(BaseModel):
    """How the verify node judges answers (see mcr/verify.py and tools/evidence/)."""

    model_config = ConfigDict(extra="forbid")

    evidence: bool = Field(default=True, description="check that the cited entries support the answer")
    recheck: bool = Field(default=False, description="re-inspect cited spans with the model (needs a model policy)")
    require_evidence: bool = Field(default=False, description="reject answers that cite nothing")
    min_support: float = Field(default=0.4, ge=0, le=1)


# --------------------------------------------------------------------------- #
# Policies as the task names them
# --------------------------------------------------------------------------- #


class PlanCall(BaseModel):
    """One tool call in a scripted plan. String arguments may be templates."""

    model_config = ConfigDict(extra="forbid")

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class PlanStep(BaseModel):
    """One scripted decision: tool call(s) or an answer, with an optional thought.

    Templates (``{{ ... }}``, Jinja2, sandboxed) see ``results`` (last output of
    each tool), ``question``, ``options`` and the helpers ``find``, ``spoken``
    and ``choose``; see ``policies/scripted.py``.
    """

    model_config = ConfigDict(extra="forbid")

    think: str | None = None
    call: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    calls: list[PlanCall] | None = None
    answer: str | None = None
    option: str | None = None
    evidence: list[str] = Field(default_factory=list)
    confidence: Literal["low"] | None = Field(default=None, description="'low': a last-step guess (see mcr/verify.py)")

    @model_validator(mode="after")
    def _one_action(self) -> PlanStep:
        actions = [self.call is not None, self.calls is not None, self.answer is not None]
        if sum(actions) != 1:
            raise ValueError("each plan step needs exactly one of 'call', 'calls' or 'answer'")
        if self.args and self.call is None:
            raise ValueError("'args' goes with 'call'")
        if (self.option or self.evidence or self.confidence) and self.answer is None:
            raise ValueError("'option', 'evidence' and 'confidence' go with 'answer'")
        return self

    def planned_calls(self) -> list[PlanCall]:
        if self.call is not None:
            return [PlanCall(tool=self.call, args=self.args)]
        return list(self.calls or [])


class ScriptedPolicySpec(BaseModel):
    """Follow a fixed plan: the deterministic driver for tests and demos."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["scripted"]
    plan: list[PlanStep] = Field(min_length=1)


class ModelPolicySpec(BaseModel):
    """A model decides. ``settings`` go to the policy's constructor as they are."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["internvideo3", "offline", "openai"]
    settings: dict[str, Any] = Field(default_factory=dict)


PolicySpec = Annotated[Union[ScriptedPolicySpec, ModelPolicySpec], Field(discriminator="name")]


# --------------------------------------------------------------------------- #
# Tasks and suites
# --------------------------------------------------------------------------- #


SPAN_FORMS = "a span is [start, end] in seconds, e.g. [6.0, 12.0], or a mapping {start: 6.0, end: 12.0}"
MAX_QUESTION_CHARS = 100_000  # a question (or an option) longer than this is a pasted file, not a question
MAX_TASK_FILE_BYTES = 8 * 2**20  # a suite of ten thousand questions fits; parsing more takes seconds per MB


class TaskSpec(BaseModel):
    """One question about one video, and how to explore it."""

    model_config = ConfigDict(extra="forbid")

    name: str = "task"
    video: Path
    # Relative video paths must stay inside this folder (default: the task file's own); see _resolve_paths.
    media_root: Path | None = None
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    options: list[str] | None = None
    answer: str | None = None
    span: TimeSpan | None = None
    # Evaluation (`mcr eval`): how the answer is scored, and the metadata the report breaks down by.
    category: str | None = Field(default=None, description="a label for per-category breakdowns (e.g. 'on-screen text')")
    metadata: dict[str, Any] = Field(default_factory=dict, description="free data kept with the result (source, duration, ...)")
    scorer: Literal["auto", "choice", "span", "exact", "numeric", "open"] = Field(
        default="auto",
        description="auto: choice with options, span for grounding (a span and no answer), numeric when the answer is a number, else open",
    )
    tools: list[str] | None = None
    plugins: list[str] = Field(default_factory=list)
    tool_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    budget: Budget = Field(default_factory=Budget)
    video_settings: VideoSettings = Field(default_factory=VideoSettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    policy: PolicySpec = Field(default_factory=lambda: ModelPolicySpec(name="offline"))

    # Where the task came from, so later checks (tool names) can point at a line.
    _source: tuple[str, dict[tuple, int], tuple] | None = PrivateAttr(default=None)

    def check_tool_names(self, available: set[str] | list[str]) -> None:
        """Raise TaskFileError if the task names a tool that is not registered."""
        available = set(available)
        named: list[tuple[tuple, str]] = [(("tools", i), n) for i, n in enumerate(self.tools or [])]
        if isinstance(self.policy, ScriptedPolicySpec):
            for i, step in enumerate(self.policy.plan):
                if step.call is not None:
                    named.append((("policy", "plan", i, "call"), step.call))
                for j, call in enumerate(step.calls or []):
                    named.append((("policy", "plan", i, "calls", j, "tool"), call.tool))
        allowed = set(self.tools) if self.tools is not None else available
        for key_path, name in named:
            if name not in available or name not in allowed:
                why = "is not registered" if name not in available else "is not in this task's 'tools'"
                path, lines, base = self._source or (self.name, {}, ())
                raise TaskFileError(
                    path,
                    f"unknown tool {name!r} ({why}); available: {', '.join(sorted(allowed & available)) or '(none)'}",
                    line=lines.get(base + key_path),
                    key=".".join(str(p) for p in key_path),
                )

    @field_validator("answer", mode="before")
    @classmethod
    def _answer_as_text(cls, value: Any) -> Any:
        """``answer: 3`` (a YAML number) is the text "3": counting questions have numeric answers."""
        return _number_as_text(value)

    @field_validator("options", mode="before")
    @classmethod
    def _options_as_text(cls, value: Any) -> Any:
        return [_number_as_text(v) for v in value] if isinstance(value, list) else value

    @field_validator("span", mode="before")
    @classmethod
    def _span_from_pair(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return {"start": value[0], "end": value[1]}
        return value

    @field_validator("options")
    @classmethod
    def _options_fit_letters(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not 2 <= len(value) <= 26:
            raise ValueError("a multiple-choice task needs 2 to 26 options")
        return value

    @model_validator(mode="after")
    def _question_fits_the_window(self) -> TaskSpec:
        """A question longer than the policy's window allows (:func:`mcr.window.question_char_limit`) is refused
        here; the exact check, in the model's tokens, ends a run with ``context_exhausted`` instead."""
        window = policy_window(self.policy)
        limit = question_char_limit(window, fallback=MAX_QUESTION_CHARS)
        if len(self.question) > limit:
            message = (f"the question has {len(self.question):,} characters; the {self.policy.name} policy's model "
                       f"reads {window or 0:,} tokens, so a question may have at most {limit:,} characters (a quarter "
                       "of its window): shorten it")
            raise PydanticCustomError("question_window", message.replace("{", "{{").replace("}", "}}"))
        return self

    def answer_is_correct(self, text: str | None, option: str | None) -> bool | None:
        """Compare a final answer to the ground truth; None when there is none."""
        if self.answer is None:
            return None
        truth = self.answer.strip().lower()
        if self.options and len(truth) == 1:  # a letter: only the chosen option counts ("c" is in most texts)
            return option is not None and option.strip().lower() == truth
        return text is not None and truth in text.strip().lower()


def _number_as_text(value: Any) -> Any:
    """A YAML int or float as the text it was written as (``3`` → "3"); booleans and the rest unchanged."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def policy_window(policy: ScriptedPolicySpec | ModelPolicySpec) -> int | None:
    """The window (tokens) of the policy's model where the task alone tells it: the offline default's SmolLM2.

    Other models' windows are read from their config when they load; their runs
    check the prompt exactly then (``context_exhausted``).
    """
    if policy.name == "offline" and not getattr(policy, "settings", {}).get("model"):
        return DEFAULT_WINDOW_TOKENS
    return None


class SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str
    defaults: dict[str, Any] = Field(default_factory=dict)
    tasks: list[dict[str, Any]] = Field(min_length=1)


# --------------------------------------------------------------------------- #
# Loading, with errors that point at the line
# --------------------------------------------------------------------------- #


class TaskFileError(ValueError):
    """A task file is unreadable or invalid. Says file, line and key.

    ``problems`` lists every problem found in one pass (each a TaskFileError of
    its own); ``line``, ``key`` and ``reason`` are the first one's.
    """

    def __init__(self, path: Path | str, message: str, line: int | None = None, key: str | None = None):
        self.path, self.line, self.key, self.reason = str(path), line, key, message
        self.task_name: str | None = None  # set for a suite's task (see load_task_entries)
        self.problems: list[TaskFileError] = [self]
        where = f"{path}:{line}" if line else str(path)
        what = f" (key '{key}')" if key else ""
        super().__init__(f"{where}{what}: {message}")

    @classmethod
    def combine(cls, path: Path | str, problems: list[TaskFileError]) -> TaskFileError:
        """One error that reports every problem: the first as its own, then each on a line of its own."""
        if len(problems) == 1:
            return problems[0]
        first = problems[0]
        listed = "\n".join(f"  {i}. " + (f"line {p.line}" if p.line else "the file")
                           + (f" (key '{p.key}')" if p.key else "") + f": {p.reason}"
                           for i, p in enumerate(problems, 1))
        combined = cls(path, f"{first.reason}\n{len(problems)} problems in this task, fix them all:\n{listed}",
                       line=first.line, key=first.key)
        combined.reason, combined.problems = first.reason, list(problems)
        return combined


def _line_index(node: yaml.Node, path: tuple = ()) -> dict[tuple, int]:
    """Map each key path in a composed YAML document to its 1-based line."""
    lines: dict[tuple, int] = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = path + (key_node.value,)
            lines.update(_line_index(value_node, sub))
            lines[sub] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.update(_line_index(item, path + (i,)))
    return lines


def _read_yaml(path: Path) -> tuple[Any, dict[tuple, int]]:
    if not path.is_file():
        raise TaskFileError(path, "task file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TaskFileError(path, f"not UTF-8 text (byte {exc.start}); save the task file as UTF-8 YAML") from None
    try:
        loader = yaml.SafeLoader(text)  # parsed once: the node (for line numbers) and its data (safe_load's own steps)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise TaskFileError(path, f"malformed YAML: {problem}", line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise TaskFileError(path, "YAML nested too deeply to read; a task file needs only a few levels") from None
    except (ValueError, IndexError, TypeError, OverflowError) as exc:  # PyYAML's constructors on a bad tagged value
        raise TaskFileError(path, f"malformed YAML: a value cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise TaskFileError(path, "a task file must be a mapping of keys (name, video, question, ...)", line=1)
    return data, _line_index(node) if node is not None else {}


def _known_keys() -> set[str]:
    models = (TaskSpec, SuiteSpec, Budget, VideoSettings, VerifySettings, PlanStep, PlanCall, ScriptedPolicySpec, ModelPolicySpec, TimeSpan)
    return {name for model in models for name in model.model_fields}


def _error_from_validation(path: Path, exc: ValidationError, lines: dict[tuple, int], base: tuple = (),
                           also: list[TaskFileError] = ()) -> TaskFileError:
    """One TaskFileError for every problem pydantic found (and ``also``), so one run reports them all.

    The error's ``line``/``key``/``reason`` are the first problem's; ``problems`` lists each.
    """
    # A misspelt key also makes the right one "missing": report the typo first, and not the missing key twice.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    problems: list[TaskFileError] = []
    guessed: set[tuple] = set()
    for err in errors:
        problem, guess = _problem(path, err, lines, base)
        if guess is not None:
            guessed.add(guess)
        if err["type"] == "missing" and base + _clean_loc(err) in guessed:
            continue  # "did you mean 'question'?" already says it
        if not any(p.key == problem.key and p.reason == problem.reason for p in problems):
            problems.append(problem)
    ordered = sorted([*problems, *also], key=lambda p: p.line if p.line is not None else 1 << 30)  # stable: ties keep the typo first
    return TaskFileError.combine(path, ordered)


def _clean_loc(err: dict[str, Any]) -> tuple:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in ("scripted", "internvideo3", "offline", "openai")))
    return loc + ("name",) if err["type"] == "union_tag_invalid" else loc


def _problem(path: Path, err: dict[str, Any], lines: dict[tuple, int], base: tuple) -> tuple[TaskFileError, tuple | None]:
    """One validation error as a TaskFileError (file, line, key, message), and the key a typo was guessed to be."""
    loc = _clean_loc(err)
    key_path = base + loc
    line = None
    for cut in range(len(key_path), -1, -1):  # nearest enclosing key that has a line
        if key_path[:cut] in lines:
            line = lines[key_path[:cut]]
            break
    key = ".".join(str(p) for p in key_path) or None
    kind, guessed = err["type"], None
    if kind == "extra_forbidden":
        guess = difflib.get_close_matches(str(loc[-1]), _known_keys(), n=1)
        hint = f"did you mean '{guess[0]}'?" if guess else "check its spelling against the task format in the README"
        message = f"unknown key; {hint}"
        if guess:
            guessed = base + loc[:-1] + (guess[0],)
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "question_window":
        message, key = err["msg"], ".".join(str(p) for p in (*base, "question"))
        line = lines.get((*base, "question"), line)
    elif kind == "string_too_long" and loc[-1:] == ("question",):
        message = f"{err['msg']} — a question this long is a pasted file; ask a question (at most {MAX_QUESTION_CHARS:,} characters)"
    elif kind in ("less_than_equal", "less_than") and "budget" in loc:
        message = f"{err['msg']} — budgets end episodes; a value this large never would"
    elif loc[:1] == ("span",) and kind in ("model_type", "dict_type", "model_attributes_type"):
        message = f"{SPAN_FORMS}; got {repr(err.get('input'))[:80]}"
    else:
        message = err["msg"]
    if loc[:1] == ("span",) and SPAN_FORMS not in message:
        message = f"{message} — {SPAN_FORMS}"
    return TaskFileError(path, message, line=line, key=key), guessed


def _resolve_video(task: TaskSpec, base_dir: Path, path: Path, line: int | None) -> Path:
    """The task's video as an absolute path, confined to the media root when written relative.

    Policy: a relative ``video:`` is how a shared task bundle points at its own
    media, so it must not reach out of the task file's folder, through ``..``
    or a symbolic link, unless the file opts in with ``media_root:`` (a folder,
    relative to the task file, that relative videos may point into; the
    bundled examples say ``media_root: ..``). An absolute path is the writer's
    explicit choice and is taken as it is.
    """
    for name, value in (("video", task.video), ("media_root", task.media_root)):
        if value is not None and "\x00" in str(value):
            raise TaskFileError(path, f"{name} {str(value)!r} contains a NUL character, which no file name can hold; "
                                      "write the file's path as plain text", line=line, key=name)
    try:
        video = (task.video if task.video.is_absolute() else base_dir / task.video).resolve()
        root = (base_dir / task.media_root).resolve() if task.media_root is not None else base_dir
    except (RuntimeError, OSError) as exc:  # Python 3.11 raises RuntimeError on a symlink loop
        raise TaskFileError(path, f"cannot resolve {task.video}: {exc}; point it at the real file "
                                  "(a symbolic link loop?)", line=line, key="video") from None
    if not task.video.is_absolute() and not video.is_relative_to(root):
        allow = os.path.relpath(os.path.commonpath([video, base_dir]), base_dir)
        raise TaskFileError(
            path, f"video {task.video} resolves to {video}, outside {root} (through '..' or a symbolic link); "
            f"relative videos must stay inside the task's media folder. To allow it, add `media_root: {allow}` "
            "to the task (or the suite's defaults), or write the video's absolute path", line=line, key="video")
    if video.is_dir():
        raise TaskFileError(path, f"video {video} is a directory, not a video file; name one file inside it",
                            line=line, key="video")
    written = task.video if task.video.is_absolute() else base_dir / task.video
    if not video.is_file() and written.is_symlink():
        raise TaskFileError(path, f"video {task.video} is a symbolic link to {video}, which does not exist; "
                                  "point the link at the real file", line=line, key="video")
    if not video.is_file():
        raise TaskFileError(path, f"video file not found: {video}", line=line, key="video")
    return video


def _video_problem(raw: Any, exc: ValidationError, base_dir: Path, path: Path, lines: dict[tuple, int],
                   base: tuple) -> list[TaskFileError]:
    """The video's problem too (missing, outside the media root), when other keys already failed validation.

    So a task with a bad key and a wrong video path reports both in one run.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("video"), str) or not raw["video"]:
        return []
    if any(e["loc"][:1] in (("video",), ("media_root",)) for e in exc.errors()):
        return []
    root = raw.get("media_root")
    probe = SimpleNamespace(video=Path(raw["video"]), media_root=Path(root) if isinstance(root, str) else None)
    try:
        _resolve_video(probe, base_dir, path, lines.get(base + ("video",)))  # type: ignore[arg-type]
    except TaskFileError as err:
        return [err]
    return []


def _resolve_paths(task: TaskSpec, base_dir: Path, path: Path, lines: dict[tuple, int], base: tuple) -> TaskSpec:
    video = _resolve_video(task, base_dir, path, lines.get(base + ("video",)))
    plugins = []
    for i, plugin in enumerate(task.plugins):
        if plugin.endswith(".py") or "/" in plugin:
            resolved = (base_dir / plugin).resolve()
            if not resolved.is_file():
                raise TaskFileError(
                    path, f"tool plugin not found: {resolved}", line=lines.get(base + ("plugins", i)), key=f"plugins.{i}"
                )
            plugin = str(resolved)
        plugins.append(plugin)
    resolved_task = task.model_copy(update={"video": video, "plugins": plugins})
    resolved_task._source = (str(path), lines, base)
    return resolved_task


def load_tasks(path: str | Path) -> list[TaskSpec]:
    """Load a task or suite file into validated specs (paths made absolute).

    Raises:
        TaskFileError: with the file, line and key of the first problem.
    """
    entries = load_task_entries(path)
    for entry in entries:
        if isinstance(entry, TaskFileError):
            raise entry
    return entries  # type: ignore[return-value]


def load_task_entries(path: str | Path) -> list[TaskSpec | TaskFileError]:
    """Like `load_tasks`, but a suite's task that cannot load is its TaskFileError, in its place.

    So one bad task (a missing video, a typo in its keys) does not stop a suite:
    `mcr eval` records it as an error row and runs the others. Each error has
    ``task_name`` (the task's ``name:`` when it has one, else ``task-N``).

    Raises:
        TaskFileError: the file itself is unreadable, or not a valid suite.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size > MAX_TASK_FILE_BYTES:
        raise TaskFileError(path, f"the task file is {path.stat().st_size / 2**20:.1f} MB; the limit is "
                                  f"{MAX_TASK_FILE_BYTES // 2**20} MB (questions up to {MAX_QUESTION_CHARS:,} "
                                  "characters) — split the suite into several files, or shorten the question")
    data, lines = _read_yaml(path)
    base_dir = path.resolve().parent
    if "suite" in data or "tasks" in data:
        try:
            suite = SuiteSpec.model_validate(data)
        except ValidationError as exc:
            raise _error_from_validation(path, exc, lines) from None
        raw_tasks = [(("tasks", i), {**suite.defaults, **t}) for i, t in enumerate(suite.tasks)]
    else:
        raw_tasks = [((), data)]
    tasks: list[TaskSpec | TaskFileError] = []
    for index, (base, raw) in enumerate(raw_tasks):
        try:
            try:
                task = TaskSpec.model_validate(raw)
            except ValidationError as exc:
                also = _video_problem(raw, exc, base_dir, path, lines, base)
                raise _error_from_validation(path, exc, lines, base, also=also) from None
            tasks.append(_resolve_paths(task, base_dir, path, lines, base))
        except TaskFileError as err:
            name = raw.get("name") if isinstance(raw, dict) else None
            err.task_name = name if isinstance(name, str) and name else f"task-{index}"
            tasks.append(err)
    return tasks


def load_task(path: str | Path) -> TaskSpec:
    """Load a single-task file (a suite with one task is accepted too)."""
    tasks = load_tasks(path)
    if len(tasks) != 1:
        raise TaskFileError(path, f"expected one task, found a suite of {len(tasks)}; use `mcr run` on each or run the suite")
    return tasks[0]
