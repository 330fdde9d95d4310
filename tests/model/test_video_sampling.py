"""Our sampling plans are the numbers qwen-vl-utils 0.0.14 computes.

Two oracles, both qwen-vl-utils' own code:
* its frame arithmetic (`calculate_video_frame_range`, `smart_nframes`,
  `torch.linspace(...).round()`) over a table of durations, fps and spans;
* its whole `fetch_video` (pixel budget, `total_pixels` cap, resize) on real
  files. qwen-vl-utils reads files with decord, which is not installable here,
  so `_PyAVDecord` gives its decord reader the same three calls over PyAV.
"""

from __future__ import annotations

import math
import sys
import types

import av
import numpy as np
import pytest

from mcr.context import TimeSpan, VideoRef
from mcr.model.media.sampling import (
    FrameCache,
    SamplingError,
    SamplingSpec,
    plan_sampling,
    sample_video,
    smart_resize,
)
from mcr.model.media.video import SpanOutsideVideo, VideoInfo, probe

vp = pytest.importorskip("qwen_vl_utils.vision_process", reason="qwen-vl-utils is the oracle for these tests")
torch = pytest.importorskip("torch")


def _info(total: int, fps: float, width: int = 640, height: int = 360) -> VideoInfo:
    return VideoInfo(path="x.mp4", duration=total / fps, fps=fps, width=width, height=height, frame_count=total)


# (total_frames, video_fps, target_fps, span or None, min_frames, max_frames)
FRAME_TABLE = [
    (576, 24.0, 2.0, None, 4, 768),
    (576, 24.0, 1.0, (6.0, 12.0), 4, 768),
    (576, 24.0, 2.0, (0.3, 0.9), 4, 768),  # a short span: min_frames applies
    (576, 24.0, 0.5, (17.9, 24.0), 4, 768),
    (132, 25.0, 2.0, None, 4, 768),
    (120, 29.97002997002997, 2.0, (1.0, 3.5), 4, 768),
    (250, 25.0, 4.0, (2.2, 7.9), 4, 768),
    (3, 30.0, 2.0, None, 4, 768),  # fewer frames than min_frames
    (90_000, 25.0, 2.0, None, 4, 768),  # one hour: max_frames caps it
    (90_000, 25.0, 1.0, (1800.0, 2400.0), 4, 768),
    (180_000, 50.0, 0.2, None, 4, 64),
    (2400, 59.94, 8.0, (10.0, 20.0), 8, 32),
    (1000, 10.0, 2.0, (99.0, 100.0), 4, 768),
    (1000, 10.0, 2.0, (3.33, 7.77), 6, 768),
]


@pytest.mark.parametrize("total,vfps,fps,span,min_f,max_f", FRAME_TABLE)
def test_frame_indices_match_qwen_vl_utils(total, vfps, fps, span, min_f, max_f):
    ele = {"fps": fps, "min_frames": min_f, "max_frames": max_f}
    if span:
        ele.update(video_start=span[0], video_end=span[1])
    first, last, count = vp.calculate_video_frame_range(ele, total, vfps)
    n = vp.smart_nframes(ele, total_frames=count, video_fps=vfps)
    expected = torch.linspace(first, last, n).round().long().tolist()

    spec = SamplingSpec(fps=fps, min_frames=min_f, max_frames=max_f)
    plan = plan_sampling(_info(total, vfps), spec, TimeSpan(start=span[0], end=span[1]) if span else None)
    assert list(plan.frame_indices) == expected
    assert plan.nframes % 2 == 0
    assert plan.sample_fps == pytest.approx(n / count * vfps)
    assert plan.timestamps[0] == pytest.approx(expected[0] / vfps)


# (height, width, min_pixels, max_pixels, image_patch_size)
SIZE_TABLE = [
    (360, 640, None, None, 14),
    (360, 640, None, None, 16),
    (360, 640, 64 * 28 * 28, 256 * 28 * 28, 14),  # VideoRef's defaults
    (1080, 1920, None, None, 14),
    (1080, 1920, 128 * 32 * 32, 256 * 32 * 32, 16),
    (720, 1280, 4 * 28 * 28, 16 * 28 * 28, 14),
    (144, 176, None, None, 14),  # small: min_pixels scales it up
    (23, 37, None, None, 14),  # odd sizes
    (1920, 1080, None, 300_000, 16),  # portrait
    (100, 3000, None, None, 14),  # very wide
]


