"""The truth suite's questions, asked about a rendered plan (see suite_plan.py).

Every question, its options, its answer and its ground-truth span are derived
from the same plan the media were rendered from (with the narration spans
measured from the placed speech), so nothing is typed twice. Most questions are
multiple choice; grounding questions have a span as their answer.

Categories (the `category` of each task): speech (what is said),
on_screen_text, appearance (colour, brightness, photos), counting (scenes and
objects), order (before/after), grounding (where in time), two_evidence
(a fact from the narration joined with a fact from the picture).
"""

from __future__ import annotations

import random
from typing import Any

from suite_plan import ADJECTIVES, ANIMALS, COLOURS, COUNT_WORDS, ITEMS, NAMES, NOUNS, PLACES, Narration, Scene, VideoPlan

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SPAN_HINT = " Answer with the start and end time in seconds."
CATEGORIES = ("speech", "on_screen_text", "appearance", "counting", "order", "grounding", "two_evidence")


def _choice(rng: random.Random, truth: str, pool: list[str] | tuple[str, ...], n: int = 4) -> tuple[list[str], str]:
    """Options: `truth` and n-1 other pool entries, shuffled; and the truth's letter."""
    others = [p for p in dict.fromkeys(pool) if p != truth]
    options = [truth, *rng.sample(others, min(n - 1, len(others)))]
    rng.shuffle(options)
    return options, LETTERS[options.index(truth)]


def _span(*spans: tuple[float, float]) -> list[float]:
    """The smallest span covering all `spans` (the evidence a question needs)."""
    return [round(min(s[0] for s in spans), 3), round(max(s[1] for s in spans), 3)]


def _did(n: Narration) -> str:
    """'Anna buys the apples' / 'Anna counts the apples' — how a question refers to a narration."""
    return f"{n.name} {n.verb}s the {n.item}"


