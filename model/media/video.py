"""Video probing and frame decoding (PyAV). Everything that reads a video starts here.

`probe()` opens a container once and reports what the rest of the system needs
to plan: duration, frame rate, size, rotation, audio. `read_frames_at()` decodes
the frames shown at given times, seeking to each region instead of decoding
from the start, so a 10 s span of a two-hour film costs what a 10 s clip does.
Frames come back upright (display rotation applied) as RGB arrays; only the
frames asked for are kept in memory.

Failures are typed and say what to do, instead of surfacing an FFmpeg error
from deep inside a tool. Frame planning with the Qwen-VL pixel budget lives in
`mcr.model.media.sampling`; this module only knows times and pixels.
"""

from __future__ import annotations

import errno
import itertools
import os
import sys
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

# Seek again (instead of decoding on) when the next wanted frame is this far
# ahead: beyond a typical GOP, a seek to the keyframe before it is cheaper.
SEEK_GAP_S = 4.0
PROGRESS_MIN_FRAMES = 64  # fewer frames than this decode too fast to need a progress bar
# Frames larger than this (4K UHD) are scaled down as they are decoded: an 8K frame is 100 MB
# of RGB, and a look at a few dozen of them would exhaust memory. Sizes reported by `probe`
# are the decoded (scaled) ones, so pixel coordinates stay consistent with the frames.
MAX_FRAME_PIXELS = 3840 * 2160
# A stream that ends this long before a requested time (while the container claims more)
# is cut short: the file is truncated, and showing its last frame for that time would be wrong.
TRUNCATION_SLACK_S = 2.0


class VideoError(Exception):
    """Base class for problems with a user's video file."""


class VideoNotFound(VideoError, FileNotFoundError):
    def __init__(self, path: str | Path):
        super().__init__(
            f"video file not found: {path} — check the path (relative paths are resolved from the task file)"
        )


class VideoOpenFailure(VideoError):
    """The path exists but is not a readable video; ``fix`` says what to do (default: re-encode)."""

    def __init__(self, path: str | Path, why: str, fix: str | None = None):
        self.path, self.why = str(path), why
        fix = fix or ("is it a complete video file? "
                      "Try re-encoding it, e.g. `ffmpeg -i IN -c:v libx264 -c:a aac OUT.mp4`.")
        super().__init__(f"cannot read video {path}: {why} — {fix}")


class SpanOutsideVideo(VideoError, ValueError):
    """A requested time (span) is not inside the video."""

    def __init__(self, path: str | Path, start: float, end: float, duration: float):
        self.start, self.end, self.duration = start, end, duration
        super().__init__(
            f"span {start:.2f}s-{end:.2f}s is outside video {path} (duration {duration:.2f}s) — "
            f"ask for times between 0 and {duration:.2f}s"
        )


class VideoInfo(BaseModel):
    """What `probe` found. Times in seconds; size after rotation is applied.

    ``rotation`` is the counter-clockwise rotation (0/90/180/270) a player
    applies to show the frames upright; decoded frames here already have it.
    """

    model_config = ConfigDict(frozen=True)

    path: str
    duration: float
    fps: float
    width: int
    height: int
    rotation: int = 0
    has_audio: bool = False
    frame_count: int | None = None

    @property
    def total_frames(self) -> int:
        """Frame count from the container, else estimated from duration x fps."""
        return self.frame_count or max(1, int(round(self.duration * self.fps)))


