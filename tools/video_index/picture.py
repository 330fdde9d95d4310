"""The picture pass: one streaming decode → cuts, change points, and what is on screen there.

Why one pass: shots, on-screen text and objects all need frames, and an hour
of video must not be decoded twice. A short video is decoded whole, once (in
order, from a seek point); ``analysis_fps`` of its frames are scaled down to
``analysis_width`` and fed to PySceneDetect's detector (the same detector the
``segment`` tool runs) and to a change test. A long one (``scan``,
`scans_sparsely`) is decoded only at the frames the bitstream marks as
changes (`mcr.tools.video_index.bitstream`): the same detector and change test
then compare those looks pairwise. Memory holds one small frame, the previous
one, and the last captured one — flat in the video's length.

A **capture** is taken where the picture changed (``change_share`` of the
pixels differ from the last capture) and has settled (fewer than
``settle_share`` change frame to frame, or it has kept changing for
``_SETTLE_WAIT_S``): the first frame of every shot, a title that appears, a
slide that turns. Only captures are converted at full size and read by OCR
(`mcr.tools.ocr.read_text`) and YOLOv3-tiny (`mcr.tools.objects.Detector`, zoomed into tiles only where the
whole frame shows a weak candidate);
a static hour costs one OCR call, a slide deck one per slide.

Resumable: every ``chunk_s`` seconds of video the cuts and captures found so
far are committed together with the scanner's whole state (the detector's
window, the reference frames), pickled; a killed build reopens the file at
the last commit and continues exactly as if it had never stopped.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcr.model.media.video import VideoInfo, VideoOpenFailure, count_frames_decoded, open_container, upright
from mcr.tools.video_index.bitstream import Look, plan_looks, read_packets
from mcr.tools.video_index.records import BuildProgress, IndexSettings
from mcr.tools.video_index.sealed import UnsealedState, seal, unseal
from mcr.tools.video_index.store import IndexStore, IndexUnavailable, Stopwatch

_PIXEL_DELTA = 25  # grey levels a pixel must move to count as changed (compression noise stays below)
_SETTLE_WAIT_S = 2.0  # a picture that keeps moving this long after a change is captured anyway


@dataclass
class Capture:
    """A place where the picture changed and settled, and what was found there."""

    t: float
    hist: np.ndarray  # (16*8*8,) float32 HSV histogram of the small frame, normalised
    lines: list[dict[str, Any]]  # TextLine dumps
    objects: list[dict[str, Any]]  # Detection dumps


class Scanner:
    """The picture pass's state between frames: picklable, so a build resumes exactly."""

    def __init__(self, settings: IndexSettings, rate: float, sparse: bool = False):
        """`rate`: analysis frames a second. `sparse`: frames come only where the bitstream said the picture
        changed (`mcr.tools.video_index.bitstream`), numbered by their place in the video at `rate`."""
        from scenedetect import AdaptiveDetector, ContentDetector

        self.rate = rate
        self.sparse = sparse
        min_len = max(1, int(round(settings.min_shot_s * rate)))
        if sparse:  # the adaptive detector's rolling window assumes evenly spaced frames; content compares pairs
            self.detector = ContentDetector(threshold=settings.shot_threshold or 27.0, min_scene_len=min_len)
        elif settings.shot_detector == "adaptive":
            self.detector: Any = AdaptiveDetector(adaptive_threshold=settings.shot_threshold or 3.0,
                                                  min_scene_len=min_len)
        else:
            self.detector = ContentDetector(threshold=settings.shot_threshold or 27.0, min_scene_len=min_len)
        self.change_share = settings.change_share
        self.settle_share = settings.settle_share
        self.min_gap = settings.min_capture_gap_s  # grows while captures in a shot keep reading the same text
        self.frame_no = 0
        self.grid = -1
        self.recent: deque[tuple[int, float]] = deque(maxlen=256)  # analysed frame number -> time
        self.prev: np.ndarray | None = None
        self.ref: np.ndarray | None = None
        self.last_capture = -math.inf
        self.changed_at: float | None = None
        self.min_gap_s = settings.min_capture_gap_s
        self.max_gap_s = max(settings.max_capture_gap_s, settings.min_capture_gap_s)
        self.last_text: str | None = None

    def wants(self, t: float) -> bool:
        """Whether the frame at `t` is on the analysis grid (``rate`` frames a second)."""
        g = math.floor(t * self.rate + 1e-6)
        if g <= self.grid:
            return False
        self.grid = g
        return True

    def step(self, t: float, small: np.ndarray) -> tuple[list[float], bool]:
        """Feed one analysis frame (BGR, small); returns (cut times found, capture this frame?)."""
        import cv2
        from scenedetect import FrameTimecode

        if self.sparse:  # a look's number is its place in the video, so min_scene_len keeps its meaning
            self.frame_no = max(self.frame_no, int(round(t * self.rate)))
        self.recent.append((self.frame_no, t))
        found = self.detector.process_frame(FrameTimecode(self.frame_no, fps=self.rate), small)
        self.frame_no += 1
        times = dict(self.recent)
        cuts = [times[c.frame_num] for c in found if c.frame_num in times and times[c.frame_num] > 0]
        if cuts:  # a new shot: its first settled frame is captured whatever the last shot's pace was
            self.min_gap = self.min_gap_s
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        capture = False
        if self.ref is None:
            capture = True
        else:
            moved = _changed_share(grey, self.prev)
            since_capture = _changed_share(grey, self.ref)
            if since_capture >= self.change_share:
                self.changed_at = t if self.changed_at is None else self.changed_at
                # sparse looks sit where the encoder saw a change: the next look may be a scene away
                settled = self.sparse or moved <= self.settle_share or t - self.changed_at >= _SETTLE_WAIT_S
                capture = settled and t - self.last_capture >= self.min_gap
            else:
                self.changed_at = None
        if capture:
            self.ref, self.last_capture, self.changed_at = grey, t, None
        self.prev = grey
        return cuts, capture


    def read(self, text: str) -> None:
        """What the capture just taken reads: the same text again doubles the wait before the next capture.

        A shot that moves all the time (a crowd, a pan) would otherwise be
        captured every ``min_capture_gap_s``; its text rarely changes, so the
        captures thin out (1, 2, 4 … up to ``max_capture_gap_s`` seconds) until a
        cut or a new text resets the pace. Measured in `benchmarks/RESULTS.md`.
        """
        if text == self.last_text:
            self.min_gap = min(self.min_gap * 2 if self.min_gap > 0 else 1.0, self.max_gap_s)
        else:
            self.min_gap = self.min_gap_s
        self.last_text = text


