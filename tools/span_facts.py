"""Everything measurable from the pixels of a span: `measure_span(video, start, end) -> SpanFacts`.

This is the evidence a text-only policy can be given about what a video
*shows* without any model describing frames: sampled frames' named colours,
brightness, contrast, motion between them (`mcr.tools.pixels`), the text on
screen with positions (`mcr.tools.ocr`), and YOLOv3-tiny objects tracked
across frames (`mcr.tools.objects`). Every fact carries the time of the frame
it was measured on, so an answer can cite the span.

It is a pure function of the file and its arguments (the `look` tool caches
it; `summarize` builds scene summaries from it). Frames are taken on a global
grid of ``k / fps`` seconds, so overlapping spans sample the same times and a
shared `FrameStore` decodes each frame once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from mcr.context import TimeSpan
from mcr.model.media.video import FrameStore, VideoInfo, check_span, probe, read_frames_at
from mcr.tools.base import ToolFailure
from mcr.tools.change_points import text_read_times
from mcr.tools.objects import Detection, Detector, Track, one_per_object, track
from mcr.tools.ocr import TextLine, read_text
from mcr.tools.movers import Mover, find_mover
from mcr.tools.pixels import (ColourShare, FramePixels, Motion, frame_pixels, merge_shares, motion, object_colours,
                              region_colours)
from mcr.tools.shapes import Shape, find_shapes

# OCR is the slowest fact (~1 s a frame on 2 cores); a frame that barely differs
# from the last one read (this share of pixels changed, or less) keeps its text.
OCR_REUSE_CHANGED_SHARE = 0.002
# Frames read for their text where the picture changed between samples (`mcr.tools.change_points`), per span.
TEXT_CHANGE_FRAMES = 3


class SeenObject(Detection):
    """A detection with the colours of the object's own pixels (not of the frame, not of its surroundings)."""

    colours: list[ColourShare] = Field(default_factory=list, description="named colours of the object "
                                       "(`mcr.tools.pixels.object_colours`: the box's middle less its surroundings)")


class SeenShape(Shape):
    """A drawn shape with the colours inside it."""

    colours: list[ColourShare] = Field(default_factory=list, description="named colours inside the shape's box")


class FrameFacts(FramePixels):
    """The facts of one frame: pixels, text read on it, objects detected in it (each with its own colours)."""

    trigger: Literal["sample", "change"] = Field(
        default="sample", description="sample: a frame on the span's fps grid (every fact measured); change: a frame "
        "between samples where the picture changed, read for its text and pixels only (no objects detected)")
    text: list[TextLine] = Field(default_factory=list)
    objects: list[SeenObject] = Field(default_factory=list)
    shapes: list[SeenShape] = Field(default_factory=list, description="squares, rectangles, circles drawn on a flat background")


class ObjectCount(BaseModel):
    """How many of one kind of object the span shows, and when."""

    label: str
    max_in_frame: int = Field(description="the most seen in one frame: 'how many' at once")
    colours: list[ColourShare] = Field(default_factory=list, description="the objects' own colours, over all detections")
    at: float = Field(description="time (s) of the first frame showing that many")
    tracks: int = Field(description="distinct ones followed across frames (naive IoU tracking)")
    frames: int = Field(description="sampled frames it appears in")
    first: float
    last: float


