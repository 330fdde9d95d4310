"""Coarse-to-fine exploration: ``overview`` of the whole video, ``skim`` of a span, ``focus`` on a moment.

An agent exists so it need not see everything (issue 22; VideoSeek's overview /
skim / focus). A question about a two-hour video is answered by locating
first and looking closely only where it points, so each of these tools has a
**frame budget**, and every frame it decodes counts against the episode's
``Budget.max_frames`` (the graph passes what is left as ``ctx.frames_left``
and adds ``frames_used`` after the call):

* ``overview`` — the whole video at a fixed number of frames (default 32, at
  most 64) whatever its length, each measured (colours, brightness, on-screen
  text; objects on request); the scene list and the transcript's outline from
  the per-video index when one exists (``mcr index``), else scene changes
  measured between the overview's own frames;
* ``skim`` — a span of any length at a few frames spread over it (default 8);
* ``focus`` — at most 16 s, densely (2 frames a second), with OCR, the
  detector (on zoomed tiles with ``detail``), motion, and — when the episode's model receives
  frames — the model's own look at the clip (a side query on a fork).

Every fact is a measurement with its frame time (``mcr.tools.span_facts``),
as ``look`` gives; a description comes only from a model that saw the frames.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mcr.context import TimeSpan
from mcr.model.media.video import FrameStore, VideoError, VideoInfo, probe
from mcr.tools.base import Tool, ToolContext, ToolFailure
from mcr.tools.cache import ResultCache
from mcr.tools.change_points import indexed_changes
from mcr.tools.span_facts import SpanFacts, measure_span

__all__ = ["OverviewTool", "SkimTool", "FocusTool", "FrameBudgetSpent", "FOCUS_MAX_S", "OVERVIEW_FRAMES"]

OVERVIEW_FRAMES = 32  # default frames of an overview, whatever the video's length
OVERVIEW_MAX_FRAMES = 64
SKIM_FRAMES = 8
FOCUS_MAX_S = 16.0  # focus looks at most this long a clip
FOCUS_FPS = 2.0
OUTLINE_LINES = 12  # lines of the transcript's outline
SCENE_CHANGE = 0.5  # share of changed pixels between overview frames that marks a new scene


class FrameBudgetSpent(ToolFailure):
    """The episode's frame budget (``budget.max_frames``) has too few frames left for this call."""

    error_type = "frame_budget"


class SceneMark(BaseModel):
    """One scene of the whole video: where it is, and a line of what it holds."""

    span: TimeSpan
    text: str = ""


class OutlineLine(BaseModel):
    """One stretch of the transcript's outline: its span and its first words."""

    span: TimeSpan
    text: str


class CoarseOutput(SpanFacts):
    """The measured facts of the sampled frames, and what the exploration tools add."""

    frames_used: int = Field(description="frames decoded for this call (counted by the episode's max_frames)")
    scenes: list[SceneMark] = Field(default_factory=list, description="overview: the video's scenes")
    outline: list[OutlineLine] = Field(default_factory=list, description="overview: the transcript's outline")
    seen: str | None = Field(default=None, description="focus: what the episode's vision model saw in the clip")
    index: str | None = Field(default=None, description="where scenes and outline came from")


# --------------------------------------------------------------------------- #
# Shared pieces
# --------------------------------------------------------------------------- #


def _frames_allowed(ctx: ToolContext, wanted: int, tool: str) -> int:
    """``wanted`` frames, fewer when the episode's frame budget is nearly spent (at least 2), else a failure."""
    left = getattr(ctx, "frames_left", None)
    if left is None or left >= wanted:
        return wanted
    if left < 2:
        raise FrameBudgetSpent(f"{tool} needs frames, but the episode's frame budget (budget.max_frames) is spent: "
                               "answer from the evidence gathered, or raise budget.max_frames in the task")
    return int(left)


def _info(ctx: ToolContext) -> VideoInfo:
    try:
        return probe(ctx.require_video().path)
    except VideoError as exc:
        raise ToolFailure(str(exc), "unreadable_video") from None


