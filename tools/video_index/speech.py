"""The speech pass: the audio in chunks → speech regions → Whisper on the speech only.

Why chunks: a whole hour decoded at once is 230 MB of samples (and twice that
while it is assembled); ``audio_chunk_s`` (5 min) at a time is 19 MB whatever
the length, so memory stays flat. Each chunk is decoded from a seek point
(`mcr.model.media.audio.load_audio`, on the global sample grid, so a chunk's
samples equal the same part of a whole decode), gated by the voice-activity
detector the ``transcribe`` tool uses, and its speech regions go to Whisper in
one call (`FasterWhisperBackend.transcribe`). A region that runs into the
chunk's end is not cut: the next chunk starts at that region, so no sentence
is split between two Whisper calls.

Silence costs the decode and the gate, never Whisper. A sidecar or embedded
subtitle track is read instead of listening (someone's transcript, free), as
``transcribe`` does. Each chunk commits with the position reached, so a
killed build continues at the chunk it was in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from mcr.model.media.audio import NoAudioStream, energy_regions, load_audio, silero_regions
from mcr.model.media.video import VideoInfo
from mcr.tools.asr_backends import Job, TranscriptSegment
from mcr.tools.video_index.records import BuildProgress, IndexSettings
from mcr.tools.video_index.store import IndexStore, Stopwatch

# How many Whisper calls this process made for indexes (tests read it: a second process must make none).
PROCESS_COUNTERS: dict[str, int] = {"asr_calls": 0, "audio_chunks": 0}
_EDGE_S = 0.5  # a region ending this close to a chunk's end may run on into the next chunk


def choose_backend(video: Path, settings: IndexSettings) -> tuple[str, object | None, Job]:
    """(backend name, backend, job): subtitles if the video has them, else Whisper, else pocketsphinx."""
    from mcr.tools.asr import AUTO_ORDER, BACKENDS

    job_settings: dict[str, object] = {"beam_size": settings.beam_size}
    if settings.whisper_model:
        job_settings["whisper_model"] = settings.whisper_model
    job = Job(path=video, start=0.0, end=0.0, language=settings.language, settings=job_settings)
    for name in AUTO_ORDER:
        backend = BACKENDS[name]()
        if backend.unavailable(job) is None:
            return name, backend, job
    return "none", None, job


def run_speech(store: IndexStore, video: Path, info: VideoInfo, settings: IndexSettings,
               report: Callable[[BuildProgress], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> bool:
    """Run (or continue) the speech pass; True when it has reached the end of the audio."""
    status = store.stages()["speech"]
    if status.done:
        return True
    clock, begun = Stopwatch(), time.monotonic()
    if not settings.speech or not info.has_audio:
        with store.transaction() as db:
            store.set_meta(db, "speech_backend", "none")
            store.set_stage(db, "speech", until_s=info.duration, seconds=clock.lap(), done=True)
        return True
    name, backend, job = choose_backend(video, settings)
    if name in ("subtitles", "none"):
        segments = backend.cues(Job(video, 0.0, info.duration, settings.language, job.settings)) if backend else []
        with store.transaction() as db:
            _insert(db, segments)
            store.set_meta(db, "speech_backend", name)
            store.set_stage(db, "speech", until_s=info.duration, seconds=clock.lap(), done=True)
        return True
    pad = backend.vad_pad_s
    start = status.until_s
    total = info.duration
    while start < total - 1e-3:
        end = min(total, start + settings.audio_chunk_s)
        counters: dict[str, float] = {"audio_chunks": 1}
        began = time.perf_counter()
        try:
            clip = load_audio(video, start, end)
        except NoAudioStream:
            clip = None
        counters["audio_decode_s"] = time.perf_counter() - began
        if clip is None or len(clip.samples) == 0:
            regions, following = [], total
        else:
            counters["audio_decoded_s"] = clip.duration
            began = time.perf_counter()
            if settings.vad == "silero":
                regions = silero_regions(clip, pad_s=pad) if pad is not None else silero_regions(clip)
            else:
                regions = energy_regions(clip)
            counters["vad_s"] = time.perf_counter() - began
            following = end
            if end < total and regions and regions[-1][1] >= end - _EDGE_S and regions[-1][0] > start + 1.0:
                following = regions[-1][0]  # this sentence runs on: the next chunk starts with it
                regions = regions[:-1]
        segments: list[TranscriptSegment] = []
        if regions:
            began = time.perf_counter()
            segments = backend.transcribe(clip, regions, Job(video, start, end, settings.language, job.settings))
            counters["asr_s"] = time.perf_counter() - began
            counters["asr_calls"] = 1
            counters["speech_s"] = sum(b - a for a, b in regions)
            PROCESS_COUNTERS["asr_calls"] += 1
        PROCESS_COUNTERS["audio_chunks"] += 1
        done = following >= total - 1e-3
        with store.transaction() as db:
            _insert(db, segments)
            store.add_counters(db, counters)
            store.set_meta(db, "speech_backend", name)
            store.set_stage(db, "speech", until_s=min(following, total), seconds=clock.lap(), done=done)
        if report is not None:
            elapsed = time.monotonic() - begun
            covered = following - status.until_s
            eta = elapsed / covered * (total - following) if covered > 0 else None
            report(BuildProgress(stage="speech", done_s=min(following, total), total_s=total, elapsed_s=elapsed,
                                 eta_s=0.0 if done else eta))
        start = following
        if not done and should_stop is not None and should_stop():
            return False
    if not store.stages()["speech"].done:  # a zero-length tail
        with store.transaction() as db:
            store.set_stage(db, "speech", until_s=total, seconds=clock.lap(), done=True)
    return True


def _insert(db, segments: list[TranscriptSegment]) -> None:
    db.executemany('INSERT INTO segments(start, "end", data) VALUES (?, ?, ?)',
                   [(s.span.start, s.span.end, s.model_dump_json()) for s in segments])
