"""The transcribe tool's `subtitles` backend: sidecar .srt/.vtt files and embedded streams.

Subtitles are a transcript someone already made; `auto` must prefer them and
read their cue times exactly (no recogniser runs).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import pytest

from mcr.context import Context, VideoRef
from mcr.tools.asr import TranscribeTool
from mcr.tools.base import ToolContext, ToolFailure

SRT = """1
00:00:00,500 --> 00:00:03,400
The red lighthouse stands
on the northern cliff.

2
00:00:06,500 --> 00:00:09,400
At night the <i>keeper</i> counts seven ships.
"""

VTT = """WEBVTT

00:00.500 --> 00:03.400
The red lighthouse, stands.

00:12.500 --> 00:15.300 align:start
<v Narrator>In the morning &amp; at noon
"""


def make_ctx(video: Path, workdir: Path, **settings) -> ToolContext:
    return ToolContext(context=Context(), video=VideoRef(path=str(video)), workdir=workdir, settings=settings)


@pytest.fixture
def video_copy(sample_video, tmp_path) -> Path:
    """sample.mp4 in a folder of its own, so sidecars can be put beside it."""
    dst = tmp_path / "media" / "clip.mp4"
    dst.parent.mkdir()
    shutil.copyfile(sample_video, dst)
    return dst


@pytest.fixture(scope="module")
def tool() -> TranscribeTool:
    return TranscribeTool()


def test_auto_prefers_a_sidecar_srt(tool, video_copy, tmp_path):
    video_copy.with_suffix(".srt").write_text(SRT)
    out = tool({}, make_ctx(video_copy, tmp_path))
    assert out.backend == "subtitles"
    assert [s.text for s in out.segments] == [
        "The red lighthouse stands on the northern cliff.",  # line break joined
        "At night the keeper counts seven ships.",  # <i> tags dropped
    ]
    assert [(s.span.start, s.span.end) for s in out.segments] == [(0.5, 3.4), (6.5, 9.4)]
    assert all(s.words == [] for s in out.segments)  # cues carry no word times
    assert out.text == " ".join(s.text for s in out.segments)


def test_sidecar_vtt_with_voice_tags_and_entities(tool, video_copy, tmp_path):
    video_copy.with_suffix(".vtt").write_text(VTT)
    out = tool({}, make_ctx(video_copy, tmp_path))
    assert [s.text for s in out.segments] == ["The red lighthouse, stands.", "In the morning & at noon"]
    assert out.segments[1].span.start == 12.5 and out.segments[1].span.end == 15.3


def test_span_keeps_only_overlapping_cues(tool, video_copy, tmp_path):
    video_copy.with_suffix(".srt").write_text(SRT)
    out = tool({"span": {"start": 5.0, "end": 10.0}}, make_ctx(video_copy, tmp_path))
    assert [s.text for s in out.segments] == ["At night the keeper counts seven ships."]
    out = tool({"span": {"start": 3.0, "end": 7.0}}, make_ctx(video_copy, tmp_path))
    assert len(out.segments) == 2  # both cues overlap; their times stay the cues' own
    out = tool({"span": {"start": 20.0, "end": 24.0}}, make_ctx(video_copy, tmp_path))
    assert out.segments == [] and out.backend == "subtitles"


def test_editing_the_sidecar_invalidates_the_cache(tool, video_copy, tmp_path):
    srt = video_copy.with_suffix(".srt")
    srt.write_text(SRT)
    first = tool({}, make_ctx(video_copy, tmp_path))
    srt.write_text(SRT.replace("seven ships", "eight boats"))
    second = tool({}, make_ctx(video_copy, tmp_path))
    assert first.segments[1].text.endswith("seven ships.")
    assert second.segments[1].text.endswith("eight boats.")


def test_explicit_audio_backend_ignores_subtitles(tool, video_copy, tmp_path):
    video_copy.with_suffix(".srt").write_text(SRT)
    out = tool({"backend": "pocketsphinx", "span": {"start": 4.0, "end": 6.0}}, make_ctx(video_copy, tmp_path))
    assert out.backend == "pocketsphinx" and out.segments == []


def test_unparseable_sidecar_is_not_a_transcript(tool, video_copy, tmp_path):
    video_copy.with_suffix(".srt").write_bytes(b"\x00\x01 definitely not subtitles \xff" * 10)
    out = tool({"span": {"start": 4.0, "end": 6.0}}, make_ctx(video_copy, tmp_path))
    assert out.backend == "faster_whisper"  # the audio default, as without any sidecar
    with pytest.raises(ToolFailure) as info:
        tool({"backend": "subtitles"}, make_ctx(video_copy, tmp_path))
    assert info.value.error_type == "no_subtitles"


def test_embedded_subtitle_stream(tool, sample_video, tmp_path):
    """sample.mp4's streams plus the SRT cues, remuxed (no re-encode) into Matroska."""
    srt = tmp_path / "cues.srt"
    srt.write_text(SRT)
    mkv = tmp_path / "with_subs.mkv"
    with av.open(str(sample_video)) as src, av.open(str(srt)) as subs, av.open(str(mkv), "w") as out:
        targets = {s.index: out.add_stream_from_template(s) for s in (src.streams.video[0], src.streams.audio[0])}
        sub_stream = out.add_stream_from_template(subs.streams.subtitles[0])
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = targets[packet.stream.index]
                out.mux(packet)
        for packet in subs.demux():
            if packet.dts is not None:
                packet.stream = sub_stream
                out.mux(packet)
    assert not mkv.with_suffix(".srt").exists()
    out = tool({}, make_ctx(mkv, tmp_path))
    assert out.backend == "subtitles"
    assert [s.text for s in out.segments][1] == "At night the keeper counts seven ships."
    # Matroska shifts every stream by the AAC priming delay (~46 ms) so no time is negative.
    assert out.segments[0].span.start == pytest.approx(0.5, abs=0.06)
    assert out.segments[1].span.end == pytest.approx(9.4, abs=0.06)
