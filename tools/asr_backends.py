"""Speech backends for `transcribe`, and the transcript models they produce.

`mcr.tools.asr` is the tool (input/output, span checks, caching, backend
choice, the voice-activity gate); this module does the recognising. Each
backend class has a ``name`` and ``unavailable(job)`` (None when it can run,
else why not, phrased for the policy), and produces `TranscriptSegment`s:
audio backends through ``transcribe(clip, regions, job)`` on the speech
regions the tool's gate found, the subtitles backend through ``cues(job)``.

* `SubtitlesBackend` — a subtitle stream in the container, or a sidecar
  ``.srt`` / ``.vtt`` beside the video (FFmpeg parses it; `_ass_text` turns
  its ASS dialogue lines into plain text).
* `PocketsphinxBackend` — the English model that ships inside pocketsphinx
  (the fallback: always there offline, but rough on unusual voices).

The Whisper backend, the default, is `mcr.tools.asr_whisper`. `BACKENDS`
(names to classes) and `AUTO_ORDER` live with the tool in `mcr.tools.asr`.
An audio backend's ``default_vad`` / ``vad_pad_s`` say which gate suits it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mcr.context import TimeSpan
from mcr.model.media.audio import AudioClip

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


# --------------------------------------------------------------------------- #
# Backends
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Job:
    """What a backend needs for one call (resolved from the input and settings)."""

    path: Path
    start: float
    end: float
    language: str | None
    settings: dict[str, Any]
    hints: tuple[str, ...] = ()  # words to listen for (Whisper's initial prompt); other backends ignore them


class PocketsphinxBackend:
    """CMU pocketsphinx with its bundled US-English model; one decode per speech region."""

    name = "pocketsphinx"
    default_vad = "energy"
    vad_pad_s: float | None = None  # the gate's own padding
    _FRAME_S = 0.01  # pocketsphinx features are 100 frames per second
    _FILLERS = frozenset({"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "[BREATH]", "[COUGH]", "[UM]", "[UH]"})

    def __init__(self) -> None:
        self._decoder = None

    def unavailable(self, job: Job) -> str | None:
        try:
            import pocketsphinx  # noqa: F401
        except ImportError:
            return "pocketsphinx is not installed: pip install 'internvideo3-mcr[asr]'"
        if job.language and job.language.lower().split("-")[0] not in ("en", "english"):
            return f"pocketsphinx only knows English, not {job.language!r}; use backend 'faster_whisper'"
        return None

    def transcribe(self, clip: AudioClip, regions: list[tuple[float, float]], job: Job) -> list[TranscriptSegment]:
        if not regions:  # silence: not even the model is loaded
            return []
        if self._decoder is None:
            from pocketsphinx import Decoder

            self._decoder = Decoder(samprate=clip.sample_rate, loglevel="FATAL")
        decoder, out = self._decoder, []
        for a, b in progress_bar(regions, clip, "pocketsphinx"):
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

    def unavailable(self, job: Job) -> str | None:
        if self.source(job.path) is None:
            return f"{job.path.name} has no subtitle stream and no .srt/.vtt file beside it"
        return None

    def cues(self, job: Job) -> list[TranscriptSegment]:
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


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def _segment(words: list[Word]) -> TranscriptSegment:
    span = TimeSpan(start=words[0].start, end=max(words[-1].end, words[0].start))
    return TranscriptSegment(span=span, text=" ".join(w.word for w in words), words=words)


def _ass_text(sub: Any) -> str:
    """Plain text of one decoded subtitle (FFmpeg gives ASS dialogue lines)."""
    import re

    raw = getattr(sub, "ass", b"") or getattr(sub, "text", b"")
    line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    text = line.split(",", 8)[-1] if line.count(",") >= 8 else line  # ASS: 8 fields before the text
    text = re.sub(r"\{[^}]*\}", "", text).replace("\\N", " ").replace("\\n", " ")
    return " ".join(text.split())


def progress_bar(items: Iterable[Any], clip: AudioClip, what: str, unit: str = "region") -> Iterable[Any]:
    """`items`, with a tqdm bar when the audio is long and stderr is a terminal.

    Each item first checks that the call was not cancelled (Ctrl-C, a timeout):
    a backend stops between segments rather than finishing the whole audio
    on native threads while the process exits (see tools/limits.py).
    """
    if clip.duration >= _PROGRESS_MIN_S and sys.stderr.isatty():
        from tqdm import tqdm

        items = tqdm(items, desc=f"transcribe ({what})", unit=unit, leave=False)
    return _until_cancelled(items)


def _until_cancelled(items: Iterable[Any]) -> Iterator[Any]:
    from mcr.tools.limits import raise_if_cancelled

    for item in items:
        raise_if_cancelled()
        yield item


_progress = progress_bar  # the old name
