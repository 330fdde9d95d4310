"""Read a question once into a typed record (:class:`QuestionFrame`) that every other module uses.

The explorer, the offline policy and the verifier all need to know what a
question asks: what kind of fact the answer is, what it is about, which
evidence can carry it, which moment it points at. Reading that three times
with three word lists is how rules end up fitted to one suite's phrasings.
:func:`read_question` reads it once, by general means:

* **syntax** — the wh-word and the words after it, an auxiliary in first
  position (a yes/no question), temporal conjunctions and prepositions
  ("after", "before", "while", "during") and what they govern, negation,
  superlatives (any ``-est`` adjective, "most"/"least" + adjective), quoted
  phrases, capitalised names;
* **WordNet** (:mod:`mcr.language.lexicon`) for each word's part of speech
  (no tagger model is installed offline; the commonest part of speech in the
  sense-tagged corpus, corrected by its neighbours, is a light tagger), for
  the kind of thing a noun names (a colour, a piece of writing, a quantity, a
  time, an object or animal or person, a kind of communication) and for
  which measurable property an adjective names ("brightest" → brightness);
* **MiniLM similarity** to a few prototype questions per class where syntax
  leaves the class open ("what happens ...", a question with no wh-word).

Nothing here names a phrase of any evaluation suite; the tests use their own
wordings (``tests/language``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mcr.language import lexicon
from mcr.language.grammar import (AUXILIARIES, DETERMINERS, FUNCTION_WORDS, NEGATIONS, PREPOSITIONS, PRONOUNS,
                                  WH_WORDS, tokens)
from mcr.language.similarity import attribute_of, measurable_attribute, phrase_weight, word_weight

__all__ = ["AnswerType", "EvidenceKind", "RelationKind", "Relation", "Extreme", "QuestionFrame", "read_question",
           "relation_claim",
           "ANCHOR_WEIGHT"]


class AnswerType(str, Enum):
    """What kind of fact the answer is."""

    ENTITY = "entity"
    NUMBER = "number"
    COLOUR = "colour"
    TEXT = "text"  # text on screen
    TIME = "time"
    YES_NO = "yes_no"
    REASON = "reason"


class EvidenceKind(str, Enum):
    """Which measured evidence can carry the answer."""

    SPEECH = "speech"
    SCREEN_TEXT = "screen_text"
    PIXELS = "pixels"
    OBJECTS = "objects"
    SHOTS = "shots"
    MOTION = "motion"


class RelationKind(str, Enum):
    BEFORE = "before"
    AFTER = "after"
    WHILE = "while"
    DURING = "during"
    FIRST = "first"
    LAST = "last"
    AT_TIME = "at_time"


class Relation(BaseModel):
    """A temporal relation the question asks about, with the event it refers to."""

    model_config = ConfigDict(frozen=True)

    kind: RelationKind
    event: str = ""  # the event's phrase ("the dog barks"); "" for FIRST/LAST over the options themselves
    immediate: bool = False  # "right after", "just before"


class Extreme(BaseModel):
    """A superlative: the option with the most/least of a measurable property."""

    model_config = ConfigDict(frozen=True)

    measure: str  # the property as a noun ("brightness", "size", "duration", ...)
    direction: Literal["max", "min"]


class QuestionFrame(BaseModel):
    """What a question asks, read once (see the module docstring)."""

    model_config = ConfigDict(frozen=True)

    text: str
    options: tuple[str, ...] = ()
    answer_type: AnswerType
    focus: str
    anchors: tuple[str, ...] = ()
    evidence: tuple[EvidenceKind, ...]
    relations: tuple[Relation, ...] = ()
    negated: bool = False
    count_target: str | None = None
    counts_occurrences: bool = False  # "how often", "how many times": occurrences of the focus, not things
    counts_kinds: bool = False  # "how many kinds / types of X": the distinct kinds of X seen, not the Xs
    occurrence: str | None = None  # what occurs, when occurrences are counted: the clause's verb ("cut", "mention")
    extreme: Extreme | None = None
    grounding_query: str
    hints: tuple[str, ...] = ()
    weights: dict[str, float] = Field(default_factory=dict)

    def relation(self, *kinds: RelationKind) -> Relation | None:
        """The first relation of one of `kinds` (any kind when none is given)."""
        return next((r for r in self.relations if not kinds or r.kind in kinds), None)


ANCHOR_WEIGHT = 0.3  # a phrase whose best word weighs less than this is never an anchor

# ---------------------------------------------------------------------------- #
# A light tagger: WordNet's commonest part of speech, corrected by neighbours
# ---------------------------------------------------------------------------- #

_QUOTES = {'"', "“", "”", "‘", "’", "'"}
_PUNCT = {"?", ",", ".", "!", ";", ":"}


class _Tok(BaseModel):
    text: str
    low: str
    tag: str  # F function word, N noun, C classifier noun ("kind of"), A adjective, V verb, R adverb,
    # P proper name, D number, Q quote, X punct
    index: int


def _dominant(word: str) -> str:
    """The tag of the word's commonest part of speech (WordNet), "" when unknown."""
    return {"n": "N", "v": "V", "a": "A", "r": "R", "": ""}[lexicon.dominant_pos(word)]


def _written_in_capitals(words: list[str]) -> set[int]:
    """Positions of words written in capitals ("DAY", "EXIT") in a question that is not itself in capitals.

    A person copies a label, a sign or an acronym as it is written: such a word
    names exactly what to look for, however common the word ("DAY" in a caption),
    so it is read as a name, weighed in full and kept in the grounding query.
    """
    alpha = [i for i, w in enumerate(words) if any(ch.isalpha() for ch in w)]
    capitals = {i for i in alpha if len(words[i]) > 1 and words[i].isupper()
                and words[i].lower() not in FUNCTION_WORDS}  # "NOT", "ONLY": emphasis, not a label
    return capitals if len(capitals) * 2 < len(alpha) else set()  # a shouted question says nothing by its case


