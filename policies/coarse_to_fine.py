"""Top-down exploration of long videos: locate with the index and an overview, then look closely.

On a clip of a minute, the offline explorer (:mod:`mcr.policies.explore`)
perceives the whole video with argument-free calls (``transcribe``,
``summarize``, ``segment``). On two hours those calls would decode and
transcribe everything — minutes of work and a result far larger than the
model's window — so on a long video (:data:`LONG_VIDEO_S` or more) this
module builds the candidates instead, coarse to fine:

1. **locate**: ``overview`` (the whole video at a fixed number of frames, the
   index's scenes and transcript outline) and ``ground`` of the question's key
   phrase (which reads the per-video index, whatever the context holds);
2. **skim** the best located span, widened to :data:`SKIM_AROUND_S` around it
   (or, with nothing grounded, the overview's scenes most like the question);
3. **focus** on at most 16 s where the skim or the grounding points, and
   **listen** there (``transcribe`` of that span, with the options as hints);
4. ``search`` the evidence and the index for the options (offered from the first
   located step on, beside ``ground``; the model's likelihood picks between them).

Every call has a frame budget (the tools' own, counted by ``budget.max_frames``),
so a question about a two-hour video decodes tens of frames, never the whole
video at 1 fps. A call already made is never offered again.
"""

from __future__ import annotations

import re
from typing import Any

from mcr.context import Context, Observation, TimeSpan, ToolCall, ToolError, ToolResult

__all__ = ["LONG_VIDEO_S", "WHOLE_VIDEO_TOOLS", "is_long_video", "coarse_to_fine_calls"]

LONG_VIDEO_S = 600.0  # from ten minutes on, perception is located first, never run over the whole video
WHOLE_VIDEO_TOOLS = frozenset({"transcribe", "summarize", "segment"})  # argument-free: the whole video
SKIM_AROUND_S = 60.0  # a skim looks at this much video around a located moment
FOCUS_S = 16.0
LISTEN_S = 30.0
_WORD = re.compile(r"[a-z0-9]{3,}")


def video_duration(context: Context) -> float:
    """The video's length: the instruction's video, else the opening observation's span."""
    instruction = context.instruction
    if instruction is not None and instruction.video is not None and instruction.video.duration:
        return float(instruction.video.duration)
    first = next((e for e in context if isinstance(e, Observation) and e.span is not None), None)
    return float(first.span.end) if first is not None else 0.0


def is_long_video(context: Context) -> bool:
    return video_duration(context) >= LONG_VIDEO_S


def _around(center: float, width: float, duration: float) -> dict[str, float]:
    start = max(0.0, min(center - width / 2, duration - width))
    return {"start": round(start, 2), "end": round(min(duration, start + width), 2)}


def _located(context: Context) -> list[TimeSpan]:
    """Spans the latest ``ground`` results rank, best first."""
    spans: list[TimeSpan] = []
    for result in reversed(context.results_of("ground")):
        spans += [TimeSpan.model_validate(hit["span"]) for hit in result.output.get("spans") or []]
    return spans


def _searchable_options(context: Context) -> list[str]:
    """The question's options when they name things to find (not times, not sentences)."""
    from mcr.language import AnswerType, read_question
    from mcr.language.question import names_a_time

    instruction = context.instruction
    options = list(instruction.options or ()) if instruction is not None else []
    if not options or any(len(o.split()) > 4 or names_a_time(o) for o in options):
        return []
    if read_question(instruction.text, tuple(options)).answer_type in (AnswerType.TIME, AnswerType.YES_NO):
        return []
    return options


def _best_frame(context: Context, tool: str, question: str) -> float | None:
    """The time of the frame of the latest ``tool`` result whose text shares most words with the question."""
    results = context.results_of(tool)
    if not results:
        return None
    asked = set(_WORD.findall(question.lower()))
    best, best_score = None, 0
    for frame in results[-1].output.get("frames") or []:
        words = set(_WORD.findall(" ".join(t.get("text", "") for t in frame.get("text") or []).lower()))
        words |= {str(o.get("label", "")).lower() for o in frame.get("objects") or []}
        score = len(asked & words)
        if score > best_score:
            best, best_score = float(frame["t"]), score
    return best


def _scenes_like(context: Context, question: str) -> list[TimeSpan]:
    """The overview's scenes, those sharing most words with the question first (ties: in order)."""
    results = context.results_of("overview")
    if not results:
        return []
    asked = set(_WORD.findall(question.lower()))
    scenes = results[-1].output.get("scenes") or []
    ranked = sorted(range(len(scenes)), key=lambda i: (-len(asked & set(_WORD.findall(scenes[i].get("text", "").lower()))), i))
    return [TimeSpan.model_validate(scenes[i]["span"]) for i in ranked]


def coarse_to_fine_calls(context: Context, offer: Any, *, question: str, phrase: str, hints: list[str]) -> None:
    """Offer the long-video candidates through ``offer(tool, arguments, why)`` (see the module docstring).

    ``offer`` drops calls already made, tools not offered and duplicates; the
    caller (``explore.candidate_calls``) orders what comes back.
    """
    duration = video_duration(context)
    no_audio = any(isinstance(e, ToolError) and e.error_type == "no_audio" for e in context)
    # 1. locate
    offer("overview", {}, "see the whole video at a fixed frame cost: scenes, text on screen, the outline")
    if phrase:
        offer("ground", {"query": phrase}, f"find when {phrase!r} happens (the video's index and the evidence)")
    if not any(isinstance(e, ToolCall) and e.tool in ("overview", "ground") for e in context):
        return
    options = _searchable_options(context)
    if options:  # where each option is said or shown: the index holds every sentence and every text read
        offer("search", {"query": " / ".join(options), "scope": "local"}, "where do the options occur in the video")
    located = _located(context)
    # 2. skim around the located moment (or the scenes most like the question)
    if located:
        center = (located[0].start + located[0].end) / 2
        offer("skim", {"span": _around(center, SKIM_AROUND_S, duration)}, f"skim around {located[0]}")
    else:
        for scene in _scenes_like(context, question)[:2]:
            offer("skim", {"span": _around((scene.start + scene.end) / 2, min(scene.duration, SKIM_AROUND_S) or 1.0,
                                           duration)}, f"skim the scene {scene}")
    # 3. focus where the skim (or the grounding) points, and listen there
    point = _best_frame(context, "skim", question)
    if point is None and located:
        point = (located[0].start + located[0].end) / 2
    if point is not None and any(isinstance(e, ToolResult) and e.tool == "skim" for e in context):
        offer("focus", {"span": _around(point, FOCUS_S, duration), "question": question[:500]},
              f"look closely around {point:.1f}s")
    if located and not no_audio and hints:
        center = (located[0].start + located[0].end) / 2
        offer("transcribe", {"span": _around(center, LISTEN_S, duration), "hints": hints},
              f"hear {located[0]} again, listening for the options")