class _Asker:
    """Builds one video's tasks; `rng` orders options and picks which variant to ask."""

    def __init__(self, video: VideoPlan, video_path: str, half: int, rng: random.Random, all_titles: list[str]):
        self.v, self.path, self.half, self.rng = video, video_path, half, rng
        self.foreign_titles = [t for t in all_titles if t not in {s.title for s in video.scenes}]
        self.tasks: list[dict[str, Any]] = []

    def add(self, kind: str, category: str, question: str, span: list[float], evidence: list[str],
            options: list[str] | None = None, answer: str | None = None) -> None:
        task: dict[str, Any] = {"name": f"{self.v.id}-{len(self.tasks) + 1:02d}-{kind}", "video": self.path, "question": question}
        if options is not None:
            task.update(options=options, answer=answer)
        else:
            task["scorer"] = "span"  # grounding: the answer is a time span, scored by IoU with `span`
        task["span"] = span
        task["category"] = category
        task["metadata"] = {"video_id": self.v.id, "kind": kind, "evidence": evidence}
        self.tasks.append(task)

    @property
    def flat(self) -> list[Scene]:
        return [s for s in self.v.scenes if s.colour is not None]

    # -- speech -------------------------------------------------------------- #
    def speech(self, n: Narration) -> None:
        slot = self.rng.choice(("count", "item", "place", "name"))
        if slot == "count":
            q = f"According to the narration, how many {n.item} does {n.name} {n.verb}?"
            options, answer = _choice(self.rng, n.count, COUNT_WORDS)
        elif slot == "item":
            q = f"According to the narration, what does {n.name} {n.verb} at the {n.place}?"
            options, answer = _choice(self.rng, n.item, ITEMS[self.half])
        elif slot == "place":
            q = f"According to the narration, where does {n.name} {n.verb} the {n.item}?"
            options, answer = _choice(self.rng, f"at the {n.place}", [f"at the {p}" for p in PLACES[self.half]])
        else:
            q = f"According to the narration, who {n.verb}s {n.count} {n.item}?"
            options, answer = _choice(self.rng, n.name, NAMES[self.half])
        self.add(f"speech-{slot}", "speech", q, _span((n.start, n.end)), ["speech"], options, answer)

    # -- on-screen text -------------------------------------------------------- #
    def text(self) -> None:
        scene = self.rng.choice(self.v.scenes)
        options, answer = _choice(self.rng, scene.title, self.foreign_titles)
        self.add("title-shown", "on_screen_text", "Which of these titles is written on screen in the video?",
                 _span(scene.span), ["text"], options, answer)

    # -- appearance ------------------------------------------------------------ #
    def appearance(self) -> None:
        photo = next((s for s in self.v.scenes if s.photo), None)
        if photo is not None:
            options, answer = _choice(self.rng, photo.animal, ANIMALS)
            self.add("photo-animal", "appearance", "Which animal is shown in the photograph in this video?",
                     _span(photo.span), ["pixels"], options, answer)
        scene = self.rng.choice(self.flat)
        options, answer = _choice(self.rng, scene.colour, [c for c, _ in COLOURS[self.half]])
        self.add("background-colour", "appearance", f"What colour is the background of the scene titled '{scene.title}'?",
                 _span(scene.span), ["text", "pixels"], options, answer)
        ranked = sorted(self.flat, key=lambda s: s.brightness, reverse=True)
        if photo is None and len(ranked) >= 2 and ranked[0].brightness - ranked[1].brightness >= 20:
            options, answer = _choice(self.rng, ranked[0].title, [s.title for s in ranked])
            self.add("brightest-scene", "appearance", "Which scene is the brightest?",
                     _span(*(s.span for s in ranked[:4])), ["text", "pixels"], options, answer)

    # -- counting ------------------------------------------------------------- #
    def counting(self, which: int) -> None:
        if which % 2 == 0:
            n = len(self.v.scenes)
            options, answer = _choice(self.rng, COUNT_WORDS[n - 2], COUNT_WORDS[:6])
            self.add("scene-count", "counting", "How many scenes does the video have? A new scene starts at each cut.",
                     _span((0.0, self.v.duration)), ["shots"], options, answer)
        else:
            scene = self.rng.choice(self.flat)
            options, answer = _choice(self.rng, COUNT_WORDS[scene.squares - 2], COUNT_WORDS[:6])
            self.add("square-count", "counting", f"How many small squares are drawn in the scene titled '{scene.title}'?",
                     _span(scene.span), ["text", "pixels"], options, answer)

    # -- order ----------------------------------------------------------------- #
    def order(self, which: int) -> None:
        if which % 2 == 0:
            picked = self.rng.sample(self.v.scenes, 3)
            first = min(picked, key=lambda s: s.start)
            options = [s.title for s in picked]
            self.rng.shuffle(options)
            self.add("first-title", "order", "Which of these titles appears on screen first?",
                     _span(*(s.span for s in picked)), ["text"], options, LETTERS[options.index(first.title)])
        else:
            n = self.rng.choice(self.v.narrations)
            said_in = self.v.scene_of(n)
            other = self.rng.choice([s for s in self.v.scenes if s is not said_in])
            truth = "before" if said_in.start < other.start else "after"
            options = ["before", "after"]
            self.add("said-before-title", "order",
                     f"Is it said that {_did(n)} before or after the title '{other.title}' appears on screen?",
                     _span((n.start, n.end), other.span), ["speech", "text"], options, LETTERS[options.index(truth)])

    # -- grounding ------------------------------------------------------------- #
    def grounding(self, which: int) -> None:
        if which % 2 == 0:
            n = self.rng.choice(self.v.narrations)
            self.add("when-said", "grounding", f"When does the narrator say that {_did(n)}?" + SPAN_HINT,
                     _span((n.start, n.end)), ["speech"])
        else:
            scene = self.rng.choice(self.v.scenes)
            self.add("when-title", "grounding", f"When is the title '{scene.title}' on screen?" + SPAN_HINT,
                     _span(scene.span), ["text", "shots"])

    # -- two pieces of evidence ----------------------------------------------- #
    def two_evidence(self, which: int) -> None:
        flat_said = [n for n in self.v.narrations if self.v.scene_of(n).colour is not None]
        if which % 2 == 0 and flat_said:
            n = self.rng.choice(flat_said)
            scene = self.v.scene_of(n)
            options, answer = _choice(self.rng, scene.colour, [c for c, _ in COLOURS[self.half]])
            self.add("colour-while-said", "two_evidence", f"What colour is the background while the narrator says that {_did(n)}?",
                     _span((n.start, n.end)), ["speech", "pixels"], options, answer)
        else:
            n = self.rng.choice(self.v.narrations)
            options, answer = _choice(self.rng, self.v.scene_of(n).title, [s.title for s in self.v.scenes])
            self.add("title-while-said", "two_evidence", f"Which title is on screen when the narrator mentions the {n.place}?",
                     _span((n.start, n.end)), ["speech", "text"], options, answer)


def ask(videos: list[VideoPlan], video_paths: list[str], seed: int) -> list[dict[str, Any]]:
    """All tasks of the suite, in video order. Deterministic in `seed`."""
    rng = random.Random(seed * 7919 + 1)
    half = seed % 2
    all_titles = [f"{a} {n}" for a in ADJECTIVES[half] for n in NOUNS[half]]
    tasks = []
    for i, (video, path) in enumerate(zip(videos, video_paths)):
        asker = _Asker(video, path, half, rng, all_titles)
        for n in video.narrations[:2]:
            asker.speech(n)
        asker.text()
        asker.appearance()
        asker.counting(i)
        asker.order(i)
        asker.grounding(i)
        asker.two_evidence(i)
        tasks.extend(asker.tasks)
    return tasks