def _tag(words: list[str]) -> list[_Tok]:
    out: list[_Tok] = []
    capitals = _written_in_capitals(words)
    for i, w in enumerate(words):
        low = w.lower()
        if i in capitals:
            tag = "P"
        elif w in _QUOTES:
            tag = "Q"
        elif w in _PUNCT:
            tag = "X"
        elif low in FUNCTION_WORDS:
            tag = "F"
        elif w[0].isdigit():
            tag = "D"
        elif w[0].isupper() and not w.isupper() and i > 0 and words[i - 1] not in _PUNCT:  # a name mid-sentence
            tag = "P"
        else:
            tag = _dominant(low) or ("P" if w[0].isupper() else "N")
        out.append(_Tok(text=w, low=low, tag=tag, index=i))
    # neighbours: after a determiner or adjective a word is nominal if it can be; after a noun or pronoun,
    # a word that can be a verb and is followed by a function word, a determiner or the end is a verb
    for i, t in enumerate(out):
        pos = lexicon.parts_of_speech(t.low)
        prev = out[i - 1] if i else None
        nxt = out[i + 1] if i + 1 < len(out) else None
        after_wh = prev is not None and prev.low in ("what", "which", "whose")
        possessive = prev is not None and prev.low.endswith(("'s", "’s"))  # "the day's name": a determiner
        if t.tag in ("V", "R") and prev is not None and (prev.low in DETERMINERS or prev.tag == "A" or after_wh
                                                          or possessive) and "n" in pos:
            t.tag = "N"
        elif t.tag == "N" and "v" in pos and prev is not None and not possessive \
                and (prev.tag in ("N", "P") or prev.low in PRONOUNS) \
                and (nxt is None or nxt.tag in ("F", "X") or nxt.low in DETERMINERS):
            t.tag = "V"
        elif t.tag == "N" and "a" in pos and nxt is not None and nxt.tag == "N" and t.low.endswith("est"):
            t.tag = "A"
    # a classifier: an abstract noun followed by "of" ("kind of", "piece of", "colour of"): the noun after
    # "of" is what is talked about
    for i, t in enumerate(out[:-1]):
        if t.tag == "N" and out[i + 1].low == "of" and _abstract(t.low):
            t.tag = "C"
    return out


def _counted_object(toks: list[_Tok]) -> str | None:
    """The noun a counting verb takes ("count the blue dots", "enumerate the boats"): WordNet's count.v.01."""
    wn = lexicon.wordnet()
    if wn is None:
        return None
    counting = wn.synset("count.v.01")
    for i, t in enumerate(toks):
        if t.tag in ("V", "N", "P") and i + 1 < len(toks) and counting in wn.synsets(t.low, "v"):
            return next((n.low for n in toks[i + 1:] if n.tag in ("N", "P")), None)
    return None


_SUBJECT_PRONOUNS = frozenset({"i", "you", "he", "she", "it", "we", "they"})  # "how many did she pick", not "of them"
_LIGHT_VERBS = frozenset({"be", "have", "do", "get"})  # say nothing of what is counted ("how many are there")


def _verb_base(word: str) -> str:
    wn = lexicon.wordnet()
    base = wn.morphy(word, "v") if wn is not None else None
    return base or min(lexicon.lemma_forms(word), key=len)


def _content_verb_after(toks: list[_Tok], start: int) -> str | None:
    """The base form of the first verb from `start` that carries meaning ("carry", not "did" or "are")."""
    for t in toks[start:]:
        if t.tag == "V" or (t.tag == "N" and "v" in lexicon.parts_of_speech(t.low)):
            base = _verb_base(t.low)
            if base not in _LIGHT_VERBS:
                return base
        elif t.tag not in ("F", "R"):
            return None
    return None


def _thing_named_before(toks: list[_Tok], end: int) -> str | None:
    """The last noun before `end` that names a thing rather than where it is.

    "There are eggs on the table - how many of them?": "table" comes last but
    follows "eggs on"; a noun in a preposition's phrase that hangs on another
    noun places that noun. After a verb the preposition belongs to the verb
    ("hauls in crabs", "look at the cars") and its noun is the thing itself.
    """
    nouns = [k for k in range(end) if toks[k].tag == "N"]
    for k in reversed(nouns):
        j = k - 1
        while j >= 0 and (toks[j].tag in ("A", "D", "N") or toks[j].low in DETERMINERS):  # back over its phrase
            j -= 1
        placed = j > 0 and toks[j].low in PREPOSITIONS and toks[j - 1].tag in ("N", "P")
        if not placed:
            return toks[k].low
    return toks[nouns[0]].low if nouns else None


def _object_said_before(toks: list[_Tok], end: int, verb: str) -> str | None:
    """The noun that `verb` took before position `end` ("carried two buckets" → "buckets"), or None."""
    for k in range(end - 1, -1, -1):
        if toks[k].tag in ("V", "N") and _verb_base(toks[k].low) == verb:
            for t in toks[k + 1:end]:
                if t.low in PREPOSITIONS or t.tag in ("X", "V"):
                    return None  # "walked up the hill": a place, not a thing the verb took
                if t.tag in ("N", "P"):
                    return t.low
            return None
    return None


def _occurring_verb(toks: list[_Tok]) -> str | None:
    """The base form of the first content verb of a "how often / how many times" question: what occurs.

    Why: in "how many times does the picture cut" the counted noun is "times",
    which names no thing; the occurrence is the verb, and a tool that counts
    such events (the cuts between shots) is matched by it.
    """
    for t in toks:
        if t.tag == "V" and t.low not in FUNCTION_WORDS:
            return _verb_base(t.low)
    return None


