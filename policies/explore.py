"""What the offline agent may do next: candidate calls built from the question and the evidence so far.

A 135M model cannot write a good tool call, but it can choose between a few
good ones. This module builds them, with no model at all, so every choice the
model makes is well-formed, new and relevant; :mod:`mcr.policies.offline`
lets the model's likelihood pick. The rules, in the order an episode meets them:

The question is read once, by :func:`mcr.language.read_question`; this module
never re-reads its text. What it uses of the record (:func:`question_frame`):
``evidence`` (which perception first, listen or look first), ``grounding_query``
(what to ground), ``hints`` (what to listen for), ``relations`` (where to look
relative to the grounded event) and ``weights`` (which words make a transcript
segment or a scene like the question).

1. **Perceive.** The argument-free tools not called yet (``transcribe``,
   ``summarize``, ``segment``, plugins ...), with no arguments, so their results
   are cached and shared by every question about the same video; one at a time,
   the one that measures the question's likeliest evidence kind first
   (:data:`PERCEPTION_FOR`; tools it does not name are all offered at once and
   the model's likelihood picks). ``verify_answer`` and ``video_info`` are not
   offered (the policy judges candidates itself; the observation already gives
   the video's length and size).
2. **Ground the question.** Once there is time-aligned text, ``ground`` the
   record's ``grounding_query``: a quoted phrase, else the event of a temporal
   relation ("what is shown right after *the bell rings*"), else its anchors.
3. **Look again where it matters.** For "after"/"before" questions, first the
   unit that follows (precedes) the grounded event — the next transcript
   segment when the answer is speech, else the next shot or scene (only the
   first one for "right after"/"just before"). Then the grounded span itself:
   ``look`` with ``detail`` (colours, text, objects in zoomed tiles of those
   frames) and, where speech overlaps it, ``transcribe`` with the record's
   ``hints`` (Whisper then spells what it hears the way the question does).
   Then the transcript segments and summary scenes most like the question
   (its words weighted by :func:`mcr.language.similarity.word_weight`), the
   modality the question asks about first.
4. **Search the evidence for the options** (``search`` over the episode's own
   results), only when nothing else is left to try.

A call already made (same tool, same arguments) is never offered again, and a
rejection that names tools (``"... or look again (ground, search, transcribe)"``)
puts those first. :func:`decided` says when the evidence decides, so the
policy stops calling tools.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from mcr.context import Context, Thought, ToolCall, ToolError, ToolResult, TimeSpan, Verdict
from mcr.language import AnswerType, EvidenceKind, QuestionFrame, RelationKind, read_question
from mcr.language.similarity import word_weight
from mcr.policies.coarse_to_fine import coarse_to_fine_calls, is_long_video, video_duration
from mcr.tools.base import schema_function

__all__ = ["Candidate", "candidate_calls", "question_frame", "grounded_span", "call_key", "rejected_options",
           "named_tools", "hints_for", "listens_first", "relation_spans", "segments_like", "PERCEPTION_FOR"]

NOT_OFFERED = frozenset({"verify_answer", "video_info"})
# Which argument-free perception measures each evidence kind (the first the question needs is called first).
PERCEPTION_FOR = {
    EvidenceKind.SPEECH: "transcribe",
    EvidenceKind.SCREEN_TEXT: "summarize",
    EvidenceKind.PIXELS: "summarize",
    EvidenceKind.OBJECTS: "summarize",
    EvidenceKind.MOTION: "summarize",
    EvidenceKind.SHOTS: "segment",
}
_TOOL_WORDS = re.compile(r"\b(ground|search|transcribe|look|summarize|segment)\b")
_VISUAL = (EvidenceKind.SCREEN_TEXT, EvidenceKind.PIXELS, EvidenceKind.OBJECTS, EvidenceKind.SHOTS,
           EvidenceKind.MOTION)


@dataclass(frozen=True)
class Candidate:
    """One well-formed call the policy may make, and why it is on the list."""

    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    why: str = ""

    @property
    def key(self) -> str:
        return call_key(self.tool, self.arguments)

    def text(self) -> str:
        """The reply the model scores: the same ``<tool_call>`` the parser reads."""
        body = json.dumps({"name": self.tool, "arguments": self.arguments}, separators=(", ", ": "))
        return f"<tool_call>{body}</tool_call>"


def call_key(tool: str, arguments: dict[str, Any]) -> str:
    """Identity of a call: the tool and its arguments, canonically (spans rounded to 0.1 s)."""

    def norm(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 1)
        if isinstance(value, dict):
            return {k: norm(v) for k, v in sorted(value.items())}
        if isinstance(value, (list, tuple)):
            return [norm(v) for v in value]
        return value

    return json.dumps([tool, norm(arguments)], sort_keys=True)


def question_frame(context: Context) -> QuestionFrame | None:
    """The episode's question, read once (cached by :func:`mcr.language.read_question`)."""
    instruction = context.instruction
    if instruction is None:
        return None
    return read_question(instruction.text, instruction.options or ())


