"""What the evidence checks need to know about a question: the question record, read once.

The question is read by :func:`mcr.language.question.read_question` (the
typed :class:`~mcr.language.question.QuestionFrame`: answer type, evidence
kinds, anchors with weights, relations, count target, superlative). This
module turns that frame into :class:`Asked`, the few plain fields the scorer
uses, so the rest of the package never reads question text itself.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Relation:
    kind: str  # before, after, while, during, first, last, at_time
    event: str = ""  # the event it refers to ("" for first/last over the options themselves)
    immediate: bool = False


@dataclass(frozen=True)
class Asked:
    """The question as the scorer sees it (from the question record)."""

    text: str
    options: tuple[str, ...]
    answer_type: str  # entity, number, colour, text, time, yes_no, reason
    evidence: tuple[str, ...]  # speech, screen_text, pixels, objects, shots, motion (most likely first)
    focus: str = ""
    anchors: tuple[str, ...] = ()
    weights: dict[str, float] = field(default_factory=dict)
    relations: tuple[Relation, ...] = ()
    negated: bool = False
    count_target: str | None = None
    counts_occurrences: bool = False  # "how often": occurrences of the focus (mentions, when said)
    counts_kinds: bool = False  # "how many kinds of X": distinct kinds of X (detector labels), not the Xs
    occurrence: str | None = None  # what occurs when occurrences are counted (the clause's verb: "cut")
    extreme: tuple[str, str] | None = None  # (measure, "max"/"min")

    def weight(self, word: str) -> float:
        """How much a word says (the record's rarity × meaning weight, by lowercase word; 1 when it gives none)."""
        return float(self.weights.get(word.lower(), self.weights.get(word, 1.0)))

    @property
    def order(self) -> str | None:
        """"first"/"last" when the question ranks the options by when they occur."""
        for r in self.relations:
            if r.kind in ("first", "last") and not r.event:
                return r.kind
        return None


@functools.lru_cache(maxsize=512)
def asked(text: str, options: tuple[str, ...] = ()) -> Asked:
    """The question record of `text` and `options`, as :class:`Asked`."""
    from mcr.language.question import read_question

    frame = read_question(text, options)
    value = lambda x: getattr(x, "value", x)  # noqa: E731 - enums to their names
    extreme = (frame.extreme.measure, frame.extreme.direction) if frame.extreme is not None else None
    return Asked(
        text=frame.text, options=tuple(frame.options), answer_type=str(value(frame.answer_type)),
        evidence=tuple(str(value(e)) for e in frame.evidence), focus=frame.focus, anchors=tuple(frame.anchors),
        weights=dict(frame.weights), negated=frame.negated, count_target=frame.count_target,
        counts_occurrences=frame.counts_occurrences, occurrence=frame.occurrence, extreme=extreme,
        counts_kinds=frame.counts_kinds,
        relations=tuple(Relation(str(value(r.kind)), r.event, r.immediate) for r in frame.relations),
    )