class SpanFacts(BaseModel):
    """What the pixels of a span show, measured (no model wrote any of it)."""

    span: TimeSpan
    times: list[float] = Field(description="times (s) of the sampled frames")
    frame_size: tuple[int, int] = Field(description="[width, height]; boxes are in these pixels")
    frames: list[FrameFacts] = Field(description="the sampled frames and, where the picture changed between them, "
                                     "frames read for their text (trigger 'change'), in time order")
    colours: list[ColourShare] = Field(description="named colours over the sampled frames")
    brightness: float = Field(description="mean CIELAB L* over the frames, 0-100")
    contrast: float = Field(description="mean RMS contrast (L* standard deviation)")
    motion: list[Motion] = Field(default_factory=list, description="change between consecutive sampled frames")
    movers: list[Mover] = Field(default_factory=list, description="a thing that moves across the sampled frames, "
                                "its path and heading (`mcr.tools.movers`); empty: none moved")
    text: list[TextLine] = Field(default_factory=list, description="distinct lines read (sampled and change frames), "
                                 "at their first time")
    objects: list[ObjectCount] = Field(default_factory=list, description="per label, most frequent first")
    shapes: dict[str, int] = Field(default_factory=dict, description="drawn shapes: the most of each seen in one frame")
    tracks: list[Track] = Field(default_factory=list)
    measured: list[str] = Field(description="which facts were measured: pixels, motion, ocr, shapes, objects")
    missing: list[str] = Field(default_factory=list, description="facts not measured, and how to get them")

    def describe(self, max_items: int = 5) -> str:
        """One line of the measured facts, e.g. ``measured (4 frames, 0.0-6.0 s): colours red 76% ...``."""
        parts = []
        if self.colours:
            parts.append("colours " + ", ".join(f"{c.name} {c.share:.0%}" for c in self.colours[:max_items]))
        parts.append(f"brightness {self.brightness:.0f}/100, contrast {self.contrast:.0f}")
        if self.motion:
            level = mean_motion(self.motion)
            parts.append(f"motion {motion_word(level)} ({level:.3f})")
        parts.extend(m.describe() for m in self.movers)
        if "ocr" in self.measured:
            lines = [f'"{x.text}" ({x.t:.1f} s)' for x in self.text[:max_items]]
            parts.append("on screen: " + ("; ".join(lines) if lines else "no text"))
        if "objects" in self.measured:
            objs = [f"{o.max_in_frame} {o.label}" + (f" ({o.colours[0].name})" if o.colours else "")
                    + (f" ({o.at:.1f} s)" if o.max_in_frame else "") for o in self.objects[:max_items]]
            parts.append("objects: " + (", ".join(objs) if objs else "none detected"))
        if self.shapes:
            parts.append("shapes drawn: " + ", ".join(f"{n} {label}{'s' if n != 1 else ''}"
                                                      for label, n in self.shapes.items()))
        extra = sum(f.trigger == "change" for f in self.frames)
        frames = f"{len(self.frames) - extra} frames" + (f" + {extra} read where the picture changed" if extra else "")
        return f"measured ({frames}, {self.span}): " + "; ".join(parts)


def mean_motion(items: list[Motion]) -> float:
    return float(np.mean([m.mean_change for m in items])) if items else 0.0


def motion_word(level: float) -> str:
    """A word for a mean grey-level change (0-1) between sampled frames."""
    return "none" if level < 0.005 else "low" if level < 0.03 else "moderate" if level < 0.1 else "high"


def span_times(start: float, end: float, fps: float, max_frames: int) -> list[float]:
    """Times ``k / fps`` in [start, end) (the middle for a span too short), at most `max_frames`, evenly thinned."""
    if fps <= 0 or max_frames < 1:
        raise ValueError(f"fps ({fps}) must be > 0 and max_frames ({max_frames}) >= 1")
    first, last = math.ceil(start * fps - 1e-9), math.ceil(end * fps - 1e-9) - 1
    grid = [k / fps for k in range(first, last + 1)]
    if not grid:
        return [round((start + end) / 2, 6)]
    if len(grid) > max_frames:
        picks = np.linspace(0, len(grid) - 1, max_frames).round().astype(int)  # (max_frames,)
        grid = [grid[i] for i in sorted(set(picks.tolist()))]
    return [round(t, 6) for t in grid]


