"""`summarize`: what happens in a span, or the whole video — shots → scenes → whole.

A summary is the agent's notebook: once a span is summarised, later turns can
rely on the summary (a Memory entry with the span it covers) instead of
re-watching the frames. The hierarchy keeps long videos tractable:

1. **shots** — from a ``segment`` result in the context, or computed here (the
   segment tool's cached shot detector), each with the on-screen text of its
   keyframe and of the frames where its picture changes (OCR,
   rapidocr-onnxruntime, offline models in the wheel; `mcr.tools.change_points`
   finds a word shown for half a second), and what is said during it (the
   latest ``transcribe`` result in the context);
2. **scenes** — consecutive shots whose keyframes look alike (colour histogram
   correlation) merged into one;
3. **whole** — one line per scene, and with a model a closing summary.

Every scene line is built from **measured facts** and says so ("measured:
…"): the text read on screen, what the transcript says, and what the pixels
of a few sampled frames show — named colours with shares, brightness, motion,
YOLOv3-tiny objects (`mcr.tools.span_facts.measure_span`, no model involved).

Captions come only from a model that **receives the frames** (a
vision-language policy: ``ctx.sees_pixels``). Then each scene is also
captioned from its frames through a side query on a fork of the session (the
main cache stays clean), and the whole-video summary is written by the model
from the scene notes. A text-only model (SmolLM2) is never asked: it would
only see a line naming the file, and whatever it wrote about the frames would
be invented — so with it, or without a model, the summary is the measured
facts alone, and ``use_model=true`` is a typed ``no_model`` error.

With a finished video index for the video (`mcr index`, `mcr.tools.video_index`),
the shots, scenes, on-screen text and — when nothing was transcribed in the
episode — the speech come from the index instead: nothing is detected, read or
heard twice, which is what makes a summary of an hour affordable.

OCR engines for Chinese+Latin often drop the spaces between capital words
("MORNINGFIELD"); `mcr.tools.ocr.respace` puts them back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcr.context import Memory, TimeSpan, ToolResult
from mcr.progress import progress
from mcr.tools.base import Tool, ToolContext, ToolFailure
from mcr.tools.cache import ResultCache
from mcr.tools.ocr import TextLine, respace  # respace: re-exported, summaries used to own it
from mcr.tools.movers import Mover
from mcr.tools.pixels import ColourShare
from mcr.tools.span_facts import ObjectCount

# Frames read for text where the picture changes inside a shot: at most this many per shot, and at most
# TEXT_CHANGE_TOTAL over a summary (a film of many shots reads its keyframes only; memory and time stay bounded).
TEXT_CHANGES_PER_SHOT = 2
TEXT_CHANGE_TOTAL = 24


class SpanSummary(BaseModel):
    """What one shot, scene or the whole video shows and says."""

    level: Literal["shot", "scene", "video"]
    span: TimeSpan
    text: str = Field(description="the summary line")
    ocr: list[str] = Field(default_factory=list, description="text read on screen")
    text_lines: list[TextLine] = Field(default_factory=list, description="the `ocr` lines with the time, box and "
                                       "colours (ground, ink) of the frame each was first read in")
    speech: str = Field(default="", description="what is said during the span")
    caption: str | None = Field(default=None, description="a vision-language model's description of the frames")
    pixels: str | None = Field(default=None, description="what the sampled frames' pixels measure (scenes), as a line")
    colours: list[ColourShare] = Field(default_factory=list, description="the same, typed: named colours (scenes)")
    brightness: float | None = Field(default=None, description="mean CIELAB L*, 0-100 (scenes)")
    objects: list[ObjectCount] = Field(default_factory=list, description="objects seen, with their own colours (scenes)")
    movers: list[Mover] = Field(default_factory=list, description="a thing measured moving, its heading and when "
                                "(scenes; `mcr.tools.movers`)")
    shots: list[int] = Field(default_factory=list, description="indices of the shots it covers")


class SummarizeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    span: TimeSpan | None = Field(default=None, description="summarise only this part; default the whole video")
    ocr: bool = Field(default=True, description="read on-screen text in each shot's keyframe and where its picture changes")
    pixels: bool = Field(default=True, description="measure colours, brightness, motion, objects in each scene's frames")
    use_model: bool | None = Field(
        default=None, description="caption scenes with the video model; default: if the episode's model sees frames")
    scene_similarity: float = Field(default=0.9, ge=0, le=1, description="merge shots whose keyframes correlate above this")


class SummarizeOutput(BaseModel):
    span: TimeSpan
    shots: list[SpanSummary]
    scenes: list[SpanSummary]
    overall: SpanSummary
    sources: list[str] = Field(description="what it was made from: shots, transcript, ocr, pixels, objects, model")
    missing: list[str] = Field(default_factory=list, description="evidence that was not available, and how to get it")


class ShotText(BaseModel):
    """The text read in one shot (a cache record)."""

    lines: list[TextLine]


class SummarizeTool(Tool):
    name = "summarize"
    description = (
        "Summarise a span or the whole video, shot by shot and scene by scene, from measured facts (on-screen "
        "text, the transcript, colours, brightness, motion, objects) and, with a vision model, its captions; "
        "the result is remembered for later turns."
    )
    Input = SummarizeInput
    Output = SummarizeOutput

    def __init__(self) -> None:
        from mcr.tools.segment import SegmentTool

        self._segment = SegmentTool()
        self._frames: Any = None  # a FrameStore once pixels are measured: each frame decoded once

    def run(self, input: SummarizeInput, ctx: ToolContext) -> SummarizeOutput:
        video = ctx.require_video()
        indexed = self._from_index(input, ctx, video)
        if indexed is not None:
            return indexed
        shots = self._shots(input, ctx)
        span = TimeSpan(start=shots[0].span.start, end=shots[-1].span.end)
        sources, missing = ["shots"], []
        speech = _transcript(ctx)
        if speech is None:
            missing.append("transcript: call transcribe first to include what is said")
            speech = []
        else:
            sources.append("transcript")
        ocr: dict[int, list[TextLine]] = {}
        if input.ocr:
            try:
                per_shot = min(TEXT_CHANGES_PER_SHOT, int(ctx.settings.get("text_change_frames", TEXT_CHANGE_TOTAL))
                               // max(1, len(shots)))
                ocr = {s.index: self._read_text(video.path, s, per_shot, ctx)
                       for s in progress(shots, desc="OCR on keyframes", unit="shot", min_items=20)}
                sources.append("ocr")
            except ToolFailure as exc:
                if exc.error_type != "ocr_not_installed":
                    raise
                missing.append("ocr: pip install rapidocr-onnxruntime (its models ship in the wheel)")
        shot_sums = [
            _describe("shot", s.span, ocr.get(s.index, []), _said(speech, s.span), [s.index]) for s in shots
        ]
        groups = _group_scenes([s.keyframe for s in shots], input.scene_similarity)
        scenes = [_scene(members, speech) for members in ([shot_sums[i] for i in group] for group in groups)]
        return self._finish(input, ctx, video, span, shot_sums, scenes, sources, missing)

    def _finish(self, input: SummarizeInput, ctx: ToolContext, video: Any, span: TimeSpan,
                shot_sums: list[SpanSummary], scenes: list[SpanSummary], sources: list[str],
                missing: list[str]) -> SummarizeOutput:
        """Pixels, captions and the whole-video line: the same whether shots came from the index or not."""
        if input.pixels:
            scenes = self._measure(ctx, video, scenes, sources, missing)
        use_model = input.use_model if input.use_model is not None else ctx.sees_pixels
        closing = None
        if use_model:  # never for a text-only model: require_model(vision=True) refuses it
            ctx.require_model("model summarisation", vision=True)
            scenes = [self._caption(ctx, video, s) for s in scenes]
            closing = self._closing(ctx, scenes)
            sources.append("model")
        lines = [f"Scene {i} {s.span}: {s.text}." for i, s in enumerate(scenes, start=1)]
        head = f"{len(scenes)} scene(s) in {span}. "
        overall_text = head + " ".join(lines) + (f" Model summary: {closing}" if closing else "")
        overall = SpanSummary(level="video", span=span, text=overall_text, caption=closing,
                              ocr=list(dict.fromkeys(x for s in scenes for x in s.ocr)),
                              speech=" ".join(s.speech for s in scenes if s.speech),
                              shots=[i for s in shot_sums for i in s.shots])
        return SummarizeOutput(span=span, shots=shot_sums, scenes=scenes, overall=overall, sources=sources, missing=missing)

    def summarize(self, output: SummarizeOutput) -> str:
        note = f" (missing: {'; '.join(output.missing)})" if output.missing else ""
        return output.overall.text + note

    def span_of(self, input: SummarizeInput, output: SummarizeOutput) -> TimeSpan | None:
        return output.span

    def entries(self, input: SummarizeInput, output: SummarizeOutput) -> list[Memory]:
        """Memory entries the graph should append after the ToolResult (one per scene + the whole)."""
        notes = [Memory(span=s.span, text=f"Scene {i}: {s.text}", source=self.name, facts=s.model_dump(mode="json"))
                 for i, s in enumerate(output.scenes, start=1)]
        notes.append(Memory(span=output.overall.span, text=output.overall.text, source=self.name))
        return notes

    # -- pieces ------------------------------------------------------------- #
    def _from_index(self, input: SummarizeInput, ctx: ToolContext, video: Any) -> SummarizeOutput | None:
        """The summary from the video's index, when one has its shots, screen text and scenes (else None).

        Why: on a long video, detecting shots and reading text at every shot is
        the expensive part of a summary, and the index (built once per video,
        `mcr.tools.video_index`) already holds both — read at the places where
        the picture changed, not only at keyframes. Only the pixel facts of a few
        frames per scene are measured here. The index's own scene similarity is
        used; a different ``scene_similarity`` asks for shots detected here.
        """
        from mcr.tools.video_index.for_tools import index_for

        index = index_for(ctx)
        if index is None or input.scene_similarity != index.settings.scene_similarity:
            return None
        stages = index.status().stages
        if not (stages["picture"].done and stages["structure"].done):
            return None  # a build under way: detect here rather than summarise half a video
        duration = index.info.duration
        span = input.span or TimeSpan(start=0.0, end=duration)
        shots = [s for s in index.shots(span) if min(s.span.end, span.end) - max(s.span.start, span.start) > 0]
        if not shots:
            return None
        sources, missing = ["shots", "index"], []
        speech = _transcript(ctx)
        if speech is None and stages["speech"].done and index.settings.speech:
            speech = [(seg.span, seg.text) for seg in index.transcript(span)]
        if speech is None:
            missing.append("transcript: call transcribe first to include what is said")
            speech = []
        else:
            sources.append("transcript")
        texts = index.text_on_screen(span) if input.ocr and index.settings.ocr else []
        if input.ocr and index.settings.ocr:
            sources.append("ocr")
        shot_sums = []
        for shot in shots:
            clipped = TimeSpan(start=max(shot.span.start, span.start), end=min(shot.span.end, span.end))
            lines = _distinct([line for st in texts if shot.span.start <= st.t < shot.span.end for line in st.lines])
            shot_sums.append(_describe("shot", clipped, lines, _said(speech, clipped), [shot.index]))
        by_index = {shot.index: summary for shot, summary in zip(shots, shot_sums)}
        groups = ([by_index[i] for i in scene.shots if i in by_index] for scene in index.scenes(span))
        scenes = [_scene(members, speech) for members in groups if members]
        if not scenes:
            return None
        whole = TimeSpan(start=shot_sums[0].span.start, end=shot_sums[-1].span.end)
        return self._finish(input, ctx, video, whole, shot_sums, scenes, sources, missing)

    def _shots(self, input: SummarizeInput, ctx: ToolContext) -> list[Any]:
        """Shots inside the span: the context's segment result if it covers it, else detect them."""
        from mcr.tools.segment import SegmentInput, Shot

        for entry in reversed(ctx.context.of_kind(ToolResult)):
            if entry.tool == "segment" and entry.output.get("mode") == "temporal" and entry.output.get("shots"):
                shots = [Shot.model_validate(s) for s in entry.output["shots"]]
                if input.span is not None:
                    shots = [s for s in shots if min(s.span.end, input.span.end) - max(s.span.start, input.span.start) > 0]
                covered = shots and (input.span is None or (shots[0].span.start <= input.span.start + 0.05
                                                             and shots[-1].span.end >= input.span.end - 0.05))
                if covered and all(Path(s.keyframe).is_file() for s in shots):
                    return _clip(shots, input.span)
        out = self._segment.run(SegmentInput(mode="temporal", span=input.span), ctx)  # cached; typed failures
        return out.shots

    def _read_text(self, video_path: str, shot: Any, changes: int, ctx: ToolContext) -> list[TextLine]:
        """The lines read on a shot's keyframe and on up to `changes` frames where its picture changes (cached)."""
        from mcr.model.media.video import FrameStore, read_frames_at
        from mcr.tools.change_points import MAX_SCAN_FRAMES, text_read_times
        from mcr.tools.ocr import MIN_SCORE, read_text

        cache = ResultCache.for_context(ctx)
        key = cache.key("shot_text", video_path, shot.span,
                        {"engine": "rapidocr-onnxruntime", "min_score": MIN_SCORE, "keyframe": Path(shot.keyframe).name,
                         "changes": changes})

        def compute() -> ShotText:
            if self._frames is None:
                self._frames = FrameStore()
            middle = round((shot.span.start + shot.span.end) / 2, 3)  # segment's keyframe is the shot's middle frame
            lines = read_text(shot.keyframe, middle)
            scan = max(2, round(MAX_SCAN_FRAMES * min(1.0, (shot.span.end - shot.span.start) / 60.0)))
            when = text_read_times(video_path, shot.span.start, shot.span.end, [middle], budget=changes,
                                   max_scan_frames=scan, store=self._frames)
            for t, frame in zip(when, read_frames_at(video_path, when, store=self._frames)):
                lines += read_text(frame.image, t)
            return ShotText(lines=_distinct(sorted(lines, key=lambda line: line.t or 0.0)))

        return cache.get_or_compute(key, ShotText, compute).lines

    def _measure(self, ctx: ToolContext, video: Any, scenes: list[SpanSummary], sources: list[str],
                 missing: list[str]) -> list[SpanSummary]:
        """Each scene with the pixel facts of a few sampled frames appended (cached per scene)."""
        from mcr.model.media.video import FrameStore, VideoError
        from mcr.tools.span_facts import SpanFacts, measure_span

        if self._frames is None:
            self._frames = FrameStore()
        cache = ResultCache.for_context(ctx)
        fps = float(ctx.settings.get("pixel_fps", 0.5))
        frames = int(ctx.settings.get("pixel_frames", 3))
        objects = bool(ctx.settings.get("objects", True))
        out, measured = [], set()
        for scene in scenes:
            settings = {"fps": fps, "max_frames": frames, "objects": objects, "ocr": False, "movers": 1}
            key = cache.key("span_facts", video.path, scene.span, settings)
            try:
                facts = cache.get_or_compute(key, SpanFacts, lambda s=scene: measure_span(
                    video.path, s.span.start, s.span.end, fps=fps, max_frames=frames, detect_objects=objects,
                    ocr=False, store=self._frames))
            except VideoError as exc:  # a scene the decoder cannot reach: say so, keep the rest
                missing.append(f"pixels of {scene.span}: {exc}")
                out.append(scene)
                continue
            measured.update(facts.measured)
            missing.extend(m for m in facts.missing if m not in missing)
            line = pixel_line(facts)
            out.append(scene.model_copy(update={"pixels": line, "text": f"{scene.text}; {line}", "colours": facts.colours,
                                                "brightness": facts.brightness, "objects": facts.objects,
                                                "movers": facts.movers}))
        sources.extend(name for name in ("pixels", "objects") if name in measured)
        return out

    def _caption(self, ctx: ToolContext, video: Any, scene: SpanSummary) -> SpanSummary:
        question = f"Describe what happens in this clip ({scene.span}) in one sentence."
        gen = ctx.side_query(question, [video.message_part(scene.span)], what="scene captions",
                             max_new_tokens=int(ctx.settings.get("caption_tokens", 40)))
        caption = gen.text.strip()
        text = scene.text + (f". Seen by the vision model (it received the frames): {caption}" if caption else "")
        return scene.model_copy(update={"caption": caption, "text": text})  # "" = asked, said nothing

    def _closing(self, ctx: ToolContext, scenes: list[SpanSummary]) -> str:
        notes = "\n".join(f"{s.span}: {s.text}" for s in scenes)
        question = f"Scene notes:\n{notes}\nSummarise the whole video in two sentences."
        gen = ctx.side_query(question, what="a video summary",
                             max_new_tokens=int(ctx.settings.get("summary_tokens", 64)))
        return gen.text.strip()


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def _clip(shots: list[Any], span: TimeSpan | None) -> list[Any]:
    if span is None:
        return shots
    return [s.model_copy(update={"span": TimeSpan(start=max(s.span.start, span.start), end=min(s.span.end, span.end))})
            for s in shots]


