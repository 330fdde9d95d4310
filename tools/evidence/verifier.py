"""Verifier checks that read evidence or ask the model: does the answer hold up?

They live beside the tools because they read what tools wrote, with the
tools' own text index and embedder; `mcr.verify` (vocabulary, below both the
loop and the tools) holds the cheap built-in checks (non-empty, option valid, cited ids
exist, not repeated). The checks here look at what the cited entries *say*:

* ``evidence_support`` — the cited entries must cover the claim. For a
  multiple-choice answer: if the cited text names some options but not the
  chosen one, reject. Otherwise the claim (answer text + option text) must be
  supported by some cited line: the fraction of its content words found there,
  or the embedding similarity to it, at least ``min_support``. Web results
  weigh less than the video's own evidence.
* ``option_consistency`` — the answer's text must not name another option than
  the letter it chose ("seven ships", option B = "six").
* ``verdict_consistency`` — an option already rejected on evidence grounds is
  not proposed again unless new evidence arrived since.
* ``model_recheck`` — re-inspect the cited spans at a higher frame rate through
  a *fork* of the model session and ask a yes/no question; reject on "no".

The three checks below ask whether the question and the option meet in one
measured place. Evidence is cut into units — one spoken sentence, one frame,
one scene's facts, one count (`mcr.tools.evidence.units`) — and each option
is scored by its best unit with meaning-based signals (fact of the asked type
× about the question's anchors, MiniLM similarity, temporal relations)
combined by fitted weights (`mcr.tools.evidence.score`). Cited transcript
sentences and cited frames measured inside them are also joined into one
unit ("the colour while X is said").

* ``evidence_connection`` — text-only policy: the chosen option's fitted
  probability is at least the ``accept`` threshold; a policy that sees pixels:
  the cited units hold something related to the answer. An open answer that
  states a span needs a unit about the question's anchors. The reason says
  what to fetch next.
* ``rival_options`` — no other option is backed better (a policy that sees
  pixels: better by ``rival_margin``); the reason names the rival and where.
* ``span_consistency`` — the spans an answer claims (times in its text; the
  span of a cited search/ground result) overlap the span where its supporting
  fact was measured.

Measured on labelled sets of real tool outputs (truth, natural, reworded suites;
`benchmarks/make_verifier_set.py`, `benchmarks/fit_verifier.py`, `benchmarks/bench_verifier.py`; figures in
`benchmarks/RESULTS.md`, "Verifier").

Each check is ``(answer, context) -> (ok, reason)``; a factory builds the ones
that need a model or an embedder. Wire them with::

    verifier = build_verifier(model=deps.model, recheck=True)
    # or, onto an existing Verifier:
    for name, check in extra_checks(model=deps.model, recheck=True).items():
        verifier.add(name, check)
"""

from __future__ import annotations

import re
from typing import Any

from mcr.context import Answer, Context, Instruction, ToolResult, Verdict, option_table
from mcr.tools.index import Embedder, content_words, entry_text, load_embedder, words
from mcr.tools.side import EpisodeModel, NoModelError
from mcr.verify import Check, CheckResult, Verifier


WEB_WEIGHT = 0.6  # a web page supports a claim less than this video's own transcript or screen text
_FILLER = {"a", "an", "the"}


def cited(answer: Answer, context: Context) -> list[Any]:
    """The entries an answer cites, minus the question itself (citing it proves nothing)."""
    return [e for ref in answer.refs if (e := context.get(ref)) is not None and not isinstance(e, Instruction)]


def claim_of(answer: Answer, context: Context) -> str:
    """What the answer asserts: its text, plus the chosen option's text."""
    option = option_text(answer.option, context)
    return " ".join(x for x in (answer.text, option) if x and x.strip())


def option_text(letter: str | None, context: Context) -> str | None:
    instruction = context.instruction
    if letter is None or instruction is None or not instruction.options:
        return None
    table = option_table(instruction.options)
    return table.get(letter.strip().upper())


def options_named(text: str, context: Context) -> list[str]:
    """Letters of the options whose every word (articles aside) occurs in `text`."""
    instruction = context.instruction
    if instruction is None or not instruction.options:
        return []
    have = set(words(text))
    found = []
    for letter, option in option_table(instruction.options).items():
        need = set(words(option)) - _FILLER
        if need and need <= have:
            found.append(letter)
    return found


def evidence_pieces(entry: Any) -> list[tuple[str, float]]:
    """(line, weight) pairs an entry offers; search hits from the web weigh ``WEB_WEIGHT``."""
    if isinstance(entry, ToolResult) and isinstance(entry.output.get("results"), list):
        pieces = []
        for hit in entry.output["results"]:
            if isinstance(hit, dict) and hit.get("text"):
                pieces.append((str(hit["text"]), WEB_WEIGHT if hit.get("kind") == "web" else 1.0))
        return pieces
    lines = [line.strip() for line in re.split(r"[\n.;]+", entry_text(entry)) if line.strip()]
    return [(line, 1.0) for line in lines]


