"""Bad videos, made at test time: each is a typed error that names the file and the fix (and `mcr run` exits 2),
or, where the content is a real video, it works.

Every case is written into the reliability ledger with what happened and the message the user saw.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from mcr.model.media.video import (
    MAX_FRAME_PIXELS,
    VideoError,
    VideoNotFound,
    VideoOpenFailure,
    probe,
    read_frames_at,
)

# --------------------------------------------------------------------------- #
# Files that are not (readable) videos: a typed error from the reader, exit 2 from the CLI
# --------------------------------------------------------------------------- #


def _zero(folder, c):
    (folder / "zero.mp4").write_bytes(b"")
    return folder / "zero.mp4"


def _truncated_mp4(folder, c):
    whole = c.write_clip(folder / "whole.mp4", noise=True).read_bytes()
    (folder / "truncated.mp4").write_bytes(whole[: len(whole) // 2])  # the index (moov) is at the end: lost
    return folder / "truncated.mp4"


def _corrupt_header(folder, c):
    whole = c.write_clip(folder / "ok.mp4").read_bytes()
    (folder / "header.mp4").write_bytes(b"\x00" * 64 + whole[64:])
    return folder / "header.mp4"


def _png_named_mp4(folder, c):
    return c.write_png(folder / "picture.mp4")


def _audio_only(folder, c):
    return c.write_audio_only(folder / "speech.m4a")


def _directory(folder, c):
    (folder / "clips.mp4").mkdir()
    return folder / "clips.mp4"


def _symlink_loop(folder, c):
    os.symlink(folder / "b.mp4", folder / "a.mp4")
    os.symlink(folder / "a.mp4", folder / "b.mp4")
    return folder / "a.mp4"


def _dangling_link(folder, c):
    os.symlink(folder / "gone.mp4", folder / "link.mp4")
    return folder / "link.mp4"


BAD = [  # name, maker, error class, what the message must say (the problem, the fix), caught at load?
    ("zero bytes", _zero, VideoOpenFailure, ("empty (0 bytes)", "download it again"), False),
    ("truncated mp4 (index lost)", _truncated_mp4, VideoOpenFailure, ("Invalid data", "re-encoding"), False),
    ("corrupt header", _corrupt_header, VideoOpenFailure, ("Invalid data", "re-encoding"), False),
    ("wrong extension: a PNG named .mp4", _png_named_mp4, VideoOpenFailure, ("still image", "give a video file"), False),
    ("audio only", _audio_only, VideoOpenFailure, ("only audio", "give the video itself"), False),
    ("a directory", _directory, VideoOpenFailure, ("is a directory", "name one video file"), True),
    ("a symlink loop", _symlink_loop, VideoOpenFailure, ("symbolic link loop", "real file"), True),
    ("a dangling symlink", _dangling_link, VideoOpenFailure, ("does not exist", "real file"), True),
]


@pytest.mark.parametrize("name,make,error,says,at_load", BAD, ids=[b[0] for b in BAD])
def test_bad_video_is_a_typed_error_and_exit_2(name, make, error, says, at_load, corpus, ledger, tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    video = make(folder, corpus)
    with pytest.raises(error) as caught:
        probe(video)
    message = str(caught.value)
    assert str(video) in message and all(s in message for s in says), message

    task = corpus.write_task(folder / "task.yaml", video.name)
    code, _, err = corpus.mcr("run", str(task), "--workdir", str(tmp_path / "w"), "-q")
    assert code == 2, err
    assert video.name in err and "Traceback" not in err, err
    if at_load:  # the task loader refuses it before anything starts, naming the line and key
        assert "(key 'video')" in err
    where = "task loader (TaskFileError)" if at_load else type(caught.value).__name__
    ledger.case("video", name, outcome=f"{type(caught.value).__name__}; mcr run exit 2 ({where})", message=message)


def test_no_read_permission(corpus, ledger, tmp_path):
    """chmod 000. As root a read still succeeds, so the check runs in a thread whose file-system uid is nobody."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="mcr-perm-"))  # /tmp itself: `nobody` can reach it (pytest's tmp is 0700)
    try:
        folder.chmod(0o777)
        video = corpus.write_clip(folder / "secret.mp4")
        video.chmod(0o000)
        task = corpus.write_task(folder / "task.yaml", video.name)
        task.chmod(0o644)

        def attempt():
            with pytest.raises(VideoOpenFailure) as caught:
                probe(video)
            return str(caught.value), corpus.mcr("run", str(task), "--workdir", str(folder / "w"), "-q")

        if os.geteuid() == 0:
            try:
                message, (code, _, err) = corpus.run_unprivileged(attempt)
                how = "as root: checked in a thread with fsuid nobody (setfsuid)"
            except OSError as exc:
                pytest.skip(f"running as root and setfsuid is unavailable ({exc}): a mode-000 file stays readable")
        else:
            message, (code, _, err) = attempt()
            how = "chmod 000"
        assert "permission denied" in message and "chmod u+r" in message and str(video) in message
        assert code == 2 and "permission denied" in err, err
        ledger.case("video", f"no read permission ({how})", outcome="VideoOpenFailure; mcr run exit 2", message=message)
    finally:
        for p in folder.rglob("*"):
            with contextlib.suppress(OSError):
                p.chmod(0o700)
        shutil.rmtree(folder, ignore_errors=True)