def _transcript(ctx: ToolContext) -> list[tuple[TimeSpan, str]] | None:
    """All transcript segments in the context (None when nothing was transcribed)."""
    results = ctx.context.results_of("transcribe")
    if not results:
        return None
    segs = {}
    for r in results:
        for s in r.output.get("segments", []):
            span = TimeSpan.model_validate(s["span"])
            segs[(span.start, span.end)] = (span, s["text"])
    return [segs[k] for k in sorted(segs)]


def _said(speech: list[tuple[TimeSpan, str]], span: TimeSpan) -> str:
    """Text of the segments whose middle falls inside `span`."""
    return " ".join(text for s, text in speech if span.start <= (s.start + s.end) / 2 < span.end or
                    (span.end == s.end and span.start <= s.start))


def _distinct(lines: list[TextLine]) -> list[TextLine]:
    """One line per text, at its first reading."""
    seen: dict[str, TextLine] = {}
    for line in lines:
        seen.setdefault(line.text, line)
    return list(seen.values())


def _scene(members: list[SpanSummary], speech: list[tuple[TimeSpan, str]]) -> SpanSummary:
    """One scene from its consecutive shots' summaries: their text read once each, what is said in its span."""
    span = TimeSpan(start=members[0].span.start, end=members[-1].span.end)
    lines = _distinct([line for m in members for line in m.text_lines])
    return _describe("scene", span, lines, _said(speech, span), [m.shots[0] for m in members])