def _changed_share(a: np.ndarray, b: np.ndarray | None) -> float:
    if b is None:
        return 1.0
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16)) > _PIXEL_DELTA))


def colour_histogram(small_bgr: np.ndarray) -> np.ndarray:
    """The HSV histogram `summarize` compares keyframes by (16x8x8 bins, normalised): (1024,) float32."""
    import cv2

    hsv = cv2.cvtColor(small_bgr, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [16, 8, 8], [0, 180, 0, 256, 0, 256])
    return cv2.normalize(hist, hist).flatten().astype(np.float32)


def analyse_capture(image: np.ndarray, small: np.ndarray, t: float, settings: IndexSettings,
                    counters: dict[str, float]) -> Capture:
    """OCR and objects of one full-size upright RGB frame (each skipped when off or not installed)."""
    from mcr.tools.base import ToolFailure

    lines: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    if settings.ocr:
        from mcr.tools.ocr import read_text

        try:
            began = time.perf_counter()
            lines = [line.model_dump(mode="json") for line in read_text(image, t=t, min_score=settings.ocr_min_score)]
            counters["ocr_frames"] = counters.get("ocr_frames", 0) + 1
            counters["ocr_s"] = counters.get("ocr_s", 0) + time.perf_counter() - began
        except ToolFailure:  # rapidocr not installed: the index holds no screen text (its key says OCR was on)
            pass
    if settings.objects:
        from mcr.tools.objects import Detector

        try:
            began = time.perf_counter()
            detector = Detector.shared()
            if settings.object_weak_hint is None:
                found = detector.detect(image, t, min_score=settings.object_min_score)
            else:
                found = detector.detect_detailed(image, t, min_score=settings.object_min_score,
                                                 weak_hint=settings.object_weak_hint)
            objects = [d.model_dump(mode="json") for d in found]
            counters["detector_frames"] = counters.get("detector_frames", 0) + 1
            counters["detector_s"] = counters.get("detector_s", 0) + time.perf_counter() - began
        except ToolFailure:
            pass
    return Capture(t=round(t, 3), hist=colour_histogram(small), lines=lines, objects=objects)


def scans_sparsely(settings: IndexSettings, info: VideoInfo) -> bool:
    """Whether the picture pass decodes only where the bitstream says the picture changed.

    ``auto``: from ``bitstream_from_s`` of video on. Below it a full decode
    costs seconds and sees every frame (a change the encoder hid inside a
    group of pictures cannot be missed); above it the full decode is the one
    cost that grows with every frame (measured: `benchmarks/RESULTS.md`,
    "Fifth session"). A stream of unknown frame rate is always decoded whole.
    """
    if info.fps <= 0 or settings.scan == "every_frame":
        return False
    return settings.scan == "bitstream" or info.duration >= settings.bitstream_from_s


