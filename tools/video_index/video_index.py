"""`VideoIndex`: the persistent per-video index — open, build (resumably), query, search.

Not to be confused with `mcr.tools.index` (``TextIndex``): that one is built
in memory, each turn, from the text an *episode's context* holds, and dies
with the episode. This one is built once per *video* from the media itself,
stored on disk (`mcr.tools.video_index.store`), keyed so that a changed
setting, library or model never serves stale facts
(`mcr.tools.video_index.key`), and shared by every question, process and entry
point (`mcr run`, `mcr eval` and its Ray workers, `mcr serve`, `mcr mcp`): they
all open the same file.

Usage::

    index = VideoIndex.open("film.mp4")            # finds or creates its file; reads nothing yet
    index.build(progress=print)                    # once per video; resumes a killed build
    index.transcript(TimeSpan(start=60, end=120))  # speech with word times
    index.text_on_screen()                         # what was read wherever the picture changed
    index.change_points(span)                      # times where the picture changed (overview frames)
    index.scenes(); index.chapters(); index.shots()
    index.search("the keeper counts ships", k=5)   # IndexHit(text, span, source, score)

Every query reads only what is committed, so a reader in another process
sees a build's finished chunks while it goes on (``status()`` says how far).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mcr.context import TimeSpan
from mcr.tools.index import Doc
from mcr.model.media.video import VideoInfo, probe
from mcr.tools.video_index.key import index_file, index_key, index_root, key_parts
from mcr.tools.video_index.records import (
    STAGES,
    BuildProgress,
    Chapter,
    Detection,
    IndexHit,
    IndexSettings,
    IndexStatus,
    Scene,
    ScreenText,
    Shot,
    Stage,
    TranscriptSegment,
    Word,
)
from mcr.tools.video_index.store import IndexLocked, IndexStore, blob_to_vec
from mcr.tools.video_index.structure import screen_texts, shots_from_cuts

__all__ = ["VideoIndex", "IndexLocked"]

_open_lock = threading.Lock()
_OPEN: dict[str, VideoIndex] = {}  # one handle per index file in a process (tools, policies, CLI share it)


class VideoIndex:
    """One video's index file. Get it with :meth:`open`; never construct it directly."""

    def __init__(self, video: Path, settings: IndexSettings, store: IndexStore, key: str, info: VideoInfo):
        self.video = video
        self.settings = settings
        self.store = store
        self.key = key
        self.info = info
        self._build_lock = threading.Lock()

    # -- opening ---------------------------------------------------------- #
    @classmethod
    def open(cls, video: str | Path, settings: IndexSettings | None = None, *, root: str | Path | None = None) -> VideoIndex:
        """The index of `video` for `settings` (its file is created empty if new; nothing is built).

        Args:
            root: the folder of index files; default `index_root()` (``$MCR_INDEX_DIR`` or
                ``~/.cache/mcr/index``).

        Raises:
            VideoNotFound, VideoOpenFailure: the video cannot be read.
        """
        video = Path(video).resolve()
        settings = settings or IndexSettings()
        info = probe(video)
        parts = key_parts(video, settings)
        key = index_key(parts)
        path = index_file(Path(root) if root is not None else index_root(), parts["content"], key)
        with _open_lock:
            handle = _OPEN.get(str(path))
            if handle is not None and handle.store.path.exists():
                return handle
            store = IndexStore(path)
            stored = store.get_meta("key_parts")
            if stored is None:
                with store.transaction() as db:
                    store.set_meta(db, "key_parts", parts)
                    store.set_meta(db, "video", {"path": str(video), **info.model_dump(mode="json")})
            elif index_key(stored) != key:  # a file whose name and contents disagree: never trust it
                store.close()
                path.unlink()
                store = IndexStore(path)
                with store.transaction() as db:
                    store.set_meta(db, "key_parts", parts)
                    store.set_meta(db, "video", {"path": str(video), **info.model_dump(mode="json")})
            handle = cls(video, settings, store, key, info)
            _OPEN[str(path)] = handle
            return handle

    @classmethod
    def find(cls, video: str | Path, settings: IndexSettings | None = None, *,
             root: str | Path | None = None) -> VideoIndex | None:
        """The index of `video` for `settings` if its file exists (built, or being built), else None."""
        video = Path(video).resolve()
        settings = settings or IndexSettings()
        parts = key_parts(video, settings)
        path = index_file(Path(root) if root is not None else index_root(), parts["content"], index_key(parts))
        return cls.open(video, settings, root=root) if path.is_file() else None

    @classmethod
    def for_tool(cls, video: str | Path, tool_settings: dict[str, Any] | None) -> VideoIndex:
        """The index a tool's settings imply (`IndexSettings.from_tool_settings`, ``index_dir``)."""
        settings = IndexSettings.from_tool_settings(tool_settings)
        return cls.open(video, settings, root=index_root(tool_settings))

    # -- building --------------------------------------------------------- #
    def build(self, stages: Iterable[Stage] | None = None, progress: Callable[[BuildProgress], None] | None = None,
              *, wait: bool = True, should_stop: Callable[[], bool] | None = None) -> IndexStatus:
        """Build what is missing (all stages, or `stages` and what they need), committing as it goes.

        Re-running it is free when the index is complete; after a killed build
        it continues from the last commit. Another process building the same
        index is waited for (``wait=True``), or `IndexLocked` is raised.

        Args:
            progress: called after every committed chunk (stage, seconds covered, time estimate).
            should_stop: checked between chunks; True stops after the current commit.
        """
        wanted = set(stages or STAGES)
        if "structure" in wanted or "embeddings" in wanted:
            wanted |= {"picture", "speech", "structure"}
        status = self.status()
        if all(status.stages[s].done for s in wanted):
            return status
        from mcr.tools.video_index.picture import run_picture
        from mcr.tools.video_index.speech import run_speech
        from mcr.tools.video_index.structure import run_embeddings, run_structure

        with self._build_lock, self.store.build_lock(wait=wait):
            with self.store.transaction() as db:
                self.store.add_counters(db, {"build_runs": 1})
            embed = _embedder()
            if "picture" in wanted and not run_picture(self.store, self.video, self.info, self.settings, progress,
                                                        should_stop):
                return self.status()
            if "speech" in wanted and not run_speech(self.store, self.video, self.info, self.settings, progress,
                                                      should_stop):
                return self.status()
            if "structure" in wanted:
                run_structure(self.store, self.info.duration, self.settings, embed, progress)
            if "embeddings" in wanted:
                run_embeddings(self.store, self.info.duration, embed, progress, should_stop)
        return self.status()

    def status(self) -> IndexStatus:
        return IndexStatus(key=self.key, path=str(self.store.path), video=str(self.video), duration=self.info.duration,
                           stages=self.store.stages(), counters=self.store.counters(),
                           size_bytes=self.store.size_bytes())

    @property
    def complete(self) -> bool:
        return self.status().complete

    # -- facts ------------------------------------------------------------ #
    def _picture_end(self) -> float:
        stage = self.store.stages()["picture"]
        return self.info.duration if stage.done else stage.until_s

    def picture_covers(self, span: TimeSpan) -> bool:
        """Whether the picture pass has looked at all of `span`: its change points there are all known."""
        return self._picture_end() >= min(span.end, self.info.duration) - 1e-3

    def shots(self, span: TimeSpan | None = None) -> list[Shot]:
        """Shots found so far (the last one ends where the picture pass has reached)."""
        cuts = [t for (t,) in self.store.query("SELECT t FROM cuts ORDER BY t")]
        return [s for s in shots_from_cuts(cuts, self._picture_end()) if _inside(s.span, span)]

    def transcript(self, span: TimeSpan | None = None) -> list[TranscriptSegment]:
        """Speech segments (with word times) overlapping `span`, in time order."""
        lo, hi = (span.start, span.end) if span else (-1.0, float("inf"))
        rows = self.store.query('SELECT data FROM segments WHERE "end" >= ? AND start <= ? ORDER BY start, id', (lo, hi))
        return [TranscriptSegment.model_validate_json(d) for (d,) in rows]

    def words(self, span: TimeSpan | None = None) -> list[Word]:
        """Every recognised word inside `span`."""
        out = []
        for seg in self.transcript(span):
            out += [w for w in seg.words if span is None or (w.end >= span.start and w.start <= span.end)]
        return out

    def text_on_screen(self, span: TimeSpan | None = None) -> list[ScreenText]:
        """What was read on screen at each change point overlapping `span` (captures without text are left out)."""
        cuts = [t for (t,) in self.store.query("SELECT t FROM cuts ORDER BY t")]
        rows = self.store.query("SELECT t, lines FROM captures ORDER BY t")
        texts = screen_texts([(t, json.loads(lines)) for t, lines in rows], cuts, self._picture_end())
        return [st for st in texts if _inside(st.span, span)]

    def change_points(self, span: TimeSpan | None = None) -> list[float]:
        """Times where the picture changed and settled (the first of every shot among them): the frames
        worth showing for an overview of a span, since each differs from the one before."""
        lo, hi = (span.start, span.end) if span else (-1.0, float("inf"))
        return [t for (t,) in self.store.query("SELECT t FROM captures WHERE t >= ? AND t <= ? ORDER BY t", (lo, hi))]

    def detections(self, span: TimeSpan | None = None, label: str | None = None) -> list[Detection]:
        """YOLOv3-tiny detections at the change points inside `span` (optionally one label)."""
        lo, hi = (span.start, span.end) if span else (-1.0, float("inf"))
        out = []
        for (objs,) in self.store.query("SELECT objects FROM captures WHERE t >= ? AND t <= ? ORDER BY t", (lo, hi)):
            out += [Detection.model_validate(d) for d in json.loads(objs) if label is None or d["label"] == label]
        return out

    def scenes(self, span: TimeSpan | None = None) -> list[Scene]:
        """Scenes (after the structure stage; [] before)."""
        rows = self.store.query("SELECT data FROM scenes ORDER BY idx")
        return [s for s in (Scene.model_validate_json(d) for (d,) in rows) if _inside(s.span, span)]

    def chapters(self) -> list[Chapter]:
        rows = self.store.query("SELECT data FROM chapters ORDER BY idx")
        return [Chapter.model_validate_json(d) for (d,) in rows]

    # -- search ----------------------------------------------------------- #
    def search(self, query: str, k: int = 5, sources: Iterable[str] | None = None,
               within: TimeSpan | None = None) -> list[IndexHit]:
        """The `k` indexed texts most like `query` (MiniLM fused with BM25), best first, each with its span.

        Args:
            sources: only these kinds: ``transcript``, ``ocr``, ``scene``, ``chapter``.
            within: only texts overlapping this span.

        Before the structure stage the texts committed so far are searched
        (embedded on the fly); after it, the stored vectors are used.
        """
        from mcr.tools.index import TextIndex

        if not query.strip():
            return []
        texts, vecs = self.documents(sources, within)
        if not texts:
            return []
        index = TextIndex(texts, vectors=vecs)
        hits = index.search(query, k=k) if len(index) else []
        return [IndexHit(text=h.doc.text, span=h.doc.span, source=h.doc.source, score=h.score, dense=h.dense,
                         sparse=h.sparse) for h in hits]

    def documents(self, sources: Iterable[str] | None = None,
                  within: TimeSpan | None = None) -> tuple[list[Doc], np.ndarray | None]:
        """The searchable texts as `mcr.tools.index.Doc`s (origin ``video_index:KEY``) and their stored
        vectors ``(N, dim)`` (None until the embeddings stage is done): for tools that merge them with an
        episode's own evidence in one `TextIndex`."""
        from mcr.tools.index import Doc

        docs, vectors = self._docs()
        wanted = set(sources) if sources is not None else None
        keep = [i for i, (src, span, _t) in enumerate(docs)
                if (wanted is None or src in wanted) and _inside(span, within)]
        out = [Doc(text=docs[i][2], span=docs[i][1], source=docs[i][0], origin=f"video_index:{self.key[:12]}")
               for i in keep]
        return out, (vectors[keep] if vectors is not None else None)

    def _docs(self) -> tuple[list[tuple[str, TimeSpan, str]], np.ndarray | None]:
        stages = self.store.stages()
        if stages["structure"].done:
            rows = self.store.query('SELECT source, start, "end", text, vec FROM docs ORDER BY id')
            docs = [(src, TimeSpan(start=a, end=b), text) for src, a, b, text, _v in rows]
            vectors = None
            if rows and all(v is not None for *_x, v in rows):
                vectors = np.stack([blob_to_vec(v) for *_x, v in rows])  # (N, dim)
            return docs, vectors
        docs = [("transcript", s.span, s.text) for s in self.transcript()]
        docs += [("ocr", st.span, st.text) for st in self.text_on_screen()]
        return docs, None

    def close(self) -> None:
        with _open_lock:
            _OPEN.pop(str(self.store.path), None)
        self.store.close()


def _inside(a: TimeSpan, within: TimeSpan | None) -> bool:
    return within is None or (min(a.end, within.end) > max(a.start, within.start)
                              or within.start <= a.start <= within.end)


def _embedder() -> Callable[[list[str]], np.ndarray] | None:
    from mcr.tools.index import load_embedder

    model = load_embedder()
    return model.encode if model is not None else None
