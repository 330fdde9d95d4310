"""The hierarchy (video → chapters → scenes → shots) and the searchable texts with their vectors.

Runs after the picture and speech passes, from what they stored (no media is
read again):

* **shots** — between consecutive cuts;
* **scenes** — runs of consecutive shots whose first captures' colour
  histograms correlate at least ``scene_similarity`` (the rule `summarize`
  uses for keyframes), each with what is said, read and detected in it;
* **chapters** — consecutive scenes grouped to about ``chapter_s`` seconds,
  cut at the scene boundary where the two sides' texts are least alike
  (MiniLM), so a chapter tends to hold one topic;
* **docs** — every transcript segment, every capture's screen text, every
  scene and chapter line: what `VideoIndex.search` ranks. The embeddings
  stage gives each a MiniLM vector, committed a batch at a time.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from mcr.context import TimeSpan
from mcr.tools.video_index.records import BuildProgress, Chapter, Scene, ScreenText, Shot, TextLine, TranscriptSegment
from mcr.tools.video_index.store import IndexStore, Stopwatch, vec_to_blob

EMBED_BATCH = 128
_SCENE_SPEECH_CHARS = 400
_CHAPTER_CHARS = 600


def shots_from_cuts(cuts: list[float], end: float) -> list[Shot]:
    """Shots between consecutive cuts, from 0 to `end`."""
    edges = [0.0] + [c for c in sorted(cuts) if 0 < c < end] + [end]
    return [Shot(index=i, span=TimeSpan(start=round(a, 3), end=round(b, 3)))
            for i, (a, b) in enumerate(zip(edges, edges[1:]), start=1) if b > a]


def screen_texts(captures: list[tuple[float, list[dict[str, Any]]]], cuts: list[float], end: float) -> list[ScreenText]:
    """Each capture's lines, on screen from the capture until the next capture or cut."""
    times = sorted({t for t, _ in captures} | {c for c in cuts if c > 0} | {end})
    out = []
    for t, lines in captures:
        if not lines:
            continue
        following = next((x for x in times if x > t + 1e-6), end)
        out.append(ScreenText(t=t, span=TimeSpan(start=t, end=max(t, min(following, end))),
                              lines=[TextLine.model_validate(line) for line in lines]))
    return out


def group_scenes(shots: list[Shot], first_hist: dict[int, np.ndarray], threshold: float) -> list[list[int]]:
    """Runs of consecutive shot indices whose first captures' histograms correlate ≥ threshold."""
    import cv2

    groups: list[list[int]] = []
    prev = None
    for shot in shots:
        hist = first_hist.get(shot.index)
        same = hist is not None and prev is not None and cv2.compareHist(prev, hist, cv2.HISTCMP_CORREL) >= threshold
        if groups and same:
            groups[-1].append(shot.index)
        else:
            groups.append([shot.index])
        prev = hist if hist is not None else prev
    return groups


def _overlaps(a: TimeSpan, b: TimeSpan) -> bool:
    return min(a.end, b.end) > max(a.start, b.start) or a.start == b.start


def build_scenes(shots: list[Shot], groups: list[list[int]], speech: list[TranscriptSegment],
                 screen: list[ScreenText], objects: list[tuple[float, str]]) -> list[Scene]:
    by_index = {s.index: s for s in shots}
    scenes = []
    for i, members in enumerate(groups, start=1):
        span = TimeSpan(start=by_index[members[0]].span.start, end=by_index[members[-1]].span.end)
        said = " ".join(s.text for s in speech if span.start <= (s.span.start + s.span.end) / 2 < span.end)
        read = list(dict.fromkeys(st.text for st in screen if span.start <= st.t < span.end))
        seen = [label for label, _ in Counter(lb for t, lb in objects if span.start <= t < span.end).most_common(5)]
        parts = []
        if said:
            parts.append(f"said: {said[:_SCENE_SPEECH_CHARS]}")
        if read:
            parts.append("on screen: " + " | ".join(read)[:_SCENE_SPEECH_CHARS])
        if seen:
            parts.append("objects: " + ", ".join(seen))
        scenes.append(Scene(index=i, span=span, shots=members, speech=said, screen_text=read, objects=seen,
                            text="; ".join(parts) or "no speech, text or objects measured"))
    return scenes


