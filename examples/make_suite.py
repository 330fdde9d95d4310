"""Make the bundled truth suite: short videos with known content and questions about them.

Why generated: every answer and every ground-truth span is known exactly, so
`mcr eval` scores are computed against facts, not opinions. The media and the
truth are written together from one plan (`suite_plan.py`, `suite_questions.py`).

    python examples/make_suite.py --seed 0 --out examples/suites/truth
    python examples/make_suite.py --seed 1 --out examples/suites/heldout

Writes ``OUT/media/v*.mp4`` (384x216, 10 fps, H.264 + AAC mono, 15-30 s each),
``OUT/facts.json`` (every scene's span, title, colour, brightness, photo and
narration with its measured span) and ``OUT/suite.yaml`` (a suite for
`mcr.task.load_tasks`: questions, options, answer letters, spans, categories).
Each video has 3-5 scenes of different colour *and* brightness (PySceneDetect
misses hue-only cuts), a title per scene, small squares to count, espeak-ng
narration at measured times and, when Debian's `darknet` package is installed,
real photographs. There are no subtitle sidecars: what is said is only in the
audio. Even and odd seeds use disjoint word and colour pools (see suite_plan.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import yaml
from mediakit import SAMPLE_RATE, draw_title, place_speech, speak, write_video
from suite_plan import PHOTO_DIR, PHOTOS, Scene, VideoPlan, luma, plan_videos
from suite_questions import ask

WIDTH, HEIGHT, FPS = 384, 216, 10
NARRATION_OFFSET = 0.5  # seconds from a scene's start to its first speech sample
NARRATION_MARGIN = 0.3  # speech ends at least this long before the scene does
# Slower, with pauses between words: Whisper tiny.en hears names and numbers in
# espeak's voice far better so (measured: "Payful my five rope set the hardware"
# at 130 wpm vs "Payful, my five ropes at the harbor" at 115 wpm with -g 4).
SPEECH = {"words_per_minute": 115, "word_gap": 4}
PHOTO_TOP = 48  # photos fill the frame below the title band
BACKGROUND_PATCH = (slice(HEIGHT - 24, HEIGHT - 4), slice(4, 24))  # bottom-left, never drawn over on flat scenes


def _load_photo(stem: str) -> np.ndarray:
    """The darknet photo letterboxed into the area below the title (BGR)."""
    img = cv2.imread(str(PHOTO_DIR / f"{stem}.jpg"))
    if img is None:
        raise SystemExit(f"cannot read {PHOTO_DIR / (stem + '.jpg')}")
    box_w, box_h = WIDTH, HEIGHT - PHOTO_TOP
    scale = min(box_w / img.shape[1], box_h / img.shape[0])
    return cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)


class Painter:
    """Draws frame `index` of one video from its plan."""

    def __init__(self, video: VideoPlan):
        self.video = video
        self.photos = {s.photo: _load_photo(s.photo) for s in video.scenes if s.photo}

    def scene_at(self, t: float) -> Scene:
        return next((s for s in self.video.scenes if s.start <= t < s.end), self.video.scenes[-1])

    def __call__(self, index: int) -> np.ndarray:
        t = index / FPS
        scene = self.scene_at(t)
        img = np.full((HEIGHT, WIDTH, 3), scene.bgr, np.uint8)
        ink = (20, 20, 20) if luma(scene.bgr) > 140 else (245, 245, 245)
        if scene.photo:
            photo = self.photos[scene.photo]
            x = (WIDTH - photo.shape[1]) // 2
            img[PHOTO_TOP : PHOTO_TOP + photo.shape[0], x : x + photo.shape[1]] = photo
            ink = (245, 245, 245)
        else:
            drift = int(6 * (t - scene.start))  # the squares drift right, slowly
            for k in range(scene.squares):
                x = 40 + k * 52 + drift
                cv2.rectangle(img, (x, 110), (x + 22, 132), ink, -1)
        # A wide gap between the words: rapidocr reads one space as none ("HIGHTOWER").
        draw_title(img, scene.title.replace(" ", "   "), ink, y=34, scale=0.9, thick=2)
        return img


def render(video: VideoPlan, path: Path) -> None:
    """Write the video; fill in measured narration spans and scene brightness."""
    track = np.zeros(int(round(video.duration * SAMPLE_RATE)), np.int16)
    for scene in video.scenes:
        if scene.narration is not None:
            what = f"{video.id} scene {scene.index} narration {scene.narration.text!r}"
            n = scene.narration
            n.start, n.end = place_speech(track, speak(n.text, **SPEECH), scene.start + NARRATION_OFFSET,
                                          scene.end - NARRATION_MARGIN, what)
    paint = Painter(video)
    for scene in video.scenes:
        middle = paint(int(round((scene.start + scene.end) / 2 * FPS)))
        scene.brightness = round(float(cv2.cvtColor(middle, cv2.COLOR_BGR2GRAY).mean()), 2)
    n_frames = int(round(video.duration * FPS))
    write_video(path, paint, n_frames, FPS, (WIDTH, HEIGHT), track, crf=30, audio_bit_rate=32_000)


def facts_of(videos: list[VideoPlan], seed: int, photos: bool) -> dict:
    return {
        "generator": "examples/make_suite.py",
        "seed": seed,
        "size": [WIDTH, HEIGHT],
        "fps": float(FPS),
        "audio_sample_rate": SAMPLE_RATE,
        "photos": photos,
        "background_patch": [[BACKGROUND_PATCH[0].start, BACKGROUND_PATCH[0].stop], [BACKGROUND_PATCH[1].start, BACKGROUND_PATCH[1].stop]],
        "videos": [
            {"id": v.id, "file": f"media/{v.id}.mp4", "duration": v.duration,
             "scene_boundaries": [s.start for s in v.scenes[1:]], "scenes": [asdict(s) for s in v.scenes]}
            for v in videos
        ],
    }


def make_suite(out: Path, seed: int, name: str | None = None, n_videos: int = 6) -> dict:
    """Write media, facts.json and suite.yaml into `out`; return the facts."""
    photos = all((PHOTO_DIR / f"{stem}.jpg").is_file() for half in PHOTOS for stem, _ in half)
    if not photos:
        print(f"note: darknet's photos are not in {PHOTO_DIR} (apt-get install -y darknet); "
              "making the suite without photo scenes", file=sys.stderr)
    videos = plan_videos(seed, n_videos=n_videos, photos=photos)
    (out / "media").mkdir(parents=True, exist_ok=True)
    for video in videos:
        render(video, out / "media" / f"{video.id}.mp4")
    facts = facts_of(videos, seed, photos)
    (out / "facts.json").write_text(json.dumps(facts, indent=1) + "\n")
    tasks = ask(videos, [f"media/{v.id}.mp4" for v in videos], seed)
    suite = {
        "suite": name or out.name,
        "defaults": {"budget": {"max_steps": 8, "max_tool_calls": 10, "wall_time_s": 300}},
        "tasks": tasks,
    }
    header = (f"# Generated by examples/make_suite.py --seed {seed}: do not edit by hand; re-run the script.\n"
              f"# {len(tasks)} tasks over {len(videos)} videos; the facts behind every answer are in facts.json.\n")
    (out / "suite.yaml").write_text(header + yaml.safe_dump(suite, sort_keys=False, width=120, allow_unicode=True, default_flow_style=None))
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="even and odd seeds draw from disjoint pools (default 0)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "suites" / "truth", help="output folder")
    parser.add_argument("--name", help="the suite's name (default: the folder's name)")
    parser.add_argument("--videos", type=int, default=6, help="number of videos (default 6)")
    args = parser.parse_args(argv)
    facts = make_suite(args.out, args.seed, args.name, args.videos)
    size = sum(p.stat().st_size for p in (args.out / "media").glob("*.mp4"))
    n_tasks = yaml.safe_load((args.out / "suite.yaml").read_text())["tasks"]
    print(f"wrote {args.out}: {len(facts['videos'])} videos ({size / 1e6:.2f} MB), {len(n_tasks)} tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