def hints_for(context: Context) -> list[str]:
    """Words to listen for: the record's hints (the options, names, quoted phrases, informative words)."""
    frame = question_frame(context)
    return list(frame.hints) if frame is not None else []


def listens_first(frame: QuestionFrame | None) -> bool:
    """The question asks what is said: speech ranks above every visual evidence kind."""
    if frame is None or EvidenceKind.SPEECH not in frame.evidence:
        return False
    speech = frame.evidence.index(EvidenceKind.SPEECH)
    return all(speech < frame.evidence.index(k) for k in _VISUAL if k in frame.evidence)


def grounded_span(context: Context) -> TimeSpan | None:
    """The best span of the latest ``ground`` result, if any."""
    for entry in reversed(context.results_of("ground")):
        spans = entry.output.get("spans") or []
        if spans:
            return TimeSpan.model_validate(spans[0]["span"])
    return None


def rejected_options(context: Context) -> set[str]:
    """Option letters of answers the verifier rejected (never proposed again)."""
    out: set[str] = set()
    for verdict in context.of_kind(Verdict):
        if verdict.accepted or not verdict.refs:
            continue
        answer = context.get(verdict.refs[0])
        option = getattr(answer, "option", None)
        if option:
            out.add(option.upper())
    return out


def named_tools(context: Context) -> list[str]:
    """Tools the latest rejection's reason tells the policy to use, in the order named."""
    verdicts = context.of_kind(Verdict)
    if not verdicts or verdicts[-1].accepted:
        return []
    return list(dict.fromkeys(_TOOL_WORDS.findall(verdicts[-1].reason)))


def _made(context: Context) -> set[str]:
    return {call_key(e.tool, e.arguments) for e in context if isinstance(e, ToolCall)}


def _no_audio(context: Context) -> bool:
    return any(isinstance(e, ToolError) and e.error_type == "no_audio" for e in context)


def _has_timed_text(context: Context) -> bool:
    return any(isinstance(e, ToolResult) and e.tool in ("transcribe", "summarize", "look", "segment") for e in context)


MAX_SCENE_LOOKS = 4  # scenes offered for a closer look at once (the ones most like the question)
MAX_SEGMENT_LISTENS = 2  # transcript segments offered for a second, hinted listen

def _where(span: TimeSpan) -> dict[str, float]:
    return {"start": round(span.start, 2), "end": round(span.end, 2)}


def _asked(context: Context) -> dict[str, float]:
    """The question's and the options' words, each with its weight (how much it says)."""
    frame = question_frame(context)
    if frame is None:
        return {}
    asked = {w: wt for w, wt in frame.weights.items() if len(w) >= 3 and wt > 0}
    for option in frame.options:
        for w in re.findall(r"[A-Za-z]{3,}|\d+", option.lower()):
            asked.setdefault(w, word_weight(w))
    return asked


def _likeness(asked: dict[str, float], text: str) -> float:
    words = {w.lower() for w in re.findall(r"[A-Za-z]{3,}|\d+", text)}
    return sum(weight for a, weight in asked.items() if any(_near(a, w) for w in words))