def support(claim: str, pieces: list[tuple[str, float]], embedder: Embedder | None) -> tuple[float, str]:
    """Best weighted support of `claim` by any piece: max(word recall, cosine). Returns (score, piece)."""
    need = set(content_words(claim)) or set(words(claim))
    best, best_piece = 0.0, ""
    if not need or not pieces:
        return best, best_piece
    dense = embedder.encode([claim] + [p for p, _ in pieces]) if embedder is not None else None  # (1+P, dim)
    for i, (piece, weight) in enumerate(pieces):
        recall = len(need & set(words(piece))) / len(need)
        cosine = float(dense[0] @ dense[i + 1]) if dense is not None else 0.0
        score = weight * max(recall, cosine)
        if score > best:
            best, best_piece = score, piece
    return best, best_piece


# --------------------------------------------------------------------------- #
# Checks
# --------------------------------------------------------------------------- #


def evidence_support(embedder: Embedder | None | bool = None, min_support: float = 0.4,
                     defer: bool = False) -> Check:
    """A check that the cited entries cover what the answer claims (see the module docstring).

    Args:
        embedder: the sentence model (None: the shared one; False: words only).
        min_support: the least support (0..1) a claim needs from its best cited line.
        defer: (``extra_checks`` sets it) leave the answers the connection checks judge (a multiple-choice answer, or one that states
            a span, citing measured units) to them: on misheard speech ("Oskar" heard "Oscar") this lexical
            check rejected a quarter of the right answers of the labelled set (RESULTS, "Verifier").
    """
    from mcr.tools.evidence.checks import assess

    def check(answer: Answer, context: Context) -> CheckResult:
        entries = cited(answer, context)
        if not entries:
            return True, ""  # nothing cited: `evidence_given` (opt-in) is the check for that
        if defer:
            judged = assess(answer, context)
            if judged is not None and (judged.options or judged.stated is not None):
                return True, ""
        ids = ", ".join(e.id for e in entries)
        everything = "\n".join(entry_text(e) for e in entries)
        if answer.option is not None:
            named = options_named(everything, context)
            chosen = answer.option.strip().upper()
            if named and chosen not in named:
                told = ", ".join(f"{x} ({option_text(x, context)})" for x in named)
                return False, (f"the cited evidence ({ids}) names option {told}, not {chosen} "
                               f"({option_text(chosen, context)}); answer from what the evidence says")
            if chosen in named:
                return True, ""
        model = load_embedder() if embedder is None else (embedder or None)
        pieces = [p for e in entries for p in evidence_pieces(e)]
        claim = claim_of(answer, context)
        score, piece = support(claim, pieces, model)
        if score < min_support:
            said = f"; the closest it says is {piece[:100]!r}" if piece else ""
            return False, (f"the cited evidence ({ids}) does not support {claim[:80]!r} "
                           f"(support {score:.2f} < {min_support}){said}; cite the entries that say it, "
                           "or look again (ground, search, transcribe)")
        return True, ""

    return check


def option_consistency(answer: Answer, context: Context) -> CheckResult:
    """The text of a multiple-choice answer must not name another option than the chosen one."""
    if answer.option is None:
        return True, ""
    named = options_named(answer.text, context)
    chosen = answer.option.strip().upper()
    if named and chosen not in named:
        told = ", ".join(f"{x} ({option_text(x, context)})" for x in named)
        return False, (f"the answer's text names option {told} but it chose {chosen} "
                       f"({option_text(chosen, context)}); make the letter and the text agree")
    return True, ""


EVIDENCE_CHECKS = ("evidence_support", "evidence_connection", "rival_options", "span_consistency", "model_recheck")


def verdict_consistency(answer: Answer, context: Context) -> CheckResult:
    """Do not propose an option already rejected on evidence grounds, unless new evidence came since."""
    if answer.option is None:
        return True, ""
    chosen = answer.option.strip().upper()
    for verdict in reversed(context.of_kind(Verdict)):
        if verdict.accepted or not verdict.refs:
            continue
        earlier = context.get(verdict.refs[0])
        failed = [name for name in EVIDENCE_CHECKS if verdict.checks.get(name) is False]
        if not isinstance(earlier, Answer) or earlier.id == answer.id or (earlier.option or "").upper() != chosen:
            continue
        if not failed:
            continue
        position = next(i for i, e in enumerate(context) if e.id == verdict.id)
        new_evidence = any(isinstance(e, ToolResult) for e in list(context)[position + 1 :])
        if not new_evidence:
            return False, (f"option {chosen} was already rejected ({verdict.id}: {verdict.reason}); "
                           "gather new evidence before proposing it again")
    return True, ""