@functools.lru_cache(maxsize=8192)
def _abstract(noun: str) -> bool:
    """The noun's commonest sense is an abstraction (a category, a part, a property), not a thing or event."""
    synsets = lexicon._noun_synsets(noun)
    if not synsets:
        return False
    return any(s.name() == "abstraction.n.06" for path in synsets[0].hypernym_paths() for s in path)


def _names_a_kind(noun: str) -> bool:
    """A noun for a sort of thing ("kinds", "types", "species"): what a count of distinct kinds is asked with.

    By meaning (WordNet's kind.n.01 and its near neighbours), not by a list;
    a colour is a kind in WordNet too, but "how many colours of X" counts colours.
    """
    kind = lexicon.relatedness(noun, "kind")
    return kind >= 0.9 and lexicon.relatedness(noun, "colour") < kind


def _noun_phrases(toks: list[_Tok]) -> list[tuple[int, int]]:
    """(start, end) of maximal runs of adjectives/nouns/names/numbers that end in a noun or name."""
    spans = []
    i = 0
    while i < len(toks):
        if toks[i].tag in ("A", "N", "P", "D"):
            j = i
            while j < len(toks) and toks[j].tag in ("A", "N", "P", "D"):
                j += 1
            k = j
            while k > i and toks[k - 1].tag == "A":  # trailing adjectives are predicates, not the head
                k -= 1
            if k > i:
                spans.append((i, k))
            i = j
        else:
            i += 1
    return spans


def _phrase(toks: list[_Tok], start: int, end: int) -> str:
    return " ".join(t.text for t in toks[start:end])


# ---------------------------------------------------------------------------- #
# What kind of thing a noun names (WordNet), and prototypes (MiniLM)
# ---------------------------------------------------------------------------- #

_KIND_ROOTS = {  # answer type ← a noun that is a kind of one of these (WordNet synsets)
    AnswerType.COLOUR: ("color.n.01", "color_property.n.01"),
    AnswerType.TEXT: ("written_communication.n.01", "language_unit.n.01", "heading.n.01", "subtitle.n.01",
                      "name.n.01", "inscription.n.01", "signboard.n.01"),
    AnswerType.NUMBER: ("number.n.02", "amount.n.02", "quantity.n.03", "count.n.01"),
    AnswerType.TIME: ("time_period.n.01", "point.n.06", "time.n.03", "clock_time.n.01"),
    AnswerType.REASON: ("reason.n.01", "cause.n.01", "motivation.n.01", "purpose.n.01"),
}


@functools.lru_cache(maxsize=8192)
def _kind_of(noun: str) -> AnswerType | None:
    """The answer type a noun names as a kind of thing ("hue" → COLOUR, "caption" → TEXT), if any."""
    wn = lexicon.wordnet()
    if wn is None:
        return None
    for synset in lexicon._noun_synsets(noun):
        ancestors = {s.name() for path in synset.hypernym_paths() for s in path}
        for kind, roots in _KIND_ROOTS.items():
            if ancestors & set(roots):
                return kind
    return None


@functools.lru_cache(maxsize=8192)
def _verb_makes_text(word: str) -> bool:
    """A verb whose derived nouns name writing ("written" → writing, "printed" → print)."""
    wn = lexicon.wordnet()
    if wn is None:
        return False
    for synset in wn.synsets(word.lower(), "v")[:2]:
        if synset.lexname() != "verb.creation":
            continue
        for lemma in synset.lemmas():
            for form in lemma.derivationally_related_forms():
                if form.synset().pos() == "n" and _kind_of(form.name()) == AnswerType.TEXT:
                    return True
    return False


# Prototype questions for the answer type and the evidence kind (our own wordings; a question's class is
# the class of its most similar prototype when syntax leaves it open).
_TYPE_PROTOTYPES = {
    AnswerType.ENTITY: ("What object is on the table?", "Who enters the room?", "Where is the key kept?",
                        "What happens next?"),
    AnswerType.NUMBER: ("How many cups are there?", "What is the number of steps?", "What count is given?"),
    AnswerType.COLOUR: ("Which colour does the wall have?", "Which shade does the sky have?"),
    AnswerType.TEXT: ("Which text can be read on the sign?", "Which caption is displayed?", "What does the title read?"),
    AnswerType.TIME: ("When does it begin?", "At what moment does it stop?", "At which time is it shown?"),
    AnswerType.YES_NO: ("Is there a cat?", "Does the man smile?", "Can you see a tree?"),
    AnswerType.REASON: ("Why does she leave?", "For what reason is it closed?", "What causes the delay?"),
}
_EVIDENCE_PROTOTYPES = {
    EvidenceKind.SPEECH: ("What does the speaker say?", "What is mentioned in the talk?", "What is heard?"),
    EvidenceKind.SCREEN_TEXT: ("Which text can be read on screen?", "What does the caption read?"),
    EvidenceKind.PIXELS: ("How is it coloured?", "How bright is the picture?", "What does it look like?"),
    EvidenceKind.OBJECTS: ("What object is visible?", "Which animal is there?", "Who is standing there?"),
    EvidenceKind.SHOTS: ("How many scenes are there?", "When does the shot change?"),
    EvidenceKind.MOTION: ("What moves across the frame?", "Which way does it go?", "How fast does it travel?"),
}


def _nearest(question: str, prototypes: dict) -> list[tuple[float, object]]:
    """Classes by their best prototype's MiniLM similarity to `question` (empty without the model)."""
    from mcr.language.embedder import load_embedder

    embedder = load_embedder()
    if embedder is None:
        return []
    items = [(cls, p) for cls, ps in prototypes.items() for p in ps]
    vectors = embedder.encode([question] + [p for _, p in items])  # (1 + P, dim)
    best: dict[object, float] = {}
    for (cls, _), v in zip(items, vectors[1:]):
        best[cls] = max(best.get(cls, -1.0), float(vectors[0] @ v))
    return sorted(((s, c) for c, s in best.items()), key=lambda x: -x[0])