def segments_like(context: Context) -> list[TimeSpan]:
    """Transcript segments of the first whole-video transcript, most like the question first.

    Likeness is the summed weight of the question's (and options') words a segment
    contains, counting near-misses (a tiny ASR model writes "Oscar" for "Oskar"):
    two words match when one is a prefix of the other or they differ in at most one letter.
    """
    results = [r for r in context.results_of("transcribe") if r.span is None]
    if not results:
        return []
    asked = _asked(context)
    scored = []
    for i, seg in enumerate(results[0].output.get("segments") or []):
        score = _likeness(asked, seg.get("text", ""))
        if score > 0:
            scored.append((-score, i, TimeSpan.model_validate(seg["span"])))
    return [span for _, _, span in sorted(scored, key=lambda x: (x[0], x[1]))]


def _near(a: str, b: str) -> bool:
    if a == b or (len(a) >= 4 and len(b) >= 4 and (a.startswith(b) or b.startswith(a))):
        return True
    if abs(len(a) - len(b)) > 1 or min(len(a), len(b)) < 4:
        return False
    import difflib

    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.8


def _speech_in(context: Context, span: TimeSpan) -> bool:
    """Some transcript segment overlaps `span` (listening again there can help)."""
    for result in context.results_of("transcribe"):
        for seg in result.output.get("segments") or []:
            s = seg.get("span") or {}
            if s.get("start", 1e9) < span.end and s.get("end", -1) > span.start:
                return True
    return False


def _scenes_like(context: Context) -> list[TimeSpan]:
    """Scene spans of the latest ``summarize`` result, most like the question first (weighted shared words).

    A question about movement puts the scenes where a thing was measured moving first: a drawn ball
    or a van shares no word with the summary, but its scene is the one with a mover.
    """
    results = context.results_of("summarize")
    if not results:
        return []
    asked = _asked(context)
    frame = question_frame(context)
    motion = frame is not None and EvidenceKind.MOTION in frame.evidence
    scenes = []
    for i, scene in enumerate(results[-1].output.get("scenes") or []):
        moves = motion and bool(scene.get("movers"))
        scenes.append(((not moves, -_likeness(asked, json.dumps(scene))), i, TimeSpan.model_validate(scene["span"])))
    return [span for _, _, span in sorted(scenes, key=lambda x: (x[0], x[1]))]


def _units(context: Context, speech: bool) -> list[TimeSpan]:
    """The video's units in time order: transcript segments when the answer is speech, else shots
    (``segment``) or scenes (``summarize``); the first kind found."""
    sources = (("transcribe", "segments"),) if speech else (("segment", "shots"), ("summarize", "shots"),
                                                             ("summarize", "scenes"))
    for tool, key in sources:
        for result in context.results_of(tool):
            if result.span is not None and tool == "transcribe":
                continue
            spans = [TimeSpan.model_validate(item["span"]) for item in result.output.get(key) or []
                     if isinstance(item, dict) and item.get("span")]
            if spans:
                return sorted(spans, key=lambda s: (s.start, s.end))
    return []


RELATION_WINDOW_S = (2.0, 10.0)  # with no units measured, "after X" looks this long past X (its length, bounded)
_EDGE_S = 0.25  # a unit that starts this close before the event's end still follows it


def relation_spans(context: Context, frame: QuestionFrame | None, event: TimeSpan) -> list[TimeSpan]:
    """Where a before/after question's answer lies, given the span its event was grounded to.

    "after X": the units that start once X ends (only the first for "right after");
    "before X": the units that end before X starts, nearest first. Units are
    transcript segments when the answer is speech, else shots or scenes. With no
    units measured, a window as long as X (2–10 s) on that side. Empty for other
    relations (while/during overlap X: the grounded span itself is the place).
    """
    relation = frame.relation(RelationKind.AFTER, RelationKind.BEFORE) if frame is not None else None
    if relation is None:
        return []
    take = 1 if relation.immediate else 2
    units = _units(context, speech=listens_first(frame))
    if relation.kind == RelationKind.AFTER:
        out = [u for u in units if u.start >= event.end - _EDGE_S and u.end > event.end][:take]
    else:
        out = [u for u in reversed(units) if u.end <= event.start + _EDGE_S and u.start < event.start][:take]
    if out:
        return out
    width = min(max(event.end - event.start, RELATION_WINDOW_S[0]), RELATION_WINDOW_S[1])
    duration = _duration(context)
    if relation.kind == RelationKind.AFTER:
        start, end = event.end, event.end + width
        if duration is not None:
            end = min(end, duration)
    else:
        start, end = max(0.0, event.start - width), event.start
    return [TimeSpan(start=start, end=end)] if end - start > 0.1 else []