def probe(path: str | Path) -> VideoInfo:
    """Open `path` and read its stream metadata (decodes one frame for the rotation).

    Raises:
        VideoNotFound: no such file.
        VideoOpenFailure: the file is not a readable video (corrupt, truncated,
            audio-only, empty).
    """
    path = Path(path)
    try:
        with open_container(path) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0.0)
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            else:
                duration = 0.0
            width, height = stream.codec_context.width, stream.codec_context.height
            # The display matrix is exposed per frame by PyAV >= 14; one decode
            # also proves the stream has a frame at all.
            first = next(container.decode(stream))
            rotation = _rotation(first)
            width, height = _decoded_size(width or first.width, height or first.height)
            if rotation in (90, 270):
                width, height = height, width
            container_format = container.format.name if container.format else "?"
            info = VideoInfo(
                path=str(path),
                duration=duration,
                fps=fps,
                width=width,
                height=height,
                rotation=rotation,
                has_audio=bool(container.streams.audio),
                frame_count=stream.frames or None,
            )
    except VideoError:
        raise
    except StopIteration:
        raise VideoOpenFailure(path, "its video stream has no frames") from None
    except Exception as exc:  # PyAV raises many types (InvalidDataError, OSError...)
        raise VideoOpenFailure(path, f"{type(exc).__name__}: {exc}") from None
    if info.duration <= 0 or info.fps <= 0:
        raise VideoOpenFailure(
            path, f"its duration or frame rate is unknown (container format {container_format!r}: "
            "a still image, or a stream without timing)", fix="give a video file (e.g. .mp4, .mkv, .webm).")
    return info


def _decoded_size(width: int, height: int) -> tuple[int, int]:
    """The size frames are decoded at: as stored, or scaled to fit MAX_FRAME_PIXELS (even sides)."""
    if width * height <= MAX_FRAME_PIXELS:
        return width, height
    scale = (MAX_FRAME_PIXELS / (width * height)) ** 0.5
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def _rotation(frame) -> int:
    """Counter-clockwise display rotation in degrees (0/90/180/270) of a frame."""
    try:
        value = float(getattr(frame, "rotation", 0) or 0)
    except (TypeError, ValueError):
        return 0
    return int(round(value / 90.0)) * 90 % 360