@pytest.mark.parametrize("h,w,min_p,max_p,patch", SIZE_TABLE)
def test_smart_resize_matches_qwen_vl_utils(h, w, min_p, max_p, patch):
    factor = patch * 2
    min_p = min_p or vp.VIDEO_MIN_TOKEN_NUM * factor * factor
    max_p = max_p or vp.VIDEO_MAX_TOKEN_NUM * factor * factor
    assert smart_resize(h, w, factor, min_p, max_p) == vp.smart_resize(h, w, factor, min_p, max_p)


class _PyAVDecord:
    """decord.VideoReader's three calls qwen-vl-utils uses, over PyAV (real decoding)."""

    def __init__(self, path: str):
        self.path = path
        with av.open(path) as c:
            stream = c.streams.video[0]
            self.count, self.fps = stream.frames, float(stream.average_rate)

    def __len__(self) -> int:
        return self.count

    def get_avg_fps(self) -> float:
        return self.fps

    def get_batch(self, indices):
        wanted, out = set(indices), {}
        with av.open(self.path) as c:
            for i, frame in enumerate(c.decode(video=0)):
                if i in wanted:
                    out[i] = frame.to_ndarray(format="rgb24")
                if i >= max(wanted):
                    break
        return types.SimpleNamespace(asnumpy=lambda: np.stack([out[i] for i in indices]))


@pytest.fixture
def qwen_fetch(monkeypatch):
    """qwen-vl-utils' fetch_video, reading files through `_PyAVDecord`."""
    monkeypatch.setitem(sys.modules, "decord", types.SimpleNamespace(VideoReader=_PyAVDecord))
    monkeypatch.setattr(vp, "FORCE_QWENVL_VIDEO_READER", "decord")

    def fetch(ele: dict, patch: int = 14):
        video, meta = vp.fetch_video(ele, image_patch_size=patch, return_video_metadata=True)
        return video, list(meta["frames_indices"])

    return fetch


# (n_frames, fps, (w, h), sampling kwargs, span, patch)
FETCH_TABLE = [
    (40, 10, (640, 360), {"fps": 2.0}, None, 14),
    (40, 10, (640, 360), {"fps": 4.0, "min_pixels": 64 * 28 * 28, "max_pixels": 256 * 28 * 28}, (0.5, 3.2), 14),
    (30, 10, (1280, 720), {"fps": 2.0}, None, 16),
    (30, 10, (1280, 720), {"fps": 10.0, "total_pixels": 20 * 32 * 32 * 8}, None, 16),  # total_pixels caps frames
    (12, 6, (176, 144), {"fps": 2.0}, None, 14),
    (24, 24, (360, 640), {"fps": 8.0, "max_pixels": 200_000}, (0.2, 0.8), 14),
]


@pytest.mark.parametrize("n_frames,fps,size,kw,span,patch", FETCH_TABLE)
def test_plan_matches_qwen_fetch_video(make_video, qwen_fetch, n_frames, fps, size, kw, span, patch):
    path = make_video(n_frames=n_frames, fps=fps, size=size)
    ele = {"video": str(path), **kw}
    if span:
        ele.update(video_start=span[0], video_end=span[1])
    video, indices = qwen_fetch(ele, patch)  # (T, C, H, W)
    spec = SamplingSpec(image_patch_size=patch, **kw)
    plan = plan_sampling(probe(path), spec, TimeSpan(start=span[0], end=span[1]) if span else None)
    assert list(plan.frame_indices) == indices
    assert (plan.nframes, plan.height, plan.width) == (video.shape[0], video.shape[2], video.shape[3])


def test_sample_video_matches_qwen_pixels_on_the_sample(sample_mp4, qwen_fetch):
    ref = VideoRef(path=str(sample_mp4), fps=1.0)
    ele = {"video": str(sample_mp4), **ref.message_part(TimeSpan(start=5.0, end=13.0))}
    video, indices = qwen_fetch(ele)  # (T, C, H, W) float
    clip = sample_video(sample_mp4, SamplingSpec.from_ref(ref), TimeSpan(start=5.0, end=13.0))
    assert list(clip.plan.frame_indices) == indices
    assert clip.frames.shape == (video.shape[0], video.shape[2], video.shape[3], 3)  # (T, H, W, 3)
    ours = clip.frames.astype(np.float32).transpose(0, 3, 1, 2)  # (T, 3, H, W)
    diff = np.abs(ours - video.clamp(0, 255).numpy())
    assert diff.mean() < 3.0  # same frames; PIL vs torchvision bicubic differ by a few levels at edges