def _duration(context: Context) -> float | None:
    instruction = context.instruction
    video = instruction.video if instruction is not None else None
    return video.duration if video is not None else None


def candidate_calls(context: Context, tools: list[dict[str, Any]]) -> list[Candidate]:
    """The calls worth making now, most basic first (see the module docstring); never one already made.

    Args:
        context: the episode so far.
        tools: the tool schemas the graph offers (only these tools are proposed).
    """
    available = {schema_function(t)["name"]: schema_function(t) for t in tools}
    made = _made(context)
    instruction = context.instruction
    frame = question_frame(context)
    hints = hints_for(context)
    out: list[Candidate] = []

    def offer(tool: str, arguments: dict[str, Any], why: str) -> None:
        if tool in available and call_key(tool, arguments) not in made and all(c.key != call_key(tool, arguments)
                                                                               for c in out):
            out.append(Candidate(tool, arguments, why))

    if is_long_video(context):  # top-down: locate, skim, focus; never perceive the whole of a long video
        coarse_to_fine_calls(context, offer, question=instruction.text if instruction is not None else "", hints=hints,
                             phrase=frame.grounding_query if frame is not None else "")
        if out or not (instruction and instruction.options):
            return _named_first(context, out)
        offer("search", {"query": " / ".join(instruction.options), "scope": "local"}, "where do the options occur")
        return _named_first(context, out)
    # 1. perceive (plain calls: their results are cached and shared by every question about the video),
    #    one at a time, the tool that measures the question's likeliest evidence first
    perception = [name for name, fn in available.items()
                  if name not in NOT_OFFERED and name != "overview" and not fn.get("parameters", {}).get("required")
                  and not (name == "transcribe" and _no_audio(context))
                  and not any(isinstance(e, ToolCall) and e.tool == name for e in context)]
    ranked = sorted(perception, key=lambda n: (_perception_rank(frame, n), list(available).index(n)))
    if ranked and _perception_rank(frame, ranked[0]) < len(frame.evidence if frame is not None else ()):
        ranked = ranked[:1]  # a tool measures the question's likeliest evidence: it goes first, alone
    for name in ranked:  # else (tools the record knows nothing of) every one, and the model's likelihood picks
        offer(name, {}, "a first look at the whole video" if name != "transcribe" else "hear the speech")
    if not _has_timed_text(context):
        return out
    # 2. ground the question (the record's query: a quoted phrase, a relation's event, its anchors)
    phrase = frame.grounding_query if frame is not None else ""
    if phrase:
        offer("ground", {"query": phrase}, f"find when {phrase!r} happens")
    # 3. look and listen again where it matters: for before/after questions the unit next to the grounded
    #    event first, then the grounded span, then the scenes most like the question
    span = grounded_span(context)
    listen = listens_first(frame)
    can_listen = not _no_audio(context) and bool(hints)
    if span is not None:
        for target in relation_spans(context, frame, span) + [span]:
            where = _where(target)
            looks = [("look", {"span": where, "detail": True}, f"see the frames of {target} closely")]
            listens = [("transcribe", {"span": where, "hints": hints}, f"hear {target} again, listening for the options")
                       ] if can_listen and _speech_in(context, target) else []
            for tool, arguments, why in (listens + looks if listen else looks + listens):
                offer(tool, arguments, why)
            if out:
                break
    grounded_tried = any(isinstance(e, ToolCall) and e.tool == "ground" for e in context) or "ground" not in available
    if out or not grounded_tried:  # scenes are the fallback once grounding and its span are done
        return _named_first(context, out)
    # the fallback: listen again to the transcript segments and look closer at the scenes most like the
    # question; the modality the question asks about comes first (the other only once it is exhausted)
    listens = [] if not can_listen else [
        Candidate("transcribe", {"span": _where(seg), "hints": hints}, f"hear {seg} again, listening for the options")
        for seg in segments_like(context)[:MAX_SEGMENT_LISTENS]]
    looks = [Candidate("look", {"span": _where(scene), "detail": True}, f"see the scene {scene} closely")
             for scene in _scenes_like(context)[:MAX_SCENE_LOOKS]]
    first, second = (listens, looks) if listen else (looks, listens)
    for group in (first, second):
        for c in group:
            offer(c.tool, c.arguments, c.why)
        if out:
            break
    # 4. search the evidence for the options (a last resort: it only finds what is already written)
    if instruction is not None and instruction.options and len(out) == 0:
        offer("search", {"query": " / ".join(instruction.options), "scope": "local"}, "where do the options occur")
    return _named_first(context, out)


