"""Make the sample video the demo, the docs and the tests are written against.

Why a generator and not a downloaded clip: every fact a task asks about (what
is on screen, what is said, when scenes change) is known exactly, so answers
and tool outputs can be checked. The result is committed, so the demo does not
need espeak-ng; this script documents and reproduces it.

    python examples/make_sample.py [--out DIR] [--subtitles]

Writes ``DIR/sample.mp4`` (640x360, 24 fps, H.264 + AAC mono, 24 s) and
``DIR/sample.json`` with its facts: four 6 s scenes that differ strongly in
brightness *and* colour (hue-only cuts are not detected by PySceneDetect), an
on-screen title per scene, and one espeak-ng narration sentence per scene whose
start/end are measured from the speech samples actually placed in the track.

No subtitles ship with the sample: the demo and the tests hear the narration
through real speech recognition (Whisper tiny.en). ``--subtitles`` also
writes ``DIR/sample.srt`` (the narration at its measured spans), for tests of
the subtitle path only — never put it beside the committed sample, or
`transcribe` would read it instead of listening.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from mediakit import SAMPLE_RATE, draw_title, place_speech, speak, write_srt
from mediakit import write_video as mux

WIDTH, HEIGHT, FPS = 640, 360, 24
SCENE_SECONDS = 6.0
NARRATION_OFFSET = 0.5  # seconds from the scene start to the first speech sample


@dataclass(frozen=True)
class Scene:
    title: str
    description: str
    narration: str


SCENES = (
    Scene(
        "THE RED LIGHTHOUSE",
        "A white lighthouse with a sweeping yellow beam on a red background.",
        "The red lighthouse stands on the northern cliff.",
    ),
    Scene(
        "NIGHT WATCH",
        "A dark blue night sky with small white stars and seven boats drifting on the sea.",
        "At night the keeper counts seven ships.",
    ),
    Scene(
        "MORNING FIELD",
        "A bright green field under a rising yellow sun.",
        "In the morning a farmer plants green barley.",
    ),
    Scene(
        "NOON MARKET",
        "A light grey market square with coloured stall rectangles and people moving between them.",
        "At noon the market sells fresh bread for three coins.",
    ),
)


# --------------------------------------------------------------------------- #
# Pictures (BGR, OpenCV). Each takes the time t (s) within its scene.
# --------------------------------------------------------------------------- #


def _title(img: np.ndarray, text: str, color: tuple[int, int, int]) -> None:
    draw_title(img, text, color)


def _lighthouse(t: float) -> np.ndarray:
    img = np.full((HEIGHT, WIDTH, 3), (30, 30, 200), np.uint8)  # red, mid brightness
    cv2.rectangle(img, (0, 300), (WIDTH, HEIGHT), (20, 20, 110), -1)  # cliff
    tower = np.array([[300, 300], [340, 300], [330, 140], [310, 140]], np.int32)
    cv2.fillPoly(img, [tower], (255, 255, 255))
    cv2.rectangle(img, (302, 120), (338, 140), (255, 255, 255), -1)  # lamp room
    angle = 2 * math.pi * t / 3.0  # the beam sweeps once every 3 s
    tip = (int(320 + 260 * math.cos(angle)), int(130 + 60 * math.sin(angle)))
    cv2.line(img, (320, 130), tip, (0, 230, 255), 6, cv2.LINE_AA)
    _title(img, SCENES[0].title, (255, 255, 255))
    return img


_STARS = np.random.default_rng(7).integers((0, 70), (WIDTH, 220), size=(40, 2))


def _night(t: float) -> np.ndarray:
    img = np.full((HEIGHT, WIDTH, 3), (60, 15, 10), np.uint8)  # dark blue, dark
    cv2.rectangle(img, (0, 250), (WIDTH, HEIGHT), (40, 10, 5), -1)  # sea
    for x, y in _STARS:
        cv2.circle(img, (int(x), int(y)), 2, (255, 255, 255), -1)
    for i in range(7):  # seven boats drifting right, all on screen for the whole scene
        x = int(40 + i * 80 + t * (4 + 2 * i))
        y = 265 + (i % 3) * 28
        hull = np.array([[x - 22, y], [x + 22, y], [x + 14, y + 10], [x - 14, y + 10]], np.int32)
        cv2.fillPoly(img, [hull], (140, 140, 160))
        cv2.line(img, (x, y), (x, y - 22), (200, 200, 200), 2)
        cv2.fillPoly(img, [np.array([[x, y - 22], [x, y - 4], [x + 14, y - 4]], np.int32)], (220, 220, 230))
    _title(img, SCENES[1].title, (230, 230, 230))
    return img


def _field(t: float) -> np.ndarray:
    img = np.full((HEIGHT, WIDTH, 3), (80, 235, 120), np.uint8)  # bright green
    cv2.rectangle(img, (0, 0), (WIDTH, 150), (250, 220, 170), -1)  # pale sky
    sun_y = int(130 - 8 * t)  # the sun rises
    cv2.circle(img, (540, sun_y), 40, (0, 230, 255), -1, cv2.LINE_AA)
    for row in range(5):  # furrows
        cv2.line(img, (0, 190 + row * 35), (WIDTH, 190 + row * 35), (40, 170, 70), 3)
    _title(img, SCENES[2].title, (20, 60, 20))
    return img


_STALLS = ((0, 0, 220), (220, 120, 0), (0, 180, 255), (160, 0, 160), (0, 140, 0))


def _market(t: float) -> np.ndarray:
    img = np.full((HEIGHT, WIDTH, 3), (235, 235, 235), np.uint8)  # light grey, brightest
    for i, color in enumerate(_STALLS):
        x = 30 + i * 122
        cv2.rectangle(img, (x, 150), (x + 95, 230), color, -1)
        cv2.rectangle(img, (x, 130), (x + 95, 150), (90, 90, 90), -1)  # awning
    for i in range(4):  # people walking across the square
        x = int((60 + i * 150 + (t * 30 if i % 2 else -t * 25)) % WIDTH)
        cv2.circle(img, (x, 280 + (i % 2) * 30), 12, (60, 60, 60), -1)
    _title(img, SCENES[3].title, (40, 40, 40))
    return img


PAINTERS = (_lighthouse, _night, _field, _market)


# --------------------------------------------------------------------------- #
# Writing (speech, muxing and subtitles come from mediakit, shared with make_suite.py)
# --------------------------------------------------------------------------- #


def build_track(n_scenes: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The whole audio track (int16 mono) and each narration's (start, end) in s."""
    track = np.zeros(int(round(n_scenes * SCENE_SECONDS * SAMPLE_RATE)), np.int16)
    return track, [
        place_speech(track, speak(scene.narration), i * SCENE_SECONDS + NARRATION_OFFSET, (i + 1) * SCENE_SECONDS,
                     f"narration of scene {i + 1}")
        for i, scene in enumerate(SCENES[:n_scenes])
    ]


