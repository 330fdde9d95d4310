"""The connection, rival and span checks of the verifier, and the option scorer policies choose by.

Each check is ``(answer, context) -> (ok, reason)``. They share one
assessment per answer (the units of its cited entries and every option's
fitted support, :mod:`mcr.tools.evidence.score`), computed once and reused.
A rejection's reason says which evidence is missing and where to get it.

Two strictnesses, by who answers:

* **text-only** (the offline default; also a scripted policy): everything it
  knows comes from the tools, so the chosen option must be backed —
  ``P ≥ accept`` — and no rival may be backed as well;
* **sees pixels** (InternVideo3, an OpenAI-compatible VLM): it may know what
  no tool measured, so the checks reject only what the evidence contradicts:
  a rival the cited evidence backs better (by ``rival_margin``), a citation
  that holds nothing related to the answer, a span that misses where the fact
  was measured. Missing question words are never a reason.

The thresholds come from ``weights.json``, chosen by
``benchmarks/fit_verifier.py`` from measured false accepts and false rejects.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from mcr.context import Answer, Context, Instruction, Memory, TimeSpan, ToolResult, option_table
from mcr.language.coreference import referents
from mcr.language.grammar import split_sentences
from mcr.tools.evidence.asked import Asked, asked
from mcr.tools.evidence.match import time_range
from mcr.tools.evidence.score import MIN_WORD, OptionSupport, about_of, contradicts_relation, fact_of, fitted, scored
from mcr.tools.evidence.units import Unit, units_of
from mcr.verify import Check, CheckResult, OptionScore

MIN_SPAN_IOU = 0.5  # an open answer's span vs where the anchors were heard/read: the bar the suite's span scorer sets


def thresholds() -> dict[str, float]:
    """accept, rival_margin, related: probabilities (fitted; see ``weights.json``'s ``measured``)."""
    return dict(fitted()["thresholds"])


@dataclass
class Assessment:
    asked: Asked
    options: list[str]
    chosen: int | None
    supports: list[OptionSupport]
    units: list[Unit]
    stated: TimeSpan | None  # a span the answer's text states


# Scored citations, most recent last: the options of one question cited with the same entries share one scoring
# (a policy judging its options, the checks of one verdict). Keyed by the cited entry objects themselves (held in
# the value, so their ids cannot be reused while cached) and by how much evidence the context holds.
_SCORED: OrderedDict[tuple, tuple[list[Any], list[Unit], list[OptionSupport]]] = OrderedDict()
_SCORED_MAX = 256


def assess(answer: Answer, context: Context) -> Assessment | None:
    """The shared assessment, or None when the cited entries hold no measured evidence to judge by."""
    instruction = context.instruction
    entries = [e for ref in answer.refs if (e := context.get(ref)) is not None and not isinstance(e, Instruction)]
    if instruction is None or not entries:
        return None
    options = tuple(instruction.options or ())
    chosen = None
    if options and answer.option is not None:
        letter = answer.option.strip().upper()
        chosen = ord(letter) - ord("A") if len(letter) == 1 and 0 <= ord(letter) - ord("A") < len(options) else None
    measured = sum(isinstance(e, (ToolResult, Memory)) for e in context)
    key = (instruction.text, options, tuple(id(e) for e in entries), measured)
    if key in _SCORED:
        _SCORED.move_to_end(key)
        _, units, supports = _SCORED[key]
    else:
        units, supports = _score(instruction.text, list(options), entries, context)
        _SCORED[key] = (entries, units, supports)
        while len(_SCORED) > _SCORED_MAX:
            _SCORED.popitem(last=False)
    if not units:
        return None
    return Assessment(asked(instruction.text, options), list(options), chosen, supports, units,
                      stated_span(answer.text))


def _score(question: str, options: list[str], entries: list[Any],
           context: Context) -> tuple[list[Unit], list[OptionSupport]]:
    units = join_moments([u for e in entries for u in units_of(e)])
    if not units:
        return units, []
    q = asked(question, tuple(options))
    # relations, "first" and "brightest" are judged against everything measured, read once per scoring
    measured = everything_measured(context) if options and (q.relations or q.order or q.extreme) else None
    around = measured if q.relations else None  # where a relation's event was measured
    supports = scored(q, options, units, around=around) if options else []
    if options and (q.order or q.extreme):
        # "first" and "brightest" are claims about the whole video: an option can only win among the
        # cited units if it also wins among everything measured so far (citing only itself proves nothing).
        overall = scored(q, options, measured)
        for s, o in zip(supports, overall):
            if s.fact > 0 and o.unit is not None and o.fact == 0:
                s.fact, s.note, s.p = 0.0, o.note, min(s.p, o.p)
    return units, supports


def everything_measured(context: Context) -> list[Unit]:
    """Every unit of the context. Typed notes (a summary's scenes) come first: they carry the same facts as
    their summary's scene units with the scene's own span, so they win ties and an answer cites the scene,
    not the whole video."""
    entries = [e for e in context if isinstance(e, (ToolResult, Memory))]
    entries.sort(key=lambda e: not (isinstance(e, Memory) and e.facts is not None))
    units = [u for e in entries for u in units_of(e)]
    whole = {e.id for e in entries if _transcribes_the_whole_video(e, context)}
    for u in units:
        u.of_whole_transcript = u.kind == "speech" and u.ref in whole
    return with_referents(join_moments(units))


WHOLE_SHARE = 0.98  # a transcription of at least this share of the video, from its start, heard all of it


def _transcribes_the_whole_video(entry: ToolResult | Memory, context: Context) -> bool:
    """A `transcribe` result asked for no span (it heard the whole video) or for nearly all of it."""
    if not (isinstance(entry, ToolResult) and entry.tool == "transcribe"):
        return False
    if entry.span is None:
        return True
    video = context.instruction.video if context.instruction is not None else None
    duration = video.duration if video is not None else None
    return bool(duration) and entry.span.start <= (1 - WHOLE_SHARE) * duration \
        and entry.span.end >= WHOLE_SHARE * duration


def with_referents(units: list[Unit]) -> list[Unit]:
    """`units`, each unit whose speech says "she" about someone named earlier told whom (``refers_to``)."""
    timeline = {(u.span.start, sentence) for u in units if u.kind == "speech" and u.span is not None
                for sentence in split_sentences(u.speech)}
    found = referents(sorted(timeline))
    if found:
        for u in units:
            people = [name for sentence in split_sentences(u.speech) for name in found.get(sentence, ())]
            u.refers_to = tuple(dict.fromkeys(people))
    return units


def join_moments(units: list[Unit]) -> list[Unit]:
    """The units plus, for each spoken sentence, one unit per cited frame measured while it was said."""
    speech = [u for u in units if u.kind == "speech" and u.span is not None]
    frames = [u for u in units if u.kind == "frame" and u.span is not None]
    joined = [Unit(f"{s.ref}+{f.ref}", "moment", s.span, speech=s.speech, text=f.text, colours=f.colours,
                   objects=f.objects, object_colours=f.object_colours, brightness=f.brightness)
              for s in speech for f in frames if s.span.start <= f.span.start <= s.span.end and s.ref != f.ref]
    return units + joined


def stated_span(text: str) -> TimeSpan | None:
    """The span an answer states ("from 3.0 s to 7.5 s", "0:05-0:10"), if any."""
    return time_range(text, require_unit=False)


def _letter(i: int) -> str:
    return chr(ord("A") + i)


def _fetch_hint(q: Asked, unit: Unit | None) -> str:
    """What to call next to measure what is missing."""
    if unit is None or unit.span is None:
        if q.anchors:
            return f"ground {' '.join(q.anchors)!r} to find where it happens, then transcribe or look there"
        return "summarize the video or look at its scenes (on-screen text, colours, objects) and transcribe it"
    span = f"{unit.span.start:.1f}-{unit.span.end:.1f} s"
    title = f" (the scene showing {unit.text!r})" if unit.text else ""
    if q.evidence and q.evidence[0] != "speech":
        return f"look at {span}{title}"
    return f"transcribe the span {span}"


def evidence_connection(sees_pixels: bool = False, min_p: float | None = None) -> Check:
    """Text-only: the chosen option must be backed (P ≥ accept). Sees pixels: the cited units must hold
    something related to the answer (P ≥ related, a bar set so that ≤ 3% of right answers fall under it)."""

    def check(answer: Answer, context: Context) -> CheckResult:
        a = assess(answer, context)
        if a is None:
            return True, ""  # nothing measured cited: evidence_support judges the text
        q, refs, t = a.asked, ", ".join(answer.refs), thresholds()
        if not a.options:
            return _open_connection(a, refs, t)
        if a.chosen is None:
            return True, ""  # option_valid says so
        s = a.supports[a.chosen]
        option = f"{_letter(a.chosen)} ({a.options[a.chosen]})"
        if contradicts_relation(s):  # a measured fact contradicts it, whoever answers
            events = "; ".join(f"{r.kind} {r.event!r}" for r in q.relations if r.event)
            return False, (f"{option} is measured at {s.unit.where()}, which is not {events} as the question "
                           f"asks; answer with what the evidence holds there")
        if sees_pixels:
            if s.p >= t["related"]:
                return True, ""
            return False, (f"nothing cited ({refs}) is related to {option}; cite where it is shown or said, "
                           f"or {_fetch_hint(q, None)}")
        bar = t["accept"] if min_p is None else min_p
        if s.p >= bar:
            return True, ""
        other = max(range(len(a.options)), key=lambda i: a.supports[i].p)
        if other != a.chosen and a.supports[other].p >= bar and a.supports[other].unit is not None:
            return False, (f"the cited evidence ({refs}) backs option {_letter(other)} ({a.options[other]}), not "
                           f"{option}, at {a.supports[other].unit.where()}; answer from what the evidence says")
        if s.unit is None or s.fact <= 0:
            return False, f"no cited unit ({refs}) shows or says {option}; {_fetch_hint(q, None)}"
        return False, (f"the cited evidence backs {option} only weakly (P {s.p:.2f} < {bar:.2f} at "
                       f"{s.unit.where()}); {_fetch_hint(q, s.unit)}")

    return check


def _open_connection(a: Assessment, refs: str, t: dict[str, float]) -> CheckResult:
    """An open answer that states a span needs a cited unit about the question's anchors."""
    q = a.asked
    if a.stated is None or not q.anchors:
        return True, ""  # a free-text claim: evidence_support judges it
    best = max(a.units, key=lambda u: about_of(q, u))
    if about_of(q, best) < 0.5:
        return False, f"nothing cited ({refs}) is about {' '.join(q.anchors)!r}; {_fetch_hint(q, None)}"
    return True, ""


def rival_options(sees_pixels: bool = False, margin: float | None = None) -> Check:
    """Reject when the cited evidence backs another option better than the chosen one."""

    def check(answer: Answer, context: Context) -> CheckResult:
        a = assess(answer, context)
        if a is None or not a.options or a.chosen is None:
            return True, ""
        t = thresholds()
        gap = t["rival_margin"] if margin is None else margin
        mine = a.supports[a.chosen].p
        rivals = [(s.p, i) for i, s in enumerate(a.supports) if i != a.chosen and s.p >= t["accept"]]
        if not rivals:
            return True, ""
        p, i = max(rivals)
        if (p <= mine + gap) if sees_pixels else (p < mine - gap):
            return True, ""
        s = a.supports[i]
        where = s.unit.where() if s.unit else "the cited evidence"
        return False, (f"{where} backs option {_letter(i)} ({a.options[i]}) better than "
                       f"{_letter(a.chosen)} ({a.options[a.chosen]}) (P {p:.2f} vs {mine:.2f}); "
                       f"{_fetch_hint(a.asked, s.unit)} to tell them apart")

    return check


def span_consistency(min_iou: float = MIN_SPAN_IOU) -> Check:
    """The spans an answer claims must overlap the span where its supporting fact was measured."""

    def check(answer: Answer, context: Context) -> CheckResult:
        a = assess(answer, context)
        if a is None:
            return True, ""
        if not a.options:
            if a.stated is None or not a.asked.anchors:
                return True, ""
            heard = [u for u in a.units if u.span is not None and about_of(a.asked, u) >= MIN_WORD]
            if not heard:
                return True, ""  # evidence_connection says what is missing
            best = max(heard, key=lambda u: (about_of(a.asked, u), a.stated.iou(u.span)))
            if a.stated.iou(best.span) >= min_iou:
                return True, ""
            return False, (f"the answer's span {a.stated} does not match where the evidence was measured: "
                           f"{best.where()} ({best.span}); answer with that span")
        if a.chosen is None:
            return True, ""
        unit = a.supports[a.chosen].unit
        if unit is None or unit.span is None or a.supports[a.chosen].fact <= 0:
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


def option_scores(context: Context) -> list[OptionScore]:
    """Each option's fitted support on all the evidence in `context`, citing the entries of its best unit.

    What a text-only policy chooses by (``Verifier.score_options``): the same
    probabilities the checks judge with, so the option it picks is the one the
    verifier will find best backed, and a last-step guess cites the units that
    ranked it.
    """
    instruction = context.instruction
    if instruction is None or not instruction.options:
        return []
    options = list(instruction.options)
    units = everything_measured(context)
    q = asked(instruction.text, tuple(options))
    found = scored(q, options, units) if units else []
    out = []
    for letter, s in zip(option_table(options), found or [None] * len(options)):
        if s is None or s.unit is None:
            out.append(OptionScore(letter, 0.0))
            continue
        refs = narrowest_citation(q, s, units, context)
        out.append(OptionScore(letter, round(s.p, 4), refs, s.unit.where(), s.unit.span))
    return out


SAME_FACT = 0.9  # a unit carrying at least this share of the best unit's fact, at the same place, says the same


def _entry_width(context: Context, ref: str) -> float:
    entry = context.get(ref)
    span = getattr(entry, "span", None)
    return span.end - span.start if span is not None else float("inf")


def narrowest_citation(q: Asked, support: OptionSupport, units: list[Unit], context: Context) -> tuple[str, ...]:
    """The entries to cite for `support`: those of its unit, or of a unit measuring the same fact at the same
    place in a narrower entry.

    Why: a citation is checked and measured by its entries' spans, and the
    sentence that backs an option is often one line of a wide entry (the whole
    video's transcript, an hour's overview). When a narrow call (a span
    transcribed again, a look) measured the same fact there, citing it says
    *where*, not only *that*.
    """
    unit = support.unit
    own = unit.entries
    if unit.span is None or support.fact <= 0:
        return own
    best, width = own, max(_entry_width(context, r) for r in own)
    for u in units:
        if u is unit or u.span is None or u.span.iou(unit.span) < 0.5:
            continue
        refs = u.entries
        w = max(_entry_width(context, r) for r in refs)
        if w < width and fact_of(q, support.option, u) >= SAME_FACT * support.fact:
            best, width = refs, w
    return best
