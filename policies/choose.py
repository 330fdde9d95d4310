"""Which option does the evidence back, and which entries should the answer cite?

The offline policy asks the verifier *before* it answers, the way a careful
person checks a claim before saying it: for every option it tries citations,
most specific first (the entry with the shortest span, then pairs of the most
specific entries), in a scratch copy of the context — nothing is appended. The
first citation the verifier accepts is the one the answer will carry, so an
accepted answer cites the transcript segment, the frames or the grounded span
that carried the fact (the viewer shows those spans in gold), not the whole
video.

Each option's score comes from the verifier's own scorer
(``Verifier.score_options``: the fitted probability that the evidence backs it,
with the entries of the unit that ranked it). The judgements come best scored
first; the scorer's entries are tried first as a citation, and an option no
citation passes keeps them, so a last-step guess cites the units that ranked
it rather than the first entry looked at.

The verifier is the same one the verify node runs by default
(:func:`mcr.tools.evidence.build_verifier`, handed over by the loop); this module adds no judgement of
its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

from mcr.context import Context, Memory, TimeSpan, ToolResult, option_table
from mcr.verify import OptionScore, Verifier

__all__ = ["OptionJudgement", "judge_options", "first_accepted", "citable", "MAX_PAIR_ENTRIES"]

MAX_PAIR_ENTRIES = 6  # pairs are tried among this many most specific entries (15 pairs)


@dataclass(frozen=True)
class OptionJudgement:
    """The verifier's view of one option on the evidence so far."""

    letter: str
    text: str
    accepted: bool
    cite: tuple[str, ...] = ()  # the citation that passed, else the entries of the units that ranked it
    reason: str = ""
    score: float = 0.0  # the verifier's scorer: P(the evidence gathered backs this option)
    measured: TimeSpan | None = None  # where the scorer found it (narrower than the entries cited)


def citable(context: Context) -> list[Any]:
    """Evidence entries, most specific first: by span length (whole-video or span-less entries last)."""
    duration = None
    instruction = context.instruction
    if instruction is not None and instruction.video is not None:
        duration = instruction.video.duration
    whole = (duration or 1e9) + 1.0

    def width(entry: Any) -> float:
        if entry.span is None:
            return whole
        return max(entry.span.end - entry.span.start, 0.0)

    entries = [e for e in context if isinstance(e, (ToolResult, Memory)) and getattr(e, "source", "") != "budget"]
    return sorted(entries, key=lambda e: (width(e), -int(e.id.lstrip("e") or 0)))


def judge_options(context: Context, verifier: Verifier, *, step: int = 0,
                  skip: set[str] | frozenset[str] = frozenset()) -> list[OptionJudgement]:
    """One judgement per option of the question (none for an open question).

    Args:
        context: the episode so far (not modified).
        verifier: the checks to run (the verify node's default).
        step: the step the candidate answers are proposed at.
        skip: letters not to judge (options already rejected).
    """
    instruction = context.instruction
    if instruction is None or not instruction.options:
        return []
    entries = citable(context)
    singles = [(e.id,) for e in entries]
    pairs = [(a.id, b.id) for a, b in combinations(entries[:MAX_PAIR_ENTRIES], 2)]
    scores = {s.letter: s for s in verifier.score_options(context)}
    out = []
    for letter, text in option_table(instruction.options).items():
        if letter in skip:
            continue
        out.append(_judge(context, verifier, letter, text, singles + pairs, step, scores.get(letter)))
    return sorted(out, key=lambda j: -j.score)  # best backed first (stable: option order among equals)


def first_accepted(context: Context, verifier: Verifier, text: str, option: str | None,
                   tries: list[tuple[str, ...]], step: int = 0) -> tuple[tuple[str, ...] | None, str]:
    """The first citation in ``tries`` under which the verifier accepts the answer (None if none does),
    and the verifier's reason (the first rejection's when none passes). Judged in scratch copies."""
    first_reason = ""
    for cite in tries:
        scratch = Context(list(context), system_prompt=context.system_prompt)
        answer = scratch.append(scratch.propose_answer(step=step, text=text, option=option, evidence=cite))
        verdict = verifier.verify(answer, scratch)
        if verdict.accepted:
            return cite, verdict.reason
        first_reason = first_reason or verdict.reason
    return None, first_reason


def _judge(context: Context, verifier: Verifier, letter: str, text: str, tries: list[tuple[str, ...]],
           step: int, score: OptionScore | None = None) -> OptionJudgement:
    p = score.score if score is not None else 0.0
    measured = score.span if score is not None else None
    ranked = tuple(r for r in (score.refs if score is not None else ()) if context.get(r) is not None)
    if ranked and ranked not in tries:  # the units that ranked it first: the likeliest citation to pass
        tries = [ranked, *tries]
    cite, reason = first_accepted(context, verifier, text, letter, tries, step)
    if cite is not None:
        return OptionJudgement(letter, text, True, cite, reason, p, measured)
    # Not accepted: a guess made from it cites where the scorer found it, not the first entry tried.
    return OptionJudgement(letter, text, False, ranked or (tries[0] if tries else ()), reason, p, measured)
