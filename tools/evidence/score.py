"""How well the evidence backs each option: meaning-based signals, combined with fitted weights.

An option is supported by one measured :class:`~mcr.tools.evidence.units.Unit`
when the unit carries the option's fact *of the asked type* (the question
record's answer type and evidence kinds) and is *about* the question's focus
(its anchors, each weighted by how much it says). Neither is word identity:

* **fact** — ASR/OCR-tolerant word matching (`mcr.tools.evidence.match`) of the
  option in what was said or read; detector labels through lexical knowledge
  (``person`` carries "people", ``eagle`` carries "bird":
  :func:`mcr.language.lexicon.relatedness`); colours by CIEDE2000 against every
  colour measured in the frame, the object's included (no share of the frame
  is required: a red bicycle on a photo counts); counts against a count unit or
  the detections of the counted kind; first/last and superlatives by unit times
  and measured brightness among the options;
* **about** — each anchor of the question against the unit's words and labels
  (the same tolerant matching plus lexical relatedness), averaged with the
  record's weights, so a generic word (weight ≈ 0) changes nothing;
* **meaning** — MiniLM similarity of "question + option" to the unit's text,
  which catches paraphrase ("they" for the speaker's "you");
* **relation** — a temporal relation of the question, checked on unit times:
  "right after X" is the unit following X's, "while X is said" overlaps X's
  span, before/after by start times (X is where it is held best and most
  narrowly; a sentence transcribed twice is one place).

Some options carry a fact no unit says in words, and get their own path:

* **movement** ("from left to right", "it stays put": `mcr.language.heading`)
  — the path of the thing measured moving (`mcr.tools.movers`);
* **stretches of time** ("5–10 s") — when the asked event, or the mover,
  starts;
* **order** ("after the horses", "at the same time as X":
  `mcr.language.question.relation_claim`) — when the subject and X were
  first measured;
* **occurrences** ("how often is X mentioned") — a count of the sentences
  that say X;
* **described pictures** ("a red ball on a yellow background") — each
  informative word where its kind of fact is measured (:func:`described`).

Each option's best unit gives a feature vector (its own signals and the best
rival's); a logistic regression fitted on the labelled set
(``benchmarks/fit_verifier.py`` → ``weights.json`` beside this module) turns it
into P(the evidence backs this option). The checks, the offline policy's choice
(:func:`option_scores`, through ``Verifier.score_options``) and a last-step
guess's citations all use these probabilities.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from mcr.tools.evidence.asked import Asked
from mcr.tools.evidence.match import (
    colour_distance,
    colour_of,
    key_tokens,
    number_value,
    phrase_match,
    possessors,
    singular,
    time_range,
    tokens,
)
from mcr.context import TimeSpan
from mcr.language.grammar import THING_PRONOUNS, yes_or_no
from mcr.language.heading import Heading, heading_of
from mcr.language.lexicon import is_a, names_a_seen_thing, names_a_speaker
from mcr.language.question import relation_claim
from mcr.tools.evidence.units import Unit
from mcr.tools.movers import MIN_HEADING, Mover

MIN_WORD = 0.65  # a heard/read word matches a wanted one at this similarity or more (measured, RESULTS "Verifier")
#: Text read on screen is misread a letter or two at a time ("WHARE" for WHARF, 0.8), never by sound; at MIN_WORD
#: a different word of shared letters passed ("SHORE" for horses, 0.73).
MIN_READ = 0.8
COLOUR_DE_MAX = 40.0  # CIEDE2000 ΔE at which a colour stops resembling another at all (RESULTS "Verifier")
MIN_COLOUR_SHARE = 0.005  # a colour measured on less of the frame than this is noise of the palette quantiser
MIN_RELATED = 0.7  # lexical relatedness at which a label carries a word (eagle → bird; RESULTS "Verifier")
WEIGHTS_FILE = Path(__file__).with_name("weights.json")
FEATURES = ("fact", "about", "joint", "meaning", "relation", "rival_joint", "joint_margin", "meaning_margin")


@dataclass
class OptionSupport:
    """One option's best unit and its signals; ``p`` is the fitted probability that the evidence backs it."""

    option: str
    unit: Unit | None = None
    fact: float = 0.0
    about: float = 0.0
    meaning: float = 0.0
    relation: float = 0.5
    features: dict[str, float] = field(default_factory=dict)
    p: float = 0.0
    note: str = ""

    @property
    def joint(self) -> float:
        return self.fact * self.about * (0.0 if self.relation == 0.0 else 1.0)


# --------------------------------------------------------------------------- #
# Signals of one (option, unit) pair
# --------------------------------------------------------------------------- #


_FREQUENCY = {"never": 0, "once": 1, "twice": 2, "thrice": 3}  # how often, said as a number of times


def number_of(option: str) -> int | None:
    """The number an option states ("three", "3 times", "twice"), or None."""
    for w in tokens(option):
        if (n := number_value(w)) is not None:
            return n
        if w in _FREQUENCY:
            return _FREQUENCY[w]
    return None


@functools.lru_cache(maxsize=65_536)
def related(word: str, label: str) -> float:
    """Lexical relatedness of a wanted word and a measured word/label (1 same … 0 unrelated)."""
    if singular(word) == singular(label):
        return 1.0
    from mcr.language.lexicon import relatedness

    return float(relatedness(word, label))


def label_match(words: list[str], labels: list[str]) -> float:
    """Share of `words` that some detector label carries (the same word, or a related one)."""
    if not words or not labels:
        return 0.0
    have = [w for label in labels for w in tokens(label)]
    found = 0.0
    for word in words:
        best = max((related(word, h) for h in have), default=0.0)
        found += best if best >= MIN_RELATED else 0.0
    return found / len(words)


