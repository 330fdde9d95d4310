"""Does the cited evidence connect the question to an option? Scores per option, with the unit that gives them.

A question names what it is about (its **anchors**: "Tomas", "bakery", the
title 'HIGH TOWER') and what kind of fact the answer is (its **cues**: a
colour, on-screen text, speech, an object). An option is supported by one
:class:`~mcr.tools.evidence.units.Unit` when the unit holds the anchors *and*
the option's fact of the cued kind. ``score = option match × anchor match``,
both 0..1 (`mcr.tools.evidence.match`); an option's support is its best unit.

Three question shapes have their own rule, because the connection is not a
co-occurrence there:

* **count** ("how many scenes / shots / cuts"): a count unit (a ``segment``
  result's shots, a ``summarize`` result's scenes) whose number is the option's;
  "how many <objects>" uses the most seen at once in one frame;
* **order** ("which ... first / last / earliest"): every option is placed at
  the earliest time it is read or heard; the chosen one must come first (last);
* **superlative** ("which ... brightest / darkest"): the option whose unit is
  brightest (darkest) among the units where options are read.

Rules read only the question's words and the evidence, never a suite's facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mcr.tools.evidence.match import (
    NUMBER_WORDS,
    QUESTION_WORDS,
    colour_distance,
    colour_of,
    key_tokens,
    phrase_match,
    singular,
    tokens,
)
from mcr.tools.evidence.units import Unit

MIN_WORD = 0.65  # a heard/read word matches a wanted one at this similarity or more (measured, RESULTS "Verifier")
COLOUR_DE_MAX = 40.0  # CIEDE2000 ΔE at which a colour stops resembling another at all (RESULTS "Verifier")
DOMINANT_SHARE = 0.4  # a colour covering this share of the frame counts fully as "the" colour
SPEECH_CUES = frozenset("narration narrator narrated say says said mention mentions mentioned hear heard spoken voice".split())
TEXT_CUES = frozenset("title titles titled written text caption sign label screen".split())
COLOUR_CUES = frozenset("colour color colours colors background".split())
OBJECT_CUES = frozenset("animal animals object objects photograph photo picture image".split())
SHOT_WORDS = frozenset("scene scenes shot shots cut cuts".split())


@dataclass
class Support:
    """How well one option is supported, and where."""

    score: float
    unit: Unit | None = None
    option_match: float = 0.0
    anchor_match: float = 0.0
    note: str = ""


@dataclass
class Question:
    """What a question asks, read from its words."""

    text: str
    anchors: list[str]
    cues: set[str]
    shape: str  # general, count, order, superlative
    counted: str = ""  # count: the counted noun
    direction: str = ""  # order: first/last; superlative: brightest/darkest
    phrases: list[list[str]] | None = None  # quoted names ('HIGH TOWER'): each one thing, matched whole
    also: list[str] | None = None  # count: the words after the first one, in case it was an adjective

    def groups(self) -> list[list[str]]:
        """The anchors as matching groups: each quoted phrase, then each other word alone."""
        phrases = [p for p in self.phrases or [] if p]
        quoted = {w for p in phrases for w in p}
        return phrases + [[w] for w in self.anchors if w not in quoted]


def read_question(text: str, options: list[str]) -> Question:
    words = tokens(text)
    option_words = {w for o in options for w in tokens(o)}
    anchors = [w for w in dict.fromkeys(key_tokens(text)) if w not in QUESTION_WORDS and w not in option_words]
    phrases = [[w for w in key_tokens(q) if w in anchors] for q in re.findall(r"'([^']+)'|\"([^\"]+)\"", text)
               for q in [q[0] or q[1]]]
    cues = set()
    for name, vocab in (("speech", SPEECH_CUES), ("text", TEXT_CUES), ("colour", COLOUR_CUES), ("object", OBJECT_CUES)):
        if vocab & set(words):
            cues.add(name)
    low = text.lower()
    if m := re.search(r"how many ((?:\w+ ?){1,3})", low):
        counted = m.group(1).split()[0]
        more = m.group(1).split()[1:]  # "how many small squares": the counted noun may follow adjectives
        if counted in SHOT_WORDS or (not anchors and all(_number(o) is not None for o in options)):
            return Question(text, [], cues, "count", counted=counted)
        if all(_number(o) is not None for o in options):  # "how many dogs": objects if measured, else the words
            return Question(text, anchors, cues, "count", counted=counted, phrases=phrases, also=more)
    for word, direction in (("first", "first"), ("earliest", "first"), ("last", "last"), ("latest", "last")):
        if re.search(rf"\b{word}\b", low) and not anchors:
            return Question(text, anchors, cues or {"text", "speech"}, "order", direction=direction)
    for word, direction in (("brightest", "brightest"), ("lightest", "brightest"), ("darkest", "darkest")):
        if re.search(rf"\b{word}\b", low):
            return Question(text, anchors, cues | {"text"}, "superlative", direction=direction, phrases=phrases)
    return Question(text, anchors, cues, "general", phrases=phrases)


def _number(option: str) -> int | None:
    for w in tokens(option):
        if w in NUMBER_WORDS:
            return NUMBER_WORDS.index(w)
    return None


def anchor_match(q: Question, unit: Unit) -> float:
    if not q.anchors:
        return 1.0
    heard = tokens(unit.all_text)
    groups = q.groups()
    return sum(phrase_match(g, heard, MIN_WORD, strict=len(g) > 1) for g in groups) / len(groups)


def colour_match(option: str, unit: Unit) -> float | None:
    """Closeness of the option's colour to the unit's measured colours (None: the option names no colour)."""
    rgb = colour_of(option)
    if rgb is None:
        return None
    from mcr.tools.pixels import PALETTE

    best = 0.0
    for name, share in unit.colours:
        seen = PALETTE.get(name) or colour_of(name)
        if seen is None:
            continue
        close = max(0.0, 1.0 - colour_distance(rgb, seen) / COLOUR_DE_MAX)
        best = max(best, close * min(1.0, share / DOMINANT_SHARE))
    return best


def object_match(option: str, unit: Unit) -> float:
    want = [singular(w) for w in key_tokens(option)]
    have = [singular(w) for label, _ in unit.objects for w in tokens(label)]
    return phrase_match(want, have, 0.8, strict=True) if want and have else 0.0


def option_match(q: Question, option: str, unit: Unit) -> float:
    """How well `unit` shows/says `option`, in the kinds of fact the question cues (all kinds when none)."""
    scores = []
    cues = q.cues or {"speech", "text", "object", "colour"}
    if "colour" in cues:
        c = colour_match(option, unit)
        if c is not None:
            return c  # a colour option is judged by colour alone
    want = key_tokens(option) or tokens(option)
    if "speech" in cues and unit.speech:
        scores.append(phrase_match(want, tokens(unit.speech), MIN_WORD, strict=True))
    if ("text" in cues or "colour" in cues) and unit.text:
        scores.append(phrase_match(want, tokens(unit.text), MIN_WORD, strict=True))
    if "object" in cues and unit.objects:
        scores.append(object_match(option, unit))
    if not scores and not q.cues:
        scores.append(phrase_match(want, tokens(unit.all_text), MIN_WORD, strict=True))
    return max(scores, default=0.0)


def support(q: Question, options: list[str], units: list[Unit]) -> list[Support]:
    """Each option's best support by `units`, in option order."""
    if q.shape == "count" and (q.counted in SHOT_WORDS or _counts_objects(q, units)):
        return [_count_support(q, o, units) for o in options]
    if q.shape in ("order", "superlative"):
        return _ranked_support(q, options, units)
    out = []
    for option in options:
        best = Support(0.0)
        for unit in units:
            om = option_match(q, option, unit)
            if om <= 0:
                continue
            am = anchor_match(q, unit)
            if om * am > best.score:
                best = Support(om * am, unit, om, am)
        out.append(best)
    return out


