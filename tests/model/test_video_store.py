"""The frame store (a second request decodes nothing) and the one container opener."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mcr.model.media.audio import NoAudioStream
from mcr.model.media.video import (
    FrameStore,
    VideoNotFound,
    VideoOpenFailure,
    frames_decoded,
    open_container,
    read_frames_at,
)


def test_second_request_decodes_nothing(make_video, which_frame):
    path = make_video(n_frames=48, fps=24)
    store = FrameStore()
    times = [0.5, 1.0, 1.5]
    first = read_frames_at(path, times, store=store)
    before = frames_decoded()
    again = read_frames_at(path, [1.5, 0.5, 1.0], store=store)
    assert frames_decoded() == before  # every frame came from the store
    assert [which_frame(f.image) for f in again] == [which_frame(f.image) for f in (first[2], first[0], first[1])]
    assert store.hits == 3 and store.misses == 3 and len(store) == 3
    # an overlapping request decodes only its new time
    read_frames_at(path, [1.0, 1.75], store=store)
    assert frames_decoded() == before + 1
    with pytest.raises(ValueError):
        again[0].image[0, 0, 0] = 1  # shared frames are read-only


def test_store_misses_an_edited_file_and_stays_in_budget(make_video, which_frame):
    path = make_video(n_frames=24, fps=24)
    one = read_frames_at(path, [0.0])[0].image.nbytes
    store = FrameStore(max_bytes=2 * one)
    read_frames_at(path, [0.0, 0.25, 0.5], store=store)
    assert len(store) == 2 and store.nbytes == 2 * one  # the oldest was evicted
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # "edited"
    before = frames_decoded()
    read_frames_at(path, [0.5], store=store)
    assert frames_decoded() == before + 1


def test_store_gives_the_same_pixels_as_decoding(make_video):
    path = make_video(n_frames=48, fps=24)
    store = FrameStore()
    times = [0.1, 0.9, 1.3]
    read_frames_at(path, times, store=store)
    for a, b in zip(read_frames_at(path, times, store=store), read_frames_at(path, times)):
        assert a.time == b.time and np.array_equal(a.image, b.image)


def test_one_opener_for_video_and_audio(make_video, tmp_path):
    silent = make_video(n_frames=4, fps=4)
    with open_container(silent) as container:
        assert container.streams.video
    with open_container(silent, need="any"):
        pass
    with pytest.raises(NoAudioStream, match="no audio track"):
        with open_container(silent, need="audio"):
            pass
    with pytest.raises(VideoNotFound, match="not found"):
        with open_container(tmp_path / "missing.mp4"):
            pass
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(VideoOpenFailure, match="cannot read video"):
        with open_container(junk):
            pass