# ---------------------------------------------------------------------------- #
# The reader
# ---------------------------------------------------------------------------- #

_RELATION_WORDS = {"after": RelationKind.AFTER, "before": RelationKind.BEFORE, "while": RelationKind.WHILE,
                   "during": RelationKind.DURING, "until": RelationKind.BEFORE, "since": RelationKind.AFTER,
                   "as": RelationKind.AFTER, "when": RelationKind.WHILE, "once": RelationKind.AFTER}
EXCLUSIONS = frozenset({"except", "excluding", "besides"})  # "all of them except one": which is NOT
_IMMEDIATE = {"right", "just", "immediately", "directly", "shortly", "soon", "straight"}
_ORDER = {"first": RelationKind.FIRST, "last": RelationKind.LAST, "earliest": RelationKind.FIRST,
          "latest": RelationKind.LAST, "final": RelationKind.LAST, "initial": RelationKind.FIRST,
          "opening": RelationKind.FIRST, "beginning": RelationKind.FIRST, "start": RelationKind.FIRST,
          "end": RelationKind.LAST, "ending": RelationKind.LAST, "finally": RelationKind.LAST,
          "firstly": RelationKind.FIRST}


def _alternative(lows: list[str], i: int) -> bool:
    """A relation word joined by "or" to another ("before or after the rain"): the question asks which
    relation holds (its options say), it does not state one."""
    joined = lambda j: 0 <= j < len(lows) and lows[j] in _RELATION_WORDS  # noqa: E731
    return (i + 2 < len(lows) and lows[i + 1] == "or" and joined(i + 2)) or (i >= 2 and lows[i - 1] == "or"
                                                                            and joined(i - 2))


def relation_claim(option: str) -> Relation | None:
    """The temporal relation an option states of the question's focus ("after the storm", "at the same moment
    as the bell", "before the kettle boils"), or None.

    The first relation word of the option and the event after it; simultaneity is the word "same" with a
    noun of time ("at the same instant as X"). Options that only deny ("X never happens") state none.
    """
    words = tokens(option)
    lows = [w.lower() for w in words]
    for i, low in enumerate(lows):
        simultaneous = low == "same" and any(_kind_of(w) == AnswerType.TIME for w in lows[i + 1:i + 3])
        kind = RelationKind.WHILE if simultaneous else _RELATION_WORDS.get(low)
        if kind is None or low in ("as", "when", "once", "since"):
            continue
        start = i + 1
        if simultaneous:  # past "time as" / "moment with"
            start = next((j + 1 for j in range(i + 1, min(len(lows), i + 4)) if lows[j] in ("as", "with", "that")),
                         i + 2)
        event = _strip_function(words[start:])
        return Relation(kind=kind, event=event) if event else None
    return None


def _quoted(words: list[str]) -> tuple[list[str], set[int]]:
    """Phrases between quote marks, and the token positions inside them."""
    out, inside, start = [], set(), None
    for i, w in enumerate(words):
        if w in _QUOTES:
            if start is None:
                start = i
            else:
                if i - start > 1:
                    out.append(" ".join(words[start + 1:i]))
                    inside |= set(range(start + 1, i))
                start = None
    return out, inside


def _clause_end(toks: list[_Tok], start: int) -> int:
    """Where a subordinate clause starting at `start` ends: a comma, a question mark, another relation word."""
    for j in range(start, len(toks)):
        if toks[j].text in _PUNCT and toks[j].text != "'":
            return j
        if j > start and toks[j].low in ("after", "before", "while", "during", "until") :
            return j
    return len(toks)


def _strip_function(words: list[str]) -> str:
    ws = list(words)
    while ws and ws[0].lower() in FUNCTION_WORDS | {"'", '"'}:
        ws.pop(0)
    while ws and (ws[-1] in _PUNCT or ws[-1] in _QUOTES):
        ws.pop()
    return " ".join(ws)


def _main_clause_first(words: list[str]) -> list[str]:
    """A question that opens with its temporal clause ("While the bell rings, what is shown?") as one that
    ends with it ("what is shown while the bell rings?"): the reader finds a relation's event after its
    word and takes the main clause from the start."""
    if len(words) < 4 or words[0].lower() not in _RELATION_WORDS or words[0].lower() in ("when", "as", "once"):
        return words
    comma = next((i for i, w in enumerate(words) if w == ","), None)
    if comma is None or comma + 1 >= len(words):
        return words
    end = len(words) - 1 if words[-1] in ("?", ".", "!") else len(words)
    clause = [words[0].lower(), *words[1:comma]]
    main = words[comma + 1:end]
    return [main[0][:1].upper() + main[0][1:], *main[1:], *clause, *words[end:]]


