"""The long-video generator: needles placed once each, questions that match the plan, media that match the facts.

The plan and the questions are pure data and are checked at every length the
benchmark uses (10-120 min). The rendering is checked on a 6-minute video
(the shortest that holds every needle) by decoding it back: the flashed word
is on screen for exactly its 2 s, the narration is loud where the facts say
and silent between, and a second render is byte-for-byte the same.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import av
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from long_plan import PHOTO_DIR, plan_long_video  # noqa: E402
from long_questions import ALL_KINDS, WORDINGS, ask_long  # noqa: E402

from mcr.model.media.video import probe, read_frames_at  # noqa: E402
from mcr.task import load_tasks  # noqa: E402

LENGTHS = (10, 30, 60, 120)


def _said(video) -> list[str]:
    return [s.narration.text for s in video.scenes]


@pytest.mark.parametrize("minutes", LENGTHS)
def test_plan_is_repeatable_and_each_needle_is_placed_once(minutes):
    video = plan_long_video("v", minutes, seed=0)
    again = plan_long_video("v", minutes, seed=0)
    assert _said(video) == _said(again) and [s.title for s in video.scenes] == [s.title for s in again.scenes]
    assert video.duration == minutes * 60 and len({s.title for s in video.scenes}) == len(video.scenes)

    n = video.needles
    scenes = [n.count["scene"], n.day["scene"], n.found["scene"], n.flash["scene"], n.photo["scene"]]
    assert len(set(scenes)) == 5
    assert all(0.04 <= video.scenes[i].start / video.duration <= 0.96 for i in scenes)
    # Each needle's words are said in exactly one scene (the haystack never says them).
    for words in ([n.count["name"], n.count["item"]], [n.day["name"], n.day["day"]], [n.found["thing"]]):
        saying = [s.index for s in video.scenes if all(w in s.narration.text for w in words)]
        mentioning = [s.index for s in video.scenes if any(w in s.narration.text for w in words)]
        assert len(saying) == 1 and mentioning == saying
    assert [s.index for s in video.scenes if s.flash] == [n.flash["scene"]]
    flash = video.scenes[n.flash["scene"]].flash
    assert flash.end - flash.start == 2.0
    assert [s.index for s in video.scenes if s.photo] == [n.photo["scene"]]
    # Neighbouring flat scenes differ in brightness (cuts that PySceneDetect sees).
    flat = [s for s in video.scenes if s.colour]
    assert all(abs(sum(a.bgr) - sum(b.bgr)) > 150 for a, b in zip(flat, flat[1:]) if b.index == a.index + 1)


def test_other_seeds_move_the_needles_and_reword_the_questions():
    plans = [plan_long_video("v", 30, seed=s) for s in range(4)]
    assert len({p.needles.count["scene"] for p in plans}) > 1
    questions = {t["metadata"]["kind"]: set() for t in ask_long(plans[0], "v.mp4")}
    for plan in plans:
        for task in ask_long(plan, "v.mp4"):
            questions[task["metadata"]["kind"]].add(task["question"].split()[0])
    assert any(len(first_words) > 1 for first_words in questions.values())
    assert all(len(set(w)) == 3 for w in WORDINGS.values())


def test_questions_match_the_plan():
    video = plan_long_video("v", 60, seed=3)
    for scene in video.scenes:  # what rendering measures, roughly
        scene.narration.start, scene.narration.end = scene.start + 1.0, scene.start + 5.0
    tasks = ask_long(video, "v.mp4")
    assert [t["metadata"]["kind"] for t in tasks] == list(ALL_KINDS)
    for task in tasks:
        start, end = task["span"]
        assert 0 <= start < end <= video.duration
        if "options" in task:
            assert len(set(task["options"])) == len(task["options"]) >= 4
            truth = task["options"]["ABCDEFGH".index(task["answer"])]
        kind = task["metadata"]["kind"]
        if kind == "needle-count":
            assert truth == video.needles.count["count"]
        elif kind == "needle-day":
            assert truth == video.needles.day["day"]
        elif kind == "needle-flash":
            assert truth == video.needles.flash["word"] and end - start == 2.0
        elif kind == "needle-photo":
            assert truth == video.needles.photo["animal"]
        elif kind == "needle-when":
            low, high = (_seconds(x) for x in truth.removeprefix("between ").split(" and "))
            scene = video.scenes[video.needles.found["scene"]]
            assert low <= scene.start and scene.end <= high
        elif kind == "title-while-said":
            assert truth == video.scenes[video.needles.day["scene"]].title


def _seconds(clock: str) -> int:
    total = 0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return total


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install -y espeak-ng)")
    from make_long_suite import make_long_suite

    out = tmp_path_factory.mktemp("long")
    facts = make_long_suite(out, [6], seed=5)
    return out, facts


def test_rendered_video_matches_its_facts(rendered):
    out, facts = rendered
    (video,) = facts["videos"]
    path = out / video["file"]
    info = probe(path)
    assert info.duration == pytest.approx(360.0, abs=0.1) and info.has_audio
    assert (info.width, info.height, info.fps) == (320, 180, 4.0) and info.frame_count == video["n_frames"]

    flash = video["scenes"][video["needles"]["flash"]["scene"]]["flash"]
    before, first, last, after = read_frames_at(path, [flash["start"] - 0.25, flash["start"], flash["end"] - 0.25, flash["end"]])
    middle = (slice(80, 130), slice(20, 300))  # where the word is drawn, below the title

    def differs(a, b) -> bool:
        return np.abs(a.image[middle].astype(int) - b.image[middle].astype(int)).mean() > 5

    assert differs(before, first) and differs(last, after) and not differs(first, last) and not differs(before, after)

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        audio = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(stream)])
        rate = stream.rate
    for scene in video["scenes"][:6]:
        said = scene["narration"]
        loud = audio[int(said["start"] * rate) : int(said["end"] * rate)]
        quiet = audio[int((said["end"] + 0.2) * rate) : int((scene["end"] - 0.1) * rate)]
        assert np.sqrt(np.mean(loud**2)) > 20 * (np.sqrt(np.mean(quiet**2)) + 1e-6)


@pytest.mark.skipif(not (PHOTO_DIR / "dog.jpg").is_file(), reason="darknet's photos are not installed (apt-get install -y darknet)")
def test_photo_scene_shows_the_photo(rendered):
    out, facts = rendered
    (video,) = facts["videos"]
    scene = video["scenes"][video["needles"]["photo"]["scene"]]
    frame = read_frames_at(out / video["file"], [(scene["start"] + scene["end"]) / 2])[0].image
    assert frame[60:170].std() > 30  # a photograph, not a flat background


def test_suite_loads_and_a_second_render_is_identical_or_reused(rendered, tmp_path):
    from make_long_suite import make_long_suite

    out, facts = rendered
    tasks = load_tasks(out / "suite.yaml")
    assert len(tasks) == len(ALL_KINDS)
    again = make_long_suite(out, [6], seed=5)
    assert again["videos"][0]["render_s"] == 0.0  # the facts' key matched: not rendered again
    fresh = make_long_suite(tmp_path, [6], seed=5)
    name = facts["videos"][0]["file"]
    assert (tmp_path / name).read_bytes() == (out / name).read_bytes()
    assert fresh["videos"][0]["scenes"] == facts["videos"][0]["scenes"]