def measure_span(
    video_path: str | Path,
    start: float,
    end: float,
    *,
    fps: float = 1.0,
    max_frames: int = 8,
    detect_objects: bool = True,
    ocr: bool = True,
    detail: bool = False,
    min_score: float = 0.4,
    text_changes: int = TEXT_CHANGE_FRAMES,
    store: FrameStore | None = None,
    info: VideoInfo | None = None,
    known_changes: Sequence[float] | None = None,
) -> SpanFacts:
    """Measure the pixel facts of ``[start, end]`` seconds of a video.

    Args:
        fps: frames sampled per second (on the ``k / fps`` grid), at most `max_frames`.
        detect_objects: run YOLOv3-tiny on each frame (~0.5 s a frame on 2 cores).
        ocr: read on-screen text (~1 s a frame; near-identical frames reuse it), on the sampled
            frames and on up to `text_changes` frames between them where the picture changed
            (`mcr.tools.change_points.text_read_times`: a word shown for half a second, a short shot).
        detail: detect objects in zoomed tiles too (`Detector.detect_detailed`: small objects).
        min_score: the detector's score threshold.
        store: a `FrameStore` so frames already decoded are not decoded again.
        info: a `probe` result, to skip probing again.
        known_changes: where the picture changes in the span, already known (the video index's change
            points, `mcr.tools.video_index.for_tools.known_changes`): the span is then not scanned for them.

    Raises:
        VideoNotFound, VideoOpenFailure: the file. SpanOutsideVideo: the span.
        ValueError: fps or max_frames out of range.
    """
    info = info or probe(video_path)
    start, end = check_span(info, start, end)
    times = span_times(start, end, fps, max_frames)
    decoded = read_frames_at(video_path, times, store=store)
    measured, missing = ["pixels"], []
    frames = [FrameFacts(**frame_pixels(f.image, t).model_dump()) for t, f in zip(times, decoded)]
    moves = [motion(a.image, b.image, ta, tb) for (ta, a), (tb, b) in zip(zip(times, decoded), zip(times[1:], decoded[1:]))]
    movers: list[Mover] = []
    if moves:
        measured.append("motion")
        mover = find_mover([f.image for f in decoded], times)
        movers = [mover] if mover is not None else []

    changed: list[FrameFacts] = []
    if ocr:
        try:
            _read_all_text(frames, decoded, moves)
            changed = _read_where_changed(video_path, start, end, times, text_changes, store, known_changes)
            measured.append("ocr")
            # shapes only where text was read: otherwise its letters would count as shapes
            for facts, frame in zip(frames, decoded):
                facts.shapes = _shapes(frame.image, facts)
            measured.append("shapes")
        except ToolFailure as exc:
            missing.append(f"ocr: {exc}")
    tracks: list[Track] = []
    if detect_objects:
        try:
            detector = Detector.shared()
            run = detector.detect_detailed if detail else detector.detect
            per_frame = [one_per_object(run(f.image, t, min_score=min_score)) for t, f in zip(times, decoded)]
            per_frame, tracks = track(per_frame)
            for facts, dets, frame in zip(frames, per_frame, decoded):
                facts.objects = [SeenObject(**d.model_dump(), colours=object_colours(frame.image, d.box)) for d in dets]
            measured.append("objects")
        except ToolFailure as exc:
            missing.append(f"objects: {exc}")

    every = sorted(frames + changed, key=lambda f: f.t)
    seen: dict[str, TextLine] = {}
    for facts in every:
        for line in facts.text:
            seen.setdefault(line.text, line)
    return SpanFacts(
        span=TimeSpan(start=round(start, 3), end=round(end, 3)),
        times=[round(t, 3) for t in times],
        frame_size=(info.width, info.height),
        frames=every,
        colours=merge_shares(frames),
        brightness=round(float(np.mean([f.brightness for f in frames])), 1),
        contrast=round(float(np.mean([f.contrast for f in frames])), 1),
        motion=moves,
        movers=movers,
        text=list(seen.values()),
        objects=count_objects(frames, tracks),
        shapes=count_shapes(every),
        tracks=tracks,
        measured=measured,
        missing=missing,
    )


