"""Qwen-VL frame sampling: which frames, at what size, and a cache of the result.

The model sees a video as frames sampled at a target fps and resized to a
pixel budget. Our numbers must be the ones ``qwen-vl-utils`` (0.0.14) computes,
or the token count, the positions and the cache keys drift from a real Qwen-VL
/ InternVideo3 prompt. So the planning here is pure arithmetic over
`VideoInfo`, checked against qwen-vl-utils over a table of cases
(tests/model/test_video_sampling.py):

* frames: the span becomes a frame range ``ceil(start*fps_v) .. floor(end*fps_v)``,
  ``n = clamp(frames/fps_v * fps, min_frames, max_frames)`` floored to the
  temporal patch (2), indices ``linspace(first, last, n).round()``;
* size: each side rounded to the patch grid (``image_patch_size * 2``: 28 for
  Qwen2.5-VL, 32 for Qwen3-VL's 16-pixel patches), scaled into
  ``[min_pixels, max_pixels]``, where max_pixels is also capped by the
  per-frame share of ``total_pixels`` — as ``fetch_video`` does.

Where qwen-vl-utils raises (a span shorter than two frames), we return the one
frame twice, as its own list-of-frames path pads to the temporal patch.
Decoding seeks (`mcr.model.media.video.read_frames_at`); results sit in a bounded
LRU (`FrameCache`) keyed by file identity, span, fps and size.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mcr.context import TimeSpan, VideoRef
from mcr.model.media.video import VideoInfo, check_span, probe, read_frames_at, resize

# The constants of qwen_vl_utils.vision_process (0.0.14).
FRAME_FACTOR = 2  # temporal patch
SPATIAL_MERGE_SIZE = 2
VIDEO_MIN_TOKEN_NUM = 128
VIDEO_MAX_TOKEN_NUM = 768
FPS_MIN_FRAMES = 4
FPS_MAX_FRAMES = 768
MAX_RATIO = 200
MODEL_SEQ_LEN = 128_000


class SamplingError(ValueError):
    """Settings that cannot describe any sampling (e.g. an extreme aspect ratio)."""


class SamplingSpec(BaseModel):
    """How to sample: the Qwen-VL video settings. Defaults as qwen-vl-utils' for patch 14."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fps: float = Field(default=2.0, gt=0)
    min_pixels: int | None = Field(default=None, gt=0)
    max_pixels: int | None = Field(default=None, gt=0)
    total_pixels: float | None = Field(default=None, gt=0)
    min_frames: int = Field(default=FPS_MIN_FRAMES, ge=1)
    max_frames: int = Field(default=FPS_MAX_FRAMES, ge=1)
    image_patch_size: int = Field(default=14, description="14 for Qwen2.5-VL, 16 for Qwen3-VL")

    @classmethod
    def from_ref(cls, ref: VideoRef, image_patch_size: int = 14) -> SamplingSpec:
        cap = {"max_frames": ref.max_frames} if ref.max_frames is not None else {}
        return cls(fps=ref.fps, min_pixels=ref.min_pixels, max_pixels=ref.max_pixels, image_patch_size=image_patch_size,
                   **cap)

    @property
    def factor(self) -> int:
        return self.image_patch_size * SPATIAL_MERGE_SIZE


class SamplingPlan(BaseModel):
    """Which frames to decode and the size to give them."""

    model_config = ConfigDict(frozen=True)

    start: float
    end: float
    frame_indices: tuple[int, ...]
    timestamps: tuple[float, ...]  # seconds, frame_indices / source fps
    height: int
    width: int
    sample_fps: float
    source_fps: float

    @property
    def nframes(self) -> int:
        return len(self.frame_indices)


