"""What a long needle-in-a-haystack video contains, drawn from a seed: scenes, narration, needles.

Why a plan apart from the renderer: the plan is pure data, so
`make_long_suite.py` renders it, `long_questions.py` asks about it and
`benchmarks/bench_long.py` scores against it, all from the same facts.

A video of M minutes has 4·M scenes of 15 s. Every scene has a flat
background (neighbours differ in brightness, so cuts are detectable), a
two-word title and one narrated sentence of unremarkable everyday life: the
haystack. Five needles sit at seeded random depths, each in its own scene:

* ``count``: a spoken fact with a name and a number ("... packed six compasses ...");
* ``day``: a spoken fact with a name and a weekday;
* ``found``: a spoken event, asked about by *when* it happens (time-range options);
* ``flash``: a word shown once, in large letters, for exactly 2 s;
* ``photo``: a real photograph (Debian's `darknet` test photos) under the scene's title.

The haystack pools share no word with the needle pools, so each needle is
said or shown exactly once. None of the words below are taken from the
bundled or natural suites.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

PHOTO_DIR = Path("/usr/share/darknet/data")  # Debian's `darknet` package ships these test photos
SCENE_SECONDS = 15.0
FLASH_SECONDS = 2.0
NARRATION_OFFSET = 1.0  # seconds from a scene's start to its first speech sample
NARRATION_MARGIN = 0.5  # speech ends at least this long before the scene does

# Backgrounds (name, BGR): scenes alternate between the dark and the bright pool.
DARK = (("midnight blue", (90, 30, 20)), ("forest green", (30, 90, 25)), ("maroon", (30, 25, 110)),
        ("charcoal", (50, 50, 50)), ("plum", (90, 30, 80)), ("deep teal", (80, 80, 10)))
BRIGHT = (("lemon", (120, 235, 245)), ("pale sky", (245, 215, 170)), ("salmon", (130, 160, 245)),
          ("light grey", (210, 210, 210)), ("mint", (190, 240, 180)), ("peach", (170, 205, 250)))
PHOTO_GREY = (60, 60, 60)

TITLE_WORDS = (
    ("AMBER", "COPPER", "MISTY", "HOLLOW", "BRIGHT", "WINDY", "SUNNY", "FROSTY", "DUSTY", "CRIMSON", "IVORY", "VELVET",
     "STORMY", "GENTLE", "ROCKY", "SANDY", "PINE", "MAPLE", "CEDAR", "OAK", "WILLOW", "BIRCH", "HAZEL", "ROSE"),
    ("HILLS", "COVE", "FIELDS", "GROVE", "HARBOUR", "POINT", "RIDGE", "SHORE", "WOODS", "MOOR", "CREEK", "FALLS",
     "GARDENS", "HEIGHTS", "MEADOWS", "PASS", "BAY", "DUNES", "GLEN", "CLIFFS", "PLAINS", "SPRINGS", "TERRACE", "WHARF"),
)

# The haystack: subject + action + where, no names, no numbers, no weekdays.
SUBJECTS = ("The ferryman", "A quiet student", "The baker's cat", "An old sailor", "The night guard",
            "A tired cyclist", "The shepherd", "The weaver", "A young painter", "The postman",
            "The gardener", "A street musician", "The librarian", "A fisherwoman", "The clockmaker", "A traveller")
ACTIONS = ("watches the clouds drift", "sweeps the narrow street", "mends a torn sail", "waters the tomato plants",
           "reads a letter slowly", "closes the wooden shutters", "hums a slow tune", "folds the clean laundry",
           "feeds the pigeons", "paints the garden fence", "ties up the little boat", "rests on a bench",
           "carries a basket of bread", "sharpens a pencil", "polishes the brass bell", "counts the passing clouds")
PLACES = ("near the old mill", "after the rain", "before sunrise", "by the canal", "on the hillside",
          "under the bridge", "beside the fountain", "at the edge of town", "in the afternoon light",
          "behind the chapel", "along the river path", "in the village square")

# The needles' pools, disjoint from the haystack's.
NAMES = ("Rosalind", "Bertram", "Ottilie", "Casimir", "Henrietta", "Leopold", "Philippa", "Ambrose",
         "Winifred", "Lucian", "Imogen", "Barnaby")
COUNT_ITEMS = ("umbrellas", "compasses", "notebooks", "teacups", "candlesticks", "pencils", "scarves", "envelopes")
COUNT_WORDS = ("three", "four", "five", "six", "seven", "eight", "nine")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
LOST_THINGS = ("violin", "typewriter", "telescope", "chessboard", "accordion", "microscope")
FLASH_WORDS = ("MARMALADE", "SAXOPHONE", "PINEAPPLE", "TRAMPOLINE", "CHIMNEY", "HELMET", "PRETZEL", "CACTUS",
               "LAVENDER", "TORNADO", "ORCHESTRA", "JIGSAW")
# File stem → what the photo shows: photos with one clear kind of animal.
PHOTOS = (("dog", "a dog"), ("eagle", "an eagle"), ("giraffe", "a giraffe"), ("horses", "horses"))
ANIMALS = tuple(animal for _, animal in PHOTOS)


def luma(bgr: tuple[int, int, int]) -> float:
    b, g, r = bgr
    return 0.299 * r + 0.587 * g + 0.114 * b


@dataclass
class Speech:
    text: str
    start: float = 0.0  # measured from the placed speech samples by make_long_suite
    end: float = 0.0


@dataclass
class Flash:
    word: str
    start: float
    end: float


@dataclass
class LongScene:
    index: int
    start: float
    end: float
    title: str
    colour: str | None  # None for the photo scene
    bgr: tuple[int, int, int]
    narration: Speech
    photo: str | None = None  # file stem under PHOTO_DIR
    animal: str | None = None
    flash: Flash | None = None
    needle: str | None = None  # which needle this scene carries, if any

    @property
    def span(self) -> tuple[float, float]:
        return (self.start, self.end)


@dataclass
class Needles:
    """The facts behind the needles; each names the scene that carries it."""

    count: dict = field(default_factory=dict)  # scene, name, count, item
    day: dict = field(default_factory=dict)  # scene, name, day
    found: dict = field(default_factory=dict)  # scene, name, thing
    flash: dict = field(default_factory=dict)  # scene, word
    photo: dict = field(default_factory=dict)  # scene, stem, animal (empty without photos)


@dataclass
class LongVideo:
    id: str
    minutes: int
    seed: int
    scenes: list[LongScene] = field(default_factory=list)
    needles: Needles = field(default_factory=Needles)

    @property
    def duration(self) -> float:
        return self.scenes[-1].end

    def scene(self, index: int) -> LongScene:
        return self.scenes[index]


def _titles(rng: random.Random, n: int) -> list[str]:
    pairs = [f"{a} {b}" for a in TITLE_WORDS[0] for b in TITLE_WORDS[1]]
    if n > len(pairs):
        raise ValueError(f"a video of {n} scenes needs more than the {len(pairs)} distinct titles")
    return rng.sample(pairs, n)


def _needle_scenes(rng: random.Random, n_scenes: int, kinds: list[str]) -> dict[str, int]:
    """A distinct scene per needle, at random depths between 5% and 95%, at least 3 scenes apart."""
    lo, hi = max(1, int(n_scenes * 0.05)), min(n_scenes - 2, int(n_scenes * 0.95))
    if (hi - lo) < 3 * len(kinds):
        raise ValueError(f"{n_scenes} scenes are too few for {len(kinds)} needles; make the video longer")
    for _ in range(10_000):
        picked = [rng.randint(lo, hi) for _ in kinds]
        ordered = sorted(picked)
        if all(b - a >= 3 for a, b in zip(ordered, ordered[1:])):
            return dict(zip(kinds, picked))
    raise RuntimeError("could not place the needles")


def plan_long_video(video_id: str, minutes: int, seed: int, photos: bool = True) -> LongVideo:
    """The plan of one long video; the same (minutes, seed) always gives the same plan."""
    if minutes < 2:
        raise ValueError(f"minutes must be at least 2 (got {minutes})")
    rng = random.Random(f"long-{seed}-{minutes}")
    n_scenes = int(round(minutes * 60 / SCENE_SECONDS))
    titles = _titles(rng, n_scenes)
    video = LongVideo(video_id, minutes, seed)
    dark_first = rng.random() < 0.5
    for i in range(n_scenes):
        colour, bgr = rng.choice(DARK if (i % 2 == 0) == dark_first else BRIGHT)
        said = f"{rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} {rng.choice(PLACES)}."
        start = i * SCENE_SECONDS
        video.scenes.append(LongScene(i, start, start + SCENE_SECONDS, titles[i], colour, bgr, Speech(said)))

    # Drawn whether or not the photos exist, so the rest of the plan does not depend on them.
    at = _needle_scenes(rng, n_scenes, ["count", "day", "found", "flash", "photo"])
    names = rng.sample(NAMES, 3)
    n = video.needles

    scene = video.scenes[at["count"]]
    count, item = rng.choice(COUNT_WORDS), rng.choice(COUNT_ITEMS)
    scene.narration, scene.needle = Speech(f"{names[0]} packed {count} {item} for the journey."), "count"
    n.count = {"scene": scene.index, "name": names[0], "count": count, "item": item}

    scene = video.scenes[at["day"]]
    day = rng.choice(DAYS)
    scene.narration, scene.needle = Speech(f"{names[1]} will arrive on {day} by train."), "day"
    n.day = {"scene": scene.index, "name": names[1], "day": day}

    scene = video.scenes[at["found"]]
    thing = rng.choice(LOST_THINGS)
    scene.narration, scene.needle = Speech(f"{names[2]} finally found the lost {thing} in the attic."), "found"
    n.found = {"scene": scene.index, "name": names[2], "thing": thing}

    scene = video.scenes[at["flash"]]
    word = rng.choice(FLASH_WORDS)
    offset = rng.choice((6.0, 7.0, 8.0, 9.0, 10.0, 11.0))  # after the narration has begun, whole seconds
    scene.flash, scene.needle = Flash(word, scene.start + offset, scene.start + offset + FLASH_SECONDS), "flash"
    n.flash = {"scene": scene.index, "word": word}

    stem, animal = rng.choice(PHOTOS)
    if photos:
        scene = video.scenes[at["photo"]]
        scene.photo, scene.animal, scene.colour, scene.bgr, scene.needle = stem, animal, None, PHOTO_GREY, "photo"
        n.photo = {"scene": scene.index, "stem": stem, "animal": animal}
    return video
