"""Audio extraction, voice-activity gating and WER (mcr.model.media.audio).

Media is written here with PyAV: a 3 s track that is silent except for a
440 Hz tone from 1.0 s to 1.5 s, so every time a function reports can be
checked against where the sound really is.
"""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from mcr.context import TimeSpan
from mcr.model.media.audio import (
    AudioClip,
    NoAudioStream,
    VadSettings,
    audio_duration,
    energy_regions,
    frame_levels_db,
    load_audio,
    normalize_words,
    silero_regions,
    word_error_rate,
)
from mcr.model.media.audio_tracks import AudioTracks
from mcr.model.media.video import VideoNotFound, VideoOpenFailure

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "media" / "sample.mp4"
TONE = (1.0, 1.5)  # where the tone sounds, seconds


def tone_track(rate: int, seconds: float = 3.0) -> np.ndarray:
    """(N,) float32: silence with a 440 Hz tone at 0.5 amplitude during TONE."""
    t = np.arange(int(rate * seconds)) / rate
    on = (t >= TONE[0]) & (t < TONE[1])
    return (0.5 * np.sin(2 * np.pi * 440 * t) * on).astype(np.float32)


def write_audio_file(path: Path, codec: str, rate: int, layout: str = "stereo", video: bool = False) -> Path:
    """Write tone_track() as `codec` audio (optionally beside a tiny H.264 video)."""
    track = tone_track(rate)
    channels = 2 if layout == "stereo" else 1
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=10) if video else None  # every stream before the first mux
        stream = out.add_stream(codec, rate=rate, layout=layout)
        stream.time_base = Fraction(1, rate)
        if vs is not None:
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
            for i in range(30):
                frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 80, np.uint8), format="rgb24")
                frame.pts = i
                for packet in vs.encode(frame):
                    out.mux(packet)
            for packet in vs.encode():
                out.mux(packet)
        fmt = "s16" if codec == "pcm_s16le" else "fltp"
        block = 1024
        for offset in range(0, len(track), block):
            chunk = track[offset : offset + block]
            planes = np.repeat(chunk[None, :], channels, axis=0)  # (C, n)
            if fmt == "s16":  # packed: (1, n*C) interleaved
                data = (planes.T.reshape(1, -1) * 32767).astype(np.int16)
            else:
                data = planes.astype(np.float32)
            frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
            frame.sample_rate, frame.pts = rate, offset
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("audio")
    silent_video = folder / "novoice.mp4"
    with av.open(str(silent_video), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    garbage = folder / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    return {
        "wav": write_audio_file(folder / "tone.wav", "pcm_s16le", 22050),
        "mp4": write_audio_file(folder / "tone.mp4", "aac", 48000, video=True),
        "novoice": silent_video,
        "garbage": garbage,
    }


# --------------------------------------------------------------------------- #
# AudioTracks: one decode per file, spans cut from it
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("kind", ["wav", "mp4"])
def test_tracks_decode_once_and_cut_spans_of_the_full_decode(media, kind, tmp_path):
    tracks = AudioTracks(tmp_path / "audio")
    full = load_audio(media[kind])
    parts = [tracks.clip(media[kind], a, b) for a, b in ((0.8, 2.2), (0.0, 1.0), (2.5, 10.0))]
    assert tracks.decodes == 1
    i = int(round((0.8 - full.offset) * full.sample_rate))
    assert parts[0].offset == pytest.approx(0.8, abs=1 / 16000)
    assert np.array_equal(parts[0].samples, full.samples[i : i + len(parts[0].samples)])  # the same samples
    assert parts[2].end == pytest.approx(full.end, abs=1e-3)  # past the end: clamped
    (saved,) = (tmp_path / "audio").glob("*.npy")
    again = AudioTracks(tmp_path / "audio")  # a later process: the saved track, memory-mapped, no decode
    clip = again.clip(media[kind], 0.8, 2.2)
    assert again.decodes == 0 and isinstance(clip.samples, np.memmap)
    assert np.array_equal(clip.samples, parts[0].samples)
    assert energy_regions(again.track(media[kind])) == energy_regions(full)


def test_tracks_key_on_content_and_keep_errors_typed(media, tmp_path):
    tracks = AudioTracks(None, max_tracks=1)  # memory only
    tracks.track(media["wav"], key="a")
    tracks.track(media["mp4"], key="b")  # pushes "a" out
    tracks.track(media["wav"], key="a")
    assert tracks.decodes == 3 and not list(tmp_path.iterdir())
    with pytest.raises(NoAudioStream):
        tracks.track(media["novoice"])
    with pytest.raises(VideoNotFound):
        tracks.track(tmp_path / "gone.mp4")


# --------------------------------------------------------------------------- #
# load_audio
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("kind", ["wav", "mp4"])
def test_load_audio_gives_16k_mono_float32(media, kind):
    clip = load_audio(media[kind])
    assert clip.sample_rate == 16000 and clip.offset == 0.0
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert clip.duration == pytest.approx(3.0, abs=0.05)
    peak = float(np.abs(clip.samples).max())
    assert 0.45 < peak < 0.75  # 0.5, or 0.5·√2 where FFmpeg downmixes stereo at -3 dB a channel


@pytest.mark.parametrize("kind", ["wav", "mp4"])
def test_span_load_matches_the_same_part_of_a_full_decode(media, kind):
    full = load_audio(media[kind])
    part = load_audio(media[kind], start=0.8, end=2.2)
    assert part.offset == pytest.approx(0.8, abs=1e-3)
    assert part.duration == pytest.approx(1.4, abs=2e-3)
    ref = full.cut(0.8, 2.2).samples
    n = min(len(ref), len(part.samples))
    # AAC restarts its decoder after a seek; after 50 ms both decodes agree up to
    # the resampler's phase: a seek lands on a 1024-sample AAC frame, off the
    # 48k->16k grid by at most one input sample (21 us), which moves a 440 Hz
    # tone of amplitude 0.71 by at most 2*pi*440*0.71/48000 = 0.041.
    skip = 800
    assert np.abs(part.samples[skip:n] - ref[skip:n]).max() < 0.05
    shifted = [np.abs(part.samples[skip:n - 40] - ref[skip + k : n - 40 + k]).max() for k in (-20, 20)]
    assert min(shifted) > 0.2  # a 1.25 ms misalignment would show


def test_tone_is_found_where_it_was_written_after_span_load(media):
    part = load_audio(media["mp4"], start=0.5, end=2.5)
    (start, end), = energy_regions(part, VadSettings(pad_s=0.0))
    assert start == pytest.approx(TONE[0], abs=0.05)
    assert end == pytest.approx(TONE[1], abs=0.05)


def test_load_audio_span_past_the_end_is_clamped(media):
    clip = load_audio(media["wav"], start=2.5, end=10.0)
    assert clip.offset == pytest.approx(2.5, abs=1e-3)
    assert clip.end == pytest.approx(3.0, abs=0.01)


def test_audio_duration_reads_metadata(media):
    assert audio_duration(media["wav"]) == pytest.approx(3.0, abs=0.05)
    assert audio_duration(media["mp4"]) == pytest.approx(3.0, abs=0.1)


def test_missing_file_is_video_not_found(tmp_path):
    with pytest.raises(VideoNotFound, match="nope.mp4"):
        load_audio(tmp_path / "nope.mp4")
    with pytest.raises(VideoNotFound):
        audio_duration(tmp_path / "nope.mp4")


def test_unreadable_file_is_open_failure(media):
    with pytest.raises(VideoOpenFailure, match="garbage.mp4"):
        load_audio(media["garbage"])
    with pytest.raises(VideoOpenFailure):
        audio_duration(media["garbage"])


def test_video_without_audio_track_says_so(media):
    with pytest.raises(NoAudioStream, match="no audio track"):
        load_audio(media["novoice"])
    with pytest.raises(NoAudioStream):
        audio_duration(media["novoice"])


# --------------------------------------------------------------------------- #
# AudioClip
# --------------------------------------------------------------------------- #


def test_clip_cut_and_pcm16():
    clip = AudioClip(np.linspace(-2, 2, 16000, dtype=np.float32), offset=10.0)
    part = clip.cut(10.25, 10.5)
    assert part.offset == pytest.approx(10.25) and len(part.samples) == 4000
    assert len(clip.cut(9.0, 9.5).samples) == 0  # before the clip: empty, not an error
    pcm = clip.pcm16()
    assert pcm.dtype == np.int16 and pcm.min() == -32767 and pcm.max() == 32767  # clipped, not wrapped


# --------------------------------------------------------------------------- #
# Voice activity
# --------------------------------------------------------------------------- #


def _bursts(spans: list[tuple[float, float]], seconds: float, noise: float = 0.0) -> AudioClip:
    rate = 16000
    t = np.arange(int(rate * seconds)) / rate
    x = np.random.default_rng(0).normal(0, noise, len(t)) if noise else np.zeros(len(t))
    for a, b in spans:
        on = (t >= a) & (t < b)
        x[on] += 0.3 * np.sin(2 * np.pi * 300 * t[on])
    return AudioClip(x.astype(np.float32))


def test_frame_levels_db():
    clip = _bursts([(0.0, 0.3)], 0.6)
    levels = frame_levels_db(clip, 30)
    assert levels.shape == (20,)
    assert levels[:10].min() > -15  # 0.3 sine: about -13 dBFS
    assert levels[11:].max() == pytest.approx(-100.0)


def test_energy_regions_skip_silence_and_merge_short_pauses():
    clip = _bursts([(0.5, 1.0), (1.2, 1.6), (2.5, 3.0)], 4.0, noise=0.001)
    regions = energy_regions(clip, VadSettings(pad_s=0.0))
    assert len(regions) == 2  # the 0.2 s pause is bridged, the 0.9 s one splits
    assert regions[0] == pytest.approx((0.5, 1.6), abs=0.04)
    assert regions[1] == pytest.approx((2.5, 3.0), abs=0.04)


def test_energy_regions_drop_clicks_and_pad():
    clip = _bursts([(0.5, 0.56), (1.0, 2.0)], 3.0)
    (start, end), = energy_regions(clip, VadSettings(pad_s=0.1))
    assert start == pytest.approx(0.9, abs=0.04) and end == pytest.approx(2.1, abs=0.04)


def test_energy_regions_split_long_speech_at_a_quiet_point():
    rate = 16000
    t = np.arange(rate * 10) / rate
    loudness = np.where((t > 4.0) & (t < 4.2), 0.02, 0.3)  # a dip, still above the gate
    clip = AudioClip((loudness * np.sin(2 * np.pi * 300 * t)).astype(np.float32))
    regions = energy_regions(clip, VadSettings(max_region_s=6.0, pad_s=0.0, threshold_db=-60))
    assert len(regions) == 2
    assert 4.0 <= regions[0][1] <= 4.25 and regions[1][1] == pytest.approx(10.0, abs=0.05)


def test_energy_regions_of_silence_and_empty_audio():
    assert energy_regions(AudioClip(np.zeros(16000, np.float32))) == []
    assert energy_regions(AudioClip(np.zeros(0, np.float32))) == []


def test_energy_regions_keep_absolute_times():
    clip = _bursts([(1.0, 2.0)], 3.0)
    shifted = AudioClip(clip.samples, offset=100.0)
    (a, b), = energy_regions(shifted, VadSettings(pad_s=0.0))
    assert a == pytest.approx(101.0, abs=0.04) and b == pytest.approx(102.0, abs=0.04)


@pytest.mark.skipif(not SAMPLE.is_file(), reason="examples/media/sample.mp4 missing: run examples/make_sample.py")
@pytest.mark.parametrize("gate", ["energy", "silero"])
def test_gates_find_each_narration_of_the_sample(gate):
    pytest.importorskip("onnxruntime") if gate == "silero" else None
    facts = json.loads(SAMPLE.with_suffix(".json").read_text())
    clip = load_audio(SAMPLE)
    regions = energy_regions(clip) if gate == "energy" else silero_regions(clip)
    spoken = [TimeSpan(start=s["narration"]["start"], end=s["narration"]["end"]) for s in facts["scenes"]]
    assert len(regions) == len(spoken)
    for (a, b), truth in zip(regions, spoken, strict=True):
        assert TimeSpan(start=a, end=b).iou(truth) > 0.85


def test_silero_rejects_other_sample_rates():
    pytest.importorskip("faster_whisper")
    with pytest.raises(ValueError, match="16000"):
        silero_regions(AudioClip(np.zeros(8000, np.float32), sample_rate=8000))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_silero_ignores_a_pure_tone_but_finds_speech(tmp_path):
    pytest.importorskip("faster_whisper")
    import subprocess

    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "130", "-w", str(wav), "seven ships"], check=True)
    speech = load_audio(wav)
    regions = silero_regions(speech)
    assert len(regions) == 1 and regions[0][1] - regions[0][0] > 0.5
    tone = AudioClip(tone_track(16000))
    assert silero_regions(tone) == []
    assert len(energy_regions(tone)) == 1  # the energy gate cannot tell


