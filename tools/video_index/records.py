"""What a video index holds, as typed records, and the settings that decide it.

Everything the index returns is one of these pydantic records (never text one
module writes and another parses back). Times are seconds of the video, spans
are :class:`mcr.context.TimeSpan`; speech reuses the transcript models of
`mcr.tools.asr_backends` and detections those of `mcr.tools.objects`, so an
index fact and a tool's fact are the same type.

:class:`IndexSettings` is everything that changes *what* is indexed; all of its
fields except the build-only ones (:data:`BUILD_ONLY`) go into the index key
(`mcr.tools.video_index.key`), so changing a setting opens a different index
and never serves stale facts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from mcr.context import TimeSpan
from mcr.tools.asr_backends import TranscriptSegment, Word
from mcr.tools.objects import Detection
from mcr.tools.ocr import MIN_SCORE, TextLine

__all__ = [
    "BUILD_ONLY", "STAGES", "Stage", "IndexSettings", "Shot", "Scene", "Chapter", "ScreenText",
    "TranscriptSegment", "Word", "Detection", "TextLine", "IndexHit", "StageStatus", "IndexStatus",
    "BuildProgress", "Source",
]

Stage = Literal["picture", "speech", "structure", "embeddings"]
#: The build's stages, in order. ``picture``: one streaming decode — shots, picture change points,
#: on-screen text and objects at each change point. ``speech``: the audio in chunks — speech regions,
#: Whisper on them. ``structure``: scenes and chapters from shots, text and speech. ``embeddings``: MiniLM
#: vectors of every searchable text.
STAGES: tuple[Stage, ...] = ("picture", "speech", "structure", "embeddings")

Source = Literal["transcript", "ocr", "scene", "chapter"]

#: Settings that change how a build is cut into commits, not what it finds: not part of the key.
BUILD_ONLY = frozenset({"chunk_s"})


class IndexSettings(BaseModel):
    """What changes the facts in an index (all but `BUILD_ONLY` are in its key).

    Defaults are the measured choices of `benchmarks/RESULTS.md` ("Video index"):
    every frame is decoded once, but only ``analysis_fps`` of them are converted
    and compared; OCR and the detector run only where the picture changed and
    settled (never on every sampled frame); Whisper hears only the speech regions.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # picture pass
    scan: Literal["auto", "every_frame", "bitstream"] = Field(
        default="auto", description="decode every frame, or only where the bitstream says the picture changed "
                                    "(`mcr.tools.video_index.bitstream`); auto: bitstream from bitstream_from_s on")
    bitstream_from_s: float = Field(default=300.0, ge=0, description="auto scans videos this long by the bitstream")
    look_gap_s: float = Field(default=30.0, gt=0, description="a bitstream scan looks at least this often")
    analysis_fps: float = Field(default=12.0, gt=0, le=60, description="frames per second compared for cuts/changes")
    analysis_width: int = Field(default=256, ge=32, le=1024, description="frames are scaled to this width to compare")
    shot_detector: Literal["adaptive", "content"] = "adaptive"
    shot_threshold: float | None = Field(default=None, gt=0, description="PySceneDetect's (adaptive 3.0, content 27.0)")
    min_shot_s: float = Field(default=0.5, ge=0)
    change_share: float = Field(default=0.01, gt=0, lt=1,
                                description="share of pixels changed since the last capture that makes a new one")
    settle_share: float = Field(default=0.004, gt=0, lt=1,
                                description="a capture waits until fewer pixels than this change frame to frame")
    min_capture_gap_s: float = Field(default=1.0, ge=0, description="captures at least this far apart")
    max_capture_gap_s: float = Field(default=60.0, ge=0,
                                     description="the wait between captures of one shot that keep reading the same "
                                                 "text doubles up to this")
    ocr: bool = True
    ocr_min_score: float = Field(default=MIN_SCORE, ge=0, le=1)
    objects: bool = True
    object_min_score: float = Field(default=0.4, ge=0, le=1)
    object_weak_hint: float | None = Field(default=0.2, ge=0, le=1,
                                           description="a capture whose whole-frame pass shows a detection scoring "
                                                       "between this and object_min_score is searched again in "
                                                       "zoomed tiles (None: never)")
    # speech pass
    speech: bool = True
    audio_chunk_s: float = Field(default=300.0, ge=10, description="audio is decoded and transcribed this much at a time")
    vad: Literal["silero", "energy"] = "silero"
    language: str | None = None
    whisper_model: str | None = Field(default=None, description="a CTranslate2 Whisper folder; default the packaged tiny.en")
    beam_size: int = Field(default=5, ge=1)
    # structure
    scene_similarity: float = Field(default=0.9, ge=0, le=1, description="merge shots whose captures correlate above this")
    chapter_s: float = Field(default=300.0, gt=0, description="target length of a chapter")
    # build granularity (not in the key)
    chunk_s: float = Field(default=30.0, gt=0, description="the picture pass commits every this many seconds of video")

    @classmethod
    def from_tool_settings(cls, settings: dict[str, Any] | None) -> IndexSettings:
        """The index settings a task's tool settings imply.

        ``settings["video_index_settings"]`` (a dict of these fields) wins; the
        transcribe settings a task already sets (``whisper_model``, ``vad``,
        ``beam_size``, ``language``) carry over so the index hears what
        `transcribe` would.
        """
        settings = settings or {}
        values: dict[str, Any] = {k: settings[k] for k in ("whisper_model", "vad", "beam_size", "language")
                                  if settings.get(k) is not None}
        values.update(settings.get("video_index_settings") or {})
        return cls(**values)

    def key_fields(self) -> dict[str, Any]:
        """The fields that go into the index key (everything but `BUILD_ONLY`)."""
        return self.model_dump(mode="json", exclude=set(BUILD_ONLY))