# --------------------------------------------------------------------------- #
# Decoding
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its presentation time and its upright RGB pixels."""

    time: float
    image: np.ndarray  # (H, W, 3) uint8 RGB, display rotation applied


@contextmanager
def open_container(path: str | Path, need: Literal["video", "audio", "any"] = "video") -> Iterator:
    """Open a media file with PyAV once, with the typed errors every reader shares.

    The one opener for video and audio readers: a missing file, an unreadable
    container and a missing stream fail the same way wherever they are read.

    Args:
        need: the stream the caller reads — ``video`` (raises VideoOpenFailure
            without one), ``audio`` (raises NoAudioStream) or ``any``.

    Raises:
        VideoNotFound, VideoOpenFailure, and (need="audio") `mcr.model.media.audio.NoAudioStream`.
    """
    import av

    path = Path(path)
    _check_file(path)
    try:
        container = av.open(str(path))
    except PermissionError:
        raise VideoOpenFailure(path, "permission denied", fix=f"make it readable for this user, e.g. `chmod u+r {path}`.") from None
    except Exception as exc:  # PyAV raises many types (InvalidDataError, OSError...)
        raise VideoOpenFailure(path, f"{type(exc).__name__}: {exc}") from None
    try:
        if need == "video" and not container.streams.video:
            if container.streams.audio:
                raise VideoOpenFailure(path, "it has no video stream, only audio",
                                       fix="give the video itself (this question needs its frames).")
            raise VideoOpenFailure(path, "it has no video stream")
        if need == "audio" and not container.streams.audio:
            from mcr.model.media.audio import NoAudioStream  # audio's error; audio imports this module

            raise NoAudioStream(path)
        yield container
    finally:
        container.close()


_open = open_container  # the video readers' name for it


def _check_file(path: Path) -> None:
    """Raise the typed error for a path that is no regular, non-empty file (missing, a folder, a link loop)."""
    try:
        stat = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise VideoOpenFailure(path, "it is a symbolic link loop",
                                   fix="point the path at the real file (`ls -l` shows where each link goes).") from None
        if exc.errno == errno.EACCES:
            raise VideoOpenFailure(path, "permission denied (a folder on its path cannot be searched)",
                                   fix="make its folders searchable for this user (chmod u+x).") from None
        if path.is_symlink():
            raise VideoOpenFailure(path, f"it is a symbolic link to {os.readlink(path)}, which does not exist",
                                   fix="point the link (or the path) at the real file.") from None
        raise VideoNotFound(path) from None
    if path.is_dir():
        raise VideoOpenFailure(path, "it is a directory, not a video file", fix="name one video file inside it.")
    if not path.is_file():
        raise VideoOpenFailure(path, "it is not a regular file (a device, pipe or socket)",
                               fix="save the video to a file first.")
    if stat.st_size == 0:
        raise VideoOpenFailure(path, "the file is empty (0 bytes)",
                               fix="it was not written completely; copy or download it again.")


_FRAMES_DECODED = [0]  # frames this process turned into pixels (a counter, read by `mcr eval`)


def frames_decoded() -> int:
    """How many frames this process has converted to pixels so far (every read here counts).

    `mcr eval` reads it before and after each task to report the frames a task
    cost; frames served from a cache are not decoded again and do not count.
    """
    return _FRAMES_DECODED[0]


def count_frames_decoded(n: int) -> None:
    """Count `n` frames converted to pixels outside `upright` (the video index's small analysis frames)."""
    _FRAMES_DECODED[0] += n


def upright(frame) -> np.ndarray:
    """A decoded PyAV frame as an (H, W, 3) uint8 RGB array, display rotation applied (counted as decoded)."""
    return _upright(frame)


def _upright(frame) -> np.ndarray:
    _FRAMES_DECODED[0] += 1
    width, height = _decoded_size(frame.width, frame.height)
    if (width, height) == (frame.width, frame.height):
        image = frame.to_ndarray(format="rgb24")  # (H, W, 3) as stored
    else:  # above MAX_FRAME_PIXELS: scaled while converting, so the full-size RGB array never exists
        image = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
    turns = _rotation(frame) // 90
    # np.rot90 turns counter-clockwise, the display matrix's direction.
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


class FrameStore:
    """A bounded LRU of decoded frames, keyed by file identity and requested time.

    Pass one to `read_frames_at` and asking again for frames already decoded
    decodes nothing: the tools that look at a span twice (facts, then a mask
    at one of its frames) or a second request for an overlapping span on the
    same time grid reuse the pixels. File identity is (resolved path, size,
    mtime), so an edited file misses. Frames are shared read-only arrays.
    """

    def __init__(self, max_bytes: int = 256 * 2**20):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, Frame] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = 0

    @staticmethod
    def identity(path: str | Path) -> tuple:
        stat = os.stat(path)
        return (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)

    def get(self, ident: tuple, t: float) -> Frame | None:
        frame = self._items.get((ident, round(t, 6)))
        if frame is None:
            self.misses += 1
            return None
        self._items.move_to_end((ident, round(t, 6)))
        self.hits += 1
        return frame

    def put(self, ident: tuple, t: float, frame: Frame) -> None:
        key = (ident, round(t, 6))
        if frame.image.nbytes > self.max_bytes:
            return
        if key in self._items:
            self._bytes -= self._items.pop(key).image.nbytes
        frame.image.setflags(write=False)
        self._items[key] = frame
        self._bytes += frame.image.nbytes
        while self._bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.image.nbytes

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes


