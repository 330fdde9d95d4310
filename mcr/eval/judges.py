"""Judges for open-ended answers: a rule, or a model asked whether two answers agree.

An open-ended answer ("What is sold at noon?" → "fresh bread") has no letter
to compare, so someone has to judge it. The judge is pluggable because the
right one depends on the benchmark: token overlap is cheap and reproducible,
a model judge follows paraphrases. ``mcr eval --judge NAME`` picks one:

* ``contains`` (default): every word of the reference appears in the answer
  (case, punctuation, articles and a plural ``-s`` aside) — strict,
  explainable, no model;
* ``f1``: SQuAD-style token F1, correct at 0.5 or above;
* ``offline``: SmolLM2-135M (the offline default model) scores the
  continuations "yes" and "no" after a grading prompt — a real model, but a
  small one: its verdicts are weak;
* ``module:function`` or ``file.py:function``: your own
  ``judge(question, reference, answer) -> float | JudgeVerdict``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mcr.eval.scorers import _norm, _strip_thinking


@dataclass(frozen=True)
class JudgeVerdict:
    score: float  # 0..1; correct when >= 0.5
    reason: str = ""


class Judge(Protocol):
    name: str

    def __call__(self, question: str, reference: str, answer: str | None) -> JudgeVerdict: ...


class JudgeError(ValueError):
    """A judge name that cannot be resolved (the message says which forms exist)."""


def _words(text: str | None) -> list[str]:
    """Normalised words with a plain plural/third-person ``-s`` dropped ("counts" = "count", "ships" = "ship")."""
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
            for w in _norm(_strip_thinking(text or "")).split()]


class ContainsJudge:
    name = "contains"

    def __call__(self, question: str, reference: str, answer: str | None) -> JudgeVerdict:
        want = set(_words(reference))
        got = set(_words(answer))
        missing = sorted(want - got)
        return JudgeVerdict(float(bool(want) and not missing), f"missing: {' '.join(missing)}" if missing else "all words present")


class F1Judge:
    name = "f1"

    def __call__(self, question: str, reference: str, answer: str | None) -> JudgeVerdict:
        want, got = _words(reference), _words(answer)
        common = sum((Counter(want) & Counter(got)).values())
        if not want or not got or not common:
            return JudgeVerdict(0.0, "no common token")
        precision, recall = common / len(got), common / len(want)
        return JudgeVerdict(2 * precision * recall / (precision + recall), f"p={precision:.2f} r={recall:.2f}")


GRADE_PROMPT = (
    "Grade a student's answer against the reference answer.\n"
    "Question: {question}\nReference answer: {reference}\nStudent answer: {answer}\n"
    "Does the student's answer mean the same as the reference? Reply yes or no."
)


class ModelJudge:
    """A model's likelihood of "yes" against "no" after a grading prompt (normalised per token).

    Args:
        session: a ModelSession (``mcr.model.runtime.session``); each judgement
            runs on a fork, so one session serves every task.
    """

    name = "model"

    def __init__(self, session: Any, name: str = "model"):
        self.session, self.name = session, name

    def __call__(self, question: str, reference: str, answer: str | None) -> JudgeVerdict:
        if not answer or not answer.strip():
            return JudgeVerdict(0.0, "empty answer")
        prompt = GRADE_PROMPT.format(question=question, reference=reference, answer=_strip_thinking(answer).strip())
        messages = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
        (yes, ny), (no, nn) = self.session.fork().score_continuations(messages, None, ["yes", "no"])
        verdict = yes / max(ny, 1) > no / max(nn, 1)
        return JudgeVerdict(float(verdict), f"logp yes={yes:.2f} no={no:.2f}")


def offline_judge() -> ModelJudge:
    from mcr.model.runtime.loader import load_smollm2
    from mcr.model.runtime.session import ModelSession

    return ModelJudge(ModelSession(load_smollm2()), name="offline")


BUILTIN: dict[str, Callable[[], Judge]] = {"contains": ContainsJudge, "f1": F1Judge, "offline": offline_judge}


class _FunctionJudge:
    def __init__(self, fn: Callable[..., Any], name: str):
        self.fn, self.name = fn, name

    def __call__(self, question: str, reference: str, answer: str | None) -> JudgeVerdict:
        out = self.fn(question, reference, answer)
        return out if isinstance(out, JudgeVerdict) else JudgeVerdict(float(out))


def resolve_judge(name: str | None) -> Judge:
    """A judge by name (see the module docstring).

    Raises:
        JudgeError: unknown name, or a module/file/function that does not exist.
    """
    name = name or "contains"
    if name in BUILTIN:
        return BUILTIN[name]()
    if ":" not in name:
        raise JudgeError(f"unknown judge {name!r}; use one of {', '.join(BUILTIN)}, module:function or file.py:function")
    where, func = name.rsplit(":", 1)
    try:
        if where.endswith(".py"):
            path = Path(where).resolve()
            if not path.is_file():
                raise JudgeError(f"judge file not found: {path}")
            spec = importlib.util.spec_from_file_location(f"mcr_judge_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(where)
    except ImportError as exc:
        raise JudgeError(f"cannot import judge module {where!r}: {exc}") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise JudgeError(f"{where} has no function {func!r} (a judge is judge(question, reference, answer) -> float)")
    return _FunctionJudge(fn, name)
