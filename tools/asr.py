"""`transcribe`: what is said in the video, as time-aligned segments with word times.

Speech is often the cheapest evidence a video has: a narrator names what the
frames only show. This tool turns the audio of the episode's video (or of one
span of it) into transcript segments whose spans line up with the video, so
the policy can cite them and jump to them.

Backends, registered in one dict (`BACKENDS`):

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

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcr.context import TimeSpan
from mcr.model.audio import (
    AudioClip,
    NoAudioStream,
    energy_regions,
    load_audio,
    silero_regions,
)
from mcr.model.video import VideoError, VideoNotFound
from mcr.tools.base import Tool, ToolContext, ToolFailure
from mcr.tools.cache import ResultCache

BackendName = Literal["auto", "pocketsphinx", "faster_whisper", "subtitles"]
_PROGRESS_MIN_S = 60.0  # show a progress bar for audio longer than this (on a tty)


class Word(BaseModel):
    """One recognised word and when it was said (seconds in the video)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    word: str
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    confidence: float | None = Field(default=None, ge=0, le=1, description="None when the backend gives none")


class TranscriptSegment(BaseModel):
    """A stretch of speech: its span in the video, its text and its words."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    span: TimeSpan
    text: str
    words: list[Word] = Field(default_factory=list)


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
# Backends
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Job:
    """What a backend needs for one call (resolved from the input and settings)."""

    path: Path
    start: float
    end: float
    language: str | None
    settings: dict[str, Any]


class PocketsphinxBackend:
    """CMU pocketsphinx with its bundled US-English model; one decode per speech region."""

    name = "pocketsphinx"
    _FRAME_S = 0.01  # pocketsphinx features are 100 frames per second
    _FILLERS = frozenset({"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "[BREATH]", "[COUGH]", "[UM]", "[UH]"})

    def __init__(self) -> None:
        self._decoder = None

    def unavailable(self, job: _Job) -> str | None:
        try:
            import pocketsphinx  # noqa: F401
        except ImportError:
            return "pocketsphinx is not installed: pip install 'internvideo3-mcr[asr]'"
        if job.language and job.language.lower().split("-")[0] not in ("en", "english"):
            return f"pocketsphinx only knows English, not {job.language!r}; use backend 'faster_whisper'"
        return None

    def transcribe(self, clip: AudioClip, regions: list[tuple[float, float]], job: _Job) -> list[TranscriptSegment]:
        if not regions:  # silence: not even the model is loaded
            return []
        if self._decoder is None:
            from pocketsphinx import Decoder

            self._decoder = Decoder(samprate=clip.sample_rate, loglevel="FATAL")
        decoder, out = self._decoder, []
        for a, b in _progress(regions, clip, "pocketsphinx"):
            piece = clip.cut(a, b)
            # The front end adapts (cepstral mean, noise floor) across utterances;
            # resetting it (~0.1 ms) makes a region's words independent of what
            # was decoded before, so a span gives what the full run gives.
            decoder.reinit_feat()
            decoder.start_utt()
            decoder.process_raw(piece.pcm16().tobytes(), no_search=False, full_utt=True)
            decoder.end_utt()
            words = [
                Word(
                    word=seg.word.split("(")[0],  # "the(2)" is the 2nd pronunciation of "the"
                    start=round(piece.offset + seg.start_frame * self._FRAME_S, 3),
                    end=round(piece.offset + (seg.end_frame + 1) * self._FRAME_S, 3),
                    confidence=min(1.0, max(0.0, float(seg.prob))),
                )
                for seg in decoder.seg()
                if seg.word not in self._FILLERS
            ]
            if words:
                out.append(_segment(words))
        return out


class FasterWhisperBackend:
    """faster-whisper (CTranslate2) on each speech region, with word timestamps."""

    name = "faster_whisper"

    def __init__(self) -> None:
        self._models: dict[str, Any] = {}

    def unavailable(self, job: _Job) -> str | None:
        folder = job.settings.get("whisper_model")
        if not folder:
            return "no Whisper model configured: set settings.whisper_model to a CTranslate2 model folder"
        if not (Path(folder) / "model.bin").is_file():
            return f"settings.whisper_model={folder!r} is not a CTranslate2 model folder (no model.bin)"
        if not (Path(folder) / "tokenizer.json").is_file():
            return f"{folder} has no tokenizer.json; convert with copy_files=['tokenizer.json', ...]"
        try:
            from faster_whisper.tokenizer import _LANGUAGE_CODES
        except ImportError:
            return "faster-whisper is not installed: pip install 'internvideo3-mcr[asr]'"
        if job.language is not None and job.language not in _LANGUAGE_CODES:
            return f"Whisper has no language {job.language!r}; give an ISO 639-1 code such as 'en' or 'de'"
        return None

    def _model(self, folder: str):
        if folder not in self._models:
            from faster_whisper import WhisperModel

            try:
                self._models[folder] = WhisperModel(folder, device="cpu", compute_type="float32")
            except (RuntimeError, ValueError, OSError) as exc:  # CTranslate2: corrupt or foreign model.bin
                raise ToolFailure(
                    f"settings.whisper_model={folder!r} does not load ({type(exc).__name__}: {exc}); "
                    "re-convert it with ct2-transformers-converter",
                    "backend_unavailable",
                ) from None
        return self._models[folder]

    def transcribe(self, clip: AudioClip, regions: list[tuple[float, float]], job: _Job) -> list[TranscriptSegment]:
        model = self._model(str(job.settings["whisper_model"]))
        options = _whisper_options(job.settings)
        out = []
        for a, b in _progress(regions, clip, "whisper"):
            piece = clip.cut(a, b)
            pieces, _info = model.transcribe(
                piece.samples,
                language=job.language,
                **options,
                word_timestamps=True,
                vad_filter=False,  # already gated: regions are speech
                condition_on_previous_text=False,
            )
            for seg in pieces:  # Whisper may place times past the audio it saw: clamp to the region
                words = [
                    Word(
                        word=w.word.strip(),
                        start=_clamp(piece.offset + w.start, a, b),
                        end=_clamp(piece.offset + w.end, a, b),
                        confidence=min(1.0, max(0.0, float(w.probability))),
                    )
                    for w in (seg.words or [])
                    if w.word.strip()
                ]
                text = seg.text.strip()
                if not text:
                    continue
                s, e = _clamp(piece.offset + seg.start, a, b), _clamp(piece.offset + seg.end, a, b)
                out.append(TranscriptSegment(span=TimeSpan(start=s, end=max(s, e)), text=text, words=words))
        return out


class SubtitlesBackend:
    """Cues from a subtitle stream in the container or a sidecar .srt/.vtt file."""

    name = "subtitles"

    def source(self, path: Path) -> tuple[Path, int] | None:
        """(file, subtitle stream index) of the first subtitles found, or None."""
        import av

        candidates = [path] + [path.with_suffix(s) for s in (".srt", ".vtt", ".en.srt", ".en.vtt")]
        for candidate in candidates:
            if not candidate.is_file():
                continue
            try:
                with av.open(str(candidate)) as container:
                    if container.streams.subtitles:
                        return candidate, container.streams.subtitles[0].index
            except Exception:  # a sidecar FFmpeg cannot parse is not a transcript
                continue
        return None

    def unavailable(self, job: _Job) -> str | None:
        if self.source(job.path) is None:
            return f"{job.path.name} has no subtitle stream and no .srt/.vtt file beside it"
        return None

    def cues(self, job: _Job) -> list[TranscriptSegment]:
        """Every cue overlapping [job.start, job.end], with its own (unclipped) times."""
        import av

        found = self.source(job.path)
        assert found is not None
        file, index = found
        out = []
        with av.open(str(file)) as container:
            stream = container.streams[index]
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                start = float(packet.pts * packet.time_base)
                end = start + float((packet.duration or 0) * packet.time_base)
                if end < job.start or start > job.end:
                    continue
                text = " ".join(_ass_text(sub) for sub in packet.decode()).strip()
                if text:
                    out.append(TranscriptSegment(span=TimeSpan(start=max(0.0, start), end=max(start, end)), text=text))
        return sorted(out, key=lambda s: s.span.start)


BACKENDS: dict[str, type] = {
    "subtitles": SubtitlesBackend,
    "faster_whisper": FasterWhisperBackend,
    "pocketsphinx": PocketsphinxBackend,
}
AUTO_ORDER = ("subtitles", "faster_whisper", "pocketsphinx")


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
        job = _Job(path=path, start=start, end=end, language=input.language, settings=dict(ctx.settings))
        backend = self._choose(input.backend, job)
        if not ctx.settings.get("cache", True):
            return self._compute(backend, job)
        cache = self._caches.setdefault(Path(ctx.workdir), ResultCache.for_context(ctx))
        key_settings = {
            "backend": backend,
            "language": input.language,
            "vad": job.settings.get("vad", "energy"),
            "whisper_model": _model_stamp(job.settings["whisper_model"]) if backend == "faster_whisper" else None,
            "whisper": _whisper_options(job.settings) if backend == "faster_whisper" else None,
        }
        if backend == "subtitles":  # a sidecar is part of the input: editing it must miss
            source = self._backends["subtitles"].source(path)
            key_settings["sidecar"] = cache.digest(source[0]) if source and source[0] != path else None
        key = cache.key(self.name, path, (start, end), key_settings)
        return cache.get_or_compute(key, TranscribeOutput, lambda: self._compute(backend, job))

    def _choose(self, requested: str, job: _Job) -> str:
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

    def _compute(self, name: str, job: _Job) -> TranscribeOutput:
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


def _segment(words: list[Word]) -> TranscriptSegment:
    span = TimeSpan(start=words[0].start, end=max(words[-1].end, words[0].start))
    return TranscriptSegment(span=span, text=" ".join(w.word for w in words), words=words)


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


def _whisper_options(settings: dict[str, Any]) -> dict[str, Any]:
    """The decoding settings a task may set for faster-whisper (they are in the cache key)."""
    try:
        options: dict[str, Any] = {"beam_size": int(settings.get("beam_size", 5))}
        if "temperature" in settings:  # a number, or a fallback ladder
            t = settings["temperature"]
            options["temperature"] = [float(x) for x in t] if isinstance(t, (list, tuple)) else float(t)
        if settings.get("max_new_tokens") is not None:
            options["max_new_tokens"] = int(settings["max_new_tokens"])
    except (TypeError, ValueError) as exc:
        raise ToolFailure(
            f"bad Whisper settings ({exc}): beam_size and max_new_tokens are integers, "
            "temperature a number or a list of numbers",
            "invalid_settings",
        ) from None
    return options


def _clamp(t: float, lo: float, hi: float) -> float:
    return round(min(max(t, lo), hi), 3)


def _ass_text(sub: Any) -> str:
    """Plain text of one decoded subtitle (FFmpeg gives ASS dialogue lines)."""
    import re

    raw = getattr(sub, "ass", b"") or getattr(sub, "text", b"")
    line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    text = line.split(",", 8)[-1] if line.count(",") >= 8 else line  # ASS: 8 fields before the text
    text = re.sub(r"\{[^}]*\}", "", text).replace("\\N", " ").replace("\\n", " ")
    return " ".join(text.split())


def _progress(regions: list[tuple[float, float]], clip: AudioClip, what: str):
    """Regions, with a tqdm bar when the audio is long and stderr is a terminal."""
    if clip.duration < _PROGRESS_MIN_S or not sys.stderr.isatty():
        return regions
    from tqdm import tqdm

    return tqdm(regions, desc=f"transcribe ({what})", unit="region", leave=False)
