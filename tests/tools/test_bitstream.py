"""Looks planned from the bitstream (`mcr.tools.video_index.bitstream`) and the sparse picture pass they drive.

The planner is checked on packet tables whose sizes say exactly one thing
each (a still, a cut, a change inside a group, a long static stretch); the
picture pass on real H.264 encodes of text slides, whose cuts and words must
come out as they do from a full decode while most frames stay undecoded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mcr.tools.video_index import IndexSettings, VideoIndex

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from slides import make_slides  # noqa: E402
from mcr.tools.video_index.bitstream import PacketTable, plan_looks, repeats_picture

TB = 1 / 1000  # pts in milliseconds


def table(sizes: list[int], keys: list[int], step_ms: int = 250) -> PacketTable:
    """Packets every `step_ms`; a keyframe repeats the last one's picture when its size does (as a still's do)."""
    n = len(sizes)
    repeat = np.zeros(n, bool)
    for prev, cur in zip(keys[:-1], keys[1:]):
        repeat[cur] = sizes[prev] == sizes[cur]
    return PacketTable(np.arange(n, dtype=np.int64) * step_ms, np.asarray(sizes, np.int64),
                       np.isin(np.arange(n), keys), repeat)


def still(n_groups: int, key_size: int = 1600, group: int = 8) -> tuple[list[int], list[int]]:
    sizes, keys = [], []
    for g in range(n_groups):
        keys.append(len(sizes))
        sizes += [key_size] + [14, 13, 20, 13, 15, 22, 13][: group - 1]
    return sizes, keys


def test_a_still_is_looked_at_once():
    sizes, keys = still(10)  # 20 s of one picture: byte-identical keyframes, tiny predicted frames
    looks = plan_looks(table(sizes, keys), TB, max_gap_s=60)
    assert [(look.pts, look.why) for look in looks] == [(0, "first")]


def test_a_keyframe_of_another_picture_is_a_look():
    sizes, keys = still(5)
    more, more_keys = still(5, key_size=2300)
    looks = plan_looks(table(sizes + more, keys + [k + len(sizes) for k in more_keys]), TB, max_gap_s=60)
    assert [(look.pts, look.why) for look in looks] == [(0, "first"), (len(sizes) * 250, "new keyframe")]


def test_a_change_inside_a_group_is_a_spike_decoded_from_its_keyframe():
    sizes, keys = still(3)
    sizes[8 + 5] = 900  # the second group's sixth frame: a title appears without a keyframe
    looks = plan_looks(table(sizes, keys), TB, max_gap_s=60)
    spike = [look for look in looks if look.why == "spike"]
    assert len(spike) == 1 and spike[0].pts == 13 * 250 and spike[0].key_pts == 8 * 250


def test_a_static_stretch_is_still_looked_at_every_gap():
    sizes, keys = still(60)  # 120 s
    looks = plan_looks(table(sizes, keys), TB, max_gap_s=30)
    assert [look.pts / 1000 for look in looks] == [0.0, 30.0, 60.0, 90.0]
    assert all(look.pts == look.key_pts for look in looks)  # gap looks are keyframes: one decode each


def test_an_empty_table_plans_nothing():
    empty = PacketTable(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool))
    assert plan_looks(empty, TB) == []


def test_a_keyframe_repeats_a_picture_by_its_bytes_not_its_size():
    """Header bits that shift the payload still repeat; another picture of nearly the same size does not."""
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    shifted = b"\x65\x88" + picture[1:]  # a header one byte longer, the picture's bytes after it
    other = rng.integers(0, 256, 4050, dtype=np.uint8).tobytes()  # 1% larger, another picture
    assert repeats_picture(picture, picture) and repeats_picture(picture, shifted)
    assert not repeats_picture(picture, other)
    assert not repeats_picture(picture, picture + bytes(400))  # 10% larger


@pytest.fixture(scope="module")
def long_slides(tmp_path_factory) -> Path:
    # a keyframe every 2 s, as streaming encoders write (and the long suite's media kit)
    return make_slides(tmp_path_factory.mktemp("sparse") / "slides.mp4", seconds=40, slide_s=5.0, fps=12, keyint=24)


def test_the_sparse_scan_finds_the_same_cuts_and_words_from_a_fraction_of_the_frames(long_slides, tmp_path):
    pytest.importorskip("rapidocr_onnxruntime")
    common = dict(speech=False, objects=False)
    whole = VideoIndex.open(long_slides, IndexSettings(scan="every_frame", **common), root=tmp_path / "whole")
    sparse = VideoIndex.open(long_slides, IndexSettings(scan="bitstream", **common), root=tmp_path / "sparse")
    whole.build(), sparse.build()
    cuts = [round(s.span.start, 2) for s in whole.shots()]
    assert len(cuts) == 8  # a slide every 5 s
    sparse_cuts = [s.span.start for s in sparse.shots()]
    assert len(sparse_cuts) == len(cuts)
    # a sparse cut sits on the first frame the encoder marked (a keyframe at the change): within one frame
    assert all(abs(a - b) <= 1 / 12 + 1e-6 for a, b in zip(sparse_cuts, cuts)), (sparse_cuts, cuts)
    words = {st.text for st in whole.text_on_screen()}
    assert words and {st.text for st in sparse.text_on_screen()} == words
    decoded = sparse.status().counters["frames_decoded"]
    assert whole.status().counters["frames_decoded"] == 40 * 12
    assert decoded <= 0.15 * 40 * 12, decoded  # measured 51 of 480: 14 new keyframes, 3 walks to spikes


def test_auto_scans_by_the_bitstream_only_from_its_length(long_slides, tmp_path):
    from mcr.model.media.video import probe
    from mcr.tools.video_index.picture import scans_sparsely

    info = probe(long_slides)
    assert not scans_sparsely(IndexSettings(), info)  # 40 s: decoded whole
    assert scans_sparsely(IndexSettings(bitstream_from_s=30), info)
    assert not scans_sparsely(IndexSettings(scan="every_frame", bitstream_from_s=0), info)


def test_a_stopped_sparse_scan_resumes_to_the_same_index(long_slides, tmp_path):
    """Stopped after its first commits, a sparse build continues from its saved state: same cuts, words, decodes."""
    pytest.importorskip("rapidocr_onnxruntime")
    settings = IndexSettings(scan="bitstream", speech=False, objects=False, chunk_s=4.0)
    commits = iter(range(100))
    stopped = VideoIndex.open(long_slides, settings, root=tmp_path / "stopped")
    first = stopped.build(should_stop=lambda: next(commits) >= 2)
    assert not first.complete and 0 < first.stages["picture"].until_s < 40
    done = stopped.build()
    assert done.complete and done.counters["build_runs"] == 2
    straight = VideoIndex.open(long_slides, settings, root=tmp_path / "straight")
    straight.build()
    assert [s.span for s in stopped.shots()] == [s.span for s in straight.shots()]
    assert [(st.t, st.text) for st in stopped.text_on_screen()] == [(st.t, st.text) for st in straight.text_on_screen()]
    assert done.counters["frames_decoded"] == straight.status().counters["frames_decoded"]  # nothing decoded twice
