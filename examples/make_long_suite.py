"""Make the long-video suite: 30- and 60-minute needle-in-a-haystack videos and questions about them.

Why generated: the point of a long video is that the answer is a few seconds
somewhere in an hour, and only a generated video says exactly which seconds.
The media and the truth are written together from one plan (`long_plan.py`,
`long_questions.py`); `benchmarks/bench_long.py` makes its 10-120 minute
videos with the same code.

    python examples/make_long_suite.py                       # runs/suites/long: 30 + 60 min, 14 questions
    python examples/make_long_suite.py --minutes 30 60 120 --seed 1 --out runs/suites/long-s1
    mcr eval runs/suites/long/suite.yaml --policy offline --out runs/long-offline

Writes ``OUT/media/<id>.mp4`` (320x180, 4 fps, H.264 + AAC mono; one 15 s
scene after another), ``OUT/media/<id>.json`` (the video's facts: every
scene, narration span, needle), ``OUT/facts.json`` (all of them) and
``OUT/suite.yaml`` (for `mcr eval`). A video whose facts file matches the
plan's key is not rendered again. Cheap on purpose: still pictures are
converted once and encoded as repeated frames, audio is written one scene at
a time (memory stays flat in the video's length), so an hour takes about a
minute on one core. Needs espeak-ng; the photo needles need Debian's
`darknet` photos and are left out (with a note) without them. The output is
byte-for-byte repeatable; never commit it (runs/ is ignored).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import yaml
from long_plan import FLASH_SECONDS, NARRATION_MARGIN, NARRATION_OFFSET, PHOTO_DIR, PHOTOS, LongScene, LongVideo, luma, plan_long_video
from long_questions import ALL_KINDS, ask_long
from mediakit import SAMPLE_RATE, StreamingWriter, draw_title, speak

WIDTH, HEIGHT, FPS = 320, 180, 4
PHOTO_TOP = 40  # photos fill the frame below the title band
SPEECH = {"words_per_minute": 115, "word_gap": 4}  # as make_suite.py: Whisper tiny.en hears espeak best so
GENERATOR_VERSION = 1  # bump when the rendering changes, so cached videos are made again
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "runs" / "suites" / "long"


def photos_available() -> bool:
    return all((PHOTO_DIR / f"{stem}.jpg").is_file() for stem, _ in PHOTOS)


def _load_photo(stem: str) -> np.ndarray:
    """The darknet photo letterboxed into the area below the title (BGR)."""
    img = cv2.imread(str(PHOTO_DIR / f"{stem}.jpg"))
    if img is None:
        raise SystemExit(f"cannot read {PHOTO_DIR / (stem + '.jpg')}")
    scale = min(WIDTH / img.shape[1], (HEIGHT - PHOTO_TOP) / img.shape[0])
    return cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)


def scene_picture(scene: LongScene, flash: bool = False) -> np.ndarray:
    """The still picture of `scene` (BGR); with `flash`, its needle word drawn large in the middle."""
    img = np.full((HEIGHT, WIDTH, 3), scene.bgr, np.uint8)
    ink = (20, 20, 20) if luma(scene.bgr) > 140 else (245, 245, 245)
    if scene.photo:
        photo = _load_photo(scene.photo)
        x = (WIDTH - photo.shape[1]) // 2
        img[PHOTO_TOP : PHOTO_TOP + photo.shape[0], x : x + photo.shape[1]] = photo
    # A wide gap between the words: OCR reads one space as none.
    draw_title(img, scene.title.replace(" ", "   "), ink, y=28, scale=0.7, thick=2)
    if flash and scene.flash is not None:
        draw_title(img, scene.flash.word, ink, y=112, scale=1.3, thick=3)
    return img


def render(video: LongVideo, path: Path) -> None:
    """Write the video scene by scene; fill in the measured narration spans."""
    with StreamingWriter(path, FPS, (WIDTH, HEIGHT), crf=30, audio_bit_rate=32_000) as out:
        for scene in video.scenes:
            n_frames = int(round((scene.end - scene.start) * FPS))
            still = scene_picture(scene)
            if scene.flash is None:
                out.add_still(still, n_frames)
            else:
                on, off = (int(round((t - scene.start) * FPS)) for t in (scene.flash.start, scene.flash.end))
                out.add_still(still, on)
                out.add_still(scene_picture(scene, flash=True), off - on)
                out.add_still(still, n_frames - off)
            block = np.zeros(int(round((scene.end - scene.start) * SAMPLE_RATE)), np.int16)
            speech = speak(scene.narration.text, **SPEECH)
            first = int(round(NARRATION_OFFSET * SAMPLE_RATE))
            if first + len(speech) > len(block) - NARRATION_MARGIN * SAMPLE_RATE:
                raise SystemExit(f"{video.id} scene {scene.index}: narration {scene.narration.text!r} is longer than its scene")
            block[first : first + len(speech)] = speech
            scene.narration.start = round(scene.start + first / SAMPLE_RATE, 3)
            scene.narration.end = round(scene.start + (first + len(speech)) / SAMPLE_RATE, 3)
            out.add_audio(block)


def _key(video_id: str, minutes: int, seed: int, photos: bool) -> dict:
    return {"generator": "examples/make_long_suite.py", "version": GENERATOR_VERSION, "id": video_id,
            "minutes": minutes, "seed": seed, "photos": photos, "size": [WIDTH, HEIGHT], "fps": FPS}


def video_facts(video: LongVideo, key: dict) -> dict:
    return {"key": key, "file": f"{video.id}.mp4", "duration": video.duration,
            "n_frames": int(round(video.duration * FPS)), "audio_sample_rate": SAMPLE_RATE,
            "needles": asdict(video.needles), "scenes": [asdict(s) for s in video.scenes]}


def _from_facts(facts: dict, video: LongVideo) -> LongVideo:
    """The plan with the measured narration spans of an earlier render (the facts file)."""
    for scene, saved in zip(video.scenes, facts["scenes"]):
        scene.narration.start, scene.narration.end = saved["narration"]["start"], saved["narration"]["end"]
    return video


def make_long_video(media: Path, minutes: int, seed: int, video_id: str | None = None) -> tuple[LongVideo, dict, float]:
    """Render one long video into `media` (or reuse the one there); return its plan, facts and render seconds."""
    photos = photos_available()
    video_id = video_id or f"long{minutes}"
    video = plan_long_video(video_id, minutes, seed, photos=photos)
    key = _key(video_id, minutes, seed, photos)
    facts_path, mp4 = media / f"{video_id}.json", media / f"{video_id}.mp4"
    if facts_path.is_file() and mp4.is_file():
        facts = json.loads(facts_path.read_text())
        if facts.get("key") == key:
            return _from_facts(facts, video), facts, 0.0
    media.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    partial = mp4.with_suffix(".part.mp4")
    render(video, partial)
    partial.replace(mp4)  # a killed render never leaves a half video under the real name
    seconds = time.perf_counter() - t0
    facts = video_facts(video, key)
    facts_path.write_text(json.dumps(facts, indent=1) + "\n")
    return video, facts, seconds


def write_suite(path: Path, name: str, videos: list[LongVideo],
                kinds: tuple[str, ...] | dict[str, tuple[str, ...]] = ALL_KINDS, budget: dict | None = None) -> list[dict]:
    """Write the suite file `path` (beside ``media/``) with questions about `videos`; return the tasks.

    `kinds` picks the questions: one tuple for every video, or a tuple per video id
    (a subset of a long video's questions, for a run that must stay short).
    """
    per_video = kinds if isinstance(kinds, dict) else {v.id: kinds for v in videos}
    tasks = [t for v in videos for t in ask_long(v, f"media/{v.id}.mp4", per_video.get(v.id, ALL_KINDS))]
    suite = {"suite": name,
             "defaults": {"budget": budget or {"max_steps": 8, "max_tool_calls": 10, "wall_time_s": 900}},
             "tasks": tasks}
    header = (f"# Generated by examples/make_long_suite.py: do not edit by hand; re-run the script.\n"
              f"# {len(tasks)} tasks over {len(videos)} videos of "
              f"{', '.join(str(v.minutes) for v in videos)} minutes; the facts are in facts.json.\n")
    path.write_text(header + yaml.safe_dump(suite, sort_keys=False, width=120, allow_unicode=True,
                                                            default_flow_style=None))
    return tasks


def make_long_suite(out: Path, minutes: list[int], seed: int, name: str | None = None) -> dict:
    """Write media, facts.json and suite.yaml into `out`; return the facts (with render seconds)."""
    if not photos_available():
        print(f"note: darknet's photos are not in {PHOTO_DIR} (apt-get install -y darknet); "
              "making the suite without photo needles", file=sys.stderr)
    videos, all_facts = [], {"generator": "examples/make_long_suite.py", "seed": seed, "size": [WIDTH, HEIGHT],
                             "fps": float(FPS), "videos": []}
    for m in minutes:
        video, facts, seconds = make_long_video(out / "media", m, seed)
        videos.append(video)
        all_facts["videos"].append({**facts, "file": f"media/{video.id}.mp4", "render_s": round(seconds, 1)})
    (out / "facts.json").write_text(json.dumps(all_facts, indent=1) + "\n")
    write_suite(out / "suite.yaml", name or out.name, videos)
    return all_facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[30, 60], help="video lengths (default 30 60)")
    parser.add_argument("--seed", type=int, default=0, help="needle depths, words and wordings (default 0)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--name", help="the suite's name (default: the folder's name)")
    args = parser.parse_args(argv)
    if len(set(args.minutes)) != len(args.minutes):
        parser.error("--minutes: each length once (the videos are named by their length)")
    facts = make_long_suite(args.out, args.minutes, args.seed, args.name)
    n_tasks = len(yaml.safe_load((args.out / "suite.yaml").read_text())["tasks"])
    for v in facts["videos"]:
        size = (args.out / v["file"]).stat().st_size
        made = f"rendered in {v['render_s']:.0f} s" if v["render_s"] else "already there"
        print(f"  {v['file']}: {v['duration'] / 60:.0f} min, {v['n_frames']} frames, {size / 1e6:.1f} MB, {made}")
    print(f"wrote {args.out}: {len(facts['videos'])} videos, {n_tasks} tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
