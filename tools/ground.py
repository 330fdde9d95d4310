"""`ground`: when in the video does *this* happen? Ranked time spans for a text query.

Two backends behind one interface:

* ``index`` — the episode's own time-aligned text (transcript segments, OCR and
  captions of shots, summaries, memories; see :mod:`mcr.tools.index`) and, when
  the video has one, its persistent index's transcript, screen text and scenes
  (:mod:`mcr.tools.video_index`; setting ``video_index``: auto/build/off),
  searched with sentence embeddings fused with BM25. Cheap, and exact where
  the words were heard or read. Needs evidence in the context or an index.
* ``model`` — ask the video model (InternVideo3 / Qwen3-VL) for the start and
  end seconds, through a *fork* of the episode's :class:`ModelSession`: the fork
  reuses the video prefix already in the cache and never touches the main
  cache. Decoding is constrained to ``<start> - <end>`` numbers (llguidance,
  :mod:`mcr.model.runtime.grammar`), so even a weak model returns something
  parseable; the numbers are clamped to the video.

``auto`` uses the index when the context holds time-aligned text, else the model.
Spans snap to shot boundaries (from a ``segment`` result) when an end lies
within ``snap_tolerance_s`` of one: a spoken line starts a little after its
shot's cut, and the cut is the better edge to show.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcr.context import TimeSpan
from mcr.tools.base import Tool, ToolContext, ToolFailure
from mcr.tools.index import TextIndex, docs_from_context, shot_boundaries
from mcr.tools.video_index.for_tools import index_for, merged_index

SAME_SPAN_IOU = 0.8  # ranked spans overlapping a better one this much are the same moment
SPAN_PATTERN = r" ?[0-9]{1,5}(\.[0-9]{1,2})? ?- ?[0-9]{1,5}(\.[0-9]{1,2})?"


class GroundInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="what to find, e.g. 'the keeper counts the ships'")
    top_k: int = Field(default=3, ge=1, le=20, description="how many spans to return")
    backend: Literal["auto", "index", "model"] = Field(
        default="auto", description="index: search the transcript/OCR/summaries; model: ask the video model"
    )
    within: TimeSpan | None = Field(default=None, description="only look inside this part of the video")


class GroundedSpan(BaseModel):
    span: TimeSpan
    score: float = Field(description="0..1; fused similarity (index) or 1.0 (model)")
    source: str = Field(description="transcript, ocr, summary, memory, model, ...")
    text: str = Field(default="", description="the matched text (index) or the model's raw reply")
    ref: str | None = Field(default=None, description="the context entry the span was read from")


class GroundOutput(BaseModel):
    query: str
    backend: Literal["index", "model"]
    spans: list[GroundedSpan]
    snapped: bool = Field(description="whether span ends were snapped to shot boundaries")
    model_usage: dict[str, float] | None = Field(default=None, description="the forked model call's cost (model)")


class GroundTool(Tool):
    name = "ground"
    description = (
        "Find when something happens: ranked time spans for a text query, from the transcript, "
        "on-screen text and summaries (backend=index) or by asking the video model (backend=model)."
    )
    Input = GroundInput
    Output = GroundOutput

    def run(self, input: GroundInput, ctx: ToolContext) -> GroundOutput:
        query = input.query.strip()
        if not query:
            raise ToolFailure("the query is empty: describe the moment to find", "empty_query")
        duration = _duration(ctx)
        if input.within is not None and duration is not None and input.within.start > duration + 0.05:
            raise ToolFailure(
                f"within={input.within} starts after the end of the video ({duration:.1f}s): "
                f"ask for times between 0 and {duration:.1f}s", "span_outside_video")
        # Whole-video summaries match everything and pin nothing down: not for grounding.
        docs = [d for d in docs_from_context(ctx.context) if d.span is not None and not d.source.endswith(":video")]
        if input.within is not None:
            docs = [d for d in docs if _overlap(d.span, input.within) > 0]
        video_index = index_for(ctx) if input.backend != "model" else None
        text_index = merged_index(docs, video_index, input.within)
        backend = input.backend
        if backend == "auto":
            backend = "index" if len(text_index) or not ctx.sees_pixels else "model"
        boundaries = shot_boundaries(ctx.context)
        if not boundaries and video_index is not None:  # the index's shots, when this episode segmented nothing
            boundaries = sorted({t for shot in video_index.shots() for t in (shot.span.start, shot.span.end)})
        tolerance = float(ctx.settings.get("snap_tolerance_s", 0.75))
        usage: dict[str, float] | None = None
        if backend == "index":
            spans = self._from_index(query, text_index, input.top_k, float(ctx.settings.get("min_score", 0.15)))
        else:
            found, usage = ground_with_model(ctx, query, duration, input.within)
            spans = [found]
        snapped = False
        if boundaries:
            out = []
            for s in spans:
                new = snap(s.span, boundaries, tolerance)
                snapped |= new != s.span
                out.append(s.model_copy(update={"span": new}))
            spans = out
        return GroundOutput(query=query, backend=backend, spans=spans, snapped=snapped, model_usage=usage)

    @staticmethod
    def _from_index(query: str, index: TextIndex, k: int, min_score: float) -> list[GroundedSpan]:
        if not len(index):
            raise ToolFailure(
                "no time-aligned evidence yet: call transcribe (speech) or summarize (on-screen text, "
                "scenes) first, build the video's index (`mcr index VIDEO`), or use backend=model", "no_evidence")
        hits = index.search(query, k=len(index))
        if not hits or hits[0].score < min_score:
            best = f" (best: {hits[0].score:.2f} for {hits[0].doc.text!r})" if hits else ""
            raise ToolFailure(f"nothing in the evidence matches {query!r}{best}; try other words, "
                              "gather more evidence (transcribe, summarize) or use backend=model", "no_match")
        spans: list[GroundedSpan] = []
        for h in hits:
            if h.score < min_score or len(spans) == k:
                break
            if any(h.doc.span.iou(s.span) >= SAME_SPAN_IOU for s in spans):
                continue  # the same moment found again through another source (OCR, summary, memory)
            spans.append(GroundedSpan(span=h.doc.span, score=h.score, source=h.doc.source, text=h.doc.text,
                                      ref=h.doc.ref))
        return spans

    def summarize(self, output: GroundOutput) -> str:
        parts = []
        for i, s in enumerate(output.spans, start=1):
            where = f" {s.ref}" if s.ref else ""
            text = f": {s.text[:80]!r}" if s.text else ""
            parts.append(f"{i}) {s.span} score={s.score:.2f} [{s.source}{where}]{text}")
        return f"'{output.query}' ({output.backend}): " + "; ".join(parts)

    def span_of(self, input: GroundInput, output: GroundOutput) -> TimeSpan | None:
        return output.spans[0].span if output.spans else None


# --------------------------------------------------------------------------- #
# Helpers (also used by summarize and the verifier's checks)
# --------------------------------------------------------------------------- #


def _duration(ctx: ToolContext) -> float | None:
    if ctx.video is None:
        return None
    if ctx.video.duration is not None:
        return ctx.video.duration
    from mcr.model.media.video import VideoError, probe

    try:
        return probe(ctx.video.path).duration
    except VideoError as exc:
        raise ToolFailure(str(exc), "unreadable_video") from None


def _overlap(a: TimeSpan, b: TimeSpan) -> float:
    return max(0.0, min(a.end, b.end) - max(a.start, b.start))


def snap(span: TimeSpan, boundaries: list[float], tolerance: float) -> TimeSpan:
    """Move each end of `span` to the nearest shot boundary within `tolerance` seconds.

    An end never crosses the other: a snap that would empty the span is skipped.
    """
    def nearest(t: float) -> float:
        best = min(boundaries, key=lambda b: abs(b - t))
        return best if abs(best - t) <= tolerance else t

    start, end = nearest(span.start), nearest(span.end)
    if end <= start:
        return span
    return TimeSpan(start=round(start, 3), end=round(end, 3))


def usage_of(gen: Any) -> dict[str, float]:
    """A side query's cost (prompt, reused, prefilled and generated tokens, latency) for a tool's output."""
    return gen.usage.model_dump(include={"prompt_tokens", "reused_tokens", "prefilled_tokens",
                                         "generated_tokens", "latency_s"})


def ground_with_model(
    ctx: ToolContext, query: str, duration: float | None, within: TimeSpan | None
) -> tuple[GroundedSpan, dict[str, float]]:
    """Ask the model for ``start - end`` seconds through a fork; parse and clamp them."""
    from mcr.model.runtime.grammar import GrammarConstraint

    # Times for a moment are a statement about the video: only a model that sees frames may make it.
    model = ctx.require_model("model grounding", vision=True)
    if ctx.video is None:
        raise ToolFailure("model grounding needs the episode's video", "no_video")
    where = f" between {within.start:.1f}s and {within.end:.1f}s" if within else ""
    question = (f"When does this happen in the video{where}: {query}\n"
                "Reply with the start and end time in seconds as 'start - end', e.g. '12.5 - 20.0'.")
    constraint = GrammarConstraint.regex(model.session.tokenizer, SPAN_PATTERN)
    gen = ctx.side_query(question, what="model grounding", max_new_tokens=24, logits_processor=constraint)
    span = parse_span(gen.text, duration, within)
    return GroundedSpan(span=span, score=1.0, source="model", text=gen.text.strip()), usage_of(gen)


def parse_span(text: str, duration: float | None, within: TimeSpan | None = None) -> TimeSpan:
    """``'12.5 - 20'`` → a span clamped to the video (and to `within`); ends in order.

    Raises:
        ToolFailure: ``malformed_model_output`` when there are not two numbers.
    """
    import re

    numbers = [x for x in map(float, re.findall(r"\d+(?:\.\d+)?", text)) if math.isfinite(x)]
    if len(numbers) < 2:
        raise ToolFailure(f"the model's reply {text!r} holds no 'start - end' times; ask again or use backend=index",
                          "malformed_model_output")
    lo, hi = sorted(numbers[:2])
    floor = within.start if within else 0.0
    ceil = within.end if within else (duration if duration is not None else max(hi, 0.0))
    if duration is not None:
        ceil = min(ceil, duration)
    if ceil < floor:
        raise ToolFailure(f"the span to search in starts at {floor:.1f}s, past the video's end ({ceil:.1f}s); "
                          "ask about a span inside the video", "span_outside_video")
    lo, hi = min(max(lo, floor), ceil), min(max(hi, floor), ceil)
    if hi <= lo:  # a point (or clamped away): show a second around it
        lo, hi = max(floor, lo - 0.5), min(ceil, lo + 0.5)
    clamp = lambda t: min(max(round(t, 3), floor), ceil)  # rounding must not step past the video's end
    return TimeSpan(start=clamp(lo), end=clamp(hi))