def colour_match(option: str, unit: Unit, asked: Asked | None = None) -> float | None:
    """Closeness (0..1) of the option's colour to the nearest colour measured in the unit; None: no colour named.

    When the question is about a thing the unit detected with its own colours
    ("the bike by the dog": a ``bicycle`` box), or about a thing that moves and
    the unit measured one moving, only that thing's colours count: a white car
    or a grey road beside it says nothing about the bike.
    """
    rgb = colour_of(option)
    if rgb is None:
        return None
    from mcr.tools.pixels import PALETTE

    measured = _colours_of_the_thing(asked, unit) if asked is not None else None
    best = 0.0
    for name, share in (measured if measured is not None else unit.colours):
        seen = PALETTE.get(name) or colour_of(name)
        if seen is None or share < MIN_COLOUR_SHARE:
            continue
        best = max(best, max(0.0, 1.0 - colour_distance(rgb, seen) / COLOUR_DE_MAX))
    return best


MIN_OBJECT_COLOUR_SHARE = 0.1  # of a detection box: less is the background's edge or noise
MOVER_COLOUR_SHARE = 0.25  # of a moving thing's own pixels: its body's colour, not its outline's


def _colours_of_the_thing(asked: Asked, unit: Unit) -> list[tuple[str, float]] | None:
    """The colours of the detected object the question asks about (None: the unit detected no such thing).

    The focus names it ("the bike next to the dog": the bike); the anchors only
    when the focus names nothing detected. Among detections, those closest in
    meaning win (``bicycle`` for "bike", not the ``car`` beside it).
    """
    if "motion" in asked.evidence and unit.movers:  # "the car that drives past": the thing measured moving
        return [(c.name, c.share) for m in unit.movers for c in m.colours if c.share >= MOVER_COLOUR_SHARE]
    if not unit.object_colours:
        return None
    for phrase in ([asked.focus] if asked.focus else []) + [" ".join(asked.anchors)]:
        words = [w for w in key_tokens(phrase) if asked.weight(w) > 0]
        closeness = [max((related(w, t) for w in words for t in tokens(label)), default=0.0)
                     for label, _ in unit.object_colours]
        best = max(closeness, default=0.0)
        if best >= MIN_RELATED:
            return [(name, share) for (_, colours), c in zip(unit.object_colours, closeness) if c == best
                    for name, share in colours if share >= MIN_OBJECT_COLOUR_SHARE]
    return None


#: What the tools' count units count (`units.py`), by family: the video's parts (a question's "scenes" are
#: often the tools' shots), the cuts between them, and mentions in speech.
VIDEO_PARTS = ("scenes", "shots")
COUNTED_FAMILIES = (VIDEO_PARTS, ("cuts",), ("mentions",))


def _names_counted(word: str, counted: str) -> bool:
    return related(word, counted) >= MIN_RELATED or _similar(word, counted)


def _counted_here(asked: Asked, unit: Unit) -> int | None:
    """How many of the counted thing the unit measured (a scene/shot/cut count, or the most detections at once)."""
    target = asked.count_target or ""
    if unit.count is not None:  # a count of scenes or shots: what a question that counts the video's parts reads
        wanted = [w for w in (target, asked.occurrence) if w]
        if any(_names_counted(w, unit.counted) for w in wanted) or (unit.counted == "mentions"
                                                                     and asked.counts_occurrences):
            return unit.count
        others = [c for family in COUNTED_FAMILIES if unit.counted not in family for c in family]
        if any(_names_counted(w, other) for w in wanted for other in others):
            return None  # the question counts another kind ("how many times does it cut": cuts, not shots)
        # cuts and mentions are counted only when asked for by name, and the video's parts never stand for
        # things seen in the picture ("how many squares are drawn in the scene titled X" is no count of scenes)
        if (not target or ("shots" in asked.evidence and not names_a_seen_thing(target))) \
                and unit.counted in VIDEO_PARTS:
            return unit.count
    if not target:
        return None
    # a broader word counts every label that is one ("animals": the dogs and the horse, not the person)
    kinds = [(label, n) for label, n in unit.objects if is_a(label, target)]
    if kinds:
        return len({label for label, _ in kinds}) if asked.counts_kinds else sum(n for _, n in kinds)
    seen = [n for label, n in unit.objects if related(target, label) >= MIN_RELATED]
    if not seen:
        return None
    return len(seen) if asked.counts_kinds else max(seen)


def _counts_the_target(asked: Asked, unit: Unit) -> bool:
    """A count unit of the very thing the question counts (not merely the video's shots or scenes)."""
    wanted = [w for w in (asked.count_target, asked.occurrence) if w]
    return any(_names_counted(w, unit.counted) for w in wanted) \
        or (unit.counted == "mentions" and asked.counts_occurrences)


def _says_what_is_counted(asked: Asked, unit: Unit) -> bool:
    """A number said or read in this unit can be the answer: the unit also names the counted thing or the
    question's anchors ("Tom bought three apples"), or the question names nothing to count."""
    wanted = [w for w in ([asked.count_target] if asked.count_target else [])
              + [w for a in asked.anchors for w in key_tokens(a)] if asked.weight(w) > 0]
    if not wanted:
        return True
    found, total = weighted_match(asked, wanted, tokens(unit.all_text), [label for label, _ in unit.objects])
    return total <= 1e-6 or found > 0


def _similar(a: str, b: str) -> bool:
    return phrase_match([singular(a)], [singular(b)], MIN_WORD) > 0


