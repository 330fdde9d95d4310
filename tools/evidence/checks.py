"""The connection, rival and span checks of the verifier (documented in `mcr.tools.evidence`).

Each check is ``(answer, context) -> (ok, reason)``. They share one
assessment per answer (the units of its cited entries and every option's
support), computed once and reused by the three checks. A rejection's reason
says which evidence is missing and where to get it, so a policy can act on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mcr.context import Answer, Context, Instruction, Memory, TimeSpan, ToolResult
from mcr.tools.evidence.connect import MIN_WORD, Question, Support, anchor_match, read_question, support
from mcr.tools.evidence.units import Unit, units_of
from mcr.verify import Check, CheckResult

MIN_CONNECTION = 0.5  # the least support (option match × anchor match) the chosen option needs
RIVAL_MARGIN = 0.0  # a rival within this of the chosen option's support rejects (0: at least as well)
MIN_RIVAL = 0.3  # a rival supported less than this is not a rival (both may be unsupported: connection says so)
MIN_SPAN_IOU = 0.5  # an open answer's span vs where the anchors were heard/read: the bar the suite's span scorer sets
_SPAN_TEXT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:s|sec|seconds)?\s*(?:-|–|to|and)\s*(\d+(?:\.\d+)?)")


@dataclass
class Assessment:
    question: Question | None
    options: list[str]
    chosen: int | None
    supports: list[Support]
    units: list[Unit]
    stated: TimeSpan | None  # a span the answer's text states


# The last assessment, with the very context and answer it was made for (held, so their ids cannot be reused
# by other objects while cached): the checks of one verdict run one after the other on the same pair.
_LAST: list[Any] = [None, None, -1, None]


def assess(answer: Answer, context: Context) -> Assessment | None:
    """The shared assessment, or None when the cited entries hold no measured evidence to judge by."""
    if _LAST[0] is context and _LAST[1] is answer and _LAST[2] == len(context):
        return _LAST[3]
    result = _assess(answer, context)
    _LAST[:] = [context, answer, len(context), result]
    return result


def _assess(answer: Answer, context: Context) -> Assessment | None:
    instruction = context.instruction
    entries = [e for ref in answer.refs if (e := context.get(ref)) is not None and not isinstance(e, Instruction)]
    units = join_moments([u for e in entries for u in units_of(e)])
    if instruction is None or not units:
        return None
    options = list(instruction.options or [])
    question = read_question(instruction.text, options)
    chosen = None
    if options and answer.option is not None:
        letter = answer.option.strip().upper()
        chosen = ord(letter) - ord("A") if len(letter) == 1 and 0 <= ord(letter) - ord("A") < len(options) else None
    supports = support(question, options, units) if options else []
    if options and question.shape in ("order", "superlative"):
        # "first" and "brightest" are claims about the whole video: an option can only win among the
        # cited units if it also wins among everything measured so far (citing only itself proves nothing).
        everything = join_moments([u for e in context if isinstance(e, (ToolResult, Memory)) for u in units_of(e)])
        overall = support(question, options, everything)
        for i, s in enumerate(supports):
            if s.score > 0 and overall[i].unit is not None and overall[i].score == 0:
                s.score, s.note = 0.0, overall[i].note or f"not {question.direction} in all the evidence"
    return Assessment(question, options, chosen, supports, units, stated_span(answer.text))


def join_moments(units: list[Unit]) -> list[Unit]:
    """The units plus, for each spoken sentence, one unit per cited frame measured while it was said."""
    speech = [u for u in units if u.kind == "speech" and u.span is not None]
    frames = [u for u in units if u.kind == "frame" and u.span is not None]
    joined = [Unit(f"{s.ref}+{f.ref}", "moment", s.span, speech=s.speech, text=f.text, colours=f.colours,
                   objects=f.objects, brightness=f.brightness)
              for s in speech for f in frames if s.span.start <= f.span.start <= s.span.end and s.ref != f.ref]
    return units + joined


def stated_span(text: str) -> TimeSpan | None:
    m = _SPAN_TEXT.search(text or "")
    if not m:
        return None
    a, b = sorted((float(m.group(1)), float(m.group(2))))
    return TimeSpan(start=a, end=b)


def _letter(i: int) -> str:
    return chr(ord("A") + i)


def _fetch_hint(q: Question, unit: Unit | None) -> str:
    """What to call next to measure what is missing."""
    if unit is None or unit.span is None:
        if q.anchors:
            return f"ground {' '.join(q.anchors)!r} to find where it happens, then transcribe or look there"
        return "summarize the video or look at its scenes (on-screen text, colours, objects) and transcribe it"
    span = f"{unit.span.start:.1f}-{unit.span.end:.1f} s"
    title = f" (the scene showing {unit.text!r})" if unit.text else ""
    if q.cues & {"colour", "object", "text"} and not ("speech" in q.cues and not unit.speech):
        return f"look at {span}{title}"
    return f"transcribe the span {span}"


def evidence_connection(min_connection: float = MIN_CONNECTION) -> Check:
    """The chosen option (or an open answer's anchors) must meet the question in one cited unit."""

    def check(answer: Answer, context: Context) -> CheckResult:
        a = assess(answer, context)
        if a is None or a.question is None:
            return True, ""  # nothing measured cited: evidence_support judges the text
        q = a.question
        refs = ", ".join(answer.refs)
        if not a.options:
            if a.stated is None or not q.anchors:
                return True, ""  # a free-text claim: evidence_support judges it
            best = max(a.units, key=lambda u: anchor_match(q, u))
            if anchor_match(q, best) < min_connection:
                return False, (f"nothing cited ({refs}) says {' '.join(q.anchors)!r}; "
                               f"{_fetch_hint(q, None)}")
            return True, ""
        if a.chosen is None:
            return True, ""  # option_valid says so
        s = a.supports[a.chosen]
        if s.score >= min_connection:
            return True, ""
        option = f"{_letter(a.chosen)} ({a.options[a.chosen]})"
        other = max(range(len(a.options)), key=lambda i: a.supports[i].score)
        if a.supports[other].score >= min_connection:
            found = a.supports[other]
            return False, (f"the cited evidence ({refs}) names option {_letter(other)} ({a.options[other]}), not "
                           f"{option}, at {found.unit.where()}; answer from what the evidence says")
        if s.unit is None:
            anchored = max(a.units, key=lambda u: anchor_match(q, u)) if q.anchors else None
            if anchored is not None and anchor_match(q, anchored) >= min_connection:
                return False, (f"the cited evidence ({refs}) ties the question to {anchored.where()}, which does "
                               f"not show or say {option}; {_fetch_hint(q, anchored)}")
            what = f"says {' '.join(q.anchors)!r} together with" if q.anchors else "shows or says"
            return False, f"no cited unit ({refs}) {what} {option}; {_fetch_hint(q, None)}"
        return False, (f"the cited evidence connects the question to {option} only weakly (support "
                       f"{s.score:.2f} < {min_connection} at {s.unit.where()}); {_fetch_hint(q, s.unit)}")

    return check


def rival_options(margin: float = RIVAL_MARGIN, min_rival: float = MIN_RIVAL) -> Check:
    """Reject when the cited evidence supports another option at least as well as the chosen one."""

    def check(answer: Answer, context: Context) -> CheckResult:
        a = assess(answer, context)
        if a is None or not a.options or a.chosen is None:
            return True, ""
        mine = a.supports[a.chosen].score
        rivals = [(s.score, i) for i, s in enumerate(a.supports) if i != a.chosen and s.score >= min_rival]
        if not rivals:
            return True, ""
        score, i = max(rivals)
        if score + margin < mine:
            return True, ""
        s = a.supports[i]
        where = s.unit.where() if s.unit else "the cited evidence"
        return False, (f"{where} supports option {_letter(i)} ({a.options[i]}) at least as well as "
                       f"{_letter(a.chosen)} ({a.options[a.chosen]}) ({score:.2f} vs {mine:.2f}); "
                       f"{_fetch_hint(a.question, s.unit)} to tell them apart")

    return check


def span_consistency(min_iou: float = MIN_SPAN_IOU) -> Check:
    """The spans an answer claims must overlap the span where its supporting fact was measured."""

    def check(answer: Answer, context: Context) -> CheckResult:
        a = assess(answer, context)
        if a is None or a.question is None:
            return True, ""
        if not a.options:
            if a.stated is None or not a.question.anchors:
                return True, ""
            heard = [u for u in a.units if u.span is not None and anchor_match(a.question, u) >= MIN_WORD]
            if not heard:
                return True, ""  # evidence_connection says what is missing
            best = max(heard, key=lambda u: (anchor_match(a.question, u), a.stated.iou(u.span)))
            if a.stated.iou(best.span) >= min_iou:
                return True, ""
            return False, (f"the answer's span {a.stated} does not match where the evidence was measured: "
                           f"{best.where()} ({best.span}); answer with that span")
        if a.chosen is None:
            return True, ""
        unit = a.supports[a.chosen].unit
        if unit is None or unit.span is None:
            return True, ""
        claimed = [(a.stated, "the answer's text")] if a.stated is not None else []
        for ref in {unit.ref.split("+")[0]}:
            entry: Any = context.get(ref)
            if isinstance(entry, ToolResult) and entry.tool in ("search", "ground") and entry.span is not None:
                claimed.append((entry.span, f"{ref}'s span"))
        for span, whose in claimed:
            inter = min(span.end, unit.span.end) - max(span.start, unit.span.start)
            if inter < 0 or (inter == 0 and span.duration > 0 and unit.span.duration > 0):
                return False, (f"{whose} ({span}) does not overlap {unit.where()}, where option "
                               f"{_letter(a.chosen)} was measured; cite that span")
        return True, ""

    return check