def test_sample_video_uses_the_cache(make_video):
    path = make_video(n_frames=48, fps=24)
    cache = FrameCache(max_bytes=10 * 2**20)
    a = sample_video(path, SamplingSpec(fps=4), cache=cache)
    b = sample_video(path, SamplingSpec(fps=4), cache=cache)
    assert a is b and (cache.hits, cache.misses) == (1, 1)
    c = sample_video(path, SamplingSpec(fps=4), TimeSpan(start=0.5, end=1.5), cache=cache)
    assert c is not a and len(cache) == 2
    assert not a.frames.flags.writeable  # shared arrays cannot be corrupted by a caller


def test_frame_cache_evicts_least_recently_used(make_video):
    path = make_video(n_frames=48, fps=24, size=(64, 48))
    spans = [TimeSpan(start=s, end=s + 0.5) for s in (0.0, 0.5, 1.0)]
    spec = SamplingSpec(fps=8, min_pixels=28 * 28, max_pixels=56 * 56)
    one_clip = sample_video(path, spec, spans[0]).nbytes
    cache = FrameCache(max_bytes=int(one_clip * 2.5))  # room for two clips
    clips = [sample_video(path, spec, s, cache=cache) for s in spans[:2]]
    sample_video(path, spec, spans[0], cache=cache)  # touch the first: the second is now oldest
    sample_video(path, spec, spans[2], cache=cache)
    assert cache.nbytes <= cache.max_bytes
    assert sample_video(path, spec, spans[0], cache=cache) is clips[0]
    assert sample_video(path, spec, spans[1], cache=cache) is not clips[1]


def test_edited_file_misses_the_cache(make_video):
    path = make_video(n_frames=24, fps=24)
    cache = FrameCache()
    first = sample_video(path, SamplingSpec(fps=4), cache=cache)
    make_video(n_frames=48, fps=24)  # same name, new content
    again = sample_video(path, SamplingSpec(fps=4), cache=cache)
    assert again is not first and again.plan.nframes != first.plan.nframes


def test_sampled_frames_are_the_planned_ones(make_video, which_frame):
    path = make_video(n_frames=48, fps=24)
    clip = sample_video(path, SamplingSpec(fps=6), resized=False)
    assert [which_frame(f) for f in clip.frames] == [i % 30 for i in clip.plan.frame_indices]
    assert clip.frames.shape[1:] == (48, 64, 3)


def test_a_span_shorter_than_two_frames_gives_two(make_video):
    """qwen-vl-utils raises here; we repeat the frame to fill the temporal patch."""
    path = make_video(n_frames=48, fps=24)
    clip = sample_video(path, SamplingSpec(fps=2), TimeSpan(start=1.0, end=1.01))
    assert clip.plan.frame_indices == (24, 24) and clip.frames.shape[0] == 2
    with pytest.raises(ValueError):
        vp.calculate_video_frame_range({"video_start": 1.0, "video_end": 1.01}, 48, 24.0)


def test_single_frame_video(make_video):
    clip = sample_video(make_video(n_frames=1, fps=25), SamplingSpec())
    assert clip.plan.frame_indices == (0, 0)


def test_errors_name_the_problem(make_video):
    path = make_video(n_frames=48, fps=24)
    with pytest.raises(SpanOutsideVideo, match="between 0 and 2.00s"):
        sample_video(path, SamplingSpec(), TimeSpan(start=1.0, end=9.0))
    with pytest.raises(SamplingError, match="raise max_pixels"):
        smart_resize(360, 640, 28, min_pixels=10_000, max_pixels=5_000)
    with pytest.raises(SamplingError, match="aspect ratio"):
        smart_resize(2, 1000, 28, 28 * 28, 10 * 28 * 28)


def test_qwen3_patch_grid_is_32():
    plan = plan_sampling(_info(576, 24.0), SamplingSpec(image_patch_size=16))
    assert plan.height % 32 == 0 and plan.width % 32 == 0
    assert math.isclose(plan.height / plan.width, 360 / 640, rel_tol=0.1)