CONFIRM_WIDTH = 4.0  # a citation this many times wider than where its fact was measured is confirmed there first
CONFIRM_PAD_S = 0.5  # heard again with this much either side, so no word at the edge is cut
CONFIRM_MAX_S = 30.0  # a fact measured over a longer stretch (an outline line of minutes) is not re-measured
#: ... unless the question asks *when*: then where it was measured is the answer, and an outline line of minutes
#: cited for it would say "somewhere in these 5 minutes". Hearing that stretch again costs seconds, once.
CONFIRM_MAX_WHEN_S = 300.0
CONFIRM_WHY = "confirm where the chosen option was measured"


def confirming_call(context: Context, tools: list[dict[str, Any]], cite: tuple[str, ...],
                    measured: TimeSpan | None) -> Candidate | None:
    """A narrow call at `measured` when the entries cited for the chosen option are far wider than it.

    Why: an option found in one sentence of the whole transcript, or in an
    hour's overview, is cited by the entry that holds it, and that entry's span
    says nothing of *where*. One short call there (the span heard again with
    the question's hints, or its frames looked at) measures the fact again
    with its own span, and the answer cites that. Once per episode (twice for
    a "when" question); never a call already made.
    """
    frame = question_frame(context)
    asks_when = frame is not None and frame.answer_type == AnswerType.TIME
    confirmed = sum(isinstance(e, Thought) and e.text == CONFIRM_WHY for e in context)
    # a "when" question may narrow twice: an outline line heard again gives the sentence's own time, and
    # that sentence heard alone gives an entry as narrow as the answer
    if measured is None or not cite or confirmed >= (2 if asks_when else 1):
        return None
    spans = [e.span for ref in cite if (e := context.get(ref)) is not None and e.span is not None]
    if not spans:
        return None
    cited = max(s.end for s in spans) - min(s.start for s in spans)
    longest = CONFIRM_MAX_WHEN_S if asks_when else CONFIRM_MAX_S
    if cited <= CONFIRM_WIDTH * max(measured.end - measured.start, 1.0) or measured.end - measured.start > longest:
        return None
    duration = video_duration(context) or measured.end + CONFIRM_PAD_S
    target = TimeSpan(start=max(0.0, measured.start - CONFIRM_PAD_S), end=min(duration, measured.end + CONFIRM_PAD_S))
    available = {schema_function(t)["name"] for t in tools}
    made = _made(context)
    calls = [("transcribe", {"span": _where(target), "hints": hints_for(context)})] \
        if listens_first(frame) and not _no_audio(context) else []
    calls.append(("look", {"span": _where(target), "detail": True}))
    for tool, arguments in calls:
        if tool in available and call_key(tool, arguments) not in made:
            return Candidate(tool, arguments, CONFIRM_WHY)
    return None


def _perception_rank(frame: QuestionFrame | None, tool: str) -> int:
    """Where a perception tool stands for this question: the rank of the first evidence kind it measures."""
    if frame is None:
        return 0
    ranks = [i for i, kind in enumerate(frame.evidence) if PERCEPTION_FOR.get(kind) == tool]
    return min(ranks) if ranks else len(frame.evidence)


def _named_first(context: Context, out: list[Candidate]) -> list[Candidate]:
    """A rejection that names tools puts their calls first."""
    wanted = named_tools(context)
    if wanted:
        out.sort(key=lambda c: wanted.index(c.tool) if c.tool in wanted else len(wanted))
    return out
