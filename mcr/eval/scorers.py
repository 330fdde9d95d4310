"""Scoring one answer against its ground truth: options, spans, numbers, text.

Benchmark numbers are only as trustworthy as the step that turns a model's
free text into a choice. Simple regexes fail in ways that silently move a
score: ``"The answer is C."`` contains the letter ``E`` in ``The`` for a
case-insensitive ``[A-E]``; ``"A red lighthouse"`` starts with the article
``A``; a model that thinks aloud names every option before it picks one. So
the option extractor works in stages, from the most explicit signal to the
least, and returns *no* option when the output is empty or names several
(a hedge is not an answer):

1. the whole output is one letter (``"b"``, ``"(B)"``, ``"C."``);
2. the last explicit statement (``"answer is C"``, ``"Answer: (b)"``,
   ``"I choose D"``), after any ``<think>…</think>`` block is dropped;
3. the output *is* one option's text (``"seven"``);
4. exactly one bracketed or standalone capital letter (``"(B) seven"``),
   articles and the pronoun ``I`` excluded;
5. exactly one option's text is mentioned (``"the keeper counts seven ships"``).

Temporal spans are parsed from ``[6, 12]``, ``6.0-12.0 s``, ``from 6 to 12
seconds``, ``between 0:06 and 0:12``; reversed spans are put in order, empty
or unparseable ones score an IoU of 0, never an exception.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from typing import Literal

LETTERS = string.ascii_uppercase

ScorerName = Literal["choice", "span", "exact", "numeric", "open"]


# --------------------------------------------------------------------------- #
# Multiple choice
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Choice:
    """An extracted option: the letter (None: no single option) and the rule that found it."""

    letter: str | None
    rule: str


_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.S | re.I)
_THINK_OPEN_END = re.compile(r"^.*</think>", re.S | re.I)  # a reply that starts mid-thought
_STRONG_CUE = re.compile(
    r"(?:answer|choice|option)\s*(?:is|:|would be|should be|will be|=|-)?\s*(?:option|choice|letter)?\s*:?\s*"
    r"[\(\[\"'*]*([A-Za-z])[\)\]\"'*]*(?![A-Za-z])"
    r"|\b(?:i\s+(?:choose|pick|select|go with)|pick|choose|select)\s*(?:option)?\s*[\(\[]?([A-Za-z])[\)\]]?(?![A-Za-z])",
    re.I,
)
_BRACKETED = re.compile(r"[\(\[]([A-Z])[\)\]]")
_STANDALONE = re.compile(r"(?<![A-Za-z0-9'])([A-Z])(?![A-Za-z0-9'])")


def _strip_thinking(text: str) -> str:
    after = _THINK_BLOCK.sub(" ", text)
    after = _THINK_OPEN_END.sub(" ", after)
    return after if after.strip() else text


def _norm(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (for text comparisons)."""
    text = text.lower().translate(str.maketrans({c: " " for c in string.punctuation}))
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


# Words that follow an option letter used as a letter ("A or C", "B is correct"), not an article.
_LETTER_FOLLOWERS = frozenset(
    "or and nor vs versus is was seems looks would could should might must because since as then but not "
    "fits matches".split()
)


def _is_article(text: str, pos: int, letter: str, options: list[str]) -> bool:
    """`A` or `I` at `pos` used as a word ("A red lighthouse", "I think"), not as a letter."""
    if letter not in "AI":
        return False
    rest = text[pos + 1 :]
    word = re.match(r"\s+([a-z][a-z']*)", rest)
    if rest.startswith("'"):  # I'm, I'd
        return True
    if word is None or word.group(1) in _LETTER_FOLLOWERS:  # "A or C", "A is right": letters
        return False
    index = LETTERS.index(letter)
    if index < len(options):  # "A seven ships" names option A's text: a letter after all
        return not _norm(rest).startswith(_norm(options[index])) or not _norm(options[index])
    return True


def _mentions(text: str, option: str) -> bool:
    opt = _norm(option)
    return bool(opt) and re.search(rf"(?<!\w){re.escape(opt)}(?!\w)", _norm(text)) is not None


def extract_choice(text: str | None, options: list[str]) -> Choice:
    """The option letter a free-text reply chooses (see the module docstring for the rules).

    Args:
        text: what the model or agent answered (may be None or empty).
        options: the task's options, in letter order.

    Returns:
        A Choice whose ``letter`` is None when the reply is empty, names no
        option, or names several without an explicit final statement.
    """
    valid = LETTERS[: len(options)]
    if text is None or not text.strip():
        return Choice(None, "empty")
    body = _strip_thinking(text).strip()

    whole = re.fullmatch(r"[\s\(\[\"'*]*([A-Za-z])[\s\)\]\"'*.:,;!]*", body)
    if whole and whole.group(1).upper() in valid:
        return Choice(whole.group(1).upper(), "letter")

    stated = []
    for match in _STRONG_CUE.finditer(body):
        group = 1 if match.group(1) else 2
        letter = match.group(group)
        if letter.upper() not in valid:
            continue
        if letter.islower() and re.match(r"\s*\w", body[match.end() :]):
            continue  # "the answer is a lighthouse": an article, not option (a)
        if _is_article(body, match.start(group), letter, options):
            continue
        stated.append(letter.upper())
    if stated:
        return Choice(stated[-1], "stated")

    for letter, option in zip(valid, options):
        if _norm(option) and _norm(body) == _norm(option):
            return Choice(letter, "option_text")

    bracketed = {m.group(1) for m in _BRACKETED.finditer(body) if m.group(1) in valid}
    if len(bracketed) == 1:
        return Choice(bracketed.pop(), "bracketed")
    if len(bracketed) > 1:
        return Choice(None, "several_letters")
    standalone = {
        m.group(1) for m in _STANDALONE.finditer(body)
        if m.group(1) in valid and not _is_article(body, m.start(1), m.group(1), options)
    }
    if len(standalone) == 1:
        return Choice(standalone.pop(), "standalone")
    if len(standalone) > 1:
        return Choice(None, "several_letters")

    named = [letter for letter, option in zip(valid, options) if _mentions(body, option)]
    # "seventy" contains no "seven" (word match); "red car" contains "car": keep the longest.
    named = [l for l in named if not any(o != l and _norm(options[LETTERS.index(l)]) in _norm(options[LETTERS.index(o)])
                                         for o in named)]
    if len(named) == 1:
        return Choice(named[0], "mentions_option")
    return Choice(None, "several_options" if named else "no_option")


