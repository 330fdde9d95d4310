"""The atoms of evidence the verifier connects: one spoken sentence, one frame, one scene, one count.

The scorer (`mcr.tools.evidence.score`) asks whether the question
and the chosen option meet *in one place*; this module says what the places
are. Every cited entry is cut into :class:`Unit` s, each with the span where
it was measured and the facts measured there:

* ``transcribe`` — one unit per **sentence**: Whisper cuts a sentence at a
  pause ("At the bakery," | "Thomas counts three kettles."), so segments are
  joined until one ends with ``.?!`` (or a gap of more than `SENTENCE_GAP_S`);
* ``look`` — one unit per sampled **frame** (time, colours, text read, objects)
  and one for the whole span (colours over frames, the most objects at once,
  the thing that moves and its heading);
* ``summarize`` — one unit per **scene** and per shot (its on-screen text, its
  pixel facts, the thing that moves in it), split into one unit per sentence said in it; the video-level
  line becomes a **count** of scenes; its Memory entries are read the same way
  from their "measured:" lines;
* ``overview`` / ``skim`` / ``focus`` — read as ``look`` (their frames and span); an overview's outline
  lines are speech units with their (wide) spans;
* ``segment`` — a count of shots, one of the cuts between them, and each shot's span;
* ``search`` / ``ground`` — each hit, with its span, read by its source
  (transcript → speech, ocr → on-screen text, a summary line → scene facts).

Units carry text as token lists (`mcr.tools.evidence.match.tokens`), so
matching is the same whatever the tool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mcr.context import Memory, TimeSpan, ToolResult
from mcr.language.grammar import split_sentences
from mcr.tools.movers import Mover

SENTENCE_GAP_S = 1.0  # a longer pause than this ends a sentence even without a full stop


@dataclass
class Unit:
    """One place where facts were measured together."""

    ref: str
    kind: str  # speech, frame, look, scene, shot, count, hit
    span: TimeSpan | None
    speech: str = ""
    text: str = ""  # on-screen text, lines joined
    colours: list[tuple[str, float]] = field(default_factory=list)  # (palette name, share), largest first
    objects: list[tuple[str, int]] = field(default_factory=list)  # (label, most seen at once)
    brightness: float | None = None
    count: int | None = None  # how many scenes / shots a count unit says there are
    counted: str = ""
    object_colours: list[tuple[str, list[tuple[str, float]]]] = field(default_factory=list)  # (label, its own colours)
    movers: list[Mover] = field(default_factory=list)  # things measured moving here (`mcr.tools.movers`)
    motion_measured: bool = False  # frames were compared here: no mover means nothing moved
    refers_to: tuple[str, ...] = ()  # the people its speech's "she"/"they" stand for (`language.coreference`)
    of_whole_transcript: bool = False  # a sentence of a transcript of the whole video: what is not in one was never said

    @property
    def entries(self) -> tuple[str, ...]:
        """The context entries it was measured in (a moment joins a sentence's and a frame's: "e4+e26")."""
        return tuple(dict.fromkeys(r for r in self.ref.split("+") if r))

    @property
    def all_text(self) -> str:
        return " ".join(x for x in (self.speech, self.text, " ".join(label for label, _ in self.objects)) if x)

    def where(self) -> str:
        """How a rejection names this unit: 'the transcript at 2.5-5.0 s (e2)'."""
        name = {"speech": "the transcript", "frame": "the frame", "look": "the look", "scene": "the scene",
                "shot": "the shot", "count": "the count", "hit": "the hit"}.get(self.kind, self.kind)
        if self.kind == "frame" and self.span is not None:
            return f"{name} at {self.span.start:.1f} s ({self.ref})"
        span = f" at {self.span.start:.1f}-{self.span.end:.1f} s" if self.span is not None else ""
        return f"{name}{span} ({self.ref})"


def units_of(entry: Any) -> list[Unit]:
    """The units one context entry offers (none for entries that measure nothing)."""
    if isinstance(entry, Memory):
        if entry.facts is not None and entry.facts.get("level") in ("scene", "shot"):  # a summary's scene, typed
            return _summary_item(entry.id, entry.facts)
        return _measured_line(entry.text, entry.id, entry.span)
    if not isinstance(entry, ToolResult):
        return []
    out = entry.output or {}
    reader = _READERS.get(entry.tool)
    return reader(entry.id, out) if reader is not None else []


def _span(value: Any) -> TimeSpan | None:
    if isinstance(value, dict) and "start" in value and "end" in value:
        return TimeSpan(start=float(value["start"]), end=max(float(value["start"]), float(value["end"])))
    return None


def sentences(segments: list[tuple[TimeSpan, str]]) -> list[tuple[TimeSpan, str]]:
    """Transcript segments joined into sentences (see the module docstring)."""
    out: list[tuple[TimeSpan, str]] = []
    open_ = False
    for span, text in segments:
        text = text.strip()
        if not text:
            continue
        if out and open_ and span.start - out[-1][0].end <= SENTENCE_GAP_S:
            prev_span, prev = out[-1]
            out[-1] = (TimeSpan(start=prev_span.start, end=max(prev_span.end, span.end)), f"{prev} {text}")
        else:
            out.append((span, text))
        open_ = not text.endswith((".", "?", "!"))
    return out


def _transcript(ref: str, out: dict) -> list[Unit]:
    segs = [(s, str(g.get("text", ""))) for g in out.get("segments") or [] if (s := _span(g.get("span")))]
    return [Unit(ref, "speech", span, speech=text) for span, text in sentences(sorted(segs, key=lambda x: x[0].start))]


def _objects_of(dets: list[dict]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for d in dets:
        label = str(d.get("label", ""))
        counts[label] = counts.get(label, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


def _colours(items: list[dict]) -> list[tuple[str, float]]:
    return [(str(c["name"]), float(c["share"])) for c in items or [] if "name" in c and "share" in c]


def _look(ref: str, out: dict) -> list[Unit]:
    units = []
    for f in out.get("frames") or []:
        t = float(f.get("t", 0.0))
        units.append(Unit(ref, "frame", TimeSpan(start=t, end=t), text=" ".join(str(x["text"]) for x in f.get("text") or []),
                          colours=_colours(f.get("colours")),
                          objects=_objects_of((f.get("objects") or []) + (f.get("shapes") or [])),  # drawn shapes count too
                          brightness=f.get("brightness"),
                          object_colours=[(str(o.get("label", "")), _colours(o.get("colours")))
                                          for o in (f.get("objects") or []) + (f.get("shapes") or [])
                                          if o.get("colours")]))
    span = _span(out.get("span"))
    if span is not None:
        objects = [(str(o["label"]), int(o["max_in_frame"])) for o in out.get("objects") or []]
        objects += [(str(label), int(n)) for label, n in (out.get("shapes") or {}).items()]
        units.append(Unit(ref, "look", span, text=" ".join(dict.fromkeys(str(x["text"]) for x in out.get("text") or [])),
                          colours=_colours(out.get("colours")), objects=objects, brightness=out.get("brightness"),
                          movers=_movers(out), motion_measured="motion" in (out.get("measured") or [])))
    return units


def _overview(ref: str, out: dict) -> list[Unit]:
    """An overview's frames (as a look's), and each sentence of the transcript's outline with its line's span.

    Why a sentence, not the line: one outline line holds the opening sentences
    of minutes of speech. Read as one unit, a number said in one sentence and
    the question's subject in another "met in one place" — on a 30-minute video
    "eight" from one sentence and "pencil" from the next backed "eight" at
    P 0.85 for "how many pencils does Bertram pack" (said 15 minutes away).
    """
    units = _look(ref, out)
    for line in out.get("outline") or []:
        span = _span(line.get("span"))
        if span is not None and line.get("text"):
            units += [Unit(ref, "speech", span, speech=said) for said in split_sentences(str(line["text"]).rstrip("…"))]
    return units


def _movers(out: dict) -> list[Mover]:
    return [Mover.model_validate(m) for m in out.get("movers") or []]


def _with_speech(base: Unit, speech: str) -> list[Unit]:
    """One unit per sentence said in a scene (each with the scene's pixels), or the scene alone."""
    from dataclasses import replace

    said = split_sentences(speech)
    if not said:
        return [base]
    return [replace(base, speech=s) for s in said]


def _summary_item(ref: str, item: dict) -> list[Unit]:
    """One scene or shot of a summary (a `SpanSummary`, dumped): its typed pixel facts, one unit per sentence."""
    facts: dict[str, Any] = {"colours": _colours(item.get("colours")), "brightness": item.get("brightness")}
    if item.get("objects"):
        facts["objects"] = [(str(o["label"]), int(o["max_in_frame"])) for o in item["objects"]]
        facts["object_colours"] = [(str(o["label"]), _colours(o.get("colours"))) for o in item["objects"]
                                   if o.get("colours")]
    base = Unit(ref, str(item.get("level") or "scene"), _span(item.get("span")),
                text=" ".join(str(x) for x in item.get("ocr") or []), **facts, movers=_movers(item),
                motion_measured=bool(item.get("pixels")))
    return _with_speech(base, str(item.get("speech") or ""))


def _summary(ref: str, out: dict) -> list[Unit]:
    units = []
    for level in ("scenes", "shots"):
        for item in out.get(level) or []:
            units += _summary_item(ref, item)
    if out.get("scenes"):
        units.append(Unit(ref, "count", _span(out.get("span")), count=len(out["scenes"]), counted="scenes"))
    return units


def _segment(ref: str, out: dict) -> list[Unit]:
    shots = out.get("shots") or []
    if out.get("mode", "temporal") != "temporal" or not shots:
        return []
    spans = [s for shot in shots if (s := _span(shot.get("span")))]
    whole = TimeSpan(start=min(s.start for s in spans), end=max(s.end for s in spans)) if spans else None
    # the cuts are what lies between the shots: "how many times does the picture cut" counts these
    return [Unit(ref, "count", whole, count=len(shots), counted="shots"),
            Unit(ref, "count", whole, count=len(shots) - 1, counted="cuts")] + [Unit(ref, "shot", s) for s in spans]


def _hits(ref: str, out: dict) -> list[Unit]:
    units = []
    for hit in (out.get("results") or out.get("spans") or []):
        span, text, source = _span(hit.get("span")), str(hit.get("text") or ""), str(hit.get("source") or "")
        if not text:
            continue
        if source.startswith("transcript"):
            units.append(Unit(ref, "speech", span, speech=text))
        elif source in ("ocr", "caption"):
            units.append(Unit(ref, "hit", span, text=text))
        elif source == "scene" and (hit.get("said") or hit.get("shown") or hit.get("objects")):  # indexed, typed
            base = Unit(ref, "scene", span, text=" ".join(hit.get("shown") or []),
                        objects=[(str(label), 1) for label in hit.get("objects") or []])
            units += _with_speech(base, str(hit.get("said") or ""))
        else:  # a summary or memory line: its "measured:" facts
            units += _measured_line(text, ref, span) or [Unit(ref, "hit", span, speech=text)]
    return units


_SCREEN = re.compile(r'on screen ((?:"[^"]*"(?: / )?)+)')
_SAID = re.compile(r'said "([^"]*)"')
_COLOURS = re.compile(r"colours ((?:[a-z ]+ \d+%(?:, )?)+)")
_BRIGHT = re.compile(r"brightness (\d+(?:\.\d+)?)/100")
_OBJECTS = re.compile(r"objects ((?:[a-z ]+ x\d+ \([\d.]+s\)(?:, )?)+)")
_COUNT = re.compile(r"^(\d+) scene\(s\) in")


def _pixel_facts(line: str) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if m := _COLOURS.search(line):
        facts["colours"] = [(name.strip(), int(pct) / 100) for name, pct in re.findall(r"([a-z ]+?) (\d+)%", m.group(1))]
    if m := _BRIGHT.search(line):
        facts["brightness"] = float(m.group(1))
    if m := _OBJECTS.search(line):
        facts["objects"] = [(label.strip(), int(n)) for label, n in re.findall(r"([a-z ]+?) x(\d+)", m.group(1))]
    return facts


def _measured_line(text: str, ref: str, span: TimeSpan | None) -> list[Unit]:
    """Units from a summary's "measured:" line (a Memory entry or a search hit that quotes one)."""
    if m := _COUNT.match(text.strip()):
        return [Unit(ref, "count", span, count=int(m.group(1)), counted="scenes")]  # the whole-video line
    if "measured:" not in text:
        return []
    screen = _SCREEN.search(text)
    shown = " ".join(re.findall(r'"([^"]*)"', screen.group(1))) if screen else ""
    said = _SAID.search(text)
    base = Unit(ref, "scene", span, text=shown, **_pixel_facts(text))
    return _with_speech(base, said.group(1) if said else "")


_READERS = {"transcribe": _transcript, "look": _look, "summarize": _summary, "segment": _segment,
            "search": _hits, "ground": _hits, "overview": _overview, "skim": _look, "focus": _look}