def run_picture(store: IndexStore, video: Path, info: VideoInfo, settings: IndexSettings,
                report: Callable[[BuildProgress], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> bool:
    """Run (or continue) the picture pass; True when it has reached the end of the video."""
    status = store.stages()["picture"]
    if status.done:
        return True
    state = store.stage_state("picture")
    start = status.until_s
    width = settings.analysis_width
    height = max(2, int(round(width * info.height / max(1, info.width) / 2)) * 2)
    cuts: list[float] = []
    captures: list[Capture] = []
    counters: dict[str, float] = {}
    clock, begun = Stopwatch(), time.monotonic()
    chunk_end = start + settings.chunk_s
    scanner: Scanner | None = None

    def commit(until: float, done: bool = False) -> None:
        with store.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO cuts(t) VALUES (?)", [(round(c, 3),) for c in cuts])
            db.executemany("INSERT OR REPLACE INTO captures(t, hist, lines, objects) VALUES (?, ?, ?, ?)",
                           [(c.t, c.hist.tobytes(), _json(c.lines), _json(c.objects)) for c in captures])
            store.add_counters(db, counters)
            store.set_stage(db, "picture", until_s=round(until, 3), seconds=clock.lap(), done=done,
                            state=None if done else seal(scanner))
        cuts.clear(), captures.clear(), counters.clear()
        if report is not None:
            elapsed = time.monotonic() - begun
            covered = until - start
            eta = elapsed / covered * (info.duration - until) if covered > 0 and not done else (0.0 if done else None)
            report(BuildProgress(stage="picture", done_s=min(until, info.duration), total_s=info.duration,
                                 elapsed_s=elapsed, eta_s=eta))

    with open_container(video) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base = float(stream.time_base)
        start_s = (stream.start_time or 0) * base
        looks: list[Look] | None = None
        if scans_sparsely(settings, info):
            looks = plan_looks(read_packets(container, stream), base, max_gap_s=settings.look_gap_s) or None
            container.seek(stream.start_time or 0, stream=stream, backward=True, any_frame=False)
        rate = info.fps if looks is not None else (
            min(settings.analysis_fps, info.fps) if info.fps > 0 else settings.analysis_fps)
        try:
            scanner = unseal(state) if state else Scanner(settings, rate, sparse=looks is not None)
        except UnsealedState as e:  # not this user's own build: never unpickled
            raise IndexUnavailable(store.path, f"{e}; it was not written by this user's build") from None
        if looks is not None:
            frames = _frames_at_looks(container, stream, looks, start, start_s)
        else:
            frames = _every_frame(container, stream, start, start_s)
        try:
            for t, frame, decodes in frames:
                while t >= chunk_end - 1e-9:  # frames before chunk_end are all in: commit them
                    commit(chunk_end)
                    chunk_end += settings.chunk_s
                    if should_stop is not None and should_stop():
                        return False
                counters["frames_decoded"] = counters.get("frames_decoded", 0) + decodes
                if looks is not None:  # every decode counts (the walk to a look included)
                    count_frames_decoded(decodes)
                if not scanner.wants(t):
                    continue
                small = frame.to_ndarray(format="bgr24", width=width, height=height)  # (h, w, 3)
                if looks is None:
                    count_frames_decoded(1)
                counters["frames_analysed"] = counters.get("frames_analysed", 0) + 1
                found, capture = scanner.step(t, small)
                cuts.extend(found)
                if capture:
                    counters["captures"] = counters.get("captures", 0) + 1
                    capture_facts = analyse_capture(upright(frame), small, t, settings, counters)
                    captures.append(capture_facts)
                    scanner.read(" ".join(str(line["text"]).lower() for line in capture_facts.lines))
        except VideoOpenFailure:
            raise
        except Exception as exc:  # FFmpeg errors mid-stream: the file is damaged from here on
            raise VideoOpenFailure(video, f"decoding failed near {chunk_end - settings.chunk_s:.1f}s: "
                                          f"{type(exc).__name__}: {exc}") from None
    commit(info.duration, done=True)
    return True


def _every_frame(container, stream, start: float, start_s: float) -> Iterator[tuple[float, Any, int]]:
    """(t, frame, 1) for every frame from `start` on (one seek, then in order)."""
    if start > 0:
        base = float(stream.time_base)
        container.seek((stream.start_time or 0) + int(start / base), stream=stream, backward=True, any_frame=False)
    for frame in container.decode(stream):
        t = float(frame.time or 0.0) - start_s
        if t < start - 1e-4:
            continue  # before the resume point: already analysed by an earlier run
        yield t, frame, 1


def _frames_at_looks(container, stream, looks: list[Look], start: float,
                     start_s: float) -> Iterator[tuple[float, Any, int]]:
    """(t, frame, decodes) at each planned look from `start` on, decoding from the look's keyframe.

    Consecutive looks in one group of pictures share the walk; a look in a
    later group seeks to its keyframe, skipping everything between.
    ``decodes`` counts every frame the decoder produced to reach this one.
    """
    base = float(stream.time_base)
    position: int | None = None  # pts of the last frame decoded
    decoded: Iterator | None = None
    for look in looks:
        if look.pts * base - start_s < start - 1e-4 or (position is not None and look.pts <= position):
            continue  # before the resume point, or already passed
        if decoded is None or position is None or look.key_pts > position:
            container.seek(look.key_pts, stream=stream, backward=True, any_frame=False)
            decoded = container.decode(stream)
        frame, decodes = None, 0
        for frame in decoded:
            decodes += 1
            if frame.pts is None:
                continue
            position = int(frame.pts)
            if position >= look.pts:
                break
        else:
            return  # the stream ended before this look
        if frame is not None:
            yield float(frame.pts) * base - start_s, frame, decodes


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))