def smart_resize(height: int, width: int, factor: int, min_pixels: float, max_pixels: float) -> tuple[int, int]:
    """Sides divisible by `factor`, area within [min_pixels, max_pixels], aspect kept."""
    if max_pixels < min_pixels:
        raise SamplingError(f"max_pixels ({max_pixels}) is below min_pixels ({min_pixels}); raise max_pixels")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise SamplingError(f"aspect ratio {max(height, width) / min(height, width):.0f} exceeds {MAX_RATIO}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def smart_nframes(total_frames: int, video_fps: float, spec: SamplingSpec) -> int:
    """How many frames qwen-vl-utils samples from `total_frames` at `spec.fps`.

    Returns FRAME_FACTOR for spans too short to give it (qwen-vl-utils raises).
    """
    min_frames = math.ceil(spec.min_frames / FRAME_FACTOR) * FRAME_FACTOR
    max_frames = math.floor(min(spec.max_frames, total_frames) / FRAME_FACTOR) * FRAME_FACTOR
    n = total_frames / video_fps * spec.fps
    n = min(min(max(n, min_frames), max_frames), total_frames)
    return max(FRAME_FACTOR, math.floor(n / FRAME_FACTOR) * FRAME_FACTOR)


def frame_range(info: VideoInfo, span: TimeSpan | None) -> tuple[int, int]:
    """First and last frame index of `span` (qwen-vl-utils' calculate_video_frame_range)."""
    total = info.total_frames
    if span is None:
        return 0, total - 1
    max_duration = total / info.fps
    first = math.ceil(max(0.0, min(span.start, max_duration)) * info.fps)
    last = min(math.floor(max(0.0, min(span.end, max_duration)) * info.fps), total - 1)
    return min(first, total - 1), max(last, min(first, total - 1))


def plan_sampling(info: VideoInfo, spec: SamplingSpec, span: TimeSpan | None = None) -> SamplingPlan:
    """The frames and size qwen-vl-utils would give this video (span) under `spec`.

    Raises:
        SpanOutsideVideo: the span is not inside the video.
        SamplingError: the pixel settings are contradictory.
    """
    if span is not None:
        check_span(info, span.start, span.end)
    first, last = frame_range(info, span)
    count = last - first + 1
    n = smart_nframes(count, info.fps, spec)
    # float32 like torch.linspace, then round half to even like Tensor.round().
    indices = np.linspace(first, last, n, dtype=np.float32).round().astype(int)  # (n,)
    sample_fps = n / max(count, 1e-6) * info.fps

    factor = spec.factor
    min_pixels = spec.min_pixels if spec.min_pixels is not None else VIDEO_MIN_TOKEN_NUM * factor * factor
    total_pixels = spec.total_pixels if spec.total_pixels is not None else MODEL_SEQ_LEN * factor * factor * 0.9
    max_pixels = max(
        min(VIDEO_MAX_TOKEN_NUM * factor * factor, total_pixels / n * FRAME_FACTOR), int(min_pixels * 1.05)
    )
    if spec.max_pixels is not None:
        max_pixels = min(spec.max_pixels, max_pixels)
    height, width = smart_resize(info.height, info.width, factor, min_pixels, max_pixels)
    return SamplingPlan(
        start=first / info.fps,
        end=(last + 1) / info.fps,
        frame_indices=tuple(int(i) for i in indices),
        timestamps=tuple(float(i) / info.fps for i in indices),
        height=height,
        width=width,
        sample_fps=sample_fps,
        source_fps=info.fps,
    )


# --------------------------------------------------------------------------- #
# Decoding a plan, with a bounded cache
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class SampledClip:
    """Frames of a plan, decoded and resized. Read-only arrays."""

    plan: SamplingPlan
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, T = plan.nframes
    times: tuple[float, ...]  # presentation time of each decoded frame

    @property
    def nbytes(self) -> int:
        return int(self.frames.nbytes)


class FrameCache:
    """LRU of decoded clips, bounded in bytes. Keyed by file identity + plan.

    File identity is (resolved path, size, mtime), so an edited file misses.
    """

    def __init__(self, max_bytes: int = 512 * 2**20):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, SampledClip] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = 0

    @staticmethod
    def key(path: str | Path, plan: SamplingPlan, resized: bool) -> tuple:
        stat = os.stat(path)
        span = (round(plan.start, 6), round(plan.end, 6))
        size = (plan.height, plan.width) if resized else None
        return (
            str(Path(path).resolve()),
            stat.st_size,
            stat.st_mtime_ns,
            span,
            round(plan.sample_fps, 6),
            plan.frame_indices,
            size,
        )

    def get(self, key: tuple) -> SampledClip | None:
        clip = self._items.get(key)
        if clip is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return clip

    def put(self, key: tuple, clip: SampledClip) -> None:
        if clip.nbytes > self.max_bytes:
            return  # bigger than the whole cache: keeping it would evict everything
        if key in self._items:
            self._bytes -= self._items.pop(key).nbytes
        self._items[key] = clip
        self._bytes += clip.nbytes
        while self._bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes


def sample_video(
    path: str | Path,
    spec: SamplingSpec | None = None,
    span: TimeSpan | None = None,
    *,
    resized: bool = True,
    cache: FrameCache | None = None,
    info: VideoInfo | None = None,
) -> SampledClip:
    """Decode the frames qwen-vl-utils would feed the model for `span` of `path`.

    Args:
        spec: sampling settings (default: fps 2 and qwen-vl-utils' pixel defaults).
        span: a part of the video; None for all of it.
        resized: resize to the plan's size (bicubic); False keeps source pixels.
        cache: an LRU to reuse decoded clips across calls.
        info: a `probe` result, to skip probing again.

    Raises:
        VideoNotFound, VideoOpenFailure, SpanOutsideVideo, SamplingError.
    """
    spec = spec or SamplingSpec()
    info = info or probe(path)
    plan = plan_sampling(info, spec, span)
    key = FrameCache.key(path, plan, resized) if cache is not None else None
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit
    decoded = read_frames_at(path, plan.timestamps)
    images = [resize(f.image, plan.height, plan.width) if resized else f.image for f in decoded]
    frames = np.stack(images)  # (T, H, W, 3)
    frames.setflags(write=False)
    clip = SampledClip(plan=plan, frames=frames, times=tuple(f.time for f in decoded))
    if cache is not None:
        cache.put(key, clip)
    return clip