def _describe(level: Literal["shot", "scene"], span: TimeSpan, text: list[TextLine], speech: str,
              shots: list[int]) -> SpanSummary:
    """The measured line of a span: what was read on screen and what was said (no model wrote it)."""
    ocr = [line.text for line in text]
    parts = ["on screen " + " / ".join(f'"{line}"' for line in ocr) if ocr else "no text on screen",
             f'said "{speech}"' if speech else "nothing said"]
    summary = "measured: " + "; ".join(parts)
    return SpanSummary(level=level, span=span, text=summary, ocr=ocr, speech=speech, shots=shots, text_lines=text)


def pixel_line(facts: Any, max_items: int = 4) -> str:
    """The pixel facts of a `SpanFacts` as one sentence: colours, brightness, motion, objects."""
    from mcr.tools.span_facts import mean_motion, motion_word

    colours = ", ".join(f"{c.name} {c.share:.0%}" for c in facts.colours[:max_items]) or "none named"
    parts = [f"colours {colours}", f"brightness {facts.brightness:.0f}/100"]
    if facts.motion:
        parts.append(f"motion {motion_word(mean_motion(facts.motion))}")
    parts.extend(m.describe() for m in facts.movers)
    if "objects" in facts.measured:
        objs = [f"{o.label} x{o.max_in_frame} ({o.at:.1f}s)" for o in facts.objects[:max_items]]
        parts.append("objects " + (", ".join(objs) if objs else "none detected"))
    return "; ".join(parts) + f" ({len(facts.frames)} frames)"


def _group_scenes(keyframes: list[str], threshold: float) -> list[list[int]]:
    """Runs of consecutive shots whose keyframe HSV histograms correlate ≥ threshold."""
    import cv2

    hists = []
    for path in keyframes:
        image = cv2.imread(path)
        if image is None:
            hists.append(None)
            continue
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, [16, 8, 8], [0, 180, 0, 256, 0, 256])  # (16, 8, 8)
        hists.append(cv2.normalize(hist, hist).flatten())
    groups: list[list[int]] = []
    for i, h in enumerate(hists):
        prev = hists[i - 1] if i else None
        same = h is not None and prev is not None and cv2.compareHist(prev, h, cv2.HISTCMP_CORREL) >= threshold
        if groups and same:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups
