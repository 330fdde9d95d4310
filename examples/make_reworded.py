"""Make a reworded truth suite: every truth-suite fact asked again in other words.

Why: the bundled suites ask one sentence template per question kind, so a score
on them says little about questions as people write them (issue 21). This
script renders the same facts (``facts.json``: scenes, titles, colours,
narration sentences with their measured spans) in at least three *other*
wordings per question kind: other wh-forms ("whose", "in what place", "by
whom"), other verbs and synonyms ("purchase", "tally", "caption", "backdrop",
"voice-over"), reordered clauses and relations said differently ("earlier or
later", "as we hear that ...", "the part labelled ..."). The wordings were
written from the facts alone, without reading the agent's rules, so the suite
measures how the agent reads questions it was not fitted to. Never tune the
agent on it.

Each truth task keeps its video, options (the same distractors, sometimes
written another way: digits for counts, "earlier/later" for "before/after",
a bare place for "at the place"), answer letter, ground-truth span, scorer and
category; only the wording changes. The facts behind a question are found from
the task's kind, answer and span, never by parsing the truth question.

    python examples/make_reworded.py runs/reworded                    # 54 tasks, wordings rotated per kind
    python examples/make_reworded.py runs/reworded --per-question 3   # 162 tasks, three wordings of each
    mcr eval runs/reworded/suite.yaml --policy offline --out runs/eval/reworded

Writes only ``OUT/suite.yaml``; its videos point into the truth suite's media
folder (``media_root`` names it), so nothing is copied. Deterministic: the same
inputs give the same file, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

TRUTH_DIR = Path(__file__).resolve().parent / "suites" / "truth"
LETTERS = "ABCDEFGH"
TIME_TOLERANCE = 0.02  # seconds: spans in suite.yaml and facts.json are the same rounded numbers

# --------------------------------------------------------------------------- #
# Words
# --------------------------------------------------------------------------- #

# Inflections of the narration verbs the facts use; an unknown verb falls back to regular English.
_VERB_FORMS = {
    "buy": {"s": "buys", "past": "bought", "ing": "buying", "pp": "bought"},
    "count": {"s": "counts", "past": "counted", "ing": "counting", "pp": "counted"},
}
# Other verbs for the same act, each with its forms (a synonym the speaker never used).
_VERB_SYNONYMS = {
    "buy": {"base": "purchase", "s": "purchases", "past": "purchased", "ing": "purchasing", "pp": "purchased"},
    "count": {"base": "tally", "s": "tallies", "past": "tallied", "ing": "tallying", "pp": "tallied"},
}
_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                 "eleven", "twelve"]


def verb_form(verb: str, form: str, synonym: bool = False) -> str:
    """`verb` in `form` (base, s, past, ing, pp); with `synonym`, another verb for the same act."""
    if synonym and verb in _VERB_SYNONYMS:
        return _VERB_SYNONYMS[verb][form]
    if form == "base":
        return verb
    if verb in _VERB_FORMS:
        return _VERB_FORMS[verb][form]
    regular = {"s": verb + "s", "past": verb + "ed", "ing": verb + "ing", "pp": verb + "ed"}
    return regular[form]


def title_case(title: str) -> str:
    """'HIGH TOWER' -> 'High Tower': the caption as a person would type it."""
    return " ".join(word.capitalize() for word in title.split())


def digits(option: str) -> str:
    """'seven' -> '7' (an option written as a number); other text unchanged."""
    word = option.strip().lower()
    return str(_NUMBER_WORDS.index(word)) if word in _NUMBER_WORDS else option


def bare_place(option: str) -> str:
    """'at the harbour' -> 'the harbour'."""
    return option[3:] if option.lower().startswith("at ") else option


def earlier_later(option: str) -> str:
    """'before' -> 'earlier', 'after' -> 'later'."""
    return {"before": "earlier", "after": "later"}.get(option.strip().lower(), option)


def capitalise(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


# --------------------------------------------------------------------------- #
# Facts
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Wording:
    """One rendering of a truth question: the question and how its options are written."""

    question: str
    options: Callable[[str], str] | None = None  # applied to every option; None keeps them


def _close(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) <= TIME_TOLERANCE


def _narrations(video: dict) -> list[tuple[dict, dict]]:
    """(scene, narration) for every narrated scene of `video`."""
    return [(scene, scene["narration"]) for scene in video["scenes"] if scene.get("narration")]


def narration_at(video: dict, start: float | None = None, end: float | None = None) -> tuple[dict, dict]:
    """The narration (and its scene) that starts at `start` and/or ends at `end`."""
    for scene, said in _narrations(video):
        if (start is None or _close(said["start"], start)) and (end is None or _close(said["end"], end)):
            return scene, said
    raise LookupError(f"no narration in {video['id']} spanning {start}..{end}")


def scene_at(video: dict, start: float | None = None, end: float | None = None) -> dict:
    """The scene that starts at `start` and/or ends at `end`."""
    for scene in video["scenes"]:
        if (start is None or _close(scene["start"], start)) and (end is None or _close(scene["end"], end)):
            return scene
    raise LookupError(f"no scene in {video['id']} spanning {start}..{end}")


def answer_text(task: dict) -> str:
    return task["options"][LETTERS.index(task["answer"])]


# --------------------------------------------------------------------------- #
# Wordings per question kind (written from the facts; at least three each)
# --------------------------------------------------------------------------- #


def _speech_item(task: dict, video: dict) -> list[Wording]:
    _, s = narration_at(video, *task["span"])
    name, verb, place = s["name"], s["verb"], s["place"]
    return [
        Wording(f"Which things does the voice-over say {name} {verb_form(verb, 's')} at the {place}?"),
        Wording(f"At the {place}, what did {name} {verb_form(verb, 'base', synonym=True)}, going by what is said?"),
        Wording(f"The speaker mentions {name} at the {place}. What are they {verb_form(verb, 'ing')} there?"),
        Wording(f"What gets {verb_form(verb, 'pp')} by {name} at the {place} in the spoken audio?"),
    ]


def _speech_name(task: dict, video: dict) -> list[Wording]:
    _, s = narration_at(video, *task["span"])
    verb, count, item = s["verb"], s["count"], s["item"]
    return [
        Wording(f"Who is said to have {verb_form(verb, 'pp', synonym=True)} {count} {item}?"),
        Wording(f"{capitalise(count)} {item} are {verb_form(verb, 'pp')} by someone in the voice-over. By whom?"),
        Wording(f"Name the person the speaker describes {verb_form(verb, 'ing')} {count} {item}."),
        Wording(f"Whose name goes with the {count} {item} that are {verb_form(verb, 'pp')}, as we hear it?"),
    ]


def _speech_count(task: dict, video: dict) -> list[Wording]:
    _, s = narration_at(video, *task["span"])
    name, verb, item = s["name"], s["verb"], s["item"]
    return [
        Wording(f"What number of {item} does {name} {verb_form(verb, 'base', synonym=True)}, as the audio tells it?"),
        Wording(f"{name} {verb_form(verb, 's')} some {item}. How many, according to the speaker?", digits),
        Wording(f"In the spoken commentary, how many {item} did {name} {verb_form(verb, 'base')}?"),
        Wording(f"The voice says {name} {verb_form(verb, 's')} {item}: what is their number?"),
    ]


def _speech_place(task: dict, video: dict) -> list[Wording]:
    _, s = narration_at(video, *task["span"])
    name, verb, item = s["name"], s["verb"], s["item"]
    return [
        Wording(f"In what place are the {item} {verb_form(verb, 'pp')} by {name}, as the voice-over tells it?", bare_place),
        Wording(f"The speaker says {name} {verb_form(verb, 's')} {item} somewhere. Where is that?"),
        Wording(f"Where was {name} when {verb_form(verb, 'ing', synonym=True)} the {item}, going by the narrator?"),
        Wording(f"Which location does the audio give for {name}'s {item}?", bare_place),
    ]


def _title_shown(task: dict, video: dict) -> list[Wording]:
    return [
        Wording("Which of the following captions can be read in the footage?"),
        Wording("One of these headings is displayed as text at some point. Which one?"),
        Wording("What words appear written across the picture in this clip?"),
        Wording("Which caption does the video put on screen?"),
    ]


def _photo_animal(task: dict, video: dict) -> list[Wording]:
    return [
        Wording("What creature can be seen in the picture that the video shows?"),
        Wording("The clip includes a photo. Which animal is in it?"),
        Wording("Which of these animals appears in the video's image?"),
        Wording("In the photographic shot, what kind of animal is pictured?"),
    ]


def _background_colour(task: dict, video: dict) -> list[Wording]:
    scene = scene_at(video, *task["span"])
    title = scene["title"]
    return [
        Wording(f"In the scene captioned \"{title}\", what is the colour of the backdrop?"),
        Wording(f"While {title_case(title)} is shown, what colour fills the screen behind the words?"),
        Wording(f"The part of the video labelled '{title}' has a background of which colour?"),
        Wording(f"Which colour lies behind the text {title}?"),
    ]


def _scene_count(task: dict, video: dict) -> list[Wording]:
    return [
        Wording("How many shots is the video made of, if every cut begins a new one?"),
        Wording("Count the separate scenes: how many make up this clip?", digits),
        Wording("The video is cut into several scenes. What is their number?"),
        Wording("Into how many parts is the clip divided by its cuts?"),
    ]


def _first_title(task: dict, video: dict) -> list[Wording]:
    return [
        Wording("Among these captions, which is displayed earliest?"),
        Wording("Which of the following titles comes on screen before the others?"),
        Wording("Of these headings, which one does the video show ahead of the others?"),
        Wording("Which caption can be read soonest in the video?"),
    ]


def _when_said(task: dict, video: dict) -> list[Wording]:
    _, s = narration_at(video, *task["span"])
    name, verb, item = s["name"], s["verb"], s["item"]
    return [
        Wording(f"At what point in the video do we hear that {name} {verb_form(verb, 'past')} the {item}? "
                "Give the interval in seconds."),
        Wording(f"Between which two timestamps (seconds) does the speaker tell of {name} "
                f"{verb_form(verb, 'ing', synonym=True)} the {item}?"),
        Wording(f"Find the stretch of audio where {name} is said to {verb_form(verb, 'base')} the {item}; "
                "reply with its beginning and end in seconds."),
        Wording(f"From when to when is {name}'s {verb_form(verb, 'ing')} of the {item} narrated?"),
    ]


def _colour_while_said(task: dict, video: dict) -> list[Wording]:
    _, s = narration_at(video, *task["span"])
    name, verb, item = s["name"], s["verb"], s["item"]
    return [
        Wording(f"As we hear that {name} {verb_form(verb, 's')} the {item}, which colour is the backdrop?"),
        Wording(f"What is the background colour during the line about {name} {verb_form(verb, 'ing', synonym=True)} "
                f"{item}?"),
        Wording(f"The voice-over says {name} {verb_form(verb, 'past')} the {item}. Which colour is behind at that "
                "moment?"),
        Wording(f"Which colour fills the screen when the speaker describes {name} and the {item}?"),
    ]


def _brightest_scene(task: dict, video: dict) -> list[Wording]:
    return [
        Wording("Which scene has the lightest picture?"),
        Wording("Of these captioned parts, which one looks the most luminous?"),
        Wording("Which titled scene is the least dark?"),
        Wording("In which of these scenes is the image brightest overall?"),
    ]


def _square_count(task: dict, video: dict) -> list[Wording]:
    scene = scene_at(video, *task["span"])
    title = scene["title"]
    return [
        Wording(f"In the scene labelled \"{title}\", how many little squares can be seen?", digits),
        Wording(f"Count the small square shapes while {title_case(title)} is on screen. How many are there?"),
        Wording(f"What number of small squares does the '{title}' part of the video show?"),
        Wording(f"The scene with the caption {title} contains some small squares: how many?"),
    ]


def _said_before_title(task: dict, video: dict) -> list[Wording]:
    # Before: the sentence starts the span and the title's scene ends it; after: the reverse.
    start, end = task["span"]
    if answer_text(task).strip().lower() == "before":
        _, s = narration_at(video, start=start)
        scene = scene_at(video, end=end)
    else:
        scene = scene_at(video, start=start)
        _, s = narration_at(video, end=end)
    name, verb, item, title = s["name"], s["verb"], s["item"], scene["title"]
    return [
        Wording(f"Is the line about {name} {verb_form(verb, 'ing')} the {item} heard earlier or later than the "
                f"moment the caption '{title}' shows up?", earlier_later),
        Wording(f"The title \"{title}\" appears on screen at some point. Does the speaker say that {name} "
                f"{verb_form(verb, 'past', synonym=True)} {item} before that or after it?"),
        Wording(f"Relative to when {title_case(title)} is first displayed, when is {name}'s "
                f"{verb_form(verb, 'ing')} of the {item} mentioned?"),
        Wording(f"Is the sentence in which {name} {verb_form(verb, 's')} the {item} spoken before {title} first "
                "appears on screen, or after?"),
    ]


def _when_title(task: dict, video: dict) -> list[Wording]:
    scene = scene_at(video, *task["span"])
    title = scene["title"]
    return [
        Wording(f"During which seconds is the caption \"{title}\" displayed?"),
        Wording(f"From when to when can {title_case(title)} be read on screen? Reply with a range in seconds."),
        Wording(f"Find the time range in which the text '{title}' is visible, as start and end seconds."),
        Wording(f"For how long, from which second to which, does the heading {title} stay in view?"),
    ]


def _title_while_said(task: dict, video: dict) -> list[Wording]:
    _, s = narration_at(video, *task["span"])
    name, verb, item, place = s["name"], s["verb"], s["item"], s["place"]
    return [
        Wording(f"What caption is displayed while the {place} is mentioned by the speaker?"),
        Wording(f"When the voice-over talks about the {place}, which heading can be read on screen?"),
        Wording(f"Which title accompanies the sentence in which {name} {verb_form(verb, 's')} {item}?"),
        Wording(f"As we hear about the {place}, what text is shown?"),
    ]


WORDINGS: dict[str, Callable[[dict, dict], list[Wording]]] = {
    "speech-item": _speech_item,
    "speech-name": _speech_name,
    "speech-count": _speech_count,
    "speech-place": _speech_place,
    "title-shown": _title_shown,
    "photo-animal": _photo_animal,
    "background-colour": _background_colour,
    "scene-count": _scene_count,
    "first-title": _first_title,
    "when-said": _when_said,
    "colour-while-said": _colour_while_said,
    "brightest-scene": _brightest_scene,
    "square-count": _square_count,
    "said-before-title": _said_before_title,
    "when-title": _when_title,
    "title-while-said": _title_while_said,
}


# --------------------------------------------------------------------------- #
# The suite
# --------------------------------------------------------------------------- #


def wordings_for(task: dict, videos: dict[str, dict]) -> list[Wording]:
    """Every other wording of one truth task (at least three), from its kind and facts."""
    kind = task.get("metadata", {}).get("kind")
    if kind not in WORDINGS:
        raise SystemExit(f"task {task['name']}: no wordings for question kind {kind!r}; "
                         f"add a function to WORDINGS in {Path(__file__).name}")
    video = videos[task["metadata"]["video_id"]]
    return WORDINGS[kind](task, video)


def reword_task(task: dict, wording: Wording, index: int, video_path: str) -> dict[str, Any]:
    """The truth task with `wording` in place of its question (and options rewritten if the wording says so)."""
    out: dict[str, Any] = {"name": f"{task['name']}-r{index}", "video": video_path, "question": wording.question}
    if task.get("options"):
        convert = wording.options or (lambda option: option)
        out["options"] = [convert(option) for option in task["options"]]
        out["answer"] = task["answer"]
    for key in ("scorer", "span", "category"):
        if key in task:
            out[key] = task[key]
    out["metadata"] = {**task.get("metadata", {}), "source_task": task["name"], "wording": index}
    return out


def build_suite(truth_dir: Path, out_dir: Path, per_question: int) -> dict[str, Any]:
    """The reworded suite as a dict: `per_question` wordings of each truth task, rotated within each kind."""
    facts = json.loads((truth_dir / "facts.json").read_text())
    truth = yaml.safe_load((truth_dir / "suite.yaml").read_text())
    videos = {video["id"]: video for video in facts["videos"]}
    media_root = os.path.relpath((truth_dir / "media").resolve(), out_dir.resolve())
    seen_per_kind: dict[str, int] = defaultdict(int)
    tasks = []
    for task in truth["tasks"]:
        options = wordings_for(task, videos)
        if per_question > len(options):
            raise SystemExit(f"--per-question {per_question}: task {task['name']} has only {len(options)} wordings")
        kind = task["metadata"]["kind"]
        first = seen_per_kind[kind]  # rotate, so each kind's questions use all of its wordings
        seen_per_kind[kind] += 1
        video_path = os.path.relpath((truth_dir / task["video"]).resolve(), out_dir.resolve())
        for k in range(per_question):
            index = (first + k) % len(options)
            tasks.append(reword_task(task, options[index], index + 1, video_path))
    return {"suite": f"{truth.get('suite', 'truth')}-reworded",
            "defaults": {**truth.get("defaults", {}), "media_root": media_root},
            "tasks": tasks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for suite.yaml (created)")
    parser.add_argument("--truth", type=Path, default=TRUTH_DIR, help="truth suite folder (facts.json, suite.yaml, media/)")
    parser.add_argument("--per-question", type=int, default=1,
                        help="wordings of each truth question in the suite (default 1, rotated within each kind)")
    args = parser.parse_args(argv)
    if args.per_question < 1:
        parser.error("--per-question must be at least 1")
    for needed in ("facts.json", "suite.yaml"):
        if not (args.truth / needed).is_file():
            parser.error(f"{args.truth / needed} not found; --truth must name a suite folder made by make_suite.py")
    args.out.mkdir(parents=True, exist_ok=True)
    suite = build_suite(args.truth, args.out, args.per_question)
    header = (f"# Generated by examples/make_reworded.py from {args.truth.name}/facts.json: do not edit; re-run it.\n"
              f"# {len(suite['tasks'])} tasks: the truth suite's facts in other words. Never tune on it.\n")
    (args.out / "suite.yaml").write_text(
        header + yaml.safe_dump(suite, sort_keys=False, width=120, allow_unicode=True, default_flow_style=None))
    print(f"wrote {args.out / 'suite.yaml'} ({len(suite['tasks'])} tasks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
