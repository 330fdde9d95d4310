"""Folding: a digest of the context so far, appended as one :class:`~mcr.context.Fold` entry.

When a policy's prompt nears its model's window (:mod:`mcr.window`), the loop
appends a fold built here. The fold never edits an entry: it *stands for*
every entry before it in the prompt, while the entries themselves stay in the
context (ids, spans, outputs), so an answer may still cite them and the tools
and the verifier still read them. What the model reads instead:

* the **kept** entries, verbatim and in their first order: the opening look at
  the video, the question, and the graph's budget note — so the prompt after a
  fold starts with the same tokens as before it, and the model session reuses
  its cache up to there;
* one **digest line** per entry that carries evidence or a decision (a tool
  result, an error, a note, an answer and its verdict), with its id and span
  and the first words of what it said; calls and thoughts are left out (a
  result names its tool and span);
* a **run** of four or more alike entries in a row (120 scene notes of one
  summary) as one line: the ids, how many, the span they cover;
* past the digest's token budget, the **oldest** lines give way to one line
  of counts and ids (answers and verdicts are kept longest: the model must not
  propose a rejected answer again).

A new fold digests everything before it from the entries themselves (never
from an earlier fold's text), so repeated folds do not blur.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mcr.context import (
    Answer,
    Context,
    Entry,
    Fold,
    Memory,
    Observation,
    TimeSpan,
    ToolError,
    ToolResult,
    Verdict,
)

from mcr.window import ContextExhausted, PromptBudget, question_char_limit

__all__ = ["fit_context", "fold_context", "kept_ids", "digest_lines", "RUN_MIN", "GIST_CHARS"]

RUN_MIN = 4  # alike entries in a row that become one digest line
GIST_CHARS = 110  # characters of an entry's own text a digest line quotes
BUDGET_SOURCE = "budget"  # Memory.source of the graph's budget note (mcr.verify.BUDGET_NOTE): always kept

TokenCount = Callable[[str], int]


def _approx_tokens(text: str) -> int:
    return len(text) // 3 + 1


def kept_ids(context: Context) -> tuple[str, ...]:
    """Entries a fold keeps verbatim: the question, the observations it refers to (the opening look at
    the video), and the budget note."""
    keep: list[str] = []
    instruction = context.instruction
    if instruction is not None:
        keep += [r for r in instruction.refs if isinstance(context.get(r), Observation)]
        keep.append(instruction.id)
    keep += [e.id for e in context if isinstance(e, Memory) and e.source == BUDGET_SOURCE]
    order = {e.id: i for i, e in enumerate(context)}
    return tuple(sorted(dict.fromkeys(keep), key=order.__getitem__))


def _gist(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= GIST_CHARS else line[: GIST_CHARS - 1].rstrip() + "…"


def _span(span: TimeSpan | None) -> str:
    return f" [{span}]" if span is not None else ""


def _group(entry: Entry) -> tuple[str, str] | None:
    """What makes entries alike for a run; None for entries the digest leaves out."""
    if isinstance(entry, ToolResult):
        return ("result", entry.tool)
    if isinstance(entry, Memory):
        return ("note", entry.source)
    if isinstance(entry, ToolError):
        return ("error", entry.tool or "?")
    if isinstance(entry, Observation):
        return ("observation", "")
    if isinstance(entry, (Answer, Verdict)):
        return ("decision", entry.id)  # never part of a run
    return None  # calls, thoughts, folds, the instruction


def _line(entry: Entry, context: Context) -> str:
    where = _span(entry.span)
    if isinstance(entry, ToolResult):
        return f"{entry.id} {entry.tool}{where}: {_gist(entry.rendering or entry.summary or str(entry.output))}"
    if isinstance(entry, ToolError):
        return f"{entry.id} {entry.tool or '?'} failed ({entry.error_type}): {_gist(entry.message)}"
    if isinstance(entry, Memory):
        return f"{entry.id} note{where}: {_gist(entry.rendering or entry.text)}"
    if isinstance(entry, Observation):
        return f"{entry.id} observation{where}: {_gist(entry.text)}"
    if isinstance(entry, Answer):
        option = f" option {entry.option}" if entry.option else ""
        return f"{entry.id} answer{option}: {_gist(entry.text)}"
    if isinstance(entry, Verdict):
        word = "accepted" if entry.accepted else "rejected"
        return f"{entry.id} verdict on {entry.refs[0] if entry.refs else '?'}: {word} — {_gist(entry.reason)}"
    raise TypeError(f"no digest line for a {entry.kind}")  # pragma: no cover - _group filters


def _run_line(run: Sequence[Entry]) -> str:
    kind, name = _group(run[0]) or ("", "")
    spans = [e.span for e in run if e.span is not None]
    cover = f", {TimeSpan(start=min(s.start for s in spans), end=max(s.end for s in spans))}" if spans else ""
    what = {"result": f"{name} results", "note": f"notes from {name or 'the agent'}", "error": f"{name} errors",
            "observation": "observations"}[kind]
    return f"{run[0].id}…{run[-1].id}: {len(run)} {what}{cover}; first: {_gist(_line(run[0], Context()).split(': ', 1)[-1])}"


def digest_lines(entries: Sequence[Entry], context: Context) -> list[tuple[str, bool, tuple[Entry, ...]]]:
    """``(line, keep_longest, entries)`` for each digested entry or run, oldest first."""
    shown = [e for e in entries if _group(e) is not None]
    out: list[tuple[str, bool, tuple[Entry, ...]]] = []
    i = 0
    while i < len(shown):
        j = i + 1
        while j < len(shown) and _group(shown[j]) == _group(shown[i]):
            j += 1
        run = shown[i:j]
        if len(run) >= RUN_MIN:
            out.append((_run_line(run), False, tuple(run)))
        else:
            out += [(_line(e, context), isinstance(e, (Answer, Verdict)), (e,)) for e in run]
        i = j
    return out


def _id_ranges(ids: Sequence[str]) -> str:
    nums = sorted(int(i[1:]) for i in ids if i[1:].isdigit())
    parts, start = [], None
    for k, n in enumerate(nums):
        if start is None:
            start = n
        if k + 1 == len(nums) or nums[k + 1] != n + 1:
            parts.append(f"e{start}" if start == n else f"e{start}…e{n}")
            start = None
    return ", ".join(parts)


def fold_context(context: Context, *, step: int, max_tokens: int, count: TokenCount | None = None) -> Fold:
    """The Fold to append to ``context`` now (unsaved): a digest of every entry but the kept ones.

    Args:
        context: the episode so far.
        step: the graph step the fold belongs to.
        max_tokens: the digest's budget, in the policy model's tokens.
        count: the model's token count of a text (default: a character estimate).
    """
    count = count or _approx_tokens
    kept = kept_ids(context)
    digested = [e for e in context if e.id not in kept and not isinstance(e, Fold)]
    lines = digest_lines(digested, context)
    budget = max_tokens - count("Older entries (999 lines: 999 tool results, 999 notes; ids " + "e0…e9999, " * 16 + ")")
    chosen: set[int] = set()
    used = 0
    # answers and verdicts first, then the newest lines, while they fit
    order = [i for i, line in enumerate(lines) if line[1]][::-1] + [i for i, line in enumerate(lines) if not line[1]][::-1]
    for i in order:
        cost = count(lines[i][0]) + 1
        if used + cost <= budget:
            chosen.add(i)
            used += cost
    text = [line for i, (line, _, _) in enumerate(lines) if i in chosen]
    dropped = [e for i, (_, _, group) in enumerate(lines) if i not in chosen for e in group]
    if dropped:
        results = sum(isinstance(e, ToolResult) for e in dropped)
        notes = sum(isinstance(e, Memory) for e in dropped)
        ids = _id_ranges([e.id for e in dropped])
        ids = ids if len(ids) <= 160 else ids[:159].rsplit(",", 1)[0] + ", …"
        text.insert(0, f"Older entries ({len(dropped)}: {results} tool results, {notes} notes; ids {ids})")
    return Fold(step=step, kept=kept, folded=len(digested), text="\n".join(text) or "(nothing to digest)")


def fit_context(context: Context, *, step: int, measure: Callable[[Context], PromptBudget],
                count: TokenCount) -> Fold | None:
    """The fold to append before the policy's next turn, or None when the prompt is not near its window.

    Args:
        context: the episode so far.
        step: the step about to be decided.
        measure: the policy's prompt budget for a context (its model's tokens).
        count: the model's token count of a text.

    Raises:
        ContextExhausted: the prompt does not fit even folded (the question alone is too long).
    """
    before = measure(context)
    if not before.near:
        return None
    fold = fold_context(context, step=step, max_tokens=before.digest_tokens, count=count)
    trial = Context(list(context), system_prompt=context.system_prompt)
    trial.append(fold)
    after = measure(trial)
    if not after.fits:
        head = Context([context.get(i) for i in fold.kept], system_prompt=context.system_prompt)  # type: ignore[misc]
        raise ContextExhausted(_exhausted_message(after, measure(head).used, context, count))
    if before.fits and after.used >= 0.9 * before.used:  # folding would not gain room: not worth a re-prefill
        return None
    return fold


def _exhausted_message(budget: PromptBudget, head: int, context: Context, count: TokenCount) -> str:
    instruction = context.instruction
    asked = count(instruction.render_text()) if instruction is not None else 0
    limit = question_char_limit(budget.window, fallback=0)
    return (f"the prompt needs {budget.used:,} tokens even with earlier entries folded, more than the model's "
            f"window of {budget.window:,} allows ({budget.reserve:,} are kept for its reply); what cannot be folded "
            f"(the system text, the tool list, the video's opening look and the question) takes {head:,} tokens, "
            f"the question and its options {asked:,}: shorten the question (to at most about {limit:,} characters), "
            "offer fewer tools, or use a policy whose model has a longer window")