def _counts_objects(q: Question, units: list[Unit]) -> bool:
    """Whether the cited units detected the counted kind of object ("how many dogs" and a dog was seen).

    The counted noun becomes the first of the words after "how many" that names a detected label.
    """
    labels = {singular(label) for u in units for label, _ in u.objects}
    for word in [q.counted, *(q.also or [])]:
        if singular(word) in labels:
            q.counted = word
            q.anchors = [a for a in q.anchors if a != word]
            q.phrases = [[w for w in p if w != word] for p in q.phrases or []]
            return True
    return False


def _count_support(q: Question, option: str, units: list[Unit]) -> Support:
    n = _number(option)
    if n is None:
        return Support(0.0, note=f"{option!r} is not a number")
    if q.counted in SHOT_WORDS:
        counts = [u for u in units if u.count is not None]
        for u in counts:
            if u.count == n:
                return Support(1.0, u, 1.0, 1.0)
        return Support(0.0, counts[0] if counts else None)
    want = singular(q.counted)
    named = [p for p in q.phrases or [] if p]  # "in the scene titled 'HIGH TOWER'": count there, not anywhere
    best = Support(0.0)
    for u in units:
        for label, seen in u.objects:
            if singular(label) != want:
                continue
            where = (sum(phrase_match(p, tokens(u.all_text), MIN_WORD, strict=len(p) > 1) for p in named) / len(named)
                     if named else 1.0)
            score = where if seen == n else 0.0
            if score > best.score or best.unit is None:
                best = Support(score, u, float(seen == n), where)
    return best


def _ranked_support(q: Question, options: list[str], units: list[Unit]) -> list[Support]:
    """Order and superlative questions: where each option is read, and which one comes first / is brightest."""
    q_plain = Question(q.text, [], q.cues, "general")
    found: list[Support] = []
    for option in options:
        best = Support(0.0)
        for unit in units:
            om = option_match(q_plain, option, unit)
            if om < 1.0 - 1e-9 or unit.span is None:
                continue
            if q.shape == "superlative" and unit.brightness is None:
                continue
            if best.unit is None or _earlier(q, unit, best.unit):
                best = Support(om, unit, om, 1.0)
        found.append(best)
    placed = [s for s in found if s.unit is not None]
    if not placed:
        return found
    key = (lambda s: s.unit.span.start) if q.shape == "order" else (lambda s: s.unit.brightness)
    ranked = sorted(placed, key=key, reverse=q.direction in ("last", "brightest"))
    winner = ranked[0]
    for s in found:
        if s.unit is not None and s is not winner:
            tie = key(s) == key(winner)
            s.score = s.score if tie else 0.0
            s.note = "tied" if tie else f"not {q.direction}: {winner.unit.where()} comes before it"
    return found


def _earlier(q: Question, a: Unit, b: Unit) -> bool:
    if q.shape == "superlative":
        return (a.brightness or 0) > (b.brightness or 0) if q.direction == "brightest" else (a.brightness or 0) < (b.brightness or 0)
    return a.span.start < b.span.start  # an option is placed where it is first read or heard