# --------------------------------------------------------------------------- #
# Word error rate
# --------------------------------------------------------------------------- #


def test_wer_counts_substitutions_deletions_insertions():
    assert word_error_rate("the cat sat", "the cat sat") == 0.0
    assert word_error_rate("the cat sat", "the bat sat") == pytest.approx(1 / 3)
    assert word_error_rate("the cat sat", "the sat") == pytest.approx(1 / 3)
    assert word_error_rate("the cat sat", "the cat sat down there") == pytest.approx(2 / 3)
    assert word_error_rate("the cat sat", "") == 1.0


def test_wer_normalises_case_punctuation_and_small_numbers():
    assert normalize_words("Three coins, fresh BREAD!") == ["three", "coins", "fresh", "bread"]
    assert word_error_rate("for three coins.", "For 3 coins") == 0.0


def test_wer_needs_a_reference():
    with pytest.raises(ValueError, match="reference"):
        word_error_rate(" ,. ", "anything")


def test_a_short_span_of_a_long_file_decodes_only_the_span(media, tmp_path, monkeypatch):
    """A long video's whole track was decoded by its index already: a 1 s span must not decode it again."""
    import mcr.model.media.audio_tracks as audio_tracks

    monkeypatch.setattr(audio_tracks, "WHOLE_TRACK_MAX_S", 1.5)  # the test tone (a few seconds) counts as long
    tracks = AudioTracks(tmp_path / "audio")
    part = tracks.clip(media["mp4"], 0.8, 1.8)
    assert tracks.decodes == 0 and tracks.span_decodes == 1 and not list((tmp_path / "audio").glob("*.npy"))
    full = load_audio(media["mp4"])
    i = int(round((part.offset - full.offset) * full.sample_rate))
    assert np.array_equal(part.samples, full.samples[i : i + len(part.samples)])  # the full decode's samples
    tracks.clip(media["mp4"], 0.0, 3.0)  # a long span: the whole track, streamed to disk, and cut from then on
    assert tracks.decodes == 1
    tracks.clip(media["mp4"], 0.8, 1.8)
    assert tracks.decodes == 1 and tracks.span_decodes == 1