def test_truncated_mid_stream_mkv_says_where_it_ends(corpus, ledger, tmp_path):
    """A Matroska file cut in the middle opens (its header claims 8 s) but its frames stop early:
    a time after the cut is a truncation error, not the last frame passed off as that moment."""
    whole = corpus.write_clip(tmp_path / "whole.mkv", seconds=8, noise=True).read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole[: int(len(whole) * 0.4)])
    info = probe(cut)
    assert info.duration == pytest.approx(8.0)
    early = read_frames_at(cut, [0.5])[0]
    assert early.time == pytest.approx(0.5, abs=0.09)
    with pytest.raises(VideoOpenFailure) as caught:
        read_frames_at(cut, [7.5])
    message = str(caught.value)
    assert "truncated" in message and str(cut) in message and "download it again" in message
    ledger.case("video", "truncated mid-stream (mkv: header says 8 s, frames stop at ~3 s)",
                outcome="frames before the cut decode; after it VideoOpenFailure", message=message)


# --------------------------------------------------------------------------- #
# Real videos in odd shapes: they work
# --------------------------------------------------------------------------- #


def _run_ok(corpus, tmp_path, folder: Path, video_name: str, **task_keys) -> str:
    task = corpus.write_task(folder / "task.yaml", video_name, **task_keys)
    code, out, err = corpus.mcr("run", str(task), "--workdir", str(tmp_path / "w"))
    assert code == 0, out + err
    return out


@pytest.mark.parametrize("name,stem", [("wrong extension: an mp4 named .txt", "clip.txt"),
                                       ("a non-ASCII path", "vidéo 東京/clip-ü.mp4"),
                                       ("a path with spaces", "my videos/a clip.mp4")])
def test_odd_names_of_real_videos_work(name, stem, corpus, ledger, tmp_path):
    folder = tmp_path / "media"
    video = folder / stem
    video.parent.mkdir(parents=True, exist_ok=True)
    corpus.write_clip(video, format="mp4")  # the name says .txt; the bytes are an mp4
    assert probe(video).duration == pytest.approx(2.0)
    out = _run_ok(corpus, tmp_path, folder, stem)
    assert "Answer: 2.0 s" in out
    ledger.case("video", name, outcome="works (content decides, not the name); mcr run exit 0",
                message=f"answered from video_info: {out.split('Answer: ')[1].splitlines()[0]}")