@functools.lru_cache(maxsize=4096)
def _read(text: str, options: tuple[str, ...]) -> QuestionFrame:
    words = _main_clause_first(tokens(text))
    quoted, in_quote = _quoted(words)
    toks = _tag(words)
    lows = [t.low for t in toks]

    # -- negation --------------------------------------------------------- #
    negated = any(t.low in NEGATIONS and t.low not in ("no", "nor", "neither") or t.low in EXCLUSIONS or
                  (t.low == "no" and i > 0 and lows[i - 1] not in ("yes", "or")) for i, t in enumerate(toks)
                  if i not in in_quote)

    # -- temporal relations ------------------------------------------------ #
    relations: list[Relation] = []
    main_end = len(toks)
    for i, t in enumerate(toks):
        if i in in_quote:
            continue
        kind = _RELATION_WORDS.get(t.low)
        if kind is not None and i > 0 and _alternative(lows, i):
            main_end = min(main_end, i)  # "before or after X": the options say which; X is still an anchor
            continue
        if kind is not None and i > 0:
            if t.low == "as" and not (i >= 2 and lows[i - 1] == "soon" and lows[i - 2] == "as"):
                continue  # only "as soon as" is temporal; "as the host tells it" is manner
            if t.low in ("when",) and i == 0:
                continue
            start = i + 1
            end = _clause_end(toks, start)
            event = _strip_function(words[start:end]) if end > start else ""
            immediate = any(lows[j] in _IMMEDIATE for j in range(max(0, i - 2), i)) or \
                (t.low == "as" and i >= 2 and lows[i - 1] == "soon")
            if event:
                relations.append(Relation(kind=kind, event=event, immediate=immediate))
                main_end = min(main_end, i - (1 if lows[i - 1] in _IMMEDIATE else 0))
    at_time = (lows[:1] == ["when"] or (len(lows) > 2 and lows[0] == "at" and lows[1] in ("what", "which") and
                                        _kind_of(lows[2]) == AnswerType.TIME)
               or (len(lows) > 1 and lows[0] in ("what", "which") and _kind_of(lows[1]) == AnswerType.TIME))
    if at_time:
        start = next((i for i, t in enumerate(toks) if i > 0 and t.tag not in ("F",) and t.low not in
                      ("time", "point", "moment")), 1)
        relations.insert(0, Relation(kind=RelationKind.AT_TIME, event=_strip_function(words[start:main_end])))
    for i, t in enumerate(toks):
        kind = _ORDER.get(t.low)
        if kind is None or i in in_quote:
            continue
        before = i - 1
        while before > 0 and (toks[before].tag == "R" or (toks[before].tag == "F" and "r" in lexicon.parts_of_speech(
                lows[before]))):  # "at the very end": an intensifier between
            before -= 1
        if t.low in ("start", "end", "beginning", "ending") and not (before >= 0 and lows[before] in ("the",)):
            continue
        if any(r.kind == kind for r in relations):
            continue
        relations.append(Relation(kind=kind, event=""))

    # -- answer type --------------------------------------------------------- #
    answer_type, head_noun, head_at = _answer_type(toks, text, options)

    # -- count target: the noun after "how many", past its adjectives ---------- #
    count_target, counts_kinds, elided, elliptical_at = None, False, False, -1
    for i in range(len(toks) - 1):
        if lows[i] == "how" and lows[i + 1] in ("many", "much"):
            for j, t in enumerate(toks[i + 2:], start=i + 2):
                if t.tag == "C" and _names_a_kind(t.low):  # "how many kinds of animal": animals, by kind
                    count_target = next((n.low for n in toks[j + 2:] if n.tag in ("N", "P")), None)
                    counts_kinds = count_target is not None
                    break
                if t.tag in ("N", "P"):
                    count_target = t.low
                    break
                # "how many did he carry?": the pronoun is the subject of a verb whose object was left out,
                # the thing that verb took earlier ("he carried buckets up the hill") — not the last noun
                if t.low in _SUBJECT_PRONOUNS and (verb := _content_verb_after(toks, j + 1)) is not None:
                    count_target, elided = _object_said_before(toks, i, verb), True
                    break
                # "... eggs - how many of them?" and "She bought eggs. How many?": the noun said before
                # "The blue dots: how many are there?": only function words, then the clause ends (a
                # counting verb's object, "count the dots ... how many are there?", comes first: below)
                if t.tag == "X" and all(x.tag == "F" for x in toks[i + 2:j]):
                    elliptical_at = i
                    break
                if t.low in PRONOUNS:
                    count_target = _thing_named_before(toks, i)
                    break
                if t.tag not in ("A", "D", "R", "F") and "a" not in lexicon.parts_of_speech(t.low):
                    break
            break
    if count_target is None and answer_type == AnswerType.NUMBER and not elided:
        count_target = _counted_object(toks)  # "Count the blue dots - how many are there?"
    if count_target is None and elliptical_at >= 0:
        count_target = _thing_named_before(toks, elliptical_at)
    if count_target is None and answer_type == AnswerType.NUMBER and head_noun and not elided:
        count_target = head_noun
    # occurrences: "how often", or a count of instances ("how many times"); the focus is what occurs
    counts_occurrences = answer_type == AnswerType.NUMBER and (
        any(lows[i] == "how" and lows[i + 1] == "often" for i in range(len(lows) - 1))
        or (count_target is not None and lexicon.relatedness(count_target, "instance") >= 0.7))

    occurrence = _occurring_verb(toks) if counts_occurrences else None

    # -- superlatives -------------------------------------------------------- #
    extreme = _extreme(toks)

    # -- noun phrases: focus and anchors ------------------------------------- #
    phrases = [(s, e) for s, e in _noun_phrases(toks) if not (set(range(s, e)) & in_quote)]
    main = [(s, e) for s, e in phrases if s < main_end and s != head_at and not (e - s == 1 and lows[s] in _ORDER)]
    focus_span = next(((s, e) for s, e in main if phrase_weight(_phrase(toks, s, e)) >= ANCHOR_WEIGHT), None)
    focus_span = focus_span or (main[0] if main else ((head_at, head_at + 1) if head_at >= 0 else
                                                      (phrases[0] if phrases else None)))
    focus = _phrase(toks, *focus_span) if focus_span else (quoted[0] if quoted else _strip_function(words))
    anchors: list[str] = list(quoted)
    for s, e in phrases:
        if (s, e) == (head_at, head_at + 1):
            continue
        content = [toks[k].text for k in range(s, e) if (_weight(toks[k]) >= ANCHOR_WEIGHT and
                                                         not _graded(toks[k].low)) or toks[k].tag in ("P", "D")]
        if content:
            anchors.append(" ".join(content))
    anchors = list(dict.fromkeys(a for a in anchors if a))

    # -- evidence kinds ------------------------------------------------------ #
    evidence = _evidence(toks, text, answer_type, count_target, extreme, relations, main_end)

    # -- grounding query, hints, weights -------------------------------------- #
    event_rel = next((r for r in relations if r.event and r.kind != RelationKind.AT_TIME), None)
    at = next((r for r in relations if r.kind == RelationKind.AT_TIME and r.event), None)
    if quoted:
        grounding = quoted[0]
    elif event_rel is not None or at is not None:
        grounding = _event_query((event_rel or at).event)
    else:
        grounding = " ".join(a for a in anchors if a not in quoted) or focus
    names = [t.text for t in toks if t.tag == "P"]
    hints = [o.strip() for o in options if o.strip()] + names + quoted
    hints += [t.low for t in toks if t.tag in ("N", "V", "A") and len(t.low) >= 4 and _weight(t) >= 0.5]
    capitals = _written_in_capitals(words)
    weights = {t.low: (0.0 if t.tag == "C" else 1.0 if t.index in capitals else _weight(t))
               for t in toks if t.tag not in ("X", "Q")}
    return QuestionFrame(
        text=text, options=options, answer_type=answer_type, focus=focus, anchors=tuple(anchors),
        evidence=evidence, relations=tuple(relations), negated=negated, count_target=count_target,
        counts_occurrences=counts_occurrences, occurrence=occurrence, counts_kinds=counts_kinds,
        extreme=extreme, grounding_query=grounding or text.strip(), hints=tuple(dict.fromkeys(h for h in hints
                                                                                             if len(h) <= 80))[:20],
        weights=weights)