def model_recheck(model: EpisodeModel, fps: float | None = None, threshold: float = 0.5) -> Check:
    """Re-inspect the cited spans at higher fps through a fork of the episode's model; accept on "yes".

    Args:
        model: the episode's model (only forks are used; it must see frames).
        fps: frame rate for the second look (default: twice the episode's, at most 8).
        threshold: the least P(yes) / (P(yes) + P(no)) to accept.
    """
    from mcr.context import TimeSpan

    def check(answer: Answer, context: Context) -> CheckResult:
        import torch

        instruction = context.instruction
        video = instruction.video if instruction else None
        if video is None:
            return True, ""
        spans = [e.span for e in cited(answer, context) if e.span is not None] or ([answer.span] if answer.span else [])
        if spans:
            span = TimeSpan(start=min(s.start for s in spans), end=max(s.end for s in spans))
        else:
            span = TimeSpan(start=0.0, end=video.duration or 0.0)
        look = video.model_copy(update={"fps": fps or min(8.0, video.fps * 2)})
        question = (f"Question: {instruction.text}\nProposed answer: {claim_of(answer, context)}\n"
                    f"Look again at {span}. Is the proposed answer correct? Answer yes or no.")
        fork = model.fork()
        logits = fork.next_token_logits(model.messages(context, question, [look.message_part(span)]), model.head.tools)  # (V,)
        yes = max(float(logits[i]) for i in _first_ids(fork.tokenizer, ("yes", "Yes", " yes")))
        no = max(float(logits[i]) for i in _first_ids(fork.tokenizer, ("no", "No", " no")))
        p_yes = float(torch.softmax(torch.tensor([yes, no]), 0)[0])
        if p_yes < threshold:
            return False, (f"looking again at {span} at {look.fps:g} fps, the model says the answer is wrong "
                           f"(P(yes)={p_yes:.2f}); re-examine that span")
        return True, ""

    return check


def _first_ids(tokenizer: Any, variants: tuple[str, ...]) -> list[int]:
    ids = {tokenizer.encode(v, add_special_tokens=False)[0] for v in variants}
    return sorted(ids)


def extra_checks(model: EpisodeModel | None = None, embedder: Embedder | None | bool = None, recheck: bool = False,
                 min_support: float = 0.4, sees_pixels: bool | None = None) -> dict[str, Check]:
    """The checks of this package, by name, ready for ``Verifier.add``.

    Args:
        sees_pixels: whether the answering policy sees the video itself (default: whether `model`
            does). Then the evidence checks reject only what the evidence contradicts
            (:mod:`mcr.tools.evidence.checks`); a text-only policy's option must be backed.

    ``model_recheck`` is included only with ``recheck=True`` and a model that
    sees frames (it costs a forward pass over the cited frames; a text-only
    model cannot look again, so it would only guess).

    Raises:
        NoModelError: ``recheck`` was asked for without such a model.
    """
    from mcr.tools.evidence.checks import evidence_connection, rival_options, span_consistency

    pixels = bool(model is not None and model.sees_pixels) if sees_pixels is None else sees_pixels
    checks: dict[str, Check] = {
        "evidence_connection": evidence_connection(sees_pixels=pixels),
        "rival_options": rival_options(sees_pixels=pixels),
        "span_consistency": span_consistency(),
        "evidence_support": evidence_support(embedder, min_support, defer=True),
        "option_consistency": option_consistency,
        "verdict_consistency": verdict_consistency,
    }
    if recheck:
        if model is None or not model.sees_pixels:
            raise NoModelError("recheck re-inspects the cited spans, which needs a model that sees frames; "
                               "this episode has " + ("a text-only model" if model else "no model") +
                               ": set verify: {recheck: false}")
        checks["model_recheck"] = model_recheck(model)
    return checks


def build_verifier(model: EpisodeModel | None = None, *, recheck: bool = False, require_evidence: bool = False,
                   min_support: float = 0.4, sees_pixels: bool | None = None) -> Verifier:
    """A :class:`~mcr.verify.Verifier` with the built-in checks plus this package's, and its option scorer.

    What the graph's verify node gets when a task asks for evidence checks; the
    loop hands the same object to a policy that judges options before answering.
    """
    from mcr.tools.evidence.checks import option_scores

    verifier = Verifier(require_evidence=require_evidence, scorer=option_scores)
    for name, check in extra_checks(model=model, recheck=recheck, min_support=min_support,
                                    sees_pixels=sees_pixels).items():
        verifier.add(name, check)
    return verifier
