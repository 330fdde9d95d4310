"""What the truth suite's videos contain, drawn from a seed: scenes, titles, colours, photos, narration.

Why a separate module: the plan is pure data (no media), so `make_suite.py`
renders it and `suite_questions.py` asks about it, and both read the same
facts. Nothing about a video is written down twice.

Two suites must never share a sentence or a scene colour (the held-apart suite
measures overfitting to the first). Every pool below is split in two halves
and a seed's parity picks the half: even seeds (the truth suite, seed 0) and
odd seeds (the held-out suite, seed 1) draw from disjoint halves.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

PHOTO_DIR = Path("/usr/share/darknet/data")  # Debian's `darknet` package ships these test photos

# (name, BGR). Lumas spread from dark to bright so that neighbouring scenes can
# always differ in brightness, not only in hue (PySceneDetect misses hue-only cuts).
COLOURS: tuple[tuple[tuple[str, tuple[int, int, int]], ...], ...] = (
    (("red", (40, 40, 205)), ("navy", (100, 25, 10)), ("yellow", (40, 215, 235)),
     ("white", (235, 235, 235)), ("green", (50, 160, 40)), ("purple", (140, 30, 120))),
    (("orange", (20, 130, 245)), ("black", (25, 25, 25)), ("cyan", (225, 210, 40)),
     ("pink", (195, 150, 250)), ("brown", (30, 60, 120)), ("teal", (125, 125, 0))),
)
NAMES = (("Anna", "Tomas", "Lena", "Marco", "Sofia", "Pavel", "Ines", "Oskar"),
         ("Clara", "Hugo", "Mira", "Felix", "Nora", "Emil", "Vera", "Jonas"))
ITEMS = (("apples", "candles", "lanterns", "baskets", "kettles", "ropes"),
         ("oranges", "blankets", "mirrors", "buckets", "hammers", "ladders"))
PLACES = (("harbour", "bakery", "station", "library"), ("market", "bridge", "garden", "museum"))
ADJECTIVES = (("NORTH", "GOLDEN", "SILENT", "EARLY", "HIGH", "OLD"), ("SOUTH", "SILVER", "QUIET", "LATE", "LOW", "NEW"))
NOUNS = (("TOWER", "RIVER", "FOREST", "VALLEY", "HARBOR", "CASTLE"), ("BRIDGE", "LAKE", "MEADOW", "CANYON", "ISLAND", "TEMPLE"))
# File stem → what the photo shows. Only photos with one clear animal among the options.
PHOTOS = ((("dog", "a dog"), ("giraffe", "a giraffe")), (("eagle", "an eagle"), ("horses", "horses")))
ANIMALS = ("a dog", "an eagle", "a giraffe", "horses")
COUNT_WORDS = ("two", "three", "four", "five", "six", "seven", "eight", "nine")
# (sentence, verb): how a narration says what someone does. Questions reuse the verb.
TEMPLATES = (("{name} buys {count} {item} at the {place}.", "buy"), ("At the {place}, {name} counts {count} {item}.", "count"))

PHOTO_GREY = (70, 70, 70)  # behind a photo's title; darker than any photo's mean
MIN_LUMA_STEP = 45.0  # neighbouring flat scenes differ at least this much in brightness (0-255)


def luma(bgr: tuple[int, int, int]) -> float:
    b, g, r = bgr
    return 0.299 * r + 0.587 * g + 0.114 * b


@dataclass
class Narration:
    text: str
    name: str
    verb: str
    count: str
    item: str
    place: str
    start: float = 0.0  # measured from the placed speech samples by make_suite
    end: float = 0.0


@dataclass
class Scene:
    index: int
    start: float
    end: float
    title: str
    colour: str | None  # None for a photo scene
    bgr: tuple[int, int, int]
    squares: int = 0  # small squares drawn in the middle band
    photo: str | None = None  # file stem under PHOTO_DIR
    animal: str | None = None
    narration: Narration | None = None
    brightness: float = 0.0  # mean grey level (0-255) of the scene's middle frame, measured by make_suite

    @property
    def span(self) -> tuple[float, float]:
        return (self.start, self.end)


@dataclass
class VideoPlan:
    id: str
    scenes: list[Scene] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.scenes[-1].end

    @property
    def narrations(self) -> list[Narration]:
        return [s.narration for s in self.scenes if s.narration is not None]

    def scene_of(self, narration: Narration) -> Scene:
        return next(s for s in self.scenes if s.narration is narration)


def _colour_order(rng: random.Random, palette: tuple, n: int) -> list[tuple[str, tuple[int, int, int]]]:
    """n palette colours, no repeats, neighbours at least MIN_LUMA_STEP apart in brightness."""
    for _ in range(1000):
        picked = rng.sample(palette, n)
        if all(abs(luma(a[1]) - luma(b[1])) >= MIN_LUMA_STEP for a, b in zip(picked, picked[1:])):
            return picked
    raise RuntimeError(f"no order of {n} colours keeps neighbours {MIN_LUMA_STEP} apart in brightness")


def plan_videos(seed: int, n_videos: int = 6, photos: bool = True) -> list[VideoPlan]:
    """The suite's videos for `seed`; photo scenes only when `photos` (the darknet files exist)."""
    if n_videos < 1:
        raise ValueError("n_videos must be at least 1")
    half = seed % 2
    rng = random.Random(seed)
    titles = [f"{a} {n}" for a in ADJECTIVES[half] for n in NOUNS[half]]
    rng.shuffle(titles)
    photo_pool = PHOTOS[half]
    videos = []
    for v in range(n_videos):
        n_scenes = 3 + v % 3  # 3, 4, 5 scenes
        # Drawn whether or not the photos exist, so the rest of the plan does not depend on them.
        photo_at = rng.randrange(1, n_scenes) if v % 2 == 0 else None  # never first: the opening is a colour
        photo_at = photo_at if photos else None
        flat = _colour_order(rng, COLOURS[half], n_scenes)
        video = VideoPlan(id=f"v{v + 1}")
        t = 0.0
        for i in range(n_scenes):
            length = rng.choice((5.5, 6.0))  # room for a slow narration sentence; 5 scenes ≤ 30 s
            title, squares = titles.pop(), rng.randint(2, 6)
            if i == photo_at:
                stem, animal = photo_pool[(v // 2) % len(photo_pool)]
                scene = Scene(i + 1, t, t + length, title, None, PHOTO_GREY, photo=stem, animal=animal)
            else:
                name, bgr = flat[i]
                scene = Scene(i + 1, t, t + length, title, name, bgr, squares=squares)
            video.scenes.append(scene)
            t += length
        # Two or three narrated scenes, each with its own name, item and place.
        narrated = sorted(rng.sample(range(n_scenes), 2 if n_scenes < 5 else 3))
        names = rng.sample(NAMES[half], len(narrated))
        items = rng.sample(ITEMS[half], len(narrated))
        places = rng.sample(PLACES[half], len(narrated))
        for k, i in enumerate(narrated):
            template, verb = rng.choice(TEMPLATES)
            slots = {"name": names[k], "count": rng.choice(COUNT_WORDS), "item": items[k], "place": places[k]}
            video.scenes[i].narration = Narration(template.format(**slots), verb=verb, **slots)
        videos.append(video)
    return videos