_WORDNET_POS = {"N": "n", "V": "v", "A": "a", "R": "r"}


def _weight(tok: _Tok) -> float:
    """A token's weight in the reading the tagger gave it ("screen" the noun)."""
    return word_weight(tok.low, _WORDNET_POS.get(tok.tag))


def _graded(word: str) -> bool:
    """A superlative or comparative ("brightest", "larger"): it names the extreme, not what to look for."""
    wn = lexicon.wordnet()
    base = wn.morphy(word, "a") if wn is not None else None
    return bool(base and base != word)


def _event_query(event: str) -> str:
    """What to ground for an event: what is said when the event is reported speech ("the host says that the
    bridge is closed" → "bridge is closed", since the transcript holds the words, not the saying), without
    articles; else the event's content words."""
    words = [w for w in tokens(event) if w not in _PUNCT and w not in _QUOTES]
    for i, w in enumerate(words):
        if i + 2 < len(words) and lexicon.verb_field(w.lower()) == "verb.communication" and \
                lexicon.parts_of_speech(w.lower()) & {"v"}:
            rest = words[i + 1:]
            if rest and rest[0].lower() in ("that", "how", "about"):
                rest = rest[1:]
            if len(rest) >= 2:
                return " ".join(x for x in rest if x.lower() not in DETERMINERS)
    return _content_phrase(event)


def _content_phrase(text: str) -> str:
    words = tokens(text)
    capitals = _written_in_capitals(words)
    kept = [w for i, w in enumerate(words) if w not in _PUNCT and w not in _QUOTES and
            (word_weight(w) >= ANCHOR_WEIGHT or i in capitals or w[0].isdigit())]
    return " ".join(kept) or text


def _answer_type(toks: list[_Tok], text: str, options: tuple[str, ...]) -> tuple[AnswerType, str | None, int]:
    """The answer type, the noun that names it ("colour" in "what colour ..."), and its position (-1)."""
    lows = [t.low for t in toks]
    words = [t for t in toks if t.tag not in ("X", "Q")]
    if not words:
        return AnswerType.ENTITY, None, -1
    first = _asking_word(toks)
    wh_at = next((i for i, t in enumerate(toks) if t.low in WH_WORDS), -1)
    # options decide first when they are all of one measurable kind
    kinds = {_option_kind(o) for o in options}
    if options and len(kinds) == 1 and None not in kinds:
        return kinds.pop(), None, -1
    if first in AUXILIARIES or first in ("is", "are", "does", "do", "did", "was", "were", "can", "could", "has",
                                         "have", "will", "would", "should"):
        if not (wh_at > 0 and wh_at <= 2):
            return AnswerType.YES_NO, None, -1
    if wh_at >= 0:
        wh = lows[wh_at]
        nxt = lows[wh_at + 1] if wh_at + 1 < len(lows) else ""
        if wh == "how" and nxt in ("many", "much", "often", "long", "old", "far"):
            return (AnswerType.TIME if nxt == "long" else AnswerType.NUMBER), None, -1
        if wh == "when":
            return AnswerType.TIME, None, -1
        if wh == "why":
            return AnswerType.REASON, None, -1
        if wh in ("who", "whom", "whose", "where"):
            return AnswerType.ENTITY, None, -1
        if wh in ("what", "which"):
            # the noun the wh-word asks for: right after it ("what colour"), or after "is the"/"of" ("what is
            # the colour of", "which kind of word")
            for j in range(wh_at + 1, min(len(toks), wh_at + 6)):
                t = toks[j]
                if t.tag in ("N", "P", "C") or (t.tag == "A" and _kind_of(t.low)):
                    kind = _kind_of(t.low)
                    if kind == AnswerType.TIME and options and all(_is_a_name(o) for o in options):
                        return AnswerType.ENTITY, t.low, j  # "which weekday is named": Saturday is said, not when
                    if kind is not None:
                        return kind, t.low, j
                    if t.tag == "C":  # "what kind of word": the noun after "of" says
                        continue
                    break
                if t.tag not in ("F", "A", "C"):
                    break
        if wh_at > 0 and lows[wh_at - 1] in ("at", "by", "until", "since") and wh in ("what", "which"):
            if wh_at + 1 < len(toks) and _kind_of(lows[wh_at + 1]) == AnswerType.TIME:
                return AnswerType.TIME, lows[wh_at + 1], wh_at + 1
        if wh in ("what", "which") and not any(lows[i] == "for" and i + 2 < len(lows) and lows[i + 1] == "what" and
                                               _kind_of(lows[i + 2]) == AnswerType.REASON for i in range(len(lows))):
            return AnswerType.ENTITY, None, -1
    if any(lows[i] == "for" and i + 2 < len(lows) and lows[i + 1] == "what" and _kind_of(lows[i + 2]) ==
           AnswerType.REASON for i in range(len(lows))):
        return AnswerType.REASON, None, -1
    ranked = _nearest(text, _TYPE_PROTOTYPES)
    if ranked:
        best = ranked[0][1]
        if best != AnswerType.YES_NO or first in AUXILIARIES:
            return best, None, -1
        return (ranked[1][1] if len(ranked) > 1 else AnswerType.ENTITY), None, -1
    return AnswerType.ENTITY, None, -1


