"""The MCR context: one append-only log of typed entries, shared by every node.

Every observation, instruction, thought, tool call, tool result, memory and
verdict of an episode is an entry here. The context is the single source of
truth: the graph state holds it (as plain dicts, so checkpoints stay JSON), the
policy reads it to decide, tools read it for evidence, and the trace records it.

Two properties the rest of the system relies on:

* **Append-only.** Entries are frozen; the only mutation is `append`. Ids are
  assigned in order (``e0``, ``e1``, ...), so an entry's id is its position and
  re-running a node after a crash produces the same ids.
* **Append-stable rendering.** `render()` maps entry *k* to exactly one chat
  message that depends only on entry *k* (and the fixed system prompt), never on
  what comes after. A model session can therefore reuse its KV cache for every
  message it has already seen; `tests/test_context.py` guards this.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

# --------------------------------------------------------------------------- #
# Small value types
# --------------------------------------------------------------------------- #


class TimeSpan(BaseModel):
    """A closed interval of video time, in seconds from the start of the file (finite: no inf/NaN)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    start: float = Field(ge=0.0)
    end: float = Field(ge=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> TimeSpan:
        if self.end < self.start:
            raise ValueError(f"span end {self.end} is before its start {self.start}")
        return self

    @property
    def duration(self) -> float:
        return self.end - self.start

    def iou(self, other: TimeSpan) -> float:
        """Temporal intersection over union (0 when disjoint)."""
        inter = max(0.0, min(self.end, other.end) - max(self.start, other.start))
        union = max(self.end, other.end) - min(self.start, other.start)
        return inter / union if union > 0 else float(self.start == other.start)

    def __str__(self) -> str:
        return f"{self.start:.1f}s-{self.end:.1f}s"


class VideoRef(BaseModel):
    """A video by reference, with the Qwen-VL sampling settings to look at it.

    Media stays on disk: the context never holds pixels, only where they are and
    how to sample them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    fps: float = Field(default=2.0, gt=0)
    min_pixels: int = Field(default=64 * 28 * 28, gt=0)
    max_pixels: int = Field(default=256 * 28 * 28, gt=0)
    duration: float | None = Field(default=None, ge=0)
    max_frames: int | None = Field(default=None, ge=1, description="frame cap per look (None: Qwen-VL's 768)")

    def message_part(self, span: TimeSpan | None = None) -> dict[str, Any]:
        """The Qwen-VL message part for this video (optionally one span of it)."""
        part: dict[str, Any] = {
            "type": "video",
            "video": self.path,
            "fps": self.fps,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
        }
        if self.max_frames is not None:  # only when set, so parts (and cache keys) without a cap stay as they were
            part["max_frames"] = self.max_frames
        if span is not None:
            part["video_start"] = span.start
            part["video_end"] = span.end
        return part


# --------------------------------------------------------------------------- #
# Entries
# --------------------------------------------------------------------------- #


class _Entry(BaseModel):
    """Fields every entry has. Subclasses add a literal ``kind`` and a payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = ""
    step: int = Field(default=0, ge=0)
    span: TimeSpan | None = None
    refs: tuple[str, ...] = ()

    role: Literal["user", "assistant"] = "user"

    def render_text(self) -> str:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def render(self) -> dict[str, Any]:
        """This entry as one chat message (Qwen-VL format). Depends on nothing else."""
        return {"role": self.role, "content": [{"type": "text", "text": self.render_text()}]}


def _span_tag(span: TimeSpan | None) -> str:
    return f" [{span}]" if span is not None else ""


class Instruction(_Entry):
    """The task: a question about a video, optionally multiple choice.

    ``video`` says which video the question is about (tools read it); the
    pixels reach a model through the Observation that precedes it.
    """

    kind: Literal["instruction"] = "instruction"
    text: str = Field(min_length=1)
    video: VideoRef | None = None
    options: tuple[str, ...] | None = None

    def render_text(self) -> str:
        lines = [f"Question: {self.text}"]
        if self.options:
            lines.append("Options:")
            lines += [f"{letter}. {opt}" for letter, opt in option_table(self.options).items()]
        return "\n".join(lines)

class Observation(_Entry):
    """Something the agent looked at: a video span, frames or a keyframe, by path."""

    kind: Literal["observation"] = "observation"
    text: str = ""
    video: VideoRef | None = None
    images: tuple[str, ...] = ()

    def render_text(self) -> str:
        return f"<observation{_span_tag(self.span)}>{self.text}</observation>"

    def render(self) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if self.video is not None:
            content.append(self.video.message_part(self.span))
        content += [{"type": "image", "image": path} for path in self.images]
        content.append({"type": "text", "text": self.render_text()})
        return {"role": "user", "content": content}


class Thought(_Entry):
    """The policy's reasoning, as text."""

    kind: Literal["thought"] = "thought"
    role: Literal["user", "assistant"] = "assistant"
    text: str

    def render_text(self) -> str:
        return f"<think>{self.text}</think>"


class ToolCall(_Entry):
    """A tool invocation the policy asked for (arguments as given, validated later)."""

    kind: Literal["tool_call"] = "tool_call"
    role: Literal["user", "assistant"] = "assistant"
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    def render_text(self) -> str:
        payload = json.dumps({"name": self.tool, "arguments": self.arguments}, sort_keys=True)
        return f"<tool_call>{payload}</tool_call>"


class ToolResult(_Entry):
    """A tool's validated output. ``refs[0]`` is the ToolCall it answers."""

    kind: Literal["tool_result"] = "tool_result"
    tool: str
    output: dict[str, Any] = Field(default_factory=dict)
    summary: str = ""
    rendering: str | None = Field(
        default=None, description="what the policy reads when the summary is longer than the window allows "
        "(a bounded rendering: counts, the top lines, a handle to the rest); the summary stays whole")

    def render_text(self) -> str:
        body = self.rendering or self.summary or json.dumps(self.output, sort_keys=True)
        return f'<tool_response name="{self.tool}"{_span_tag(self.span)}>{body}</tool_response>'


class ToolError(_Entry):
    """A failed tool call, or model output that was not a valid call.

    Errors the model caused are data, not exceptions: the policy sees this
    entry on its next turn and can correct itself.
    """

    kind: Literal["tool_error"] = "tool_error"
    tool: str | None = None
    error_type: str
    message: str

    def render_text(self) -> str:
        name = self.tool or "?"
        return f'<tool_error name="{name}" type="{self.error_type}">{self.message}</tool_error>'


class Memory(_Entry):
    """A distilled fact (e.g. a summary of a span) later turns can rely on."""

    kind: Literal["memory"] = "memory"
    text: str
    source: str = ""
    rendering: str | None = Field(default=None, description="a bounded rendering of a long text (see ToolResult)")
    facts: dict[str, Any] | None = Field(default=None, description="the typed record the note was written from "
                                         "(a tool's output model, dumped), so readers never parse `text` back")

    def render_text(self) -> str:
        return f"<memory{_span_tag(self.span)}>{self.rendering or self.text}</memory>"


class Fold(_Entry):
    """A digest of every entry before it, so the prompt stays inside the model's window.

    Appended, never edited (built by :mod:`mcr.folding`): the entries it
    digests stay in the context with their ids, spans and outputs, so
    citations resolve and tools and the verifier read them as before; only the
    rendering changes. From the latest fold on, :meth:`Context.render` gives
    the system text, the ``kept`` entries verbatim (the video's opening look
    and the question), this digest, then the entries after it. Rendering
    stays append-stable from the fold on, and a model session reuses its cache
    up to the kept entries: a fold costs one prefill of its digest.

    Attributes:
        kept: ids rendered verbatim before the digest, in order.
        folded: how many entries the digest stands for.
        text: the digest: one line per entry or run of alike entries, with ids and spans.
    """

    kind: Literal["fold"] = "fold"
    kept: tuple[str, ...] = ()
    folded: int = Field(default=0, ge=0)
    text: str

    def render_text(self) -> str:
        return (f'<folded entries="{self.folded}">Earlier entries, digested to fit the window (their ids still '
                f"count as evidence; search or ground finds their details):\n{self.text}</folded>")


class Verdict(_Entry):
    """The verifier's judgement of a proposed answer (``refs[0]`` is the Answer)."""

    kind: Literal["verdict"] = "verdict"
    accepted: bool
    reason: str = ""
    checks: dict[str, bool] = Field(default_factory=dict)
    low_confidence: bool = Field(default=False, description="accepted as a last-step guess the evidence does not back")

    def render_text(self) -> str:
        word = ("accepted with low confidence" if self.low_confidence else "accepted") if self.accepted else "rejected"
        return f"<verdict {word}>{self.reason}</verdict>"


class Answer(_Entry):
    """A proposed answer; ``refs`` are the evidence entries it relies on."""

    kind: Literal["answer"] = "answer"
    role: Literal["user", "assistant"] = "assistant"
    text: str
    option: str | None = None
    missing_refs: tuple[str, ...] = Field(default=(), description="cited ids that do not exist (the verifier rejects)")
    low_confidence: bool = Field(default=False, description="the policy's final guess when the budget is nearly spent")

    def render_text(self) -> str:
        opt = f" option={self.option}" if self.option else ""
        cites = f" evidence={','.join(self.refs)}" if self.refs else ""
        low = ' confidence="low"' if self.low_confidence else ""
        return f"<answer{opt}{cites}{low}>{self.text}</answer>"


Entry = Annotated[
    Union[Instruction, Observation, Thought, ToolCall, ToolResult, ToolError, Memory, Verdict, Answer, Fold],
    Field(discriminator="kind"),
]
ENTRY_ADAPTER: TypeAdapter[Entry] = TypeAdapter(Entry)
ENTRY_TYPES = (Instruction, Observation, Thought, ToolCall, ToolResult, ToolError, Memory, Verdict, Answer, Fold)

E = TypeVar("E", bound=_Entry)


OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def option_letters() -> Iterator[str]:
    """A, B, C, ... — how options are named to the policy and in answers."""
    return iter(OPTION_LETTERS)


def letters_for(options: Iterable[str] | None) -> list[str]:
    """The letters that name ``options`` (A for the first, ...); [] for no options."""
    return [letter for letter, _ in zip(OPTION_LETTERS, options or ())]


def option_table(options: Iterable[str] | None) -> dict[str, str]:
    """Letter → option text."""
    return dict(zip(OPTION_LETTERS, options or ()))


def media_text(part: dict[str, Any]) -> str:
    """How a text-only model (or server) sees a media part of a rendered message: which file, which span."""
    name = Path(str(part.get("video") or part.get("image") or "?")).name
    if part.get("type") == "image":
        return f"[image {name}]"
    span = ""
    if part.get("video_start") is not None:
        span = f" {float(part['video_start']):.1f}s-{float(part.get('video_end', 0.0)):.1f}s"
    return f"[video {name}{span}]"


def parse_entry(data: dict[str, Any]) -> Entry:
    """Validate one entry from its JSON form."""
    return ENTRY_ADAPTER.validate_python(data)


# --------------------------------------------------------------------------- #
# The context
# --------------------------------------------------------------------------- #

DEFAULT_SYSTEM_PROMPT = (
    "You are a video analysis agent. You explore a video step by step: look at "
    "spans, call tools, think, and verify before you answer. Cite the entries "
    "(e.g. e3) your answer relies on."
)


class Context:
    """An append-only list of typed entries with id lookup and rendering."""

    def __init__(self, entries: Iterable[Entry] = (), system_prompt: str = DEFAULT_SYSTEM_PROMPT):
        self.system_prompt = system_prompt
        self._entries: list[Entry] = []
        self._by_id: dict[str, Entry] = {}
        self._last_fold: int | None = None  # position of the latest Fold (rendering starts there)
        for entry in entries:
            self._add_existing(entry)

    # -- building --------------------------------------------------------- #
    def next_id(self) -> str:
        return f"e{len(self._entries)}"

    def append(self, entry: E) -> E:
        """Append `entry`, assigning the next id; returns the stored entry.

        Raises:
            ValueError: a ref names an entry that does not exist yet (evidence can
                only point backwards, which keeps the evidence graph acyclic).
        """
        missing = [ref for ref in (*entry.refs, *getattr(entry, "kept", ())) if ref not in self._by_id]
        if missing:
            raise ValueError(f"{entry.kind} refers to unknown entries {missing}")
        stored = entry.model_copy(update={"id": self.next_id()})
        self._store(stored)
        return stored

    def extend_existing(self, data: Iterable[dict[str, Any]]) -> None:
        """Add entries that already have their ids (from a checkpoint), in order."""
        for item in data:
            self._add_existing(parse_entry(item))

    def _add_existing(self, entry: Entry) -> None:
        if entry.id != self.next_id():
            raise ValueError(f"entry id {entry.id!r} out of order; expected {self.next_id()!r}")
        self._store(entry)

    def _store(self, entry: Entry) -> None:
        if isinstance(entry, Fold):
            self._last_fold = len(self._entries)
        self._entries.append(entry)
        self._by_id[entry.id] = entry

    # -- reading ---------------------------------------------------------- #
    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    def __getitem__(self, index: int) -> Entry:
        return self._entries[index]

    def get(self, entry_id: str) -> Entry | None:
        return self._by_id.get(entry_id)

    def of_kind(self, cls: type[E]) -> list[E]:
        return [e for e in self._entries if isinstance(e, cls)]

    def last(self, cls: type[E]) -> E | None:
        for entry in reversed(self._entries):
            if isinstance(entry, cls):
                return entry
        return None

    @property
    def instruction(self) -> Instruction | None:
        found = self.of_kind(Instruction)
        return found[0] if found else None

    def results_of(self, tool: str) -> list[ToolResult]:
        return [e for e in self._entries if isinstance(e, ToolResult) and e.tool == tool]

    def propose_answer(self, *, step: int, text: str, option: str | None, evidence: Iterable[str],
                       low_confidence: bool = False) -> Answer:
        """The Answer a policy's proposal becomes (unsaved): one place for every proposer.

        Cited ids split into ``refs`` (they exist) and ``missing_refs`` (the
        verifier rejects those); the answer's span is the hull of its cited
        entries' spans; the option letter is normalised to upper case.
        """
        cited = tuple(evidence)
        refs = tuple(ref for ref in cited if ref in self._by_id)
        missing = tuple(ref for ref in cited if ref not in self._by_id)
        spans = [span for ref in refs if (span := self._by_id[ref].span) is not None]
        hull = TimeSpan(start=min(s.start for s in spans), end=max(s.end for s in spans)) if spans else None
        letter = option.strip().upper() if option and option.strip() else None
        return Answer(step=step, text=text, option=letter, refs=refs, missing_refs=missing, span=hull,
                      low_confidence=low_confidence)

    def prefix(self, n: int) -> Context:
        """The context as it was after its first `n` entries."""
        return Context(self._entries[:n], system_prompt=self.system_prompt)

    # -- serialisation ---------------------------------------------------- #
    def to_dicts(self, start: int = 0) -> list[dict[str, Any]]:
        """Entries from `start` on, as JSON dicts (nodes return only what they appended)."""
        return [e.model_dump(mode="json") for e in self._entries[start:]]

    @classmethod
    def from_dicts(cls, data: Iterable[dict[str, Any]], system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> Context:
        return cls((parse_entry(d) for d in data), system_prompt=system_prompt)

    def to_json(self) -> str:
        return json.dumps({"system_prompt": self.system_prompt, "entries": self.to_dicts()})

    @classmethod
    def from_json(cls, text: str) -> Context:
        data = json.loads(text)
        return cls.from_dicts(data["entries"], system_prompt=data["system_prompt"])

    # -- rendering -------------------------------------------------------- #
    def render(self, system_prompt: str | None = None) -> list[dict[str, Any]]:
        """Chat messages for a Qwen-VL style processor: system, then one per entry.

        Append-stable: ``render()[: k + 1]`` is the same before and after more
        entries are appended — from the latest :class:`Fold` on, which renders
        as its kept entries, its digest, then every entry after it.
        """
        system = system_prompt if system_prompt is not None else self.system_prompt
        messages = [{"role": "system", "content": [{"type": "text", "text": system}]}]
        messages += [entry.render() for entry in self.rendered_entries()]
        return messages

    def rendered_entries(self) -> list[Entry]:
        """The entries the prompt shows, in order: all of them, or (after a fold) the latest fold's kept
        entries, the fold, and what follows it."""
        if self._last_fold is None:
            return list(self._entries)
        fold = self._entries[self._last_fold]
        assert isinstance(fold, Fold)
        return [self._by_id[k] for k in fold.kept] + self._entries[self._last_fold:]

    @property
    def last_fold(self) -> Fold | None:
        return self._entries[self._last_fold] if self._last_fold is not None else None  # type: ignore[return-value]
