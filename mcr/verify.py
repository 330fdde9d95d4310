"""The verify node's judge: checks a proposed answer before it is accepted.

A verdict either accepts (the answer goes out with its evidence) or rejects
with a reason the policy reads on its next turn. Checks are small callables so
a task or a tool (e.g. a model re-inspecting cited spans) can add its own; the
built-in ones need no model and are cheap:

* ``non_empty``       — the answer says something;
* ``option_valid``    — a multiple-choice answer names one of the options;
* ``evidence_exists`` — every cited entry exists;
* ``evidence_given``  — (opt-in) at least one entry is cited;
* ``not_repeated``    — the same answer was not already rejected.

A **low-confidence** answer (the policy's last guess once the graph has told it
the budget is nearly spent, a ``Memory`` with source ``budget``) is accepted
*marked* ``low_confidence`` when only evidence checks fail: the episode then
ends with its best guess, flagged, rather than with no answer. The validity
checks (``VALIDITY_CHECKS``) still reject it, and without the budget note the
mark changes nothing (a policy cannot mark its way past the verifier).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mcr.context import Answer, Context, Memory, TimeSpan, Verdict, letters_for

CheckResult = tuple[bool, str]
Check = Callable[[Answer, Context], CheckResult]


@dataclass(frozen=True)
class OptionScore:
    """How well the evidence gathered so far backs one option, and which entries carry it.

    What a text-only policy chooses by (the verifier's own scorer, so the option it
    picks is the one the checks will judge best) and what a last-step guess cites.
    """

    letter: str
    score: float  # 0..1: the scorer's probability that the evidence backs this option
    refs: tuple[str, ...] = ()  # the entries whose measured units gave the score (most specific first)
    why: str = ""  # where it was measured, for a thought or a rejection
    span: TimeSpan | None = None  # where in the video it was measured (the unit's span, narrower than its entry's)


#: Scores every option of the context's question on all the evidence in it (empty for an open question).
OptionScorer = Callable[[Context], list[OptionScore]]


def non_empty(answer: Answer, context: Context) -> CheckResult:
    return (bool(answer.text.strip()) or answer.option is not None, "the answer is empty")


def option_valid(answer: Answer, context: Context) -> CheckResult:
    instruction = context.instruction
    if instruction is None or not instruction.options:
        return True, ""
    letters = letters_for(instruction.options)
    if answer.option is None:
        return False, f"this is a multiple-choice question: answer with one of the options {', '.join(letters)}"
    if answer.option.strip().upper() not in letters:
        return False, f"option {answer.option!r} does not exist; choose one of {', '.join(letters)}"
    return True, ""


def evidence_exists(answer: Answer, context: Context) -> CheckResult:
    if answer.missing_refs:
        return False, f"the answer cites entries that do not exist: {', '.join(answer.missing_refs)}"
    return True, ""


def evidence_given(answer: Answer, context: Context) -> CheckResult:
    return bool(answer.refs), "cite the entries (tool results, observations) the answer relies on"


def not_repeated(answer: Answer, context: Context) -> CheckResult:
    """The same answer was not already rejected.

    Except as the last step's low-confidence guess, when the earlier rejection
    failed only evidence checks ("backed only weakly"): weak support is no
    evidence against an option, and the guess should be the best-backed option,
    not the best of those never tried. An answer once found malformed or
    invalid (a validity check) is never repeated.
    """
    last_guess = answer.low_confidence and budget_nearly_spent(context)
    for verdict in context.of_kind(Verdict):
        if verdict.accepted or not verdict.refs:
            continue
        earlier = context.get(verdict.refs[0])
        if isinstance(earlier, Answer) and earlier.id != answer.id and _same(earlier, answer):
            failed = {name for name, ok in verdict.checks.items() if not ok}
            if last_guess and not failed & VALIDITY_CHECKS:
                continue
            return False, f"this answer was already rejected ({verdict.id}): {verdict.reason}"
    return True, ""


def _same(a: Answer, b: Answer) -> bool:
    return a.text.strip().lower() == b.text.strip().lower() and (a.option or "") == (b.option or "")


DEFAULT_CHECKS: dict[str, Check] = {
    "non_empty": non_empty,
    "option_valid": option_valid,
    "evidence_exists": evidence_exists,
    "not_repeated": not_repeated,
}


#: Checks even a low-confidence last answer must pass: it must be a well-formed, new answer.
VALIDITY_CHECKS = frozenset({"non_empty", "option_valid", "evidence_exists", "evidence_given", "not_repeated",
                             "option_consistency"})
BUDGET_NOTE = "budget"  # Memory.source of the graph's "the budget is nearly spent" note


def budget_nearly_spent(context: Context) -> bool:
    """True once the graph has written its budget note into the context."""
    return any(isinstance(e, Memory) and e.source == BUDGET_NOTE for e in context)


class Verifier:
    """Runs named checks in order; the first failure's reason is the verdict's."""

    def __init__(self, checks: dict[str, Check] | None = None, require_evidence: bool = False,
                 scorer: OptionScorer | None = None):
        self.checks = dict(DEFAULT_CHECKS if checks is None else checks)
        if require_evidence:
            self.checks["evidence_given"] = evidence_given
        self.scorer = scorer

    def score_options(self, context: Context) -> list[OptionScore]:
        """Each option's support on the evidence in `context` (empty without a scorer or options)."""
        return self.scorer(context) if self.scorer is not None else []

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def verify(self, answer: Answer, context: Context) -> Verdict:
        """Judge `answer` (already in `context`); returns an unsaved Verdict."""
        results: dict[str, bool] = {}
        reasons: list[str] = []
        for name, check in self.checks.items():
            ok, reason = check(answer, context)
            results[name] = bool(ok)
            if not ok:
                reasons.append(reason)
        accepted = not reasons
        reason = "all checks passed" if accepted else reasons[0]
        failed = {name for name, ok in results.items() if not ok}
        low = (not accepted and answer.low_confidence and not failed & VALIDITY_CHECKS
               and budget_nearly_spent(context))
        if low:
            accepted, reason = True, f"accepted with low confidence (the budget is spent): {reasons[0]}"
        return Verdict(
            step=answer.step,
            refs=(answer.id, *answer.refs),
            span=answer.span,
            accepted=accepted,
            reason=reason,
            checks=results,
            low_confidence=low,
        )


