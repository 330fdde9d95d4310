"""Bounded renderings: what the policy reads of a tool result too long for its share of the window.

A whole-video transcript of two hours is ~1,500 lines; a summary of it, a
line per scene. The policy's model cannot read that every turn, and need not:
the result stays whole in the entry's ``output`` (which ``ground``,
``search``, the verifier and the per-video index read), in the run's
artifacts when it was cut, and in the trace. What enters the prompt is a
*bounded rendering* of the result's text:

* its **head** (the first lines: a tool puts its counts and notes first);
* the **top matches**: the lines sharing the most rare words with the
  question (a word's weight is how few lines hold it), in time order;
* a **count** of what was left out and a **handle** to the rest: the entry's
  id, the file holding the whole output if one was written, and the calls
  that fetch a part (a span, a query).

The bound is in the policy model's own tokens (:class:`mcr.window.PromptBudget`
``entry_tokens``), counted with its tokenizer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable

__all__ = ["bounded_rendering", "HEAD_LINES"]

HEAD_LINES = 2  # lines of a long result always shown first
_WORD = re.compile(r"[a-z0-9]{3,}")


def _weights(lines: list[str], question: str) -> list[float]:
    """Each line's score: the question's words it holds, each weighted by its rarity among the lines."""
    asked = set(_WORD.findall(question.lower()))
    if not asked:
        return [0.0] * len(lines)
    words = [set(_WORD.findall(line.lower())) & asked for line in lines]
    df = Counter(w for ws in words for w in ws)
    n = len(lines)
    return [sum(math.log(1 + n / df[w]) for w in ws) for ws in words]


def bounded_rendering(text: str, *, max_tokens: int, count: Callable[[str], int], question: str = "",
                      handle: str = "") -> str | None:
    """``text`` cut to ``max_tokens`` (None when it fits as it is).

    Args:
        text: the result's summary (one item per line, as the tools write them).
        max_tokens: the most the rendering may take, in the policy model's tokens.
        count: the model's token count of a text.
        question: the episode's question (its rare words pick the top matches).
        handle: where the rest is, e.g. "entry e5's output; the whole output is in FILE".
    """
    if count(text) <= max_tokens:
        return None
    lines = [line for line in text.splitlines() if line.strip()]
    tail = (f"[{{shown}} of {len(lines):,} lines shown (the first {{head}} and those most like the question); "
            f"the rest: {handle or 'this entry'}. Ask for less to read it: a span, or search/ground with a query.]")
    head = min(HEAD_LINES, len(lines))
    scores = _weights(lines[head:], question)
    ranked = [head + i for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)) if scores[i] > 0]
    ranked += [head + i for i in range(len(scores)) if scores[i] <= 0]  # then the rest in order
    budget = max_tokens - count(tail.format(shown=len(lines), head=head))
    chosen, used = [], 0
    for i in [*range(head), *ranked]:
        line = lines[i] if count(lines[i]) <= budget // 2 else _cut(lines[i], budget // 2, count)
        cost = count(line) + 1
        if used + cost > budget:
            if i < head:
                continue
            break
        chosen.append((i, line))
        used += cost
    body = "\n".join(line for _, line in sorted(chosen))
    return f"{body}\n{tail.format(shown=len(chosen), head=head)}"


def _cut(line: str, max_tokens: int, count: Callable[[str], int]) -> str:
    """One line shortened to about ``max_tokens`` (by characters, checked with ``count``)."""
    keep = len(line)
    while keep > 16 and count(line[:keep]) > max_tokens:
        keep = int(keep * 0.7)
    return line[:keep].rstrip() + "…"