def fact_of(asked: Asked, option: str, unit: Unit) -> float:
    """Does `unit` carry `option`'s fact, of the kind the question asks for? 0..1."""
    kinds = set(asked.evidence) or {"speech", "screen_text", "objects", "pixels"}
    if asked.answer_type == "colour" or (colour_of(option) is not None and "pixels" in kinds and not unit.speech):
        c = colour_match(option, unit, asked)
        if c is not None:
            return c  # a colour option is judged by colour alone
    if asked.answer_type == "number" and (n := number_of(option)) is not None:
        measured = _counted_here(asked, unit)
        if measured is not None:
            return float(measured == n)
    # a number read or said where nothing names what is counted is weaker evidence: "PLATFORM 4" on a sign is
    # no count of scenes, though "six" heard beside a misheard noun ("six kettles" for candles) may be one
    scale = UNNAMED_NUMBER if asked.answer_type == "number" and number_of(option) is not None \
        and not _says_what_is_counted(asked, unit) else 1.0
    want = key_tokens(option) or tokens(option)
    scores = [described(option, unit)] if "pixels" in kinds or "objects" in kinds else []
    if unit.speech and kinds & {"speech", "motion"}:  # a movement is also told in words
        scores.append(phrase_match(want, tokens(unit.speech), MIN_WORD, strict=True, modifiers=possessors(option)))
    if unit.text and kinds & {"screen_text", "pixels", "shots"}:
        scores.append(phrase_match(want, tokens(unit.text), MIN_READ, strict=True, sound_alike=False))
    if unit.objects and kinds & {"objects", "pixels"}:
        scores.append(label_match([singular(w) for w in want], [label for label, _ in unit.objects]))
    return scale * max(scores, default=0.0)


UNNAMED_NUMBER = 0.5
PLACE_COLOUR_SHARE = 0.05  # a colour naming a place ("on the purple screen") covers at least this much of it


def _closest_colour(rgb: tuple[int, int, int], colours: list[tuple[str, float]]) -> float:
    """Closeness (CIEDE2000, 0..1) of a named colour to the nearest of the measured `colours`."""
    from mcr.tools.pixels import PALETTE

    return max((max(0.0, 1.0 - colour_distance(rgb, seen) / COLOUR_DE_MAX)
                for name, _ in colours if (seen := PALETTE.get(name) or colour_of(name)) is not None), default=0.0)


def described(option: str, unit: Unit) -> float:
    """How much of a described picture ("a red kite over a grey sea") the unit measured: each informative
    word of the option (rarity-weighted, so "background" or "on" weighs nothing) found as a colour it
    measured (the frame's, a detection's or a mover's own), a label it detected, or a word read on screen.

    Why: a scene described by several facts matches no single modality — the
    colours are pixels, the things are detections — so each word is looked
    for where its kind of fact is measured. 0 for options of fewer than two
    informative words (those are judged by the plain matching).
    """
    from mcr.language.similarity import word_weight

    words = [(w, word_weight(w)) for w in dict.fromkeys(key_tokens(option))]
    words = [(w, wt) for w, wt in words if wt > 0]
    if len(words) < 2:
        return 0.0
    colours = [(n, sh) for n, sh in unit.colours if sh >= MIN_COLOUR_SHARE]
    colours += [(c.name, c.share) for m in unit.movers for c in m.colours if c.share >= MOVER_COLOUR_SHARE]
    colours += [(n, sh) for _, own in unit.object_colours for n, sh in own if sh >= MIN_OBJECT_COLOUR_SHARE]
    labels = [label for label, _ in unit.objects]
    read = tokens(unit.text)
    found = total = 0.0
    for word, weight in words:
        rgb = colour_of(word)
        if rgb is not None:
            match = _closest_colour(rgb, colours)
        else:
            match = max(label_match([singular(word)], labels),
                        phrase_match([word], read, MIN_READ, sound_alike=False) if read else 0.0)
        found += weight * match
        total += weight
    return found / total if total > 1e-6 else 0.0


def weighted_match(asked: Asked, words: list[str], heard: list[str], labels: list[str],
                   colours: list[tuple[str, float]] | None = None) -> tuple[float, float]:
    """(found, total): the record's weights of `words`, and of those heard/read (tolerantly), carried by a
    label, or — a colour word, given the unit's measured `colours` — measured there ("the purple screen")."""
    total = found = 0.0
    for term in _colour_phrases(words):
        weight = sum(asked.weight(w) for w in term)
        if weight <= 0:
            continue
        match = min(phrase_match([w], heard, MIN_WORD) for w in term) if heard else 0.0
        if labels and match < 1.0 and len(term) == 1:
            match = max(match, label_match([singular(term[0])], labels))
        if colours and match < 1.0 and (rgb := colour_of(" ".join(term))) is not None:
            match = max(match, _closest_colour(rgb, [(n, sh) for n, sh in colours if sh >= PLACE_COLOUR_SHARE]))
        total += weight
        found += weight * match
    return found, total


def _colour_phrases(words: list[str]) -> list[tuple[str, ...]]:
    """`words` as terms, a modifier and the colour it shades joined ("light", "blue" → "light blue").

    Why: "the light blue screen" names one measured colour; word by word,
    "blue" is far from light blue in CIEDE2000 and "light" is no colour, so the
    screen that is light blue would not be the one the question means.
    """
    terms: list[tuple[str, ...]] = []
    i = 0
    while i < len(words):
        pair = words[i:i + 2]
        if len(pair) == 2 and colour_of(pair[0]) is None and colour_of(" ".join(pair)) is not None:
            terms.append(tuple(pair))
            i += 2
        else:
            terms.append((words[i],))
            i += 1
    return terms