def read_frames_at(path: str | Path, times: Sequence[float], store: FrameStore | None = None) -> list[Frame]:
    """The frames on screen at each of `times` (seconds), in the order given.

    "On screen at t" is the last frame whose presentation time is <= t (or the
    first frame, for t before it), which stays right for variable frame rate.
    Times are visited in sorted order: the decoder seeks to the keyframe before
    the first one, decodes forward, and seeks again across gaps over
    ``SEEK_GAP_S`` — so a span costs its own length (plus up to one GOP before
    it), not the video's, and memory holds only the frames returned.

    Args:
        store: a `FrameStore`; frames it holds are not decoded again, and the
            ones decoded here are added to it.

    Raises:
        VideoNotFound, VideoOpenFailure: as for `probe`.
    """
    if not times:
        return []
    found: dict[float, Frame] = {}
    ident = FrameStore.identity(path) if store is not None and Path(path).is_file() else None
    missing = []
    for t in sorted(set(float(t) for t in times)):
        hit = store.get(ident, t) if store is not None and ident is not None else None
        if hit is None:
            missing.append(t)
        else:
            found[t] = hit
    if missing:
        decoded = _decode_at(path, missing)
        found.update(decoded)
        if store is not None and ident is not None:
            for t, frame in decoded.items():
                store.put(ident, t, frame)
    return [found[float(t)] for t in times]


def _decode_at(path: str | Path, wanted: list[float]) -> dict[float, Frame]:
    """The frame on screen at each of the sorted times `wanted` (see `read_frames_at`).

    Times are seconds from the stream's first frame time (``start_time``, which
    MPEG-TS files offset), the same clock as `probe`'s duration.
    """
    from tqdm.auto import tqdm

    found: dict[float, Frame] = {}
    eps = 1e-4  # float slack, so t == pts exactly picks that frame
    quiet = len(wanted) < PROGRESS_MIN_FRAMES or not sys.stderr.isatty()
    with _open(path) as container, tqdm(total=len(wanted), desc="decoding frames", leave=False, disable=quiet) as bar:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base = float(stream.time_base)
        start_pts = stream.start_time or 0
        start_s = start_pts * base

        def when(frame) -> float | None:
            return None if frame.time is None else _from_start(float(frame.time), start_s)

        decoder: Iterator | None = None
        shown = None  # last decoded frame with time <= target (raw, not converted)
        shown_img: Frame | None = None
        pending = None  # decoded but after the current target
        try:
            for target in wanted:
                horizon = when(pending or shown) if (pending or shown) is not None else None
                if decoder is None or (horizon is not None and target - horizon > SEEK_GAP_S):
                    decoder, shown, shown_img, pending = _seek(container, stream, start_pts, target), None, None, None
                while True:
                    if pending is None:
                        pending = next(decoder, None)
                        if pending is None:
                            break  # end of stream: the last frame stays on screen
                    if pending.time is not None and when(pending) > target + eps:
                        break  # `pending` comes later; `shown` (if any) is on screen at target
                    shown, shown_img, pending = pending, None, None
                chosen = shown if shown is not None else pending
                if chosen is None:
                    raise VideoOpenFailure(path, f"no frame could be decoded near {target:.2f}s")
                if pending is None:  # the stream ended before `target`: truncated, if the container claims more
                    _check_not_cut_short(path, container, stream, when(chosen) or 0.0, target)
                if chosen is shown:
                    shown_img = shown_img or Frame(when(shown) or 0.0, _upright(shown))
                    found[target] = shown_img
                else:
                    found[target] = Frame(when(pending) or 0.0, _upright(pending))
                bar.update()
        except VideoError:
            raise
        except Exception as exc:
            raise VideoOpenFailure(path, f"decoding failed: {type(exc).__name__}: {exc}") from None
    return found


def _from_start(t: float, start_s: float) -> float:
    """A frame time counted from the stream's start (float noise rounded off; unchanged when it starts at 0)."""
    return round(t - start_s, 9) if start_s else t


def _seek(container, stream, start_pts: int, target: float) -> Iterator:
    """A decoder positioned at the keyframe before `target` (seconds from the stream start).

    Some containers cannot seek to a time at all (an MPEG-TS whose only keyframe
    is the first frame gives no frames after the seek); then decode from the start.
    """
    container.seek(start_pts + max(0, int(target / float(stream.time_base))), stream=stream, backward=True,
                   any_frame=False)
    decoder = container.decode(stream)
    first = next(decoder, None)
    if first is None:
        container.seek(0)
        decoder = container.decode(stream)
        first = next(decoder, None)
    return itertools.chain([first], decoder) if first is not None else iter(())


