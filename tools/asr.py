"""`transcribe`: what is said in the video, as time-aligned segments with word times.

Speech is often the cheapest evidence a video has: a narrator names what the
frames only show. This tool turns the audio of the episode's video (or of one
span of it) into transcript segments whose spans line up with the video, so
the policy can cite them and jump to them.

Backends live in `mcr.tools.asr_backends` (with the `Word` and
`TranscriptSegment` models they produce), registered in its dict `BACKENDS`:

* ``subtitles`` — a subtitle stream in the container, or a sidecar ``.srt`` /
  ``.vtt`` beside the video: a transcript someone already made, at no cost.
* ``faster_whisper`` — a CTranslate2 Whisper model folder named by
  ``ctx.settings["whisper_model"]``; the best quality when one is available.
* ``pocketsphinx`` — the English model that ships inside the package; always
  there offline, rough on unusual voices.

``auto`` takes the first that applies, in that order. Audio backends only see
speech: a voice-activity gate (energy by default, Silero with
``settings["vad"] = "silero"``) cuts the audio into regions first, so silence
costs nothing and every segment sits inside a stretch of real sound.

Settings (``ctx.settings``): ``whisper_model`` (folder), ``vad`` (``energy``
| ``silero``), Whisper's ``beam_size`` (default 5), ``temperature`` (default:
faster-whisper's fallback ladder 0.0-1.0) and ``max_new_tokens`` (default:
none), ``cache`` (default True). Results are cached (`mcr.tools.cache`) by file
content, span and the settings that change them; a sidecar subtitle file and
the Whisper model file are part of the key.

A span that ends past the video is clipped to its end; one that starts past
it is an error. Subtitle cues keep their own times (a cue overlapping the
span's edge is returned whole).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mcr.context import TimeSpan
from mcr.model.media.audio import (
    AudioClip,
    NoAudioStream,
    energy_regions,
    load_audio,
    silero_regions,
)
from mcr.model.media.video import VideoError, VideoNotFound
from mcr.tools.asr_backends import (  # noqa: F401  (re-exported: these used to live here)
    AUTO_ORDER,
    BACKENDS,
    FasterWhisperBackend,
    Job,
    PocketsphinxBackend,
    SubtitlesBackend,
    TranscriptSegment,
    Word,
    _progress,
    whisper_options,
)
from mcr.tools.base import Tool, ToolContext, ToolFailure
from mcr.tools.cache import ResultCache

BackendName = Literal["auto", "pocketsphinx", "faster_whisper", "subtitles"]


class TranscribeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    span: TimeSpan | None = Field(default=None, description="only this part of the video; default all of it")
    backend: BackendName = Field(default="auto", description="auto: subtitles, then whisper, then pocketsphinx")
    language: str | None = Field(default=None, description="ISO code such as 'en'; None lets the backend decide")


class TranscribeOutput(BaseModel):
    segments: list[TranscriptSegment]
    text: str = Field(description="the whole transcript, segments joined by spaces")
    backend: str = Field(description="the backend that produced it")


# --------------------------------------------------------------------------- #
# The tool
# --------------------------------------------------------------------------- #


class TranscribeTool(Tool):
    """Speech recognition with word timestamps, optionally within a span."""

    name = "transcribe"
    description = "Transcribe the speech in the video (or a span of it) into time-stamped segments with word timings."
    Input = TranscribeInput
    Output = TranscribeOutput

    def __init__(self) -> None:
        self._backends = {name: cls() for name, cls in BACKENDS.items()}  # models load once per tool
        self._caches: dict[Path, ResultCache] = {}

    def run(self, input: TranscribeInput, ctx: ToolContext) -> TranscribeOutput:
        path = Path(ctx.require_video().path)
        duration = _duration(path)
        start, end = _resolve_span(input.span, duration)
        job = Job(path=path, start=start, end=end, language=input.language, settings=dict(ctx.settings))
        backend = self._choose(input.backend, job)
        if not ctx.settings.get("cache", True):
            return self._compute(backend, job)
        cache = self._caches.setdefault(Path(ctx.workdir), ResultCache.for_context(ctx))
        key_settings = {
            "backend": backend,
            "language": input.language,
            "vad": job.settings.get("vad", "energy"),
            "whisper_model": _model_stamp(job.settings["whisper_model"]) if backend == "faster_whisper" else None,
            "whisper": whisper_options(job.settings) if backend == "faster_whisper" else None,
        }
        if backend == "subtitles":  # a sidecar is part of the input: editing it must miss
            source = self._backends["subtitles"].source(path)
            key_settings["sidecar"] = cache.digest(source[0]) if source and source[0] != path else None
        key = cache.key(self.name, path, (start, end), key_settings)
        return cache.get_or_compute(key, TranscribeOutput, lambda: self._compute(backend, job))

    def _choose(self, requested: str, job: Job) -> str:
        if requested != "auto":
            why = self._backends[requested].unavailable(job)
            if why:
                error = "no_subtitles" if requested == "subtitles" else "backend_unavailable"
                raise ToolFailure(f"transcribe backend {requested!r} cannot run: {why}", error)
            return requested
        reasons = []
        for name in AUTO_ORDER:
            why = self._backends[name].unavailable(job)
            if why is None:
                return name
            reasons.append(f"{name}: {why}")
        raise ToolFailure("no transcription backend can run — " + "; ".join(reasons), "backend_unavailable")

    def _compute(self, name: str, job: Job) -> TranscribeOutput:
        backend = self._backends[name]
        if name == "subtitles":
            segments = backend.cues(job)
        else:
            try:
                clip = load_audio(job.path, job.start, job.end)
            except NoAudioStream as exc:
                raise ToolFailure(str(exc), "no_audio") from None
            except VideoError as exc:
                raise ToolFailure(str(exc), "unreadable_video") from None
            segments = backend.transcribe(clip, _speech_regions(clip, job.settings.get("vad", "energy")), job)
        # In time order whatever the backend emits (a weak Whisper can jump back within a window).
        segments = sorted(segments, key=lambda seg: (seg.span.start, seg.span.end))
        return TranscribeOutput(segments=segments, text=" ".join(s.text for s in segments), backend=name)

    def summarize(self, output: TranscribeOutput) -> str:
        if not output.segments:
            return f"(no speech found; backend {output.backend})"
        return "\n".join(f"[{s.span.start:.1f}s-{s.span.end:.1f}s] {s.text}" for s in output.segments)


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def _duration(path: Path) -> float:
    """Container duration in seconds, as typed tool failures."""
    import av

    if not path.is_file():
        raise ToolFailure(str(VideoNotFound(path)), "video_not_found")
    try:
        with av.open(str(path)) as container:
            if container.duration is not None:
                return container.duration / 1_000_000
            return max(float(s.duration * s.time_base) for s in container.streams if s.duration)
    except Exception as exc:  # InvalidDataError, or max() of nothing
        raise ToolFailure(
            f"cannot read {path}: {type(exc).__name__}: {exc} — is it a complete video file?", "unreadable_video"
        ) from None


def _resolve_span(span: TimeSpan | None, duration: float) -> tuple[float, float]:
    """The span to transcribe, clamped to the file; failures name the video's length."""
    if span is None:
        return 0.0, duration
    if span.start >= duration:
        raise ToolFailure(
            f"span {span} starts after the video ends ({duration:.1f}s); ask for a span within 0.0s-{duration:.1f}s",
            "span_outside_video",
        )
    if span.duration <= 0:
        raise ToolFailure(f"span {span} is empty; give an end after its start", "empty_span")
    return span.start, min(span.end, duration)


def _model_stamp(folder: str | Path) -> str:
    """Folder, size and mtime of model.bin: a re-converted model misses the cache."""
    stat = (Path(folder) / "model.bin").stat()
    return f"{Path(folder).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def _speech_regions(clip: AudioClip, vad: str) -> list[tuple[float, float]]:
    """The speech regions of `clip` by the gate the settings name."""
    if vad == "energy":
        return energy_regions(clip)
    if vad == "silero":
        try:
            return silero_regions(clip)
        except (ImportError, RuntimeError) as exc:  # faster-whisper or onnxruntime missing
            raise ToolFailure(f"settings.vad='silero' cannot run: {exc}; use vad='energy'", "vad_unavailable") from None
    raise ToolFailure(f"unknown settings.vad={vad!r}; use 'energy' or 'silero'", "invalid_settings")