class _Measured(Tool):
    """What the three tools share: a frame store, the cache, measuring frames spread over a span."""

    timeout_s = 900.0

    def __init__(self) -> None:
        self.frames = FrameStore()

    def _measure(self, ctx: ToolContext, info: VideoInfo, start: float, end: float, n: int, *, ocr: bool,
                 objects: bool, detail: bool = False, fps: float | None = None) -> SpanFacts:
        rate = fps if fps is not None else max(n / max(end - start, 1e-3), 1e-6)
        cache = ResultCache.for_context(ctx)
        changes = indexed_changes(ctx, start, end, info.duration) if ocr else None
        settings = {"n": n, "fps": round(rate, 6), "ocr": ocr, "objects": objects, "detail": detail}
        if changes is not None:  # without it the key is what it always was
            settings["changes"] = "video_index"
        key = cache.key(f"coarse-{self.name}", info.path, TimeSpan(start=start, end=end), settings)

        def compute() -> SpanFacts:
            try:
                return measure_span(info.path, start, end, fps=rate, max_frames=n, detect_objects=objects, ocr=ocr,
                                    detail=detail, store=self.frames, info=info, known_changes=changes)
            except VideoError as exc:
                error = "span_outside_video" if isinstance(exc, ValueError) else "unreadable_video"
                raise ToolFailure(str(exc), error) from None

        return cache.get_or_compute(key, SpanFacts, compute)

    def summarize(self, output: CoarseOutput) -> str:
        from mcr.tools.look import LookTool

        lines = [f"{self.name} of {output.span}: {output.frames_used} frames"]
        if output.index:
            lines[0] += f" ({output.index})"
        if output.seen:
            lines.append(f"seen by the model: {output.seen}")
        if output.scenes:
            lines.append(f"{len(output.scenes)} scenes:")
            lines += [f"  [{s.span}] {s.text}" if s.text else f"  [{s.span}]" for s in output.scenes]
        if output.outline:
            lines.append("transcript outline:")
            lines += [f"  [{o.span}] {o.text}" for o in output.outline]
        lines.append(LookTool.summarize(LookTool.__new__(LookTool), output))  # type: ignore[arg-type]
        return "\n".join(lines)

    def span_of(self, input: BaseModel, output: CoarseOutput) -> TimeSpan | None:
        return output.span


def _span_of(input_span: TimeSpan, info: VideoInfo) -> tuple[float, float]:
    if input_span.start >= info.duration:
        raise ToolFailure(f"span {input_span} starts after the video ends ({info.duration:.1f}s); "
                          f"ask for a span within 0.0s-{info.duration:.1f}s", "span_outside_video")
    return input_span.start, min(input_span.end, info.duration)


# --------------------------------------------------------------------------- #
# overview
# --------------------------------------------------------------------------- #


class OverviewInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frames: int = Field(default=OVERVIEW_FRAMES, ge=4, le=OVERVIEW_MAX_FRAMES,
                        description="frames spread over the whole video (its length does not change the cost)")
    ocr: bool = Field(default=True, description="read on-screen text in each frame")
    objects: bool = Field(default=False, description="detect objects in each frame (slower)")


class OverviewTool(_Measured):
    name = "overview"
    description = ("The whole video at a fixed number of frames (colours, brightness, on-screen text), its scenes "
                   "and the transcript's outline: where to look next. Frames count against the frame budget.")
    Input = OverviewInput
    Output = CoarseOutput

    def run(self, input: OverviewInput, ctx: ToolContext) -> CoarseOutput:
        info = _info(ctx)
        n = _frames_allowed(ctx, input.frames, self.name)
        facts = self._measure(ctx, info, 0.0, info.duration, n, ocr=input.ocr, objects=input.objects)
        scenes, outline, where = _from_index(ctx)
        if not scenes:
            scenes = _scene_changes(facts, info.duration)
        return CoarseOutput(**facts.model_dump(), frames_used=len(facts.frames), scenes=scenes, outline=outline,
                            index=where)