_LOCATING = frozenset({"before", "after", "while", "during"})  # relations whose event says where, not what


def about_of(asked: Asked, unit: Unit, option_words: frozenset[str] = frozenset()) -> float:
    """How much `unit` is about the question's anchors: their weighted share found in it (1 with no anchors).

    Each anchor word counts with the record's weight, so a generic word (weight ≈ 0) neither helps nor hurts.
    Words of a temporal relation's event are left to the relation check: they say where, not what.
    """
    heard = tokens(" ".join((unit.all_text, *unit.refers_to)))  # "she" about Martha is about Martha
    labels = [label for label, _ in unit.objects]
    words = [w for anchor in asked.anchors for w in key_tokens(anchor) if w not in option_words
             and not names_a_speaker(w)]  # "what does the narrator say": the narrator speaks, is not spoken of
    # a relation's event only locates the answer ("what is seen while X is said"), and the relation check
    # reads it: a unit holding the rest of the question is about it too, whether or not it also holds X
    located_by = {w for r in asked.relations if r.event and r.kind in _LOCATING for w in key_tokens(r.event)}
    shares = []
    for chosen in (words, [w for w in words if w not in located_by] if located_by else None):
        if chosen is not None:
            found, total = weighted_match(asked, list(dict.fromkeys(chosen)), heard, labels, unit.colours)
            shares.append(found / total if total > 1e-6 else 1.0)
    return max(shares)


def meaning_of(asked: Asked, option: str, unit: Unit) -> float:
    """MiniLM similarity of "question + option" to what the unit says or shows (0 when it holds no words)."""
    text = unit.all_text.strip()
    if not text:
        return 0.0
    from mcr.language.similarity import text_similarity

    return max(0.0, float(text_similarity(f"{asked.text} {option}", text)))


# --------------------------------------------------------------------------- #
# Temporal relations
# --------------------------------------------------------------------------- #


EVENT_SLACK = 0.2  # a unit matching the event this much less than the best one is not where it happens
EVENT_WIDTH = 1.5  # units holding the event that are wider than this times the narrowest one only contain it


def _event_units(asked: Asked, event: str, units: list[Unit]) -> list[Unit]:
    """The units where the relation's event is said or shown (most of its weighted words found there)."""
    from mcr.language.lexicon import names_a_saying

    # "while the grass is being described": the transcript holds the grass, not the describing
    # ... and the narrator says it, is not what is said
    words = list(dict.fromkeys(w for w in key_tokens(event) if not names_a_saying(w) and not names_a_speaker(w)))
    if not words:
        return []
    scored_units = []
    for u in units:
        if u.span is None:
            continue
        got, total = weighted_match(asked, words, tokens(u.all_text), [label for label, _ in u.objects])
        if total > 1e-6:
            scored_units.append((got / total, u))
    best = max((share for share, _ in scored_units), default=0.0)
    # the places that hold the event best: a near-miss elsewhere ("dry" read as the caption "DAY") is not it
    found = [u for share, u in scored_units if share >= max(0.5, best - EVENT_SLACK)]
    # and the most precise of them: the sentence, not the scene it was said in (a scene would put the
    # rest of itself "after" the event)
    narrowest = min((u.span.end - u.span.start for u in found), default=0.0)
    found = [u for u in found if u.span.end - u.span.start <= EVENT_WIDTH * narrowest + 1e-6]
    return sorted(found, key=lambda u: u.span.start)


SAME_PLACE_S = 0.5  # a unit starting this close to another is the same sentence heard again, not one between


def _same_place(a: TimeSpan, b: TimeSpan) -> bool:
    """Two units measured at the same place (a sentence transcribed twice): neither is before the other."""
    return abs(a.start - b.start) < SAME_PLACE_S and abs(a.end - b.end) < SAME_PLACE_S


def _none_between(units: list[Unit], kind: str, lo: float, hi: float) -> bool:
    """No unit of `kind` starts strictly between `lo` and `hi`: "right after/before" holds. The bounds are
    the event's end and the answer's start (less `SAME_PLACE_S`), so a sentence transcribed twice is no
    sentence in between."""
    return not any(u.kind == kind and u.span is not None and lo < u.span.start < hi for u in units)


def relation_of(asked: Asked, unit: Unit, units: list[Unit]) -> float:
    """1: the unit satisfies the question's temporal relations; 0: it violates one; 0.5: none to check."""
    checked = []
    for r in asked.relations:
        if not r.event or unit.span is None:
            continue
        events = [e for e in _event_units(asked, r.event, units) if e is not unit and not _same_place(e.span, unit.span)]
        if not events:
            continue
        if r.kind in ("while", "during"):
            ok = any(_simultaneous(e.span, unit.span) for e in events)  # spans that only touch are in sequence
        elif r.kind == "after":
            after = [e for e in events if unit.span.start >= e.span.end - 1e-6 or unit.span.start > e.span.start]
            ok = bool(after) and (not r.immediate or _none_between(
                units, unit.kind, max(e.span.end for e in after) - SAME_PLACE_S, unit.span.start - SAME_PLACE_S))
        elif r.kind == "before":
            before = [e for e in events if unit.span.end <= e.span.start + 1e-6 or unit.span.start < e.span.start]
            ok = bool(before) and (not r.immediate or _none_between(
                units, unit.kind, unit.span.end - SAME_PLACE_S, min(e.span.start for e in before) - SAME_PLACE_S))
        else:
            continue
        checked.append(ok)
    if not checked:
        return 0.5
    return 1.0 if all(checked) else 0.0


