"""Probing and decoding real files: seeking, VFR, rotation, odd sizes, errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mcr.model.media.video import (
    SpanOutsideVideo,
    VideoNotFound,
    VideoOpenFailure,
    check_span,
    frame_at,
    iter_frames,
    probe,
    read_frames_at,
    resize,
    save_frames,
    save_image,
)


def test_probe_reports_the_sample(sample_mp4):
    info = probe(sample_mp4)
    assert (info.duration, info.fps, info.width, info.height) == (24.0, 24.0, 640, 360)
    assert info.has_audio and info.rotation == 0 and info.total_frames == 576


def test_frames_at_times_are_the_frames_on_screen(make_video, which_frame):
    path = make_video(n_frames=48, fps=24)
    times = [1.5, 0.0, 0.02, 1.0 / 24, 1.99, 0.5]  # unsorted, between frames, on pts
    frames = read_frames_at(path, times)
    assert [which_frame(f.image) for f in frames] == [i % 30 for i in (36, 0, 0, 1, 47, 12)]
    assert [round(f.time * 24) for f in frames] == [36, 0, 0, 1, 47, 12]
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8


def test_times_past_the_end_give_the_last_frame(make_video, which_frame):
    path = make_video(n_frames=10, fps=10)
    assert which_frame(frame_at(path, 5.0).image) == 9


def test_seeking_across_a_long_video(make_video, which_frame):
    """Frames far apart in a 10-minute video come from seeks, and are the right ones."""
    path = make_video("long.mp4", n_frames=1200, fps=2, size=(32, 32))
    assert probe(path).duration == pytest.approx(600.0)
    frames = read_frames_at(path, [5.0, 299.5, 598.0])
    assert [which_frame(f.image) for f in frames] == [10 % 30, 599 % 30, 1196 % 30]
    assert [f.time for f in frames] == [5.0, 299.5, 598.0]


def test_variable_frame_rate_picks_by_time(make_video, which_frame):
    times = [0.0, 0.1, 0.15, 0.9, 1.0, 2.5, 2.52, 3.0]
    path = make_video("vfr.mkv", n_frames=len(times), fps=10, times=times, container="matroska")
    got = read_frames_at(path, [0.12, 0.5, 0.95, 2.0, 2.51, 3.1])
    assert [which_frame(f.image) for f in got] == [1, 2, 3, 4, 5, 7]
    assert [f.time for f in got] == pytest.approx([0.1, 0.15, 0.9, 1.0, 2.5, 3.0])


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_is_applied(make_video, rotation):
    path = make_video(f"rot{rotation}.mp4", n_frames=4, fps=4, size=(64, 32), rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation
    assert (info.width, info.height) == ((32, 64) if rotation in (90, 270) else (64, 32))
    image = frame_at(path, 0.0).image
    assert image.shape[:2] == (info.height, info.width)
    # The green marker sits top-left when stored; rotating counter-clockwise
    # moves it to bottom-left (90), bottom-right (180), top-right (270).
    green = image[..., 1] > 128
    ys, xs = np.nonzero(green)
    corner = (ys.mean() > image.shape[0] / 2, xs.mean() > image.shape[1] / 2)
    assert corner == {90: (True, False), 180: (True, True), 270: (False, True)}[rotation]


def test_odd_frame_size(make_video, which_frame):
    path = make_video(
        "odd.mkv", n_frames=6, fps=3, size=(37, 23), codec="ffv1", pix_fmt="yuv444p", container="matroska"
    )
    info = probe(path)
    assert (info.width, info.height) == (37, 23)
    frame = frame_at(path, 1.0)
    assert frame.image.shape == (23, 37, 3) and which_frame(frame.image) == 3


def test_very_short_video(make_video, which_frame):
    path = make_video("one.mp4", n_frames=1, fps=25)
    info = probe(path)
    assert info.total_frames == 1
    assert which_frame(frame_at(path, 0.0).image) == 0


def test_iter_frames_yields_only_the_span(make_video, which_frame):
    path = make_video(n_frames=48, fps=24)
    frames = list(iter_frames(path, 1.0, 1.25))
    assert [which_frame(f.image) for f in frames] == [24, 25, 26, 27, 28, 29]


def test_missing_file_is_typed(tmp_path):
    with pytest.raises(VideoNotFound, match="check the path"):
        read_frames_at(tmp_path / "nope.mp4", [0.0])
    with pytest.raises(VideoNotFound):
        probe(tmp_path / "nope.mp4")


def test_garbage_file_is_typed(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    with pytest.raises(VideoOpenFailure, match="re-encoding"):
        probe(bad)
    with pytest.raises(VideoOpenFailure):
        read_frames_at(bad, [0.0])


def test_audio_only_file_is_typed(tmp_path):
    import av

    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    with pytest.raises(VideoOpenFailure, match="no video stream"):
        read_frames_at(path, [0.0])


def test_check_span(sample_mp4):
    info = probe(sample_mp4)
    assert check_span(info, 6.0, 24.03) == (6.0, 24.0)  # float slack at the end is clipped
    for start, end in [(-1.0, 2.0), (5.0, 30.0), (25.0, 26.0), (8.0, 7.0)]:
        with pytest.raises(SpanOutsideVideo, match="between 0 and 24.00s"):
            check_span(info, start, end)


def test_save_image_roundtrip(tmp_path):
    image = np.zeros((20, 30, 3), np.uint8)
    image[5:10, 5:10] = (255, 0, 0)
    png = save_image(image, tmp_path / "sub" / "f.png")
    assert np.array_equal(np.asarray(Image.open(png)), image)  # PNG is lossless
    jpg = save_image(image, tmp_path / "f.jpg")
    assert np.abs(np.asarray(Image.open(jpg)).astype(int) - image).mean() < 10
    with pytest.raises(ValueError, match=r"\.png"):
        save_image(image, tmp_path / "f.gif")


def test_resize_shape_and_identity():
    image = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    assert resize(image, 30, 40) is image
    assert resize(image, 56, 84).shape == (56, 84, 3)


def test_seeking_agrees_with_decoding_everything(make_video, which_frame):
    """Random times (with gaps that force re-seeks) give the frames a full decode shows."""
    path = make_video("gop.mp4", n_frames=600, fps=10, size=(32, 32))
    every = list(iter_frames(path))  # ground truth, decoded start to end
    assert len(every) == 600
    times = np.random.default_rng(1).uniform(0, 60, 40).round(3).tolist()
    got = read_frames_at(path, times)
    for t, frame in zip(times, got):
        truth = max((f for f in every if f.time <= t + 1e-4), key=lambda f: f.time)
        assert frame.time == truth.time
        assert np.array_equal(frame.image, truth.image)


def test_save_frames_writes_named_images(sample_mp4, tmp_path):
    paths = save_frames(sample_mp4, [3.0, 12.5], tmp_path / "kf", suffix=".png")
    assert [p.name for p in paths] == ["frame_003000ms.png", "frame_012500ms.png"]
    red, green = (np.asarray(Image.open(p)).reshape(-1, 3).mean(axis=0) for p in paths)  # (3,) each
    assert red[0] > 2 * red[1] and green[1] > green[0]
