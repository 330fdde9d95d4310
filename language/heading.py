"""Which way an option says a thing moves, read from its words: a typed `Heading` to compare with a measured path.

"from right to left", "it drops to the bottom", "it bounces up and down",
"towards the camera", "it stays where it is": each names a direction along
one or more axes, a back-and-forth, or no movement at all. The reading is by
general means, so it holds for wordings nobody here wrote:

* **positions** in the frame (left, right, top, bottom, and their -ward
  forms): in "from A to B" order the first is where it starts and the last
  where it ends; one alone is where it goes ("to the left", "rightwards");
  "up" and "down" are directions of their own;
* **verbs** say a vertical direction through WordNet's glosses (a word used
  mostly as a verb whose first senses are glossed "descend", "fall",
  "downward" goes down: drop, sink, plunge; "snow" is mostly a noun) or stillness through WordNet's antonyms (a sense whose
  antonym is *move* or *change*: stay, remain) and adjectives similar to
  "nonmoving" (still, stationary, motionless);
* **negation** of a verb of motion ("it does not move") is stillness;
* both ends of one axis joined by "and" ("up and down", "left and right") is
  a back-and-forth along it;
* "toward(s)" with no place after it, and "closer", are a heading towards the
  camera; "away" is away from it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from mcr.language import lexicon
from mcr.language.grammar import NEGATIONS

__all__ = ["Heading", "heading_of"]

# Where in the frame: (axis, sign) with x growing rightwards and y downwards, as a picture's coordinates do.
_PLACES = {"left": ("x", -1), "right": ("x", 1), "top": ("y", -1), "bottom": ("y", 1)}
_WAYS = {"up": ("y", -1), "down": ("y", 1)}
# The words WordNet glosses vertical movement with (the glosses themselves, not any question's wording).
_GLOSS_DOWN = frozenset({"descend", "descends", "fall", "falls", "drop", "drops", "downward", "downwards", "lower"})
_GLOSS_UP = frozenset({"ascend", "ascends", "rise", "rises", "upward", "upwards", "higher"})
_STILL_ANTONYMS = frozenset({"move", "change", "moving"})


@dataclass(frozen=True)
class Heading:
    """An option's claim about how a thing moves (None on an axis: the option says nothing of it)."""

    dx: int | None = None  # -1 leftwards, +1 rightwards
    dy: int | None = None  # -1 upwards, +1 downwards
    depth: int | None = None  # +1 towards the camera, -1 away
    back_and_forth: frozenset[str] = frozenset()  # axes it goes back and forth along
    still: bool = False

    @property
    def says_anything(self) -> bool:
        return self.still or bool(self.back_and_forth) or any(v is not None for v in (self.dx, self.dy, self.depth))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower().replace("n't", " not"))


@functools.lru_cache(maxsize=4096)
def _vertical_verb(word: str) -> int:
    """+1 a verb that goes down (its first senses glossed with descending), -1 up, 0 neither."""
    wn = lexicon.wordnet()
    if wn is None or word in _PLACES or word in _WAYS:
        return 0
    base = wn.morphy(word, "v")
    if base is None or lexicon.dominant_pos(word) != "v":  # "snow" in "snow is expected" is a noun
        return 0
    glosses = set()
    for synset in wn.synsets(base, "v")[:2]:
        glosses |= set(re.findall(r"[a-z]+", synset.definition().lower()))
    down, up = bool(glosses & _GLOSS_DOWN), bool(glosses & _GLOSS_UP)
    return 1 if down and not up else -1 if up and not down else 0


@functools.lru_cache(maxsize=4096)
def _still_word(word: str) -> bool:
    """A verb whose sense is the antonym of moving (stay, remain) or an adjective like "nonmoving"."""
    wn = lexicon.wordnet()
    if wn is None:
        return False
    for pos in ("v", "a"):
        base = wn.morphy(word, pos)
        if base is None:
            continue
        for synset in wn.synsets(base, pos)[:3]:
            antonyms = {a.name() for lemma in synset.lemmas() for a in lemma.antonyms()}
            if antonyms & _STILL_ANTONYMS:
                return True
            for similar in synset.similar_tos():
                if {a.name() for lemma in similar.lemmas() for a in lemma.antonyms()} & _STILL_ANTONYMS:
                    return True
    return False


def _moves(word: str) -> bool:
    return lexicon.verb_field(word) == "verb.motion"


def heading_of(text: str) -> Heading | None:
    """The heading an option claims, or None when it says nothing about movement."""
    words = _words(text)
    places = [(_PLACES[w.removesuffix("wards").removesuffix("ward")], i) for i, w in enumerate(words)
              if w.removesuffix("wards").removesuffix("ward") in _PLACES]
    ways = [(_WAYS[w.removesuffix("wards").removesuffix("ward")], i) for i, w in enumerate(words)
            if w.removesuffix("wards").removesuffix("ward") in _WAYS]
    back_and_forth = set()
    for pairs in (places, ways):
        for (axis_a, sign_a), i in pairs:
            for (axis_b, sign_b), j in pairs:
                if i < j and axis_a == axis_b and sign_a != sign_b and "and" in words[i + 1:j]:
                    back_and_forth.add(axis_a)
    axes: dict[str, int] = {}
    for axis in ("x", "y"):
        if axis in back_and_forth:
            continue
        along = [(sign, i) for (a, sign), i in places if a == axis]
        if len(along) >= 2:  # "from A to B": where it starts, then where it ends
            axes[axis] = 1 if along[-1][0] > along[0][0] else -1 if along[-1][0] < along[0][0] else 0
        elif along:
            axes[axis] = along[0][0]  # "to the left": where it goes
        way = [sign for (a, sign), _ in ways if a == axis]
        if way and axis not in axes:
            axes[axis] = way[0]
    if "y" not in axes and "y" not in back_and_forth:
        vertical = [v for w in words if (v := _vertical_verb(w))]
        if vertical:
            axes["y"] = vertical[0]
    # "towards the camera" comes closer; "towards the right" is a place, said above
    towards = any(w in ("toward", "towards") for w in words) and not places and not ways
    depth = 1 if towards or any(w in ("closer", "nearer") for w in words) else (-1 if "away" in words else None)
    negated = any(w in NEGATIONS for w in words)
    still = not axes and not back_and_forth and depth is None and (
        any(_still_word(w) for w in words) or (negated and any(_moves(w) for w in words)))
    heading = Heading(dx=axes.get("x"), dy=axes.get("y"), depth=depth, back_and_forth=frozenset(back_and_forth),
                      still=still)
    return heading if heading.says_anything else None