_ASKING_AUXILIARIES = AUXILIARIES | {"will", "would", "should", "can", "could", "has", "have"}


def _asking_word(toks: list[_Tok]) -> str:
    """The word that opens the clause that asks: the first word, or, after a fronted phrase and its comma
    ("According to the forecast, will it snow?", "In the end, does she win?"), the auxiliary or wh-word that
    follows the comma."""
    words = [t for t in toks if t.tag not in ("X", "Q")]
    first = words[0].low
    if first in _ASKING_AUXILIARIES or first in WH_WORDS:
        return first
    for i, t in enumerate(toks[:-1]):
        if t.low == "," and (toks[i + 1].low in _ASKING_AUXILIARIES or toks[i + 1].low in WH_WORDS):
            return toks[i + 1].low
    return first


def _is_a_name(option: str) -> bool:
    """Every content word of the option is capitalised ("Saturday", "New Year's Day"), so it names a day,
    a month or a holiday that is said or shown — a value to look for, not a position in the video
    ("at the start", "between 0:00 and 7:30")."""
    words = [w for w in option.split() if w[:1].isalpha() and w.lower() not in FUNCTION_WORDS]
    return bool(words) and all(w[0].isupper() for w in words)


_TIME_NOTATION = re.compile(r"\d:\d\d|\d\s*s\b")  # a clock position ("0:15", "1:00:00") or seconds ("12 s")


def names_a_time(option: str) -> bool:
    """The option is written as a time or a range of times ("between 0:00 and 15:00", "3 s to 7 s"): it
    names no thing to look for."""
    return bool(_TIME_NOTATION.search(option))


def _option_kind(option: str) -> AnswerType | None:
    words = [w for w in tokens(option) if w not in _PUNCT]
    if not words:
        return None
    if all(w[0].isdigit() for w in words) and any(":" in w for w in words):
        return AnswerType.TIME
    if len(words) == 1 and words[0][0].isdigit():
        return AnswerType.NUMBER
    if len(words) == 1 and words[0].lower() in ("yes", "no"):
        return AnswerType.YES_NO
    if len(words) <= 2 and all(_is_colour_word(w) for w in words):
        return AnswerType.COLOUR
    return None


@functools.lru_cache(maxsize=8192)
def _is_colour_word(word: str) -> bool:
    """A word that names a colour (as an adjective of hue/value, or a noun under colour)."""
    if _kind_of(word) == AnswerType.COLOUR:
        return True
    attribute = measurable_attribute(word)
    wn = lexicon.wordnet()
    if not attribute or wn is None:
        return False
    synsets = wn.synsets(attribute.replace(" ", "_"), "n")
    return any("visual_property.n.01" in {s.name() for p in x.hypernym_paths() for s in p} for x in synsets[:2])


def _extreme(toks: list[_Tok]) -> Extreme | None:
    """A superlative: "the brightest", "the most crowded", "the least loud", "the smallest"."""
    wn = lexicon.wordnet()
    for i, t in enumerate(toks):
        adjective, flip = None, False
        if t.low in ("most", "least") and i + 1 < len(toks) and "a" in lexicon.parts_of_speech(toks[i + 1].low):
            adjective, flip = toks[i + 1].low, t.low == "least"
        elif t.low.endswith("est") and wn is not None and len(t.low) > 4:
            base = wn.morphy(t.low, "a")
            if base and base != t.low:
                adjective = base
        if adjective is None:
            continue
        measure, direction = _measure_and_direction(adjective)
        if flip:
            direction = "min" if direction == "max" else "max"
        return Extreme(measure=measure, direction=direction)
    return None


# The properties the tools measure (look: brightness and sizes; segment/summarize: durations; transcribe:
# loudness; motion: speed; counts): a superlative is mapped onto one of them when WordNet relates them.
EVIDENCE_MEASURES = ("brightness", "size", "duration", "loudness", "speed", "number")


def _measure_and_direction(adjective: str) -> tuple[str, Literal["max", "min"]]:
    """The measure an adjective grades and which end of it the adjective names.

    The measure is the adjective's WordNet attribute, mapped onto a measure the
    evidence carries when one of that word's senses is the attribute or shares
    a close parent with it ("dark" → light.n.07 → brightness). The end: the
    adjective whose derived noun names the attribute is its high end ("bright"
    → brightness); its antonym is the low end ("dark" vs "light" → lightness);
    otherwise the commoner of the two antonyms is the high end ("large" is used
    more than "small": the unmarked pole).
    """
    wn = lexicon.wordnet()
    attribute = attribute_of(adjective)
    if wn is None or attribute is None:
        return adjective, "max"
    measure = attribute.lemma_names()[0].replace("_", " ")
    near = _up(attribute)
    for candidate in EVIDENCE_MEASURES:
        if any(set(_up(s)) & set(near) and min(_up(s).get(c, 9) + near.get(c, 9) for c in set(_up(s)) & set(near)) <= 2
               for s in wn.synsets(candidate, "n")):
            measure = candidate
            break
    names = {n.lower() for n in attribute.lemma_names()}
    base = wn.morphy(adjective, "a") or adjective
    for synset in wn.synsets(base, "a")[:2]:
        for lemma in synset.lemmas():
            if lemma.name() != base:
                continue
            if {f.name().lower() for f in lemma.derivationally_related_forms()} & names:
                return measure, "max"
            for antonym in lemma.antonyms():
                if {f.name().lower() for f in antonym.derivationally_related_forms()} & names:
                    return measure, "min"
    return measure, _pole(base, measure)