# --------------------------------------------------------------------------- #
# Options
# --------------------------------------------------------------------------- #


def supports(asked: Asked, options: list[str], units: list[Unit],
             around: list[Unit] | None = None) -> list[OptionSupport]:
    """Each option's best unit among `units` and its signals (before the fitted combination).

    ``around``: everything measured, where a temporal relation's event is looked for when `units` are
    only the cited ones — "said right after the attic" is checked against where the attic was heard,
    whether or not the answer cites that sentence too (citing only the answer's own place would leave
    the relation unchecked, and an option said *before* the event would pass).
    """
    around = units if around is None else around
    if asked.answer_type == "number" and asked.counts_occurrences and asked.evidence[:1] == ("speech",):
        mentions = _mentions(asked, units)  # "how often is the piano mentioned": counted in what was said
        if mentions is not None:
            units = [u for u in units if u.count is None] + [mentions]
    option_words = frozenset(w for o in options for w in key_tokens(o))
    abouts = {id(u): about_of(asked, u, option_words) for u in units}
    ranges = [time_range(o) for o in options]
    if options and all(r is not None for r in ranges):
        return _when(asked, options, ranges, units)
    headings = [heading_of(o) for o in options]
    if "motion" in asked.evidence and sum(h is not None for h in headings) >= 2:
        return _moves(asked, options, headings, units)
    claims = [relation_claim(o) for o in options]
    if not asked.relations and sum(c is not None and c.kind in _ORDERS for c in claims) >= 2:
        return _ordered(asked, options, claims, units)
    if asked.answer_type == "number":  # a count of the very thing counted is about what is asked
        abouts.update({id(u): 1.0 for u in units if u.count is not None and _counts_the_target(asked, u)})
    moving = the_mover(asked, units) if "motion" in asked.evidence else None
    if moving is not None:  # "the car that drives past": where a thing was measured moving is what it is about
        abouts[id(moving[0])] = 1.0
    out = []
    for option in options:
        best = OptionSupport(option)
        best_key = (-1.0, -1.0)
        for u in units:
            fact = fact_of(asked, option, u)
            meaning = meaning_of(asked, option, u) if fact > 0 or abouts[id(u)] > 0 else 0.0
            relation = relation_of(asked, u, around) if asked.relations else 0.5
            s = OptionSupport(option, u, fact, abouts[id(u)], meaning, relation)
            # where nothing holds the option *and* the question's focus, a unit holding the option's fact
            # (a scene whose detector saw the dog) beats one that merely resembles it in meaning
            key = (s.joint, fact, meaning)
            if key > best_key:
                best, best_key = s, key
        if not asked.negated:
            best = _denial_checked(asked, option, units, best)
        out.append(best)
    if asked.order or asked.extreme:
        _rank(asked, out, units)
    if asked.negated:
        _negate(out)
    _never_said(asked, out, around)
    return out


def _never_said(asked: Asked, found: list[OptionSupport], units: list[Unit]) -> None:
    """"Does the guide ever mention the otter?" with a transcript of the whole video that never says "otter"
    (nor a synonym, nor a word that sounds like it): every "Yes, …" contradicts a measured fact.

    Only for a yes/no question about what is said, only with the whole video heard, and only when none of
    the things the question names is heard anywhere (the speaker, "the guide", is not what is spoken of).
    """
    if asked.answer_type != "yes_no" or asked.evidence[:1] != ("speech",):
        return
    heard = [tokens(u.speech) for u in units if u.of_whole_transcript]
    if not heard:
        return
    things = _things_asked(asked)
    if not things or any(phrase_match([w], said, MIN_WORD) >= MIN_WORD for w in things for said in heard):
        return
    for s in found:
        if yes_or_no(s.option) == "yes":
            s.fact = 0.0
            s.note = f"contradicted: the whole transcript never says {' or '.join(repr(w) for w in things)}"


TIME_SLACK_S = 0.25  # an event starting this close to a range's edge still counts as inside it


