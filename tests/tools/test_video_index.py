"""The persistent per-video index (`mcr.tools.video_index`): built once, shared, resumable, never stale.

Real media and real models: the committed sample (24 s, four scenes, espeak
narration) indexed by `mcr index` in a subprocess (PySceneDetect, RapidOCR,
YOLOv3-tiny, Whisper tiny.en, MiniLM), and generated slide videos for the
resume and staleness checks. Whisper's words are compared after normalising
(never exact text).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mcr.context import Context, TimeSpan, VideoRef
from mcr.model.media.audio import normalize_words
from mcr.tools.base import ToolContext, ToolFailure
from mcr.tools.video_index import IndexLocked, IndexSettings, VideoIndex
from mcr.tools.video_index.store import IndexStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from slides import make_slides  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MCR = [sys.executable, "-m", "mcr.cli"]
# The picture pass alone, on text slides: fast, and OCR makes each change point cost real time.
PICTURE_ONLY = ["--set", "speech=false", "--set", "objects=false"]
def mcr_index(*args: str, env_root: Path | None = None, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if env_root is not None:
        env["MCR_INDEX_DIR"] = str(env_root)
    return subprocess.run([*MCR, "index", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900, **kw)


def counter(counters: dict, name: str) -> float:
    return counters.get(name, 0.0)


# --------------------------------------------------------------------------- #
# The sample, indexed by another process
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def sample_index(sample_mp4, tmp_path_factory):
    """(root, status) of the sample's default index, built by `mcr index` in a subprocess."""
    pytest.importorskip("faster_whisper")
    root = tmp_path_factory.mktemp("indexes")
    proc = mcr_index(str(sample_mp4), "--json", env_root=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, json.loads(proc.stdout.strip().splitlines()[-1])


def test_mcr_index_builds_every_stage_of_the_sample(sample_index, sample_mp4):
    root, status = sample_index
    assert all(stage["done"] for stage in status["stages"].values()) and status["complete"] is True
    c = status["counters"]
    assert c["frames_decoded"] == 576  # every frame once (24 s at 24 fps), no more
    assert c["frames_analysed"] <= 24 * 12 + 1  # analysis_fps 12
    assert 4 <= c["captures"] <= 24  # one per cut at least, never one per analysed frame
    assert c["asr_calls"] == 1 and c["speech_s"] < 24  # one chunk; Whisper heard the speech regions only
    index = VideoIndex.open(sample_mp4, root=root)
    shots = index.shots()
    assert [round(s.span.start) for s in shots] == [0, 6, 12, 18]
    night = TimeSpan(start=6.0, end=12.0)
    read = " ".join(st.text for st in index.text_on_screen(night)).lower()
    assert "night" in read and "watch" in read
    said = index.transcript(night)
    assert {"seven", "ships"} <= set(normalize_words(" ".join(s.text for s in said)))
    words = [w for w in index.words(night) if normalize_words(w.word) == ["ships"]]
    assert words and 6.0 <= words[0].start <= words[0].end <= 12.0
    points = index.change_points()
    assert points[0] == 0.0 and all(any(abs(p - s.span.start) < 1.0 for p in points) for s in shots)
    scenes = index.scenes()
    assert 1 <= len(scenes) <= 4 and scenes[0].span.start == 0.0 and scenes[-1].span.end == pytest.approx(24.0)
    assert [c.scenes for c in index.chapters()] == [[s.index for s in scenes]]
    hits = index.search("how many ships does the keeper see", k=3)
    assert hits and hits[0].span.iou(night) > 0 and hits[0].source in ("transcript", "scene")
    assert index.search("night watch", k=5, sources=["ocr"])[0].span.start >= 6.0


def test_a_second_process_decodes_and_transcribes_nothing(sample_index, sample_mp4):
    """Another process (a later question) reads the index: zero frames decoded, zero Whisper calls."""
    root, _ = sample_index
    script = textwrap.dedent(f"""
        import json
        from mcr.context import Context, VideoRef
        from mcr.model.media.video import frames_decoded
        from mcr.tools import asr_whisper
        from mcr.tools.base import ToolContext
        from mcr.tools.ground import GroundTool
        from mcr.tools.search import SearchTool
        from mcr.tools.video_index import VideoIndex
        from mcr.tools.video_index.speech import PROCESS_COUNTERS
        index = VideoIndex.open({str(sample_mp4)!r})
        status = index.build()  # complete: a no-op
        ctx = ToolContext(context=Context(), video=VideoRef(path={str(sample_mp4)!r}), workdir={str(root / 'work')!r})
        ground = GroundTool()(dict(query="the keeper counts ships at night"), ctx)
        search = SearchTool()(dict(query="market"), ctx)
        print(json.dumps(dict(frames=frames_decoded(), asr=PROCESS_COUNTERS["asr_calls"],
                              whisper_loaded=asr_whisper._load.cache_info().currsize,
                              runs=status.counters["build_runs"], ground=ground.model_dump(mode="json"),
                              searched=search.searched, first=search.results[0].model_dump(mode="json"))))
    """)
    env = {**os.environ, "MCR_INDEX_DIR": str(root), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["frames"] == 0 and out["asr"] == 0 and out["whisper_loaded"] == 0
    assert out["runs"] == 1  # the second process started no build
    best = out["ground"]["spans"][0]
    assert best["span"]["start"] < 12.0 and best["span"]["end"] > 6.0  # found in an empty context, from the index
    assert "video_index" in out["searched"] and 18.0 <= out["first"]["span"]["end"] <= 24.0


def test_summarize_reads_shots_text_and_speech_from_the_index(sample_index, sample_mp4, monkeypatch):
    """With an index, a summary decodes no frame for shots or text and transcribes nothing (pixels off)."""
    from mcr.model.media.video import frames_decoded
    from mcr.tools.summarize import SummarizeTool
    from mcr.tools.video_index import VideoIndex

    root, _ = sample_index
    monkeypatch.setenv("MCR_INDEX_DIR", str(root))
    index = VideoIndex.open(sample_mp4, root=root)
    ctx = ToolContext(context=Context(), video=VideoRef(path=str(sample_mp4)), workdir=root / "summary")
    before = frames_decoded()
    out = SummarizeTool()(dict(pixels=False), ctx)
    assert frames_decoded() == before  # shots, screen text and speech all came from the index
    assert "index" in out.sources and "transcript" in out.sources and not out.missing
    assert [s.span.start for s in out.shots] == [s.span.start for s in index.shots()]
    assert len(out.scenes) == len(index.scenes())
    night = next(s for s in out.shots if s.span.start == pytest.approx(6.0, abs=0.6))
    assert "night" in " ".join(night.ocr).lower()
    assert {"seven", "ships"} <= set(normalize_words(night.speech))
    other = SummarizeTool()(dict(pixels=False, scene_similarity=0.5), ctx)  # not the index's setting: detected here
    assert "index" not in other.sources


def test_a_search_hit_on_an_indexed_scene_carries_its_facts_typed(sample_index, sample_mp4, monkeypatch):
    """`search` over the index: a scene hit brings the scene's speech, screen text and detections as fields."""
    from mcr.tools.search import SearchTool
    from mcr.tools.video_index import VideoIndex

    root, _ = sample_index
    monkeypatch.setenv("MCR_INDEX_DIR", str(root))
    scenes = VideoIndex.open(sample_mp4, root=root).scenes()
    ctx = ToolContext(context=Context(), video=VideoRef(path=str(sample_mp4)), workdir=root / "search")
    out = SearchTool()(dict(query="seven ships in the night", top_k=10, sources=["scene"]), ctx)
    hits = [h for h in out.results if h.source == "scene"]
    assert hits and any(hit.said for hit in hits)
    for hit in hits:
        scene = next(sc for sc in scenes if sc.span == hit.span)
        assert (hit.said or "") == scene.speech and hit.shown == scene.screen_text and hit.objects == scene.objects


def test_ground_and_search_without_the_index_still_need_evidence(sample_index, sample_mp4):
    root, _ = sample_index
    from mcr.tools.ground import GroundTool

    ctx = ToolContext(context=Context(), video=VideoRef(path=str(sample_mp4)), workdir=root / "w",
                      settings={"video_index": "off"})
    with pytest.raises(ToolFailure) as err:
        GroundTool()(dict(query="ships"), ctx)
    assert err.value.error_type == "no_evidence"
    bad = ToolContext(context=Context(), video=VideoRef(path=str(sample_mp4)), workdir=root / "w",
                      settings={"video_index": "sometimes"})
    with pytest.raises(ToolFailure) as err:
        GroundTool()(dict(query="ships"), bad)
    assert err.value.error_type == "invalid_settings"


# --------------------------------------------------------------------------- #
# Resuming, locking, staleness — on generated slides
# --------------------------------------------------------------------------- #


SLIDES_S = 16.0


@pytest.fixture(scope="module")
def slides(tmp_path_factory) -> Path:
    return make_slides(tmp_path_factory.mktemp("slides") / "slides.mp4", seconds=SLIDES_S, slide_s=2.0)


def _picture_progress(db: Path) -> tuple[bool, float]:
    if not db.is_file():
        return False, 0.0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            row = conn.execute("SELECT done, until_s FROM stage WHERE name = 'picture'").fetchone()
        except sqlite3.OperationalError:  # the schema is being created
            return False, 0.0
    return (bool(row[0]), float(row[1])) if row else (False, 0.0)


def test_a_killed_mcr_index_resumes_and_completes(slides, tmp_path):
    pytest.importorskip("rapidocr_onnxruntime")
    settings = IndexSettings(speech=False, objects=False, chunk_s=2.0)
    index = VideoIndex.open(slides, settings, root=tmp_path / "killed")
    db = Path(index.status().path)
    index.close()
    env = {**os.environ, "MCR_INDEX_DIR": str(tmp_path / "killed"), "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen([*MCR, "index", str(slides), *PICTURE_ONLY, "--set", "chunk_s=2"], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and child.poll() is None:
            done, until = _picture_progress(db)
            if until >= 4.0:  # at least two chunks committed: kill it mid-build
                break
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    done, until = _picture_progress(db)
    assert not done and 4.0 <= until < SLIDES_S, (done, until)  # killed mid-build, with work committed
    partial = VideoIndex.open(slides, settings, root=tmp_path / "killed")
    assert partial.shots()[-1].span.end == pytest.approx(until)  # a reader sees what is finished
    decoded_before = partial.status().counters["frames_decoded"]

    proc = mcr_index(str(slides), *PICTURE_ONLY, "--set", "chunk_s=2", "--json", env_root=tmp_path / "killed")
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert resumed["stages"]["picture"]["done"] and resumed["counters"]["build_runs"] == 2
    # The second run decoded only what the first had not committed: every frame once over both runs.
    assert resumed["counters"]["frames_decoded"] == SLIDES_S * 12
    assert decoded_before < SLIDES_S * 12

    straight = VideoIndex.open(slides, settings, root=tmp_path / "straight")
    straight.build()
    assert [s.span for s in partial.shots()] == [s.span for s in straight.shots()]
    assert [(st.t, st.text) for st in partial.text_on_screen()] == [(st.t, st.text) for st in straight.text_on_screen()]
    assert len(straight.shots()) >= 7  # a slide every 2 s: the cuts were found


def test_a_second_builder_waits_or_is_told(slides, tmp_path):
    index = VideoIndex.open(slides, IndexSettings(speech=False, ocr=False, objects=False), root=tmp_path)
    other = IndexStore(Path(index.status().path))  # another holder of the same file (as another process would be)
    with other.build_lock():
        with pytest.raises(IndexLocked):
            index.build(wait=False)
    assert index.build().complete  # the lock is free again: it builds
    other.close()


def test_a_stale_index_is_never_used(slides, tmp_path, monkeypatch):
    cheap = IndexSettings(speech=False, ocr=False, objects=False)
    built = VideoIndex.open(slides, cheap, root=tmp_path)
    assert built.build().complete and built.shots()
    # A changed setting is another index: nothing of the first is served.
    changed = cheap.model_copy(update={"min_shot_s": 2.0})
    assert VideoIndex.find(slides, changed, root=tmp_path) is None
    fresh = VideoIndex.open(slides, changed, root=tmp_path)
    assert fresh.key != built.key and not fresh.status().complete and fresh.shots() == []
    # A build-only setting (commit granularity) is the same index.
    assert VideoIndex.find(slides, cheap.model_copy(update={"chunk_s": 5.0}), root=tmp_path).key == built.key
    # New code (the builder's version) and a changed model are other indexes too.
    from mcr.tools.video_index import key

    monkeypatch.setattr(key, "INDEX_VERSION", key.INDEX_VERSION + "-next")
    assert VideoIndex.find(slides, cheap, root=tmp_path) is None
    monkeypatch.undo()
    monkeypatch.setattr(key, "model_revisions", lambda s: {"embedder": "another-minilm"})
    assert VideoIndex.find(slides, cheap, root=tmp_path) is None
    monkeypatch.undo()
    # Other bytes at the same path: another index (the content is hashed, not the name).
    edited = make_slides(tmp_path / "edited.mp4", seconds=SLIDES_S, slide_s=2.0, seed=3)
    slides_copy = tmp_path / "same.mp4"
    slides_copy.write_bytes(slides.read_bytes())
    assert VideoIndex.find(slides_copy, cheap, root=tmp_path).key == built.key  # a copy hits
    slides_copy.write_bytes(edited.read_bytes())
    assert VideoIndex.find(slides_copy, cheap, root=tmp_path) is None  # an edit misses


def test_a_file_whose_contents_disagree_with_its_key_is_rebuilt(slides, tmp_path):
    cheap = IndexSettings(speech=False, ocr=False, objects=False)
    index = VideoIndex.open(slides, cheap, root=tmp_path)
    index.build()
    path = Path(index.status().path)
    index.close()
    with sqlite3.connect(path) as conn:  # e.g. a file copied under the wrong name
        conn.execute("UPDATE meta SET v = ? WHERE k = 'key_parts'", (json.dumps({"content": "something else"}),))
    reopened = VideoIndex.open(slides, cheap, root=tmp_path)
    assert not reopened.status().complete and reopened.shots() == []


def test_an_unwritable_index_folder_is_a_clear_error(slides, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the index folder should be")
    proc = mcr_index(str(slides), "--index-dir", str(blocker / "sub"), env_root=None)
    assert proc.returncode == 2 and "MCR_INDEX_DIR" in proc.stderr and "Traceback" not in proc.stderr


def test_mcr_index_names_a_bad_setting_and_a_missing_video(tmp_path):
    proc = mcr_index("nothing.mp4", "--set", "colour=blue", env_root=tmp_path)
    assert proc.returncode == 2 and "not an index setting" in proc.stderr
    proc = mcr_index(str(tmp_path / "missing.mp4"), env_root=tmp_path)
    assert proc.returncode == 2 and "missing.mp4" in proc.stderr


def test_transcribe_reads_the_index_instead_of_listening_again(sample_index, sample_mp4, monkeypatch):
    from mcr.tools import asr_whisper
    from mcr.tools.asr import TranscribeTool
    from mcr.tools.video_index.speech import PROCESS_COUNTERS

    root, _ = sample_index
    monkeypatch.setenv("MCR_INDEX_DIR", str(root))
    loads, calls = asr_whisper._load.cache_info().misses, PROCESS_COUNTERS["asr_calls"]
    ctx = ToolContext(context=Context(), video=VideoRef(path=str(sample_mp4)), workdir=root / "t")
    out = TranscribeTool()(dict(span={"start": 6.0, "end": 12.0}), ctx)
    assert out.index and out.backend == "faster_whisper"
    assert {"seven", "ships"} <= set(normalize_words(out.text))
    assert asr_whisper._load.cache_info().misses == loads and PROCESS_COUNTERS["asr_calls"] == calls
    # Hints change what Whisper writes: such a call listens itself.
    hinted = ToolContext(context=Context(), video=VideoRef(path=str(sample_mp4)), workdir=root / "t",
                         settings={"video_index": "off"})
    assert TranscribeTool()(dict(span={"start": 6.0, "end": 12.0}), hinted).index is None


# --------------------------------------------------------------------------- #
# Memory: flat in the video's length (slow: builds two long-suite videos)
# --------------------------------------------------------------------------- #

_PEAK_RSS = """
import resource, sys
from mcr.cli import main
code = main(["index", sys.argv[1], "--json"])
print("RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.slow
@pytest.mark.timeout(3600)  # two cold builds (5 and 15 min of video): ~15 min on a loaded 2-core box
def test_peak_memory_of_a_build_is_flat_in_the_videos_length(tmp_path):
    """`mcr index` on a 5- and a 15-minute needle video: peak RSS may grow at most 10% (issue 22's goal).

    Each build runs in a fresh process that reports its own ``ru_maxrss``
    (every model loaded: RapidOCR, YOLOv3-tiny, Whisper, MiniLM). Measured:
    benchmarks/RESULTS.md, "Video index".
    """
    import shutil

    if shutil.which("espeak-ng") is None:
        pytest.skip("the long-suite videos are narrated by espeak-ng: apt-get install espeak-ng")
    sys.path.insert(0, str(ROOT / "examples"))
    from make_long_suite import make_long_video

    peaks = {}
    for minutes in (5, 15):
        make_long_video(tmp_path / "media", minutes, seed=0)
        env = {**os.environ, "MCR_INDEX_DIR": str(tmp_path / f"index{minutes}"), "HF_HUB_OFFLINE": "1"}
        proc = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(tmp_path / "media" / f"long{minutes}.mp4")],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=3600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        status = json.loads(proc.stdout.strip().splitlines()[-1])
        assert all(stage["done"] for stage in status["stages"].values())
        # from 5 minutes on the picture pass decodes only where the bitstream marks a change: a few % of frames
        assert 0 < status["counters"]["frames_decoded"] <= 0.10 * minutes * 60 * 4
        peaks[minutes] = int(next(x.split()[1] for x in proc.stderr.splitlines() if x.startswith("RSS_KB")))
    assert peaks[15] <= 1.10 * peaks[5], peaks


def test_segment_reads_shots_from_the_index_and_decodes_only_keyframes(sample_index, sample_mp4, monkeypatch, tmp_path):
    from mcr.model.media.video import frames_decoded
    from mcr.tools.segment import SegmentTool

    root, _ = sample_index
    monkeypatch.setenv("MCR_INDEX_DIR", str(root))
    ctx = ToolContext(context=Context(), video=VideoRef(path=str(sample_mp4)), workdir=tmp_path / "seg")
    before = frames_decoded()
    out = SegmentTool()(dict(), ctx)
    assert [round(s.span.start) for s in out.shots] == [0, 6, 12, 18]
    assert frames_decoded() - before == len(out.shots)  # the keyframes, not the video
    assert all(Path(s.keyframe).is_file() for s in out.shots)
    other = SegmentTool()(dict(min_shot_seconds=1.0), ctx)  # settings the index was not built with: detected
    assert [round(s.span.start) for s in other.shots] == [0, 6, 12, 18]


def test_saved_build_state_is_unpickled_only_under_this_users_seal(tmp_path, monkeypatch):
    """An index file carries pickled scanner state between chunks; bytes not sealed by this user's key
    (another user's file, a crafted one) are refused before any unpickling."""
    import pickle

    from mcr.tools.video_index.sealed import UnsealedState, seal, unseal

    monkeypatch.setenv("MCR_CACHE_DIR", str(tmp_path / "cache"))
    assert unseal(seal({"frame_no": 7})) == {"frame_no": 7}
    assert (tmp_path / "cache" / "index-state.key").stat().st_mode & 0o077 == 0

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled a crafted state')",))

    crafted = bytes(32) + pickle.dumps(Boom())
    with pytest.raises(UnsealedState):
        unseal(crafted)
    tampered = bytearray(seal({"frame_no": 7}))
    tampered[-2] ^= 1
    with pytest.raises(UnsealedState):
        unseal(bytes(tampered))
