"""Questions about a long video's needles (see long_plan.py), several wordings of each.

Every question, its options, its answer and its ground-truth span come from
the plan the media were rendered from (narration spans measured from the
placed speech), so nothing is typed twice. Each kind of question has three
wordings and the seed picks one per video, so a policy cannot succeed by
recognising one sentence. All wordings were written for this suite.

Kinds (``metadata.kind``) and categories:

* ``needle-count`` (speech): the number in a spoken fact;
* ``needle-day`` (speech): the weekday in another spoken fact;
* ``needle-flash`` (on_screen_text): the word shown once for 2 s;
* ``needle-photo`` (appearance): what the one photograph shows;
* ``needle-when`` (grounding): when an event is said, options are time ranges;
* ``photo-span`` (grounding): when the photograph is shown, answered as a span (IoU);
* ``title-while-said`` (two_evidence): the title on screen while a spoken fact is said.
"""

from __future__ import annotations

import random
from typing import Any

from long_plan import ANIMALS, COUNT_WORDS, DAYS, FLASH_WORDS, LongVideo

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
NEEDLE_KINDS = ("needle-count", "needle-day", "needle-flash", "needle-photo", "needle-when")
ALL_KINDS = (*NEEDLE_KINDS, "photo-span", "title-while-said")

WORDINGS: dict[str, tuple[str, ...]] = {
    "needle-count": (
        "How many {item} did {name} pack, according to what is said?",
        "The speaker mentions {name} packing some {item}. What number is given?",
        "What quantity of {item} does the voice-over say {name} took along?",
    ),
    "needle-day": (
        "On which day is {name} expected to arrive?",
        "According to the spoken commentary, what day will {name} get here?",
        "{name}'s arrival is announced at some point. Which weekday is named?",
    ),
    "needle-flash": (
        "One word appears in large letters for only a couple of seconds. Which word is it?",
        "Which of these words briefly flashes up in the middle of the screen?",
        "For a moment a single big word is displayed. What does it say?",
    ),
    "needle-photo": (
        "A photograph is shown at one point. What does it show?",
        "Which animal can be seen in the only photo of the video?",
        "Somewhere in the video a real picture replaces the plain background. What is pictured?",
    ),
    "needle-when": (
        "At what point in the video do we hear that {name} found the {thing}?",
        "When is it mentioned that the lost {thing} turned up?",
        "In which part of the video does the narration say the {thing} was found in the attic?",
    ),
    "photo-span": (
        "During which seconds is the photograph on screen? Give the start and end time in seconds.",
        "Find the stretch of the video that shows a photograph. Answer with its start and end in seconds.",
        "Between which two times, in seconds, is a photo displayed?",
    ),
    "title-while-said": (
        "What caption is visible at the top of the screen while {name}'s arrival is being announced?",
        "Which heading is displayed when the narrator tells us the day {name} arrives?",
        "While the voice says when {name} will arrive, which title is written on screen?",
    ),
}


def clock(seconds: float) -> str:
    """0:00 / 7:30 / 1:15:00 — how a person writes a position in a long video."""
    s = int(round(seconds))
    h, m, sec = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _choice(rng: random.Random, truth: str, pool: list[str] | tuple[str, ...], n: int = 4) -> tuple[list[str], str]:
    """Options: `truth` and n-1 other pool entries, shuffled; and the truth's letter."""
    others = [p for p in dict.fromkeys(pool) if p != truth]
    options = [truth, *rng.sample(others, min(n - 1, len(others)))]
    rng.shuffle(options)
    return options, LETTERS[options.index(truth)]


def _span(span: tuple[float, float]) -> list[float]:
    return [round(span[0], 3), round(span[1], 3)]


def ask_long(video: LongVideo, video_path: str, kinds: tuple[str, ...] = ALL_KINDS) -> list[dict[str, Any]]:
    """The tasks about one long video, in `kinds` order (kinds whose needle is absent are skipped)."""
    rng = random.Random(f"ask-{video.seed}-{video.minutes}")
    n = video.needles
    tasks: list[dict[str, Any]] = []

    def add(kind: str, category: str, span: tuple[float, float], evidence: list[str], scene: int,
            options: list[str] | None = None, answer: str | None = None, **slots: str) -> None:
        task: dict[str, Any] = {"name": f"{video.id}-{len(tasks) + 1:02d}-{kind}", "video": video_path,
                                "question": rng.choice(WORDINGS[kind]).format(**slots)}
        if options is not None:
            task.update(options=options, answer=answer)
        else:
            task["scorer"] = "span"  # the answer is a time span, scored by IoU with `span`
        task.update(span=_span(span), category=category)
        task["metadata"] = {"video_id": video.id, "kind": kind, "evidence": evidence,
                            "depth": round(video.scenes[scene].start / video.duration, 3),
                            "minutes": video.minutes}
        tasks.append(task)

    for kind in kinds:
        if kind == "needle-count":
            said = video.scenes[n.count["scene"]].narration
            options, answer = _choice(rng, n.count["count"], COUNT_WORDS)
            add(kind, "speech", (said.start, said.end), ["speech"], n.count["scene"], options, answer,
                name=n.count["name"], item=n.count["item"])
        elif kind == "needle-day":
            said = video.scenes[n.day["scene"]].narration
            options, answer = _choice(rng, n.day["day"], DAYS)
            add(kind, "speech", (said.start, said.end), ["speech"], n.day["scene"], options, answer, name=n.day["name"])
        elif kind == "needle-flash":
            flash = video.scenes[n.flash["scene"]].flash
            options, answer = _choice(rng, n.flash["word"], FLASH_WORDS)
            add(kind, "on_screen_text", (flash.start, flash.end), ["text"], n.flash["scene"], options, answer)
        elif kind == "needle-photo" and n.photo:
            scene = video.scenes[n.photo["scene"]]
            options, answer = _choice(rng, n.photo["animal"], ANIMALS)
            add(kind, "appearance", scene.span, ["pixels"], scene.index, options, answer)
        elif kind == "needle-when":
            said = video.scenes[n.found["scene"]].narration
            quarter = video.duration / 4
            ranges = [f"between {clock(k * quarter)} and {clock((k + 1) * quarter)}" for k in range(4)]
            truth = ranges[min(3, int(said.start // quarter))]
            add(kind, "grounding", (said.start, said.end), ["speech"], n.found["scene"], ranges,
                LETTERS[ranges.index(truth)], name=n.found["name"], thing=n.found["thing"])
        elif kind == "photo-span" and n.photo:
            scene = video.scenes[n.photo["scene"]]
            add(kind, "grounding", scene.span, ["pixels"], scene.index)
        elif kind == "title-while-said":
            scene = video.scenes[n.day["scene"]]
            others = [s.title for s in video.scenes if s.index != scene.index]
            options, answer = _choice(rng, scene.title, others)
            add(kind, "two_evidence", (scene.narration.start, scene.narration.end), ["speech", "text"], scene.index,
                options, answer, name=n.day["name"])
        elif kind not in ALL_KINDS:
            raise ValueError(f"unknown question kind {kind!r}; known: {', '.join(ALL_KINDS)}")
    return tasks