def _when(asked: Asked, options: list[str], ranges: list, units: list[Unit]) -> list[OptionSupport]:
    """Options that are stretches of time ("5–10 s", "0:05-0:10"): the one holding the start of the event.

    The event's units are those most about the event — the words of the
    question's relation ("when the van crosses"), else its anchors — said, read
    or detected there (a verb of saying is not looked for); the earliest of
    them is where it begins (the latest for a "last" question). Each option's fact is whether its range
    holds that start: a time option is backed by *when* the event was measured,
    never by its words, which no unit says.
    """
    from mcr.language.lexicon import names_a_saying

    told = [r.event for r in asked.relations if r.event]
    phrases = told or list(asked.anchors) or [asked.text]  # the event: what the relation names, else the anchors
    option_words = {w for o in options for w in key_tokens(o)}
    words = list(dict.fromkeys(w for p in phrases for w in key_tokens(p)
                               if w not in option_words and not names_a_saying(w)))
    timed = [u for u in units if u.span is not None]
    about = {}
    for u in timed:
        found, total = weighted_match(asked, words, tokens(u.all_text), [label for label, _ in u.objects])
        about[id(u)] = found / total if total > 1e-6 else 0.0
    best_about = max(about.values(), default=0.0)
    events = [u for u in timed if best_about > 0 and about[id(u)] >= best_about - 1e-9]
    moving = the_mover(asked, units) if "motion" in asked.evidence and best_about < 1.0 - 1e-9 else None
    if moving is not None:  # "when does the ball start rolling": the thing measured moving, from when it sets off
        event, mover = moving
        start, end, event_about = mover.start, max(mover.start, mover.end), 1.0
        note = f"a thing sets off at {start:.1f} s ({event.where()})"
    elif events:
        event = (max if asked.order == "last" else min)(events, key=lambda u: u.span.start)
        # an outline line of minutes holds the event somewhere; a sentence measured inside it says where
        inside = [u for u in events if u.span.start >= event.span.start - TIME_SLACK_S
                  and u.span.end <= event.span.end + TIME_SLACK_S
                  and u.span.end - u.span.start < event.span.end - event.span.start]
        if inside:
            last = asked.order == "last"
            event = min(inside, key=lambda u: (u.span.end - u.span.start, -u.span.start if last else u.span.start))
        start, end, event_about = event.span.start, event.span.end, about[id(event)]
        note = f"the event starts at {start:.1f} s ({event.where()})"
    else:
        return [OptionSupport(o, note="the event was not measured anywhere yet") for o in options]
    holding = [r.start - TIME_SLACK_S <= start <= r.end + TIME_SLACK_S for r in ranges]
    if sum(holding) > 1:  # a start on the edge of two ranges: the one the event fills more of
        overlap = [max(0.0, min(end, r.end) - max(start, r.start)) if h else -1.0 for r, h in zip(ranges, holding)]
        inside = [r.start <= start < r.end for r in ranges]
        holding = [h and (o, i) == max(zip(overlap, inside)) for h, o, i in zip(holding, overlap, inside)]
    return [OptionSupport(option, event, 1.0 if h else 0.0, event_about, 0.0, 0.5, note=note)
            for option, h in zip(options, holding)]


def the_mover(asked: Asked, units: list[Unit]) -> tuple[Unit, Mover] | None:
    """The thing the question asks about among those measured moving: the one whose unit is most about the
    question's anchors, then the one that travels furthest (None when nothing was measured moving)."""
    movers = [(u, m) for u in units if u.span is not None for m in u.movers]
    if not movers:
        return None
    return max(movers, key=lambda um: (about_of(asked, um[0]), abs(um[1].dx) + abs(um[1].dy)))


def heading_fact(claim: Heading, mover: Mover | None) -> float:
    """1 when the measured movement (None: nothing moved) is what the option claims, else 0."""
    if mover is None:
        return float(claim.still)
    if claim.still:
        return 0.0
    measured = {"x": mover.dx, "y": mover.dy}
    reversals = {"x": mover.reversals_x, "y": mover.reversals_y}
    for axis in claim.back_and_forth:
        if not reversals[axis]:
            return 0.0
    for axis, sign in (("x", claim.dx), ("y", claim.dy)):
        if sign is not None and (abs(measured[axis]) < MIN_HEADING or (measured[axis] > 0) != (sign > 0)):
            return 0.0
    if claim.depth is not None and claim.depth != mover.depth():
        return 0.0
    return 1.0


def _moves(asked: Asked, options: list[str], headings: list[Heading | None], units: list[Unit]) -> list[OptionSupport]:
    """Options that say how a thing moves: backed by the measured path of the thing that moves.

    Why: no unit *says* "from left to right"; the pixels of the frames measure
    it (`mcr.tools.movers`). The thing is the question's when one is measured
    moving (`the_mover`); where motion was measured and nothing moved, only a
    claim of stillness holds.
    """
    moving = the_mover(asked, units)
    if moving is not None:
        unit, mover = moving
        note = f"{unit.where()} measures {mover.describe()}"
    else:
        measured = [u for u in units if u.motion_measured and u.span is not None]
        if not measured:
            return [OptionSupport(o, note="no movement was measured yet") for o in options]
        unit, mover = max(measured, key=lambda u: about_of(asked, u)), None
        note = f"{unit.where()} and every other span measured show nothing moving"
    return [OptionSupport(option, unit, heading_fact(h, mover) if h is not None else 0.0, 1.0, 0.0, 0.5, note=note)
            for option, h in zip(options, headings)]


def _mentions(asked: Asked, units: list[Unit]) -> Unit | None:
    """A count unit: how often the question's anchors are said, over the sentences heard (each stretch of
    speech once, however many times it was transcribed), or None when nothing was transcribed."""
    words = [w for a in asked.anchors for w in key_tokens(a)
             if asked.weight(w) > 0 and w != asked.count_target and not names_a_speaker(w)]
    heard = sorted((u for u in units if u.kind == "speech" and u.span is not None), key=lambda u: u.span.start)
    if not words or not heard:
        return None
    kept: list[Unit] = []
    for u in heard:
        if not any(u.span.start < k.span.end and k.span.start < u.span.end for k in kept):
            kept.append(u)
    said = [(u, sum(any(phrase_match([w], [t], MIN_WORD) > 0 for w in words) for t in tokens(u.speech)))
            for u in kept]
    mentioning = [u for u, n in said if n]
    where = mentioning or kept
    return Unit("+".join(dict.fromkeys(u.ref for u in where)), "count",
                TimeSpan(start=where[0].span.start, end=max(u.span.end for u in where)),
                speech=" ".join(u.speech for u in mentioning), count=sum(n for _, n in said), counted="mentions")


_ORDERS = {"before": "before", "after": "after", "while": "while", "during": "while"}