@pytest.mark.parametrize("name,seconds,fps,frames", [("one frame", 1 / 12, 12, 1), ("0.1 s", 0.1, 30, 3)])
def test_tiny_videos_work(name, seconds, fps, frames, corpus, ledger, tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    video = corpus.write_clip(folder / "tiny.mp4", seconds=seconds, fps=fps)
    info = probe(video)
    assert info.total_frames == frames and info.duration == pytest.approx(seconds, abs=1e-3)
    got = read_frames_at(video, [0.0, info.duration / 2, info.duration])  # the end itself shows the last frame
    assert len(got) == 3 and got[-1].time <= info.duration
    _run_ok(corpus, tmp_path, folder, video.name)
    ledger.case("video", name, outcome="works; frames at 0, middle and end; mcr run exit 0",
                message=f"{info.total_frames} frame(s), {info.duration:.3f} s")


def test_video_only_transcribe_says_no_audio_and_the_rest_works(corpus, ledger, tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    video = corpus.write_clip(folder / "silent.mp4")
    plan = [{"calls": [{"tool": "transcribe"}, {"tool": "video_info"}]},
            {"answer": "{{ results.video_info.duration }} s"}]
    task = corpus.write_task(folder / "task.yaml", video.name, tools=["transcribe", "video_info"],
                             policy={"name": "scripted", "plan": plan})
    code, out, err = corpus.mcr("run", str(task), "--workdir", str(tmp_path / "w"))
    assert code == 0, out + err
    error_line = next(line for line in out.splitlines() if "error" in line and "transcribe" in line)
    assert "no_audio" in error_line and "silent.mp4" in error_line
    assert "Answer: 2.0 s" in out
    ledger.case("video", "video only (no audio track)",
                outcome="transcribe: ToolError no_audio; video_info works; the episode answered, exit 0",
                message=error_line.split("error", 1)[1].strip())


def _peak_rss_mb() -> int | None:
    status = Path("/proc/self/status")
    if not status.is_file():
        return None
    line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024


def test_8k_is_scaled_down_as_it_is_decoded(corpus, ledger, tmp_path):
    """7680x4320: frames come back at 3840x2160 (MAX_FRAME_PIXELS), scaled during the colour conversion,
    so no 95 MB RGB array per frame is ever made (a look at 30 frames would otherwise hold 2.8 GB)."""
    folder = tmp_path / "media"
    folder.mkdir()
    video = corpus.write_clip(folder / "8k.mp4", seconds=0.25, fps=8, size=(7680, 4320))
    info = probe(video)
    assert (info.width, info.height) == (3840, 2160) and info.width * info.height <= MAX_FRAME_PIXELS
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark (Linux), to report the decode's own
    before = _peak_rss_mb()
    frames = read_frames_at(video, [0.0, 0.125])
    after = _peak_rss_mb()
    assert [f.image.shape for f in frames] == [(2160, 3840, 3)] * 2
    full_frame = 7680 * 4320 * 3
    assert sum(f.image.nbytes for f in frames) == 2 * full_frame // 4
    out = _run_ok(corpus, tmp_path, folder, video.name)
    assert "3840x2160" in out
    peak = f"; peak RSS rose {after - before} MB while decoding (decoder buffers included)" if before else ""
    ledger.case("video", "8K resolution (7680x4320)",
                outcome="scaled to 3840x2160 while decoding; mcr run exit 0",
                message=f"2 frames hold {2 * full_frame // 4 / 2**20:.0f} MB (unscaled: {2 * full_frame / 2**20:.0f} MB){peak}")


def test_rotated_metadata_comes_back_upright(corpus, ledger, tmp_path):
    """A display matrix for 'rotate 90 clockwise' (tkhd, as phones write): the frame is turned, size swapped."""
    video = corpus.rotate_mp4(corpus.left_half_white(tmp_path / "portrait.mp4"))
    info = probe(video)
    assert info.rotation == 270  # counter-clockwise degrees, i.e. 90 clockwise
    assert (info.width, info.height) == (48, 64)
    image = read_frames_at(video, [0.5])[0].image
    assert image.shape == (64, 48, 3)
    top, bottom = image[:8].mean(), image[-8:].mean()
    assert top > 200 and bottom < 50  # the stored left half, turned clockwise, is now the top
    ledger.case("video", "rotated metadata (display matrix, 90 degrees clockwise)",
                outcome="upright: 48x64, the stored left half on top (checked by pixels)",
                message=f"probe rotation={info.rotation} (ccw), size {info.width}x{info.height}")


def test_variable_frame_rate_picks_the_frame_on_screen(corpus, ledger, tmp_path):
    pts_ms = [0, 40, 80, 700, 740, 2000, 2010, 2020, 2900]
    video = corpus.write_clip(tmp_path / "vfr.mkv", pts_ms=pts_ms)
    asked = [0.0, 0.5, 0.7, 1.9, 2.015, 2.5, 2.9]
    shown = [f.time for f in read_frames_at(video, asked)]
    expected = [0.0, 0.08, 0.7, 0.74, 2.01, 2.02, 2.9]  # the last frame whose time is <= each asked time
    assert shown == pytest.approx(expected, abs=1e-3)
    ledger.case("video", "variable frame rate (gaps of 10 ms to 1.3 s)",
                outcome="each time gets the frame on screen then (pts, not index)",
                message=f"asked {asked} -> shown {[round(t, 3) for t in shown]}")


def test_mpegts_with_a_start_offset_and_no_seek_points(corpus, ledger, tmp_path):
    """Found by the corpus: MPEG-TS starts its clock at ~1.4 s and here has one keyframe; every read used to fail."""
    video = corpus.write_clip(tmp_path / "broadcast.ts", seconds=4, format="mpegts")
    info = probe(video)
    shown = [round(f.time, 3) for f in read_frames_at(video, [0.0, 1.5, 3.5])]
    assert shown == [0.0, 1.5, 3.5]
    ledger.case("video", "MPEG-TS: clock offset, one keyframe (found here)",
                outcome="frames at the times asked (was: 'no frame could be decoded')",
                message=f"duration {info.duration:.2f} s; frames at {shown}")


def test_a_file_that_grows_while_being_read(corpus, ledger, tmp_path):
    """A recording still being written (MPEG-TS, appended by a thread): each read works on what is there
    or raises a VideoError; once it is complete the whole video reads."""
    source = corpus.write_clip(tmp_path / "source.ts", seconds=4, noise=True, format="mpegts")
    target = tmp_path / "growing.ts"
    outcomes: dict[str, int] = {}
    with corpus.GrowingFile(source, target, chunk=4096, pause_s=0.005) as growing:
        while not growing.done.is_set():
            try:
                info = probe(target)
                read_frames_at(target, [info.duration / 2])
                outcomes["read"] = outcomes.get("read", 0) + 1
            except VideoError as exc:
                outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
            time.sleep(0.01)
    info = probe(target)
    assert info.duration == pytest.approx(probe(source).duration, abs=0.1)
    assert read_frames_at(target, [3.5])[0].time == pytest.approx(3.5, abs=0.09)
    assert sum(outcomes.values()) >= 1
    ledger.case("video", "a file that grows while being read (writer thread)",
                outcome="each read: the frames so far or a VideoError, never a crash; complete file reads whole",
                message=", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))


def test_missing_video_at_the_reader(ledger, tmp_path):
    with pytest.raises(VideoNotFound) as caught:
        probe(tmp_path / "nowhere.mp4")
    assert "nowhere.mp4" in str(caught.value) and "check the path" in str(caught.value)
    ledger.case("video", "no such file", outcome="VideoNotFound", message=str(caught.value))


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip(reason="the corpus's file-system cases are Linux-specific")
