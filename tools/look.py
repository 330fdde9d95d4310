"""`look`: what a span shows, measured from its pixels — colours, brightness, motion, text, objects.

The tool for a policy that does not receive frames (the offline text model)
and a check for one that does: every statement in its output is a
measurement (`mcr.tools.span_facts.measure_span`) with the time of the frame
it was made on, never a description written by a model. "What colour is the
scene at 10 s?", "how many dogs are there?" and "what is written on the sign?"
get answers that can be cited by span.

Results are cached by file content, span and settings (`ResultCache`), and
decoded frames are kept in a `FrameStore`, so looking again costs nothing and
looking at an overlapping span decodes only the new frames.

Text is read on the sampled frames and also where the picture changes between
them (a word shown for half a second, a shot shorter than the sampling step:
`mcr.tools.change_points`); those frames are in ``frames`` with trigger
``change``. Objects, drawn shapes and text lines carry their own colours
(``SeenObject.colours``, ``SeenShape.colours``, ``TextLine.ground/ink``), so
"the colour of the van" is judged on the van's pixels, not the frame's.

Settings (``ctx.settings``): ``max_frames`` (cap on sampled frames, default 8),
``min_score`` (detector threshold, default 0.4), ``text_change_frames`` (frames
read for text where the picture changed, default 3; 0 turns it off).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mcr.context import TimeSpan
from mcr.model.media.video import FrameStore, VideoError, probe
from mcr.tools.base import Tool, ToolContext, ToolFailure
from mcr.tools.cache import ResultCache
from mcr.tools.change_points import indexed_changes
from mcr.tools.span_facts import TEXT_CHANGE_FRAMES, SpanFacts, measure_span, mean_motion, motion_word


class LookInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Required, so a policy asks for a place (the offline default calls argument-free tools on its own,
    # and looking at a whole film is not free); the whole video is span [0, duration].
    span: TimeSpan | float = Field(
        description="where to look: a span {start, end} in seconds (sampled at fps), or one time in seconds "
        "(the frame shown then)"
    )
    fps: float = Field(default=1.0, gt=0, le=8, description="frames sampled per second of the span")
    objects: bool = Field(default=True, description="detect objects (80 COCO classes: person, dog, car, ...)")
    ocr: bool = Field(default=True, description="read the text on screen")
    detail: bool = Field(default=False, description="also detect objects in zoomed tiles of each frame "
                         "(finds small objects; 5x the detector's time)")


class LookOutput(SpanFacts):
    """The measured facts of the span (see `SpanFacts`)."""


class LookTool(Tool):
    name = "look"
    description = (
        "Measure what a span (or the frame at one time) shows from its pixels: named colours with shares, "
        "brightness, contrast, motion, on-screen text with positions, and objects (labels, boxes, counts) "
        "tracked across frames; every fact carries its frame time."
    )
    Input = LookInput
    Output = LookOutput

    def __init__(self) -> None:
        self.frames = FrameStore()

    def run(self, input: LookInput, ctx: ToolContext) -> LookOutput:
        video = ctx.require_video()
        try:
            info = probe(video.path)
        except VideoError as exc:
            raise ToolFailure(str(exc), "unreadable_video") from None
        one_frame = not isinstance(input.span, TimeSpan)
        if one_frame:
            if not 0 <= input.span <= info.duration + 0.05:
                raise ToolFailure(f"time {input.span:.2f}s is outside the video (0 to {info.duration:.2f}s)",
                                  "span_outside_video")
            start = end = min(float(input.span), info.duration)
        else:
            start, end = input.span.start, input.span.end
        max_frames = int(ctx.settings.get("max_frames", 8))
        min_score = float(ctx.settings.get("min_score", 0.4))
        text_changes = int(ctx.settings.get("text_change_frames", TEXT_CHANGE_FRAMES)) if not one_frame else 0
        cache = ResultCache.for_context(ctx)
        settings = {"fps": input.fps, "objects": input.objects, "ocr": input.ocr, "max_frames": max_frames,
                    "min_score": min_score, "one_frame": one_frame, "text_changes": text_changes if input.ocr else 0,
                    "movers": 1}  # a result measured before movers existed is not served
        if input.detail:  # without it the key is what it always was (existing caches stay valid)
            settings["detail"] = True
        changes = indexed_changes(ctx, start, end, info.duration) if input.ocr and text_changes else None
        if changes is not None:  # without it the key is what it always was
            settings["changes"] = "video_index"
        key = cache.key(self.name, info.path, TimeSpan(start=start, end=max(start, end)), settings)

        def compute() -> LookOutput:
            try:
                facts = measure_span(info.path, start, end, fps=input.fps, max_frames=max_frames,
                                     detect_objects=input.objects, ocr=input.ocr, min_score=min_score, detail=input.detail,
                                     text_changes=text_changes, store=self.frames, info=info,
                                     known_changes=changes)
            except VideoError as exc:  # SpanOutsideVideo, or a file that fails mid-decode
                error = "span_outside_video" if isinstance(exc, ValueError) else "unreadable_video"
                raise ToolFailure(str(exc), error) from None
            return LookOutput(**facts.model_dump())

        return cache.get_or_compute(key, LookOutput, compute)

    def summarize(self, output: LookOutput) -> str:
        lines = [output.describe()]
        # Consecutive frames that read the same are one line (a still scene is one line, not eight):
        # the model reads fewer tokens and loses nothing.
        runs: list[tuple[float, float, str]] = []
        for f in output.frames:
            bits = [", ".join(f"{c.name} {c.share:.0%}" for c in f.colours[:3]) or "no dominant colour",
                    f"brightness {f.brightness:.0f}"]
            if f.objects:
                counts: dict[tuple[str, str], int] = {}
                for d in f.objects:
                    key = (d.label, d.colours[0].name if d.colours else "")
                    counts[key] = counts.get(key, 0) + 1
                bits.append("objects " + ", ".join(f"{n} {label}" + (f" ({colour})" if colour else "")
                                                   for (label, colour), n in counts.items()))
            if f.shapes:
                bits.append(f"{len(f.shapes)} shapes")
            if f.text:
                bits.append("text " + " / ".join(f'"{x.text}"' + (f" on {x.ground}" if x.ground else "")
                                                 for x in f.text[:3]))
            if f.trigger == "change":
                bits.append("read where the picture changed")
            line = "; ".join(bits)
            if runs and runs[-1][2] == line:
                runs[-1] = (runs[-1][0], f.t, line)
            else:
                runs.append((f.t, f.t, line))
        for first, last, line in runs:
            when = f"t={first:.2f}s" if first == last else f"t={first:.2f}-{last:.2f}s"
            lines.append(f"  {when}: {line}")
        if output.motion:
            level = mean_motion(output.motion)
            peak = max(output.motion, key=lambda m: m.mean_change)
            lines.append(f"  motion {motion_word(level)}; most change {peak.start:.2f}-{peak.end:.2f}s "
                         f"({peak.changed_share:.0%} of pixels)")
        lines.extend(f"  {m.describe()}" for m in output.movers)
        if output.missing:
            lines.append("  not measured: " + "; ".join(output.missing))
        return "\n".join(lines)

    def span_of(self, input: LookInput, output: LookOutput) -> TimeSpan | None:
        return output.span

    def frames_of(self, output: LookOutput) -> int:
        return len(output.times)