def _first_measured(asked: Asked, phrase: str, units: list[Unit]) -> Unit | None:
    """The earliest unit where `phrase` is measured: said only when the question asks about speech, else read
    on screen or detected (most of its weighted words found there)."""
    words = [w for w in key_tokens(phrase) if asked.weight(w) > 0] or key_tokens(phrase)
    spoken = "speech" in asked.evidence
    found = []
    for u in units:
        if u.span is None:
            continue
        heard = tokens(u.all_text if spoken else u.text)
        got, total = weighted_match(asked, words, heard, [label for label, _ in u.objects])
        if total > 1e-6 and got / total >= 0.5:
            found.append(u)
    return min(found, key=lambda u: (u.span.start, u.span.end)) if found else None


def _simultaneous(a: TimeSpan, b: TimeSpan) -> bool:
    """Two spans share time: a stretch of it, or an instant (a frame) strictly inside the other's span
    (a frame at 20.0 s and a scene ending at 20.0 s are one after the other)."""
    if min(a.end, b.end) - max(a.start, b.start) > 1e-6:
        return True
    instant, other = (a, b) if a.end - a.start <= 1e-6 else (b, a)
    return instant.end - instant.start <= 1e-6 and other.start < instant.start < other.end


def _ordered(asked: Asked, options: list[str], claims: list, units: list[Unit]) -> list[OptionSupport]:
    """Options that place the question's focus in time against another event ("after the storm", "at the same
    moment as the bell"): backed by when each was first measured.

    Why: the options' words name the other event, and a unit that shows it
    would back "before X", "after X" and "at the same time as X" alike; only
    the two times decide. Overlapping first units are "at the same time".
    """
    focus = _first_measured(asked, asked.focus, units)
    out = []
    for option, claim in zip(options, claims):
        kind = _ORDERS.get(str(getattr(claim.kind, "value", claim.kind))) if claim is not None else None
        event = _first_measured(asked, claim.event, units) if kind is not None else None
        if focus is None or event is None:
            support = OptionSupport(option, focus, 0.0, 1.0 if focus is not None else 0.0, 0.0, 0.5,
                                    note="not measured: " + ("the question's subject" if focus is None else claim.event
                                                             if claim is not None else "an order"))
            out.append(support if claim is not None else _denial_checked(asked, option, units, support))
            continue
        measured = "while" if _simultaneous(focus.span, event.span) else (
            "before" if focus.span.start < event.span.start else "after")
        out.append(OptionSupport(option, focus, float(kind == measured), 1.0, 0.0, 0.5,
                                 note=f"{focus.where()} is {measured} {event.where()}"))
    return out


def denied(option: str) -> str | None:
    """What an option denies ("the giraffe never appears" → "the giraffe appears"), or None if it denies nothing."""
    from mcr.language.grammar import NEGATIONS

    words = option.replace("n't", " n't").split()
    if yes_or_no(option) is not None:
        words = words[1:]  # "No, she left it on the bus": the answer to a yes/no question, not a denial
    kept = [w for w in words if w.lower().strip(".,!?") not in NEGATIONS]
    return " ".join(kept) if len(kept) < len(words) and kept else None


def _denial_checked(asked: Asked, option: str, units: list[Unit], best: OptionSupport) -> OptionSupport:
    """An option that denies something is contradicted by a unit that carries it, not backed by it.

    Why: "the giraffe never appears" shares its words with the scene that shows
    the giraffe; word and meaning matching alone would rank it highest there.
    A denial is never backed by a unit (absence is not a measurement), and a
    unit that measures the denied fact takes all its support away.
    """
    claim = denied(option)
    if claim is None:
        return best
    things = [w for w in key_tokens(claim) if _names_a_thing(w)]  # "heron", not "shows up"
    if not things and any(w.lower() in THING_PRONOUNS for w in tokens(claim)):
        # "No, it never appears": "it" is what the question asks about ("does the guide mention the otter?")
        things = _things_asked(asked)
    if not things:
        return best  # it denies an action, not a thing: nothing a unit measures refutes it by itself
    claim = " ".join(things)
    for u in units:
        if fact_of(asked, claim, u) >= 0.5:
            return OptionSupport(option, u, 0.0, best.about, 0.0, best.relation,
                                 note=f"contradicted: {u.where()} measures {claim!r}")
    best.fact = 0.0
    return best


def _things_asked(asked: Asked) -> list[str]:
    """The things the question names, not its speaker ("does the guide mention the otter?" → otter)."""
    return [w for anchor in asked.anchors for w in key_tokens(anchor) if _names_a_thing(w) and not names_a_speaker(w)]


def _names_a_thing(word: str) -> bool:
    """A name, a number, or a word used mostly as a noun: what a unit can measure (not "shows", "up")."""
    from mcr.language import lexicon

    return word[:1].isdigit() or lexicon.dominant_pos(word) in ("", "n")  # unknown to WordNet: a name


def _rank(asked: Asked, found: list[OptionSupport], units: list[Unit]) -> None:
    """First/last and superlative questions: only the option that wins among the units where options are read."""
    measure = asked.extreme[0] if asked.extreme else ""
    bright = asked.extreme is not None
    placed = []
    for s in found:
        where = [u for u in units if u.span is not None and fact_of(_plain(asked), s.option, u) >= 1.0 - 1e-9
                 and (not bright or u.brightness is not None)]
        if where:
            s.unit = min(where, key=lambda u: u.span.start)
            s.fact, s.about = 1.0, 1.0
            placed.append(s)
    if not bright:
        placed += _placed_by_best_match(asked, [s for s in found if s not in placed], [s.option for s in found], units)
    if not placed:
        return
    if bright:
        key = lambda s: s.unit.brightness  # noqa: E731 - the one measured extreme units carry
        reverse = asked.extreme[1] == "max"
    else:
        key = lambda s: s.unit.span.start  # noqa: E731
        reverse = asked.order == "last"
    ranked = sorted(placed, key=key, reverse=reverse)
    for s in placed:
        if key(s) != key(ranked[0]):
            s.fact, s.note = 0.0, f"not the {asked.order or measure} one: {ranked[0].unit.where()} wins"