def _pole(adjective: str, measure: str) -> Literal["max", "min"]:
    """Which end of `measure` an adjective names when WordNet's derivations do not say: the adjective is
    nearer (MiniLM) to "high <measure>" or to "low <measure>" ("small" is nearer "low size")."""
    from mcr.language.embedder import load_embedder

    embedder = load_embedder()
    if embedder is None:
        return "max"
    adj, high, low = embedder.encode([adjective, f"high {measure}", f"low {measure}"])
    return "max" if float(adj @ high) >= float(adj @ low) else "min"


def _up(synset) -> dict:
    out = {synset: 0}
    frontier = [synset]
    for step in (1, 2):
        frontier = [h for s in frontier for h in s.hypernyms() if h not in out]
        out.update({h: step for h in frontier})
    return out


def _evidence(toks: list[_Tok], text: str, answer_type: AnswerType, count_target: str | None,
              extreme: Extreme | None, relations: list[Relation], main_end: int) -> tuple[EvidenceKind, ...]:
    """Evidence kinds that can carry the answer, most likely first.

    What the *main clause* asks decides the first kind ("which colour has the wall while she speaks" asks
    about pixels; speech only locates it); the kinds a relation's event needs come after.
    """
    scores: dict[EvidenceKind, float] = {k: 0.0 for k in EvidenceKind}

    def vote(kind: EvidenceKind, weight: float) -> None:
        scores[kind] = max(scores[kind], weight)

    if answer_type == AnswerType.COLOUR:
        vote(EvidenceKind.PIXELS, 3.0)
    if answer_type == AnswerType.TEXT:
        vote(EvidenceKind.SCREEN_TEXT, 3.0)
    if extreme is not None:
        vote(EvidenceKind.PIXELS, 2.5)
    if count_target is not None:
        if lexicon.relatedness(count_target, "scene") >= 0.7 or lexicon.relatedness(count_target, "shot") >= 0.9:
            vote(EvidenceKind.SHOTS, 3.0)
        elif lexicon.names_an_object(count_target):
            vote(EvidenceKind.OBJECTS, 2.6)
            vote(EvidenceKind.SPEECH, 1.0)  # a count of things is also told ("she cracks three eggs")
    for i, t in enumerate(toks):
        weight = 2.0 if i < main_end else 0.8  # the main clause asks; a relation's clause only locates
        if t.tag == "V" or (t.tag == "N" and "v" in lexicon.parts_of_speech(t.low) and i > 0 and
                            toks[i - 1].tag in ("N", "P", "F") and toks[i - 1].low not in ("a", "an", "the")
                            and not toks[i - 1].low.endswith(("'s", "’s"))):  # "a sign", "the day's name": nouns
            field = lexicon.verb_field(t.low)
            if _verb_makes_text(t.low):
                vote(EvidenceKind.SCREEN_TEXT, weight + 0.2)
            elif field == "verb.communication":
                vote(EvidenceKind.SPEECH, weight + 0.3)
            elif field == "verb.motion":
                vote(EvidenceKind.MOTION, weight)
            elif field == "verb.perception":
                if _heard(t.low):
                    vote(EvidenceKind.SPEECH, weight)
                else:  # "shown", "seen", "appears": something on screen, an object or a text
                    vote(EvidenceKind.OBJECTS, weight * 0.6)
                    vote(EvidenceKind.SCREEN_TEXT, weight * 0.55)
        if t.tag == "N":
            kind = _kind_of(t.low)
            if kind == AnswerType.TEXT:
                vote(EvidenceKind.SCREEN_TEXT, weight)
            elif kind == AnswerType.COLOUR:
                vote(EvidenceKind.PIXELS, weight)
            elif lexicon.names_an_object(t.low) and answer_type in (AnswerType.ENTITY, AnswerType.YES_NO,
                                                                    AnswerType.NUMBER):
                vote(EvidenceKind.OBJECTS, weight * 0.6)
            if lexicon.names_a_speaker(t.low):
                vote(EvidenceKind.SPEECH, weight)
            elif kind is None and i > 0 and toks[i - 1].low in DETERMINERS and lexicon.names_a_message(t.low):
                # "according to the forecast": a message is told
                vote(EvidenceKind.SPEECH, weight * 0.9)
    for score, kind in _nearest(text, _EVIDENCE_PROTOTYPES)[:2]:
        vote(kind, score)
    ranked = sorted((k for k in EvidenceKind if scores[k] > 0), key=lambda k: -scores[k])
    return tuple(ranked) or (EvidenceKind.SPEECH, EvidenceKind.PIXELS)


@functools.lru_cache(maxsize=8192)
def _heard(verb: str) -> bool:
    """A perception verb of hearing rather than seeing: nearer (MiniLM) to "hear" than to "see"."""
    from mcr.language.embedder import load_embedder

    embedder = load_embedder()
    if embedder is None:
        return False
    v, hear, see = embedder.encode([verb, "hear", "see"])
    return float(v @ hear) > float(v @ see)


def read_question(text: str, options: Sequence[str] = ()) -> QuestionFrame:
    """The typed record of a question (cached per text and options); see the module docstring.

    Args:
        text: the question as the user asked it.
        options: the multiple-choice options, if any (their kind can decide the answer type).
    """
    return _read(text.strip(), tuple(str(o) for o in options))
