"""What the offline agent may do next: candidate calls built from the question and the evidence so far.

A 135M model cannot write a good tool call, but it can choose between a few
good ones. This module builds them, with no model at all, so every choice the
model makes is well-formed, new and relevant; :mod:`mcr.policies.offline`
lets the model's likelihood pick. The rules, in the order an episode meets them:

1. **Perceive.** Every argument-free tool not called yet (``transcribe``,
   ``summarize``, ``segment``, plugins ...), with no arguments, so their results
   are cached and shared by every question about the same video.
   ``verify_answer`` and ``video_info`` are not offered (the policy judges
   candidates itself; the observation already gives the video's length and
   size).
2. **Ground the question.** Once there is time-aligned text, ``ground`` the
   question's key phrase: a quoted phrase if it has one, the clause after
   "says that" if it has one, else its content words.
3. **Look again where it matters.** On the best grounded span: ``look`` with
   ``detail`` (colours, text, objects in zoomed tiles of those frames) and, where
   speech overlaps it, ``transcribe`` with the options and the question's names
   as *hints* (Whisper then spells what it hears the way the question does).
   Then ``look`` at the scenes of the summary that share most words with the
   question (at most ``MAX_SCENE_LOOKS`` offered at once).
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

from mcr.context import Context, ToolCall, ToolError, ToolResult, TimeSpan, Verdict
from mcr.tools.base import schema_function

__all__ = ["Candidate", "candidate_calls", "key_phrase", "grounded_span", "call_key", "rejected_options",
           "named_tools", "hints_for"]

NOT_OFFERED = frozenset({"verify_answer", "video_info"})
_QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how many much does do did is are was were the a an of in on at "
    "to this that these those video clip film narration narrator according say says said tell answer with "
    "seconds second time start end and or between please".split()
)
_QUOTED = re.compile(r"""['"‘“]([^'"’”]{2,80})['"’”]""")
_SAYS_THAT = re.compile(r"\b(?:says?|said|mentions?|tells?)\s+(?:that\s+)?(.+?)[?.!]?$", re.I)
_TOOL_WORDS = re.compile(r"\b(ground|search|transcribe|look|summarize|segment)\b")


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


def key_phrase(question: str) -> str:
    """The part of a question worth grounding (see rule 2 of the module docstring)."""
    quoted = _QUOTED.findall(question)
    if quoted:
        return quoted[0].strip()
    said = _SAYS_THAT.search(question)
    if said and len(said.group(1).split()) >= 2:
        return _strip_articles(said.group(1))
    words = [w for w in re.findall(r"[A-Za-z0-9']+", question) if w.lower() not in _QUESTION_WORDS]
    return " ".join(words) or question.strip()


def _strip_articles(text: str) -> str:
    return " ".join(w for w in text.split() if w.lower() not in {"the", "a", "an"}).strip(" ?.!")


def hints_for(context: Context) -> list[str]:
    """Words to listen for: the options, the question's capitalised names and quoted phrases, and the
    lower-case words of its key phrase (what the question is about is likely said in those words)."""
    instruction = context.instruction
    if instruction is None:
        return []
    hints = [o.strip() for o in instruction.options or () if o.strip()]
    text = instruction.text
    names = re.findall(r"(?<![.?!]\s)(?<!^)\b([A-Z][a-z]{2,})\b", text)
    hints += [n for n in names if n.lower() not in _QUESTION_WORDS]
    hints += _QUOTED.findall(text)
    hints += [w for w in re.findall(r"\b[a-z]{4,}\b", key_phrase(text)) if w not in _QUESTION_WORDS]
    seen: dict[str, None] = {}
    for h in hints:
        if len(h) <= 80:
            seen.setdefault(h, None)
    return list(seen)[:20]


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
_SPEECH_WORDS = re.compile(r"\b(narrat\w*|say|says|said|speak\w*|spoke\w*|hear\w*|mention\w*|talk\w*|voice|"
                           r"tell|tells|told|sound\w*|words?)\b", re.I)


_SIGHT_WORDS = re.compile(r"\b(colou?rs?|shown?|appears?|screen|written|titles?|see|seen|wears?|wearing|photo\w*|"
                          r"picture|animal|objects?|background|looks?)\b", re.I)
_LOCATOR = re.compile(r"\b(?:while|when|after|before|as soon as)\b", re.I)


def asks_about_speech(question: str) -> bool:
    """The question asks what is said, so listening comes before looking.

    What is asked sits before a locating clause ("What colour is the background
    *while the narrator says* ..." asks about sight): the head must name speech
    and not sight.
    """
    head = _LOCATOR.split(question)[0]
    if len(head.split()) < 2:
        head = question
    return bool(_SPEECH_WORDS.search(head)) and not _SIGHT_WORDS.search(head)


def _where(span: TimeSpan) -> dict[str, float]:
    return {"start": round(span.start, 2), "end": round(span.end, 2)}


def segments_like(context: Context, question: str) -> list[TimeSpan]:
    """Transcript segments of the first whole-video transcript, most like the question first.

    Likeness is shared words, counting near-misses (a tiny ASR model writes "Oscar" for "Oskar"):
    two words match when one is a prefix of the other or they differ in at most one letter.
    """
    results = [r for r in context.results_of("transcribe") if r.span is None]
    if not results:
        return []
    asked = {w.lower() for w in re.findall(r"[A-Za-z]{3,}", question)} - _QUESTION_WORDS
    instruction = context.instruction
    asked |= {w.lower() for o in (instruction.options or ()) for w in re.findall(r"[A-Za-z]{3,}", o)} if instruction else set()
    scored = []
    for i, seg in enumerate(results[0].output.get("segments") or []):
        words = {w.lower() for w in re.findall(r"[A-Za-z]{3,}", seg.get("text", ""))}
        score = sum(any(_near(a, w) for w in words) for a in asked)
        if score:
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


def _scenes_like(context: Context, question: str) -> list[TimeSpan]:
    """Scene spans of the latest ``summarize`` result, most words shared with the question first."""
    results = context.results_of("summarize")
    if not results:
        return []
    asked = {w.lower() for w in re.findall(r"[A-Za-z]{3,}", question)} - _QUESTION_WORDS
    scenes = []
    for i, scene in enumerate(results[-1].output.get("scenes") or []):
        words = {w.lower() for w in re.findall(r"[A-Za-z]{3,}", json.dumps(scene))}
        scenes.append((-len(asked & words), i, TimeSpan.model_validate(scene["span"])))
    return [span for _, _, span in sorted(scenes, key=lambda x: (x[0], x[1]))]


def candidate_calls(context: Context, tools: list[dict[str, Any]]) -> list[Candidate]:
    """The calls worth making now, most basic first (see the module docstring); never one already made.

    Args:
        context: the episode so far.
        tools: the tool schemas the graph offers (only these tools are proposed).
    """
    available = {schema_function(t)["name"]: schema_function(t) for t in tools}
    made = _made(context)
    instruction = context.instruction
    question = instruction.text if instruction is not None else ""
    hints = hints_for(context)
    out: list[Candidate] = []

    def offer(tool: str, arguments: dict[str, Any], why: str) -> None:
        if tool in available and call_key(tool, arguments) not in made and all(c.key != call_key(tool, arguments)
                                                                               for c in out):
            out.append(Candidate(tool, arguments, why))

    # 1. perceive (plain calls: their results are cached and shared by every question about the video)
    for name, fn in available.items():
        if name in NOT_OFFERED or fn.get("parameters", {}).get("required"):
            continue
        if name == "transcribe" and _no_audio(context):
            continue
        if not any(isinstance(e, ToolCall) and e.tool == name for e in context):
            offer(name, {}, "a first look at the whole video" if name != "transcribe" else "hear the speech")
    if not _has_timed_text(context):
        return out
    # 2. ground the question
    phrase = key_phrase(question) if question else ""
    if phrase:
        offer("ground", {"query": phrase}, f"find when {phrase!r} happens")
    # 3. look and listen again where it matters: the grounded span, then the scenes most like the question
    span = grounded_span(context)
    if span is not None:
        where = {"start": round(span.start, 2), "end": round(span.end, 2)}
        offer("look", {"span": where, "detail": True}, f"see the frames of {span} closely")
        if not _no_audio(context) and hints and _speech_in(context, span):
            offer("transcribe", {"span": where, "hints": hints}, f"hear {span} again, listening for the options")
    grounded_tried = any(isinstance(e, ToolCall) and e.tool == "ground" for e in context) or "ground" not in available
    if out or not grounded_tried:  # scenes are the fallback once grounding and its span are done
        return _named_first(context, out)
    # the fallback: listen again to the transcript segments and look closer at the scenes most like the
    # question; the modality the question asks about comes first (the other only once it is exhausted)
    listens = [] if _no_audio(context) or not hints else [
        Candidate("transcribe", {"span": _where(seg), "hints": hints}, f"hear {seg} again, listening for the options")
        for seg in segments_like(context, question)[:MAX_SEGMENT_LISTENS]]
    looks = [Candidate("look", {"span": _where(scene), "detail": True}, f"see the scene {scene} closely")
             for scene in _scenes_like(context, question)[:MAX_SCENE_LOOKS]]
    first, second = (listens, looks) if asks_about_speech(question) else (looks, listens)
    for group in (first, second):
        for c in group:
            offer(c.tool, c.arguments, c.why)
        if out:
            break
    # 4. search the evidence for the options (a last resort: it only finds what is already written)
    if instruction is not None and instruction.options and len(out) == 0:
        offer("search", {"query": " / ".join(instruction.options), "scope": "local"}, "where do the options occur")
    return _named_first(context, out)


def _named_first(context: Context, out: list[Candidate]) -> list[Candidate]:
    """A rejection that names tools puts their calls first."""
    wanted = named_tools(context)
    if wanted:
        out.sort(key=lambda c: wanted.index(c.tool) if c.tool in wanted else len(wanted))
    return out