class Shot(BaseModel):
    """One shot: a stretch between two cuts."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=1)
    span: TimeSpan


class ScreenText(BaseModel):
    """What was read on screen at one capture (a place where the picture changed and settled).

    ``span`` runs from the capture to the next capture (or the end of its
    shot): the stretch the text was on screen, as far as the index knows.
    """

    model_config = ConfigDict(frozen=True)

    t: float
    span: TimeSpan
    lines: list[TextLine]

    @property
    def text(self) -> str:
        return " ".join(line.text for line in self.lines)


class Scene(BaseModel):
    """Consecutive shots that look alike, with what is said and read during them."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=1)
    span: TimeSpan
    shots: list[int] = Field(description="indices of its shots")
    speech: str = ""
    screen_text: list[str] = Field(default_factory=list)
    objects: list[str] = Field(default_factory=list, description="labels the detector saw, most frequent first")
    text: str = Field(description="one line: what is said, read and seen (searchable)")


class Chapter(BaseModel):
    """Consecutive scenes, about ``chapter_s`` long; the top of the hierarchy below the video."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=1)
    span: TimeSpan
    scenes: list[int]
    text: str = Field(description="its scenes' lines, shortened")


class IndexHit(BaseModel):
    """One search result: a piece of indexed text, where it is, how well it matched."""

    model_config = ConfigDict(frozen=True)

    text: str
    span: TimeSpan
    source: Source
    score: float = Field(description="fused 0..1 (dense and BM25, as `mcr.tools.index.TextIndex`)")
    dense: float | None = None
    sparse: float = 0.0


class StageStatus(BaseModel):
    done: bool = False
    until_s: float = Field(default=0.0, description="how far into the video this stage has committed")
    seconds: float = Field(default=0.0, description="wall time spent building it, over all runs")


class IndexStatus(BaseModel):
    """Where an index stands, and what building it cost (summed over every build run)."""

    key: str
    path: str
    video: str
    duration: float
    stages: dict[str, StageStatus]
    counters: dict[str, float] = Field(
        default_factory=dict,
        description="frames_decoded, frames_analysed, captures, ocr_frames, detector_frames, audio_decoded_s, "
                    "speech_s, asr_calls, texts_embedded, build_runs")
    size_bytes: int = 0

    @computed_field  # in `mcr index --json` too: a script asks whether the index is ready
    @property
    def complete(self) -> bool:
        return all(s.done for s in self.stages.values())


class BuildProgress(BaseModel):
    """One progress report of a build (for bars and time estimates)."""

    stage: Stage
    done_s: float = Field(description="video seconds this stage has covered")
    total_s: float
    elapsed_s: float = Field(description="wall time of this stage in this run")
    eta_s: float | None = Field(default=None, description="estimated seconds left for this stage")