def _from_index(ctx: ToolContext) -> tuple[list[SceneMark], list[OutlineLine], str | None]:
    """Scenes and the transcript's outline from the video's index, when one exists (never built here)."""
    try:
        from mcr.tools.video_index.for_tools import index_for
    except ImportError:  # the index's extras are not installed
        return [], [], None
    index = index_for(ctx)
    if index is None:
        return [], [], None
    chapters = index.chapters()
    marks = [SceneMark(span=c.span, text=_gist(c.text)) for c in chapters] or [
        SceneMark(span=s.span, text=_gist(s.text)) for s in index.scenes()]
    segments = index.transcript()
    outline = []
    if segments:
        step = max(1, -(-len(segments) // OUTLINE_LINES))
        for i in range(0, len(segments), step):
            chunk = segments[i:i + step]
            outline.append(OutlineLine(span=TimeSpan(start=chunk[0].span.start, end=chunk[-1].span.end),
                                       text=_gist(" ".join(s.text for s in chunk))))
    done = "complete" if index.complete else "partly built"
    return marks[:48], outline, f"scenes and outline from the video index ({done})"


def _gist(text: str, n: int = 100) -> str:
    line = " ".join(text.split())
    return line if len(line) <= n else line[: n - 1].rstrip() + "…"


def _scene_changes(facts: SpanFacts, duration: float) -> list[SceneMark]:
    """Scenes as the overview's own frames see them: a new one where most pixels changed between two frames."""
    cuts = [m.end for m in facts.motion if m.changed_share >= SCENE_CHANGE]
    edges = [0.0, *cuts, duration]
    marks = []
    for a, b in zip(edges, edges[1:]):
        if b > a:
            texts = [line.text for line in facts.text if a <= line.t < b] if facts.text else []
            marks.append(SceneMark(span=TimeSpan(start=a, end=b), text=_gist(" / ".join(texts))))
    return marks


# --------------------------------------------------------------------------- #
# skim and focus
# --------------------------------------------------------------------------- #


class SkimInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    span: TimeSpan = Field(description="the stretch to skim {start, end} in seconds, any length")
    frames: int = Field(default=SKIM_FRAMES, ge=2, le=16, description="frames spread over the span")
    ocr: bool = Field(default=True, description="read on-screen text")
    objects: bool = Field(default=True, description="detect objects")


class SkimTool(_Measured):
    name = "skim"
    description = ("A few frames spread over a span (colours, text, objects, motion): is the moment in there? "
                   "Frames count against the frame budget.")
    Input = SkimInput
    Output = CoarseOutput

    def run(self, input: SkimInput, ctx: ToolContext) -> CoarseOutput:
        info = _info(ctx)
        start, end = _span_of(input.span, info)
        n = _frames_allowed(ctx, input.frames, self.name)
        facts = self._measure(ctx, info, start, end, n, ocr=input.ocr, objects=input.objects)
        return CoarseOutput(**facts.model_dump(), frames_used=len(facts.frames))


class FocusInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    span: TimeSpan = Field(description=f"the moment to look at closely {{start, end}}: at most {FOCUS_MAX_S:g} s")
    question: str | None = Field(default=None, max_length=500,
                                 description="what to look for (asked of the model when it receives frames)")
    detail: bool = Field(default=False, description="also detect objects in zoomed tiles (small objects; 5x slower)")


class FocusTool(_Measured):
    name = "focus"
    description = (f"Look closely at up to {FOCUS_MAX_S:g} s: dense frames with on-screen text, objects in zoomed "
                   "tiles, motion, and the video model's own look when it sees frames.")
    Input = FocusInput
    Output = CoarseOutput

    def run(self, input: FocusInput, ctx: ToolContext) -> CoarseOutput:
        info = _info(ctx)
        start, end = _span_of(input.span, info)
        if end - start > FOCUS_MAX_S + 1e-6:
            raise ToolFailure(f"focus looks at most {FOCUS_MAX_S:g} s, and {input.span} is {end - start:.1f} s: "
                              "skim the span first, then focus on the moment it points to", "span_too_long")
        wanted = max(2, int(round((end - start) * FOCUS_FPS)))
        n = _frames_allowed(ctx, wanted, self.name)
        facts = self._measure(ctx, info, start, end, n, ocr=True, objects=True, detail=input.detail, fps=FOCUS_FPS)
        seen = self._model_look(ctx, start, end, input.question) if ctx.sees_pixels else None
        return CoarseOutput(**facts.model_dump(), frames_used=len(facts.frames), seen=seen)

    @staticmethod
    def _model_look(ctx: ToolContext, start: float, end: float, question: str | None) -> str:
        """The episode's vision model looks at the clip itself (a side query on a fork)."""
        video = ctx.require_video()
        part: dict[str, Any] = video.message_part(TimeSpan(start=start, end=end))
        part["max_frames"] = max(2, int(round((end - start) * FOCUS_FPS)))
        ask = question or "Describe what this clip shows: people, objects, text, colours, actions."
        gen = ctx.side_query(f"Look at the clip {start:.1f}s-{end:.1f}s. {ask} Answer in one or two sentences.",
                             [part], what="focus with the model's eyes", max_new_tokens=64)
        return gen.text.strip()