def build_chapters(scenes: list[Scene], target_s: float, embed: Callable[[list[str]], np.ndarray] | None) -> list[Chapter]:
    """Consecutive scenes, about `target_s` long each, cut where neighbouring texts are least alike."""
    if not scenes:
        return []
    total = scenes[-1].span.end - scenes[0].span.start
    count = max(1, round(total / target_s))
    cuts: list[int] = []  # a chapter starts at these scene positions
    if count > 1 and len(scenes) > 1:
        dissimilar = np.zeros(len(scenes))
        if embed is not None:
            vecs = embed([s.text for s in scenes])  # (S, dim)
            dissimilar[1:] = 1.0 - np.sum(vecs[1:] * vecs[:-1], axis=1)
        for k in range(1, count):  # near each ideal boundary, the most dissimilar scene start
            ideal = scenes[0].span.start + k * total / count
            window = [i for i in range(1, len(scenes))
                      if abs(scenes[i].span.start - ideal) <= total / count / 2 and i not in cuts]
            if window:
                cuts.append(max(window, key=lambda i: (dissimilar[i], -abs(scenes[i].span.start - ideal))))
    bounds = [0] + sorted(set(cuts)) + [len(scenes)]
    chapters = []
    for n, (a, b) in enumerate(zip(bounds, bounds[1:]), start=1):
        members = scenes[a:b]
        if not members:
            continue
        text = " / ".join(s.text for s in members)
        chapters.append(Chapter(index=n, span=TimeSpan(start=members[0].span.start, end=members[-1].span.end),
                                scenes=[s.index for s in members], text=text[:_CHAPTER_CHARS]))
    return chapters


def run_structure(store: IndexStore, duration: float, settings: Any,
                  embed: Callable[[list[str]], np.ndarray] | None,
                  report: Callable[[BuildProgress], None] | None = None) -> None:
    if store.stages()["structure"].done:
        return
    clock = Stopwatch()
    cuts = [t for (t,) in store.query("SELECT t FROM cuts ORDER BY t")]
    rows = store.query("SELECT t, hist, lines, objects FROM captures ORDER BY t")
    shots = shots_from_cuts(cuts, duration)
    first_hist: dict[int, np.ndarray] = {}
    objects: list[tuple[float, str]] = []
    for t, hist, _lines, objs in rows:
        shot = next((s.index for s in shots if s.span.start <= t < s.span.end), shots[-1].index if shots else 0)
        if shot not in first_hist and hist is not None:
            first_hist[shot] = np.frombuffer(hist, np.float32)
        objects += [(t, d["label"]) for d in json.loads(objs)]
    screen = screen_texts([(t, json.loads(lines)) for t, _h, lines, _o in rows], cuts, duration)
    speech = [TranscriptSegment.model_validate_json(d) for (d,) in store.query("SELECT data FROM segments ORDER BY start")]
    scenes = build_scenes(shots, group_scenes(shots, first_hist, settings.scene_similarity), speech, screen, objects)
    chapters = build_chapters(scenes, settings.chapter_s, embed)
    docs = ([("transcript", s.span, s.text) for s in speech]
            + [("ocr", st.span, st.text) for st in screen]
            + [("scene", s.span, s.text) for s in scenes]
            + [("chapter", c.span, c.text) for c in chapters])
    with store.transaction() as db:
        for table in ("scenes", "chapters", "docs"):
            db.execute(f"DELETE FROM {table}")
        db.executemany('INSERT INTO scenes(idx, start, "end", data) VALUES (?, ?, ?, ?)',
                       [(s.index, s.span.start, s.span.end, s.model_dump_json()) for s in scenes])
        db.executemany('INSERT INTO chapters(idx, start, "end", data) VALUES (?, ?, ?, ?)',
                       [(c.index, c.span.start, c.span.end, c.model_dump_json()) for c in chapters])
        db.executemany('INSERT INTO docs(source, start, "end", text) VALUES (?, ?, ?, ?)',
                       [(src, span.start, span.end, text) for src, span, text in docs if text.strip()])
        store.set_stage(db, "structure", until_s=duration, seconds=clock.lap(), done=True)
    if report is not None:
        report(BuildProgress(stage="structure", done_s=duration, total_s=duration, elapsed_s=0.0, eta_s=0.0))


def run_embeddings(store: IndexStore, duration: float, embed: Callable[[list[str]], np.ndarray] | None,
                   report: Callable[[BuildProgress], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> bool:
    """Give every doc its vector, a batch per commit; without the embedder, search is BM25 only."""
    if store.stages()["embeddings"].done:
        return True
    clock = Stopwatch()
    total = store.query("SELECT COUNT(*) FROM docs")[0][0]
    while embed is not None:
        rows = store.query("SELECT id, text FROM docs WHERE vec IS NULL ORDER BY id LIMIT ?", (EMBED_BATCH,))
        if not rows:
            break
        began = time.perf_counter()
        vecs = embed([text for _, text in rows])  # (B, dim)
        spent = time.perf_counter() - began
        with store.transaction() as db:
            db.executemany("UPDATE docs SET vec = ? WHERE id = ?", [(vec_to_blob(v), i) for (i, _), v in zip(rows, vecs)])
            store.add_counters(db, {"texts_embedded": len(rows), "embed_s": spent})
            store.set_stage(db, "embeddings", until_s=0.0, seconds=clock.lap())
        if report is not None:
            left = store.query("SELECT COUNT(*) FROM docs WHERE vec IS NULL")[0][0]
            report(BuildProgress(stage="embeddings", done_s=duration * (total - left) / max(1, total),
                                 total_s=duration, elapsed_s=0.0, eta_s=None))
        if should_stop is not None and should_stop():
            return False
    with store.transaction() as db:
        store.set_stage(db, "embeddings", until_s=duration, seconds=clock.lap(), done=True)
    return True