def _check_not_cut_short(path: str | Path, container, stream, last: float, target: float) -> None:
    """Raise when the stream's last frame (at `last`) ends well before `target` and before the claimed duration."""
    fps = float(stream.average_rate or stream.guessed_rate or 0.0)
    slack = max(TRUNCATION_SLACK_S, 4.0 / fps if fps > 0 else 0.0)
    if stream.duration is not None and stream.time_base is not None:
        claimed = float(stream.duration * stream.time_base)
    else:
        claimed = (container.duration or 0) / 1_000_000
    if target > last + slack and claimed > last + slack:
        raise VideoOpenFailure(
            path, f"its frames end at {last:.2f}s although it claims {claimed:.2f}s; the file is truncated "
            f"(asked for {target:.2f}s)", fix="copy or download it again, or re-encode what is left with "
            "`ffmpeg -i IN -c:v libx264 OUT.mp4` (its duration is then the real one).")


def frame_at(path: str | Path, t: float) -> Frame:
    """The frame on screen at time `t` (seconds). See `read_frames_at`."""
    return read_frames_at(path, [t])[0]


def iter_frames(path: str | Path, start: float = 0.0, end: float | None = None) -> Iterator[Frame]:
    """Every frame with start <= time < end, decoded lazily after one seek.

    For scanning a span (shot detection, motion) without holding it in memory.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start_s = (stream.start_time or 0) * float(stream.time_base)
        frames = _seek(container, stream, stream.start_time or 0, start) if start > 0 else container.decode(stream)
        try:
            for frame in frames:
                t = _from_start(float(frame.time or 0.0), start_s)
                if t < start - 1e-4:
                    continue
                if end is not None and t >= end - 1e-4:
                    break
                yield Frame(t, _upright(frame))
        except VideoError:
            raise
        except Exception as exc:
            raise VideoOpenFailure(path, f"decoding failed: {type(exc).__name__}: {exc}") from None


def check_span(info: VideoInfo, start: float, end: float, tolerance: float = 0.05) -> tuple[float, float]:
    """Validate a span against the video and clip float slack at the end.

    Raises:
        SpanOutsideVideo: start < 0, end < start, or the span reaches past the
            end by more than `tolerance` seconds.
    """
    if start < 0 or end < start or start > info.duration + tolerance or end > info.duration + tolerance:
        raise SpanOutsideVideo(info.path, start, end, info.duration)
    return start, min(end, info.duration)


# --------------------------------------------------------------------------- #
# Images on disk (the context holds paths, never pixels)
# --------------------------------------------------------------------------- #


def save_image(image: np.ndarray, path: str | Path, quality: int = 90) -> Path:
    """Write an (H, W, 3) uint8 RGB array as JPEG or PNG (by suffix); returns the path."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() not in {".jpg", ".jpeg", ".png"}:
        raise ValueError(f"cannot save {path}: use a .jpg, .jpeg or .png file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.ascontiguousarray(image))
    if path.suffix.lower() == ".png":
        img.save(path, optimize=False)
    else:
        img.save(path, quality=quality)
    return path


def save_frames(
    path: str | Path, times: Sequence[float], out_dir: str | Path, prefix: str = "frame", suffix: str = ".jpg"
) -> list[Path]:
    """Decode the frames on screen at `times` and write them as images; returns their paths.

    Names carry the time in milliseconds (``frame_012500ms.jpg``), so the same
    request writes the same files and a context entry can cite them.
    """
    out_dir = Path(out_dir)
    paths = []
    for t, frame in zip(times, read_frames_at(path, times), strict=True):
        paths.append(save_image(frame.image, out_dir / f"{prefix}_{int(round(t * 1000)):06d}ms{suffix}"))
    return paths


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize with antialiasing (as qwen-vl-utils' torchvision resize)."""
    from PIL import Image

    if image.shape[0] == height and image.shape[1] == width:
        return image
    out = Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(out)  # (height, width, 3) uint8