def _paint(index: int) -> np.ndarray:
    t = index / FPS
    scene = min(int(t // SCENE_SECONDS), len(SCENES) - 1)
    return PAINTERS[scene](t - scene * SCENE_SECONDS)


def write_video(path: Path, track: np.ndarray) -> None:
    """Mux H.264 video (drawn per frame) and AAC audio (from `track`) with PyAV."""
    mux(path, _paint, int(round(len(SCENES) * SCENE_SECONDS * FPS)), FPS, (WIDTH, HEIGHT), track)


def make_sample(out_dir: Path, subtitles: bool = False) -> dict:
    """Write sample.mp4 and sample.json (and with `subtitles` sample.srt) into `out_dir`; return the facts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    track, spans = build_track(len(SCENES))
    write_video(out_dir / "sample.mp4", track)
    duration = len(SCENES) * SCENE_SECONDS
    facts = {
        "video": "sample.mp4",
        "duration": duration,
        "fps": float(FPS),
        "size": [WIDTH, HEIGHT],
        "has_audio": True,
        "audio_sample_rate": SAMPLE_RATE,
        "scene_boundaries": [round(SCENE_SECONDS * i, 3) for i in range(1, len(SCENES))],
        "scenes": [
            {
                "index": i + 1,
                "start": i * SCENE_SECONDS,
                "end": (i + 1) * SCENE_SECONDS,
                "title": scene.title,
                "description": scene.description,
                "narration": {"text": scene.narration, "start": span[0], "end": span[1]},
            }
            for i, (scene, span) in enumerate(zip(SCENES, spans))
        ],
    }
    (out_dir / "sample.json").write_text(json.dumps(facts, indent=2) + "\n")
    if subtitles:
        write_subtitles(out_dir / "sample.srt", facts["scenes"])
    return facts


def write_subtitles(path: Path, scenes: list[dict]) -> None:
    """A sidecar .srt of the narration, as many real videos ship one (subtitle tests only)."""
    write_srt(path, [(s["narration"]["start"], s["narration"]["end"], s["narration"]["text"]) for s in scenes])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "media", help="output folder")
    parser.add_argument("--subtitles", action="store_true", help="also write sample.srt (subtitle tests only)")
    args = parser.parse_args(argv)
    facts = make_sample(args.out, subtitles=args.subtitles)
    size = (args.out / "sample.mp4").stat().st_size
    extra = ", sample.srt" if args.subtitles else ""
    print(f"wrote {args.out / 'sample.mp4'} ({size / 1e6:.2f} MB, {facts['duration']:.0f} s){extra} and sample.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
