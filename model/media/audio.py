"""Audio extraction and voice-activity gating (PyAV + NumPy).

Speech recognisers want 16 kHz mono samples, and they waste time (and invent
words) on silence and music. This module turns any container PyAV can read
into an `AudioClip` of 16 kHz mono float32 samples — optionally only one span
of it, decoding from a seek point instead of from the start — and finds the
speech regions inside a clip, so a recogniser only sees speech and its
timestamps line up with the video.

`mcr.model.media.audio_tracks.AudioTracks` builds on `load_audio`: a file's
whole track decoded once, every later span cut from it.

Two gates: `energy_regions` (RMS of 30 ms frames against an adaptive floor;
no model, microseconds per frame) and `silero_regions` (the Silero ONNX model
that ships inside faster-whisper; tells speech from music, slower).

`word_error_rate` lives here too: it is the yardstick for every recogniser.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mcr.model.media.video import VideoError, VideoNotFound, VideoOpenFailure

SAMPLE_RATE = 16_000
_PREROLL_S = 0.25  # decode this much before a span: codec and resampler warm-up


class NoAudioStream(VideoError):
    """The container has no audio track, so there is nothing to listen to."""

    def __init__(self, path: str | Path):
        super().__init__(
            f"{path} has no audio track — transcription needs sound; use visual tools "
            "(frames, OCR) on this video instead"
        )


class AudioDecodeError(VideoError):
    """The audio track exists but could not be decoded."""

    def __init__(self, path: str | Path, why: str):
        super().__init__(f"cannot decode the audio of {path}: {why} — try re-encoding it to AAC or WAV")


@dataclass(frozen=True)
class AudioClip:
    """Mono float32 samples in [-1, 1] and where they sit in the source file.

    Attributes:
        samples: (N,) float32.
        sample_rate: samples per second (16 kHz unless asked otherwise).
        offset: time of ``samples[0]`` in the source, in seconds.
    """

    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE
    offset: float = 0.0

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def end(self) -> float:
        return self.offset + self.duration

    def pcm16(self) -> np.ndarray:
        """(N,) int16 samples, as pocketsphinx and WAV writers want them."""
        return (np.clip(self.samples, -1.0, 1.0) * 32767.0).astype(np.int16)  # (N,)

    def cut(self, start: float, end: float) -> AudioClip:
        """The part between absolute times `start` and `end` (clamped to the clip)."""
        i = max(0, int(round((start - self.offset) * self.sample_rate)))
        j = min(len(self.samples), int(round((end - self.offset) * self.sample_rate)))
        return AudioClip(self.samples[i:max(i, j)], self.sample_rate, self.offset + i / self.sample_rate)


def audio_duration(path: str | Path) -> float:
    """Duration of the first audio track in seconds (from metadata, no decoding).

    Raises:
        VideoNotFound, VideoOpenFailure, NoAudioStream.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoNotFound(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise NoAudioStream(path)
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            return (container.duration or 0) / 1_000_000
    except VideoError:
        raise
    except Exception as exc:  # PyAV raises many types (InvalidDataError, OSError...)
        raise VideoOpenFailure(path, f"{type(exc).__name__}: {exc}") from None


def load_audio(
    path: str | Path,
    start: float = 0.0,
    end: float | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> AudioClip:
    """Decode the first audio track between `start` and `end` seconds, mono float32.

    Seeks near `start` first, so a span late in a long file costs only its own
    decoding. Any layout (5.1 included) is downmixed; any rate is resampled.

    Raises:
        VideoNotFound: no such file.
        VideoOpenFailure: not a readable container.
        NoAudioStream: the container has no audio track.
        AudioDecodeError: the audio track is corrupt.
    """
    chunks: list[np.ndarray] = []
    t0: float | None = None
    for first, block in decode_blocks(path, start, end, sample_rate):
        t0 = first if t0 is None else t0
        chunks.append(block)
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)  # (N,)
    t0 = t0 or 0.0
    if t0 < 0:  # encoder priming (AAC): samples before time zero
        samples, t0 = samples[int(round(-t0 * sample_rate)):], 0.0
    clip = AudioClip(samples, sample_rate, t0)
    return clip.cut(max(start, t0), end if end is not None else clip.end)


def decode_blocks(
    path: str | Path, start: float = 0.0, end: float | None = None, sample_rate: int = SAMPLE_RATE
) -> Iterator[tuple[float, np.ndarray]]:
    """The resampled audio as it is decoded: ``(t0, block)`` pairs, `t0` the source time of the
    first sample of the *first* block (the same in every pair), each block ``(n,)`` float32 mono.

    `load_audio` joins them; `mcr.model.media.audio_tracks.AudioTracks` writes them to
    disk one by one, so a whole hour is decoded without ever being held in memory.
    Priming samples before time zero are *not* dropped here (``t0`` may be negative).

    Raises:
        as `load_audio`.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoNotFound(path)
    try:
        container = av.open(str(path))
    except Exception as exc:
        raise VideoOpenFailure(path, f"{type(exc).__name__}: {exc}") from None
    with container:
        if not container.streams.audio:
            raise NoAudioStream(path)
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        n_out = 0
        t0: float | None = None  # source time of the first resampled sample
        try:
            if start > _PREROLL_S and stream.time_base is not None:
                # Seek a little early: the decoder and resampler settle before `start`.
                target = int((start - _PREROLL_S) / stream.time_base)
                container.seek(target, stream=stream, any_frame=False, backward=True)
            for frame in container.decode(stream):
                if t0 is None:
                    frame, t0 = _on_output_grid(frame, sample_rate)
                    if frame is None:  # too short to reach the grid: try the next one
                        continue
                for out in resampler.resample(frame):
                    yield t0, out.to_ndarray().reshape(-1).astype(np.float32, copy=False)  # (n,) packed mono
                    n_out += out.samples
                if end is not None and t0 + n_out / sample_rate >= end + _PREROLL_S:
                    break
            for out in resampler.resample(None):
                yield t0 if t0 is not None else 0.0, out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
        except Exception as exc:  # InvalidDataError and friends from FFmpeg
            raise AudioDecodeError(path, f"{type(exc).__name__}: {exc}") from None


def _on_output_grid(frame, sample_rate: int):
    """Drop the first few input samples so output sample 0 sits on the global grid.

    Output sample *i* of a full decode is at time ``i / sample_rate``. A decode
    that starts at a seek point must start on that same grid, or every sample
    is interpolated at a slightly different phase and a span's audio differs
    from the same part of the full decode (recognisers notice). Input sample
    ``s`` is on the grid when ``s`` is a multiple of ``in_rate / gcd(in_rate,
    out_rate)`` (441 for 22.05 kHz -> 16 kHz, 3 for 48 kHz).

    Returns:
        (frame, time of its first sample in seconds), or (None, None) when the
        whole frame lies before the next grid point.
    """
    import av

    in_rate = frame.sample_rate
    first = round(float(frame.pts * frame.time_base) * in_rate) if frame.pts is not None else 0
    step = in_rate // math.gcd(in_rate, sample_rate)
    drop = (-first) % step
    if drop == 0:
        return frame, first / in_rate
    if drop >= frame.samples:
        return None, None
    data = frame.to_ndarray()  # planar (C, n) or packed (1, n*C)
    channels = len(frame.layout.channels)
    data = data[:, drop:] if frame.format.is_planar else data[:, drop * channels :]
    trimmed = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=frame.format.name, layout=frame.layout.name)
    trimmed.sample_rate = in_rate
    return trimmed, (first + drop) / in_rate


# --------------------------------------------------------------------------- #
# Voice activity
# --------------------------------------------------------------------------- #


class VadSettings(BaseModel):
    """How speech regions are found. Defaults suit narration and dialogue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frame_ms: int = Field(default=30, gt=0, description="analysis frame length")
    threshold_db: float | None = Field(default=None, description="fixed dBFS gate; None = adaptive")
    margin_db: float = Field(default=12.0, ge=0, description="adaptive gate: this far above the noise floor")
    floor_db: float = Field(default=-50.0, description="never gate below this level (digital silence)")
    min_speech_s: float = Field(default=0.15, ge=0)
    min_silence_s: float = Field(default=0.35, ge=0, description="shorter pauses do not split a region")
    pad_s: float = Field(default=0.1, ge=0)
    max_region_s: float = Field(default=30.0, gt=1, description="longer regions split at their quietest frame")


def _grid_skip(clip: AudioClip, hop: int) -> int:
    """Samples to skip so frames start on multiples of `hop` from time zero.

    Frames on a fixed time grid make the regions of a span the same as those
    of the full file, whatever the span's start.
    """
    return (-int(round(clip.offset * clip.sample_rate))) % hop


def frame_levels_db(clip: AudioClip, frame_ms: int = 30) -> np.ndarray:
    """RMS level of each `frame_ms` frame in dBFS: (F,) float32 (-100 for silence).

    Frame *k* starts ``_grid_skip`` samples into the clip plus *k* frames, i.e.
    on the absolute grid of `frame_ms` frames from time zero.
    """
    hop = max(1, clip.sample_rate * frame_ms // 1000)
    skip = _grid_skip(clip, hop)
    n = max(0, len(clip.samples) - skip) // hop
    if n == 0:
        return np.zeros(0, np.float32)
    frames = clip.samples[skip : skip + n * hop].reshape(n, hop)  # (F, hop)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))  # (F,)
    return np.maximum(20.0 * np.log10(np.maximum(rms, 1e-10)), -100.0).astype(np.float32)


def energy_regions(clip: AudioClip, settings: VadSettings | None = None) -> list[tuple[float, float]]:
    """Speech regions by frame energy, as absolute (start, end) seconds.

    The gate adapts to the recording: the 10th-percentile frame level is taken
    as the noise floor and speech must rise `margin_db` above it (but never
    above 25 dB under the loudest frame, so a clip that is all speech still
    passes, and never below `floor_db`, so digital silence is not speech).
    """
    s = settings or VadSettings()
    levels = frame_levels_db(clip, s.frame_ms)  # (F,)
    if len(levels) == 0:
        return []
    if s.threshold_db is not None:
        gate = s.threshold_db
    else:
        noise, peak = float(np.percentile(levels, 10)), float(levels.max())
        gate = max(s.floor_db, min(noise + s.margin_db, peak - 25.0))
    return _regions_from_mask(levels > gate, levels, clip, s)


def _regions_from_mask(
    voiced: np.ndarray, levels: np.ndarray, clip: AudioClip, s: VadSettings
) -> list[tuple[float, float]]:
    """Turn a per-frame speech mask into padded, merged, size-limited regions."""
    step = s.frame_ms / 1000
    runs: list[list[int]] = []
    for i in np.flatnonzero(voiced):
        if runs and (i - runs[-1][1]) * step <= s.min_silence_s:
            runs[-1][1] = i + 1
        else:
            runs.append([int(i), int(i) + 1])
    runs = [r for r in runs if (r[1] - r[0]) * step >= s.min_speech_s]
    max_frames = int(s.max_region_s / step)
    split: list[list[int]] = []
    while runs:
        a, b = runs.pop(0)
        if b - a > max_frames:  # cut at the quietest frame of the middle half
            lo, hi = a + (b - a) // 4, b - (b - a) // 4
            cut = lo + int(np.argmin(levels[lo:hi]))
            runs[:0] = [[a, cut], [cut, b]]
            continue
        split.append([a, b])
    hop = max(1, clip.sample_rate * s.frame_ms // 1000)
    origin = clip.offset + _grid_skip(clip, hop) / clip.sample_rate  # time of frame 0
    out: list[tuple[float, float]] = []
    for a, b in split:
        start = float(max(clip.offset, origin + a * step - s.pad_s))
        end = float(min(clip.end, origin + b * step + s.pad_s))
        if out and start <= out[-1][1]:  # padding made neighbours touch
            start = out[-1][1]
        out.append((round(start, 3), round(end, 3)))
    return out


def silero_regions(clip: AudioClip, min_silence_s: float = 0.35, pad_s: float = 0.1) -> list[tuple[float, float]]:
    """Speech regions from the Silero VAD model bundled with faster-whisper.

    Unlike the energy gate it ignores music and noise. Needs `faster-whisper`
    and `onnxruntime`; raises ImportError naming the package otherwise.
    """
    try:
        from faster_whisper.vad import VadOptions, get_speech_timestamps
    except ImportError as exc:
        raise ImportError("Silero VAD needs faster-whisper: pip install 'internvideo3-mcr[asr]'") from exc
    if clip.sample_rate != SAMPLE_RATE:
        raise ValueError(f"Silero VAD wants {SAMPLE_RATE} Hz audio, got {clip.sample_rate}")
    options = VadOptions(min_silence_duration_ms=int(min_silence_s * 1000), speech_pad_ms=int(pad_s * 1000))
    chunks = get_speech_timestamps(clip.samples, options, sampling_rate=clip.sample_rate)
    rate = clip.sample_rate
    return [(round(clip.offset + c["start"] / rate, 3), round(clip.offset + c["end"] / rate, 3)) for c in chunks]


# --------------------------------------------------------------------------- #
# Scoring
# --------------------------------------------------------------------------- #

_NUMBER_WORDS = "zero one two three four five six seven eight nine ten".split()
_NUMBERS = {str(i): word for i, word in enumerate(_NUMBER_WORDS)}


def normalize_words(text: str) -> list[str]:
    """Lower-case words without punctuation; digits 0-10 spelled out (as ASR writes them)."""
    words = re.findall(r"[a-z0-9']+", text.lower())
    return [_NUMBERS.get(w, w) for w in words]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, after `normalize_words`.

    Raises:
        ValueError: the reference has no words (the rate is undefined).
    """
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not ref:
        raise ValueError("word_error_rate needs a reference with at least one word")
    prev = list(range(len(hyp) + 1))  # edit distance row for the empty reference prefix
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)