def score_choice(option: str | None, text: str | None, truth: str, options: list[str]) -> tuple[float, Choice]:
    """1.0 when the chosen letter is the truth. The policy's option field wins over its text."""
    choice = extract_choice(option, options) if option else Choice(None, "empty")
    if choice.letter is None:
        choice = extract_choice(text, options)
    want = truth.strip().upper()
    if len(want) != 1:  # a truth given as the option's text
        want = next((l for l, o in zip(LETTERS, options) if _norm(o) == _norm(truth)), want)
    return float(choice.letter == want), choice


# --------------------------------------------------------------------------- #
# Temporal grounding
# --------------------------------------------------------------------------- #

_TIME = r"(\d+(?::\d{1,2}){0,2}(?:\.\d+)?)"
_SPAN_PATTERNS = [
    re.compile(rf"[\[\(]\s*{_TIME}\s*s?\s*[,;]\s*{_TIME}\s*s?\s*[\]\)]"),
    re.compile(rf"(?:from|between)\s+{_TIME}\s*(?:s|sec|secs|seconds)?\s+(?:to|and|until|till)\s+{_TIME}", re.I),
    re.compile(rf"{_TIME}\s*(?:s|sec|secs|seconds)?\s*(?:-|–|—|to|until)\s*{_TIME}", re.I),
]


def _seconds(token: str) -> float:
    parts = token.split(":")
    value = 0.0
    for part in parts:
        value = value * 60 + float(part)
    return value


Span = tuple[float, float]


def parse_span(value: str | list | tuple | None) -> Span | None:
    """A (start, end) span in seconds from text or a pair; reversed pairs are ordered; None if unparseable."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            return None
        try:
            a, b = float(value[0]), float(value[1])
        except (TypeError, ValueError):
            return None
    else:
        a = b = None
        for pattern in _SPAN_PATTERNS:
            match = pattern.search(str(value))
            if match:
                a, b = _seconds(match.group(1)), _seconds(match.group(2))
                break
        if a is None:
            return None
    if not (math.isfinite(a) and math.isfinite(b)) or a < 0 or b < 0:
        return None
    return (min(a, b), max(a, b))


def temporal_iou(pred: Span | None, truth: Span | None) -> float:
    """Intersection over union of two spans; 0 when either is missing; two equal points give 1."""
    if pred is None or truth is None:
        return 0.0
    (ps, pe), (ts, te) = sorted(pred), sorted(truth)
    inter = max(0.0, min(pe, te) - max(ps, ts))
    union = (pe - ps) + (te - ts) - inter
    if union <= 0:
        return float(ps == ts)
    return inter / union


def union_iou(spans: list[Span], truth: Span | None) -> float:
    """IoU of the union of several spans with the truth (cited evidence spans may be disjoint)."""
    if not spans or truth is None:
        return 0.0
    merged: list[list[float]] = []
    for s, e in sorted(tuple(sorted(x)) for x in spans):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    ts, te = sorted(truth)
    inter = sum(max(0.0, min(e, te) - max(s, ts)) for s, e in merged)
    union = sum(e - s for s, e in merged) + (te - ts) - inter
    if union <= 0:
        return float(any(s == ts for s, _ in merged))
    return inter / union


def recall_at(ious: list[float], thresholds: tuple[float, ...] = (0.3, 0.5, 0.7)) -> dict[str, float]:
    """R@m: the share of IoUs at or above each threshold, with mIoU."""
    n = len(ious)
    out = {"mIoU": sum(ious) / n if n else 0.0}
    for m in thresholds:
        out[f"R@{m}"] = sum(i >= m for i in ious) / n if n else 0.0
    return out


# --------------------------------------------------------------------------- #
# Exact and numeric
# --------------------------------------------------------------------------- #

_NUMBER_WORDS = {
    w: i for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100}
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?![\w])|\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.I)


def parse_number(text: str | None) -> float | None:
    """The number an answer gives: the last one it writes, in digits or words (up to 100)."""
    if not text:
        return None
    found = []
    for match in _NUMBER.finditer(_strip_thinking(text)):
        token = match.group(0)
        word = token.lower()
        found.append(float(_NUMBER_WORDS[word]) if word in _NUMBER_WORDS else float(token.replace(",", "")))
    return found[-1] if found else None


def score_numeric(text: str | None, truth: str, tolerance: float = 0.0) -> float:
    want, got = parse_number(truth), parse_number(text)
    if want is None or got is None:
        return 0.0
    return float(abs(got - want) <= max(tolerance, 1e-9 * max(1.0, abs(want))))


def score_exact(text: str | None, truth: str) -> float:
    return float(text is not None and _norm(_strip_thinking(text)) == _norm(truth))


def auto_scorer(options: list[str] | None, answer: str | None, span: object | None) -> ScorerName:
    """The scorer a task gets when it names none."""
    if options:
        return "choice"
    if answer is None and span is not None:
        return "span"
    if answer is not None and re.fullmatch(r"\s*-?\d+(?:\.\d+)?\s*", answer):
        return "numeric"
    return "open"
