"""ResultCache: keys follow content/span/settings; memory and disk layers; staleness."""

from __future__ import annotations

import json
import shutil

import pytest
from pydantic import BaseModel

from mcr.context import TimeSpan
from mcr.tools.cache import FileDigests, ResultCache


class Out(BaseModel):
    value: int
    image: str | None = None


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "v.bin"
    path.write_bytes(b"video bytes" * 1000)
    return path


def test_key_depends_on_content_span_and_settings(tmp_path, video):
    cache = ResultCache(tmp_path / "c")
    base = cache.key("segment", video, TimeSpan(start=0, end=5), {"mode": "temporal", "threshold": 3})
    assert base == cache.key("segment", video, (0.0, 5.0), {"threshold": 3, "mode": "temporal"})  # order-free
    copy = tmp_path / "copy.bin"
    shutil.copy(video, copy)
    assert cache.key("segment", copy, (0.0, 5.0), {"mode": "temporal", "threshold": 3}) == base  # content, not path
    assert cache.key("segment", video, (0.0, 6.0), {"mode": "temporal", "threshold": 3}) != base
    assert cache.key("segment", video, (0.0, 5.0), {"mode": "temporal", "threshold": 4}) != base
    assert cache.key("ocr", video, (0.0, 5.0), {"mode": "temporal", "threshold": 3}) != base
    video.write_bytes(b"edited")
    assert cache.key("segment", video, (0.0, 5.0), {"mode": "temporal", "threshold": 3}) != base


def test_settings_may_be_a_pydantic_model(tmp_path, video):
    cache = ResultCache(tmp_path)
    assert cache.key("t", video, None, Out(value=1)) == cache.key("t", video, None, {"value": 1, "image": None})


def test_compute_once_then_hit_from_memory_and_disk(tmp_path, video):
    calls = []

    def compute():
        calls.append(1)
        return Out(value=len(calls))

    cache = ResultCache(tmp_path / "c")
    key = cache.key("t", video)
    assert cache.get_or_compute(key, Out, compute).value == 1
    assert cache.get_or_compute(key, Out, compute).value == 1
    assert len(calls) == 1 and (cache.hits, cache.misses) == (1, 1)
    # A fresh cache on the same folder (a new process) reads the JSON file.
    again = ResultCache(tmp_path / "c")
    assert again.get_or_compute(key, Out, compute).value == 1 and len(calls) == 1
    files = list((tmp_path / "c").rglob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text()) == {"value": 1, "image": None}


def test_memory_only_cache(video):
    cache = ResultCache(None, max_memory_items=2)
    keys = [cache.key("t", video, (i, i + 1)) for i in range(3)]
    for i, key in enumerate(keys):
        cache.put(key, Out(value=i))
    assert cache.get(keys[0], Out) is None  # evicted: LRU of 2
    assert cache.get(keys[2], Out).value == 2


def test_the_memory_layer_is_bounded_in_bytes(tmp_path, video):
    """Long videos make big outputs (an hour's transcript): memory holds at most max_memory_bytes of them."""
    cache = ResultCache(tmp_path / "c", max_memory_bytes=200)
    keys = [cache.key("t", video, (i, i + 1)) for i in range(6)]
    for i, key in enumerate(keys):
        cache.put(key, Out(value=i, image="x" * 60))  # ~85 bytes of JSON each
    assert 0 < cache.memory_bytes <= 200 and len(cache._memory) == 2
    assert all(cache.get(key, Out).value == i for i, key in enumerate(keys))  # the disk layer serves the rest
    cache.put(keys[0], Out(value=0, image="y" * 500))  # bigger than the bound: on disk only
    assert keys[0] not in cache._memory and cache.get(keys[0], Out).image == "y" * 500
    assert cache.memory_bytes <= 200


def test_values_pointing_at_missing_files_are_misses(tmp_path, video):
    image = tmp_path / "k.jpg"
    image.write_bytes(b"jpg")
    cache = ResultCache(tmp_path / "c")
    key = cache.key("t", video)
    cache.put(key, Out(value=1, image=str(image)))
    files = lambda out: [out.image]  # noqa: E731
    assert cache.get(key, Out, files).value == 1
    image.unlink()
    assert cache.get(key, Out, files) is None


def test_corrupt_or_outdated_entries_are_misses(tmp_path, video):
    cache = ResultCache(tmp_path / "c")
    key = cache.key("t", video)
    cache.put(key, Out(value=1))
    (file,) = (tmp_path / "c").rglob("*.json")
    file.write_text("{not json")
    assert ResultCache(tmp_path / "c").get(key, Out) is None
    file.write_text(json.dumps({"other": 1}))  # an older schema
    assert ResultCache(tmp_path / "c").get(key, Out) is None


def test_exceptions_are_not_cached(tmp_path, video):
    cache = ResultCache(tmp_path / "c")
    key = cache.key("t", video)

    def boom():
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.get_or_compute(key, Out, boom)
    assert cache.get(key, Out) is None and not list((tmp_path / "c").rglob("*.json"))


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        ResultCache(None).key("t", tmp_path / "nope.mp4")


def test_digest_is_memoised_but_sees_edits(video):
    digests = FileDigests()
    first = digests(video)
    assert digests(video) == first
    video.write_bytes(b"different content")
    assert digests(video) != first