def _read_all_text(frames: list[FrameFacts], decoded: list, moves: list[Motion]) -> None:
    """OCR each frame, reusing the last frame's lines where the pixels barely changed."""
    last: list[TextLine] | None = None
    for i, (facts, frame) in enumerate(zip(frames, decoded)):
        if last is not None and moves[i - 1].changed_share <= OCR_REUSE_CHANGED_SHARE:
            facts.text = [line.model_copy(update={"t": facts.t}) for line in last]
        else:
            facts.text = read_text(frame.image, facts.t)
        last = facts.text


def _shapes(image: np.ndarray, facts: FrameFacts) -> list[SeenShape]:
    """The shapes drawn on a frame (away from its text), each with the colours inside it."""
    shapes = find_shapes(image, facts.t, [line.box for line in facts.text])
    return [SeenShape(**shape.model_dump(), colours=region_colours(image, _inner(shape.box))) for shape in shapes]


def _inner(box: tuple[float, float, float, float], keep: float = 0.5) -> tuple[float, float, float, float]:
    """The middle `keep` of a box (inside a circle or an outlined shape's fill)."""
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) * (1 - keep) / 2, (y1 - y0) * (1 - keep) / 2
    return (x0 + mx, y0 + my, x1 - mx, y1 - my)


def _read_where_changed(video_path: str | Path, start: float, end: float, sampled: list[float], budget: int,
                        store: FrameStore | None, known: Sequence[float] | None = None) -> list[FrameFacts]:
    """Frames between the samples where the picture changed, with their pixels, text and shapes.

    Their colours and brightness are per frame only: the span's colour shares,
    brightness and motion stay those of the evenly sampled frames, so a burst of
    changes does not outweigh the rest of the span.
    """
    when = text_read_times(video_path, start, end, sampled, budget=budget, store=store, known=known)
    out = []
    for t, frame in zip(when, read_frames_at(video_path, when, store=store)):
        facts = FrameFacts(**frame_pixels(frame.image, t).model_dump(), trigger="change")
        facts.text = read_text(frame.image, t)
        facts.shapes = _shapes(frame.image, facts)
        out.append(facts)
    return out


def count_shapes(frames: list[FrameFacts]) -> dict[str, int]:
    """Per shape label, the most seen in one frame (a still drawing shows all of its shapes at once)."""
    most: dict[str, int] = {}
    for f in frames:
        for label in {s.label for s in f.shapes}:
            most[label] = max(most.get(label, 0), sum(s.label == label for s in f.shapes))
    return dict(sorted(most.items()))


def _mean_colours(objects: list[SeenObject], min_share: float = 0.1) -> list[ColourShare]:
    """The colours of several detections of one kind, each detection weighing the same."""
    total: dict[str, float] = {}
    for o in objects:
        for c in o.colours:
            total[c.name] = total.get(c.name, 0.0) + c.share / len(objects)
    return [ColourShare(name=n, share=round(v, 3)) for n, v in sorted(total.items(), key=lambda kv: -kv[1]) if v >= min_share]


def count_objects(frames: list[FrameFacts], tracks: list[Track]) -> list[ObjectCount]:
    """Per label: the most in one frame (and when), distinct tracks, frames seen; most frequent first."""
    out = []
    for label in sorted({d.label for f in frames for d in f.objects}):
        counts = [(sum(d.label == label for d in f.objects), f.t) for f in frames]
        most, at = max(counts, key=lambda c: (c[0], -c[1]))
        present = [t for n, t in counts if n]
        seen = [d for f in frames for d in f.objects if d.label == label]
        out.append(ObjectCount(label=label, max_in_frame=most, at=at, colours=_mean_colours(seen),
                               tracks=sum(t.label == label for t in tracks),
                               frames=len(present), first=present[0], last=present[-1]))
    return sorted(out, key=lambda o: (-o.frames, -o.max_in_frame, o.label))