MIN_PARTIAL_FACT = 0.3  # an option told in other words ("serves them" for "serves the pancakes") is placed from here


def _placed_by_best_match(asked: Asked, unplaced: list[OptionSupport], options: list[str],
                          units: list[Unit]) -> list[OptionSupport]:
    """Options no unit states word for word, placed where they are told in other words.

    Why: "which comes last" compares where the options happen, and speech tells an
    action with pronouns and synonyms ("she serves them" for "serves the
    pancakes"); requiring every word would leave the true last step unplaced and
    let an earlier, fully worded one win. An option is placed at the unit it
    matches best (its words, then MiniLM meaning) only where that unit matches
    no other option better: each told event backs one option.
    """
    plain = _plain(asked)
    out = []
    for s in unplaced:
        candidates = [(fact_of(plain, s.option, u), u) for u in units if u.span is not None]
        candidates = [(f, u) for f, u in candidates if f >= MIN_PARTIAL_FACT]
        if not candidates:
            continue
        fact = max(f for f, _ in candidates)
        tied = [u for f, u in candidates if f == fact]  # MiniLM only to break a tie of words
        unit = tied[0] if len(tied) == 1 else max(tied, key=lambda u: meaning_of(plain, s.option, u))
        rivals = [fact_of(plain, o, unit) for o in options if o != s.option]
        if any(r >= fact for r in rivals):
            continue  # the place tells another option at least as well
        s.unit, s.fact, s.about = unit, fact, 1.0
        out.append(s)
    return out


def _plain(asked: Asked) -> Asked:
    from dataclasses import replace

    return replace(asked, anchors=(), relations=(), extreme=None, answer_type="text")


def _negate(found: list[OptionSupport]) -> None:
    """"Which is NOT ...": the option the evidence does not back, where it backs the others."""
    # measured at all, about the question where anything is (a question whose anchors no unit holds,
    # "which of these names is never said", still tells the said from the unsaid by their facts)
    about_any = any(s.about > 0 for s in found if s.fact > 0)
    joints = [s.joint if about_any else s.fact * (0.0 if s.relation == 0.0 else 1.0) for s in found]
    for i, s in enumerate(found):
        others = [j for k, j in enumerate(joints) if k != i]
        covered = sum(others) / len(others) if others else 0.0
        s.fact, s.about, s.relation = (1.0 - joints[i]) * covered, 1.0, 0.5
        s.note = "negated: backed by the absence of this option where the others are measured"


def feature_rows(found: list[OptionSupport]) -> list[dict[str, float]]:
    """The fitted model's inputs per option: its own signals and the best rival's."""
    rows = []
    for i, s in enumerate(found):
        rivals = [r for k, r in enumerate(found) if k != i]
        rival_joint = max((r.joint for r in rivals), default=0.0)
        rival_meaning = max((r.meaning for r in rivals), default=0.0)
        rows.append({"fact": s.fact, "about": s.about, "joint": s.joint, "meaning": s.meaning,
                     "relation": s.relation, "rival_joint": rival_joint, "joint_margin": s.joint - rival_joint,
                     "meaning_margin": s.meaning - rival_meaning})
    return rows


@functools.lru_cache(maxsize=1)
def fitted() -> dict:
    """The fitted weights (``weights.json``: coefficients, intercept, thresholds, and how they were measured)."""
    return json.loads(WEIGHTS_FILE.read_text())


def probability(row: dict[str, float], weights: dict | None = None) -> float:
    w = weights or fitted()
    z = w["intercept"] + sum(w["coef"][name] * row[name] for name in FEATURES)
    return 1.0 / (1.0 + math.exp(-z))


def scored(asked: Asked, options: list[str], units: list[Unit], weights: dict | None = None,
           around: list[Unit] | None = None) -> list[OptionSupport]:
    """Each option's support with its fitted probability ``p`` (``around``: see `supports`)."""
    found = supports(asked, options, units, around)
    for s, row in zip(found, feature_rows(found)):
        s.features = row
        s.p = probability(row, weights)
        if _measured_count(asked, s):
            s.p = max(s.p, MEASURED_FACT_P)
        if contradicts_relation(s):
            s.p = min(s.p, VIOLATED_RELATION_P)
    return found


MEASURED_FACT_P = 0.99  # an option that *is* a measured count of the asked thing needs no other signal
#: An option found only where the question's relation is measured false ("said right after the attic", found
#: before it) is contradicted, not weakly backed: the fitted relation weight (0.73 on the logit) let such an
#: option reach P 0.87 on its words alone. Capped below every acceptance bar, above an unbacked option.
VIOLATED_RELATION_P = 0.5


def contradicts_relation(support: OptionSupport) -> bool:
    """The option's best place holds its fact but breaks a temporal relation checked there."""
    return support.unit is not None and support.fact > 0 and support.relation == 0.0


def _measured_count(asked: Asked, support: OptionSupport) -> bool:
    """A number question whose option equals what a count unit measured of the counted thing (a shot or
    scene count, the most of a kind seen at once): the fact is measured, so the wording around it cannot
    make it less true. (The fitted weights gave an exact count of three shots P 0.63 for "three".)"""
    unit = support.unit
    return (asked.answer_type == "number" and unit is not None and support.fact == 1.0
            and _counted_here(asked, unit) is not None and support.relation != 0.0)
