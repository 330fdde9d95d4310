"""`search`: look things up — in the episode's evidence, in a task's corpus, or on the web.

* **local** (default) — the same fused embedding + BM25 index grounding uses
  (:mod:`mcr.tools.index`), over the episode's time-aligned text (transcript,
  on-screen text, summaries, memories), the video's persistent index when it
  has one (:mod:`mcr.tools.video_index`, setting ``video_index``), and any corpus the task names in
  ``ctx.settings["corpus"]``: a list of files — plain text / Markdown notes
  (split into paragraphs), ``.json`` transcripts (a ``transcribe`` output or a
  list of ``{span, text}``), ``.srt`` / ``.vtt`` subtitles.
* **web** — DuckDuckGo and friends through ``ddgs``, opt-in per task
  (``ctx.settings["web"] = true``), with a timeout; results are cached by
  query, so asking twice costs one request. Offline, the call fails with a
  ToolError of type ``offline`` and the loop goes on.

Every result says where it came from (``kind``: evidence / corpus / web; the
entry id, file or URL), so the verifier can weigh a transcript line of this
video above a web page.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcr.context import TimeSpan
from mcr.tools.base import Tool, ToolContext, ToolFailure
from mcr.tools.cache import ResultCache
from mcr.tools.index import Doc, IndexEmpty, docs_from_context
from mcr.tools.video_index.for_tools import index_for, merged_index


class SearchInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="what to look for")
    scope: Literal["local", "web", "all"] = Field(
        default="local", description="local: this video's evidence and the task's corpus; web: the internet (if allowed)"
    )
    top_k: int = Field(default=5, ge=1, le=25)
    sources: list[str] | None = Field(
        default=None, description="local: only these kinds, e.g. ['transcript'], ['ocr'], ['summarize', 'memory'], ['corpus']"
    )


class SearchHit(BaseModel):
    text: str
    score: float = Field(description="0..1 fused similarity (local); rank-based for web results")
    kind: Literal["evidence", "corpus", "web"] = Field(description="where it came from, for weighing it")
    source: str = Field(description="transcript, ocr, summary, memory, corpus, web")
    ref: str | None = Field(default=None, description="the context entry (evidence)")
    span: TimeSpan | None = None
    origin: str | None = Field(default=None, description="file path (corpus) or URL (web)")
    title: str | None = None
    # An indexed scene's facts, typed, so that evidence readers never parse them back out of `text`.
    said: str | None = Field(default=None, description="an indexed scene: what is said in it")
    shown: list[str] = Field(default_factory=list, description="an indexed scene: the text read on screen")
    objects: list[str] = Field(default_factory=list, description="an indexed scene: the labels its detector saw")


class SearchOutput(BaseModel):
    query: str
    results: list[SearchHit]
    searched: list[str] = Field(description="what was searched: evidence, video_index, corpus, web")


class WebResults(BaseModel):
    """What the cache keeps for one web query."""

    hits: list[SearchHit]


class SearchTool(Tool):
    name = "search"
    description = (
        "Search the video's evidence (transcript, on-screen text, summaries, memories) and the task's "
        "notes (scope=local), or the web if the task allows it (scope=web). Results say their source."
    )
    Input = SearchInput
    Output = SearchOutput

    def run(self, input: SearchInput, ctx: ToolContext) -> SearchOutput:
        query = input.query.strip()
        if not query:
            raise ToolFailure("the query is empty: say what to look for", "empty_query")
        results: list[SearchHit] = []
        searched: list[str] = []
        if input.scope in ("local", "all"):
            evidence = docs_from_context(ctx.context)
            corpus = load_corpus(ctx.settings.get("corpus") or [])
            video_index = index_for(ctx)
            text_index = merged_index(evidence + corpus, video_index)
            indexed = len(text_index) > len([d for d in evidence + corpus if d.text.strip()])
            searched += (["evidence"] if evidence else []) + (["corpus"] if corpus else [])
            searched += ["video_index"] if indexed else []
            if not len(text_index) and input.scope == "local":
                raise ToolFailure(
                    "nothing to search yet: the episode holds no transcript, on-screen text or summary, the "
                    "video has no index and the task names no corpus — call transcribe or summarize first, "
                    "or build the index (`mcr index VIDEO`)", "no_evidence")
            if len(text_index):
                try:
                    hits = text_index.search(query, k=input.top_k, sources=input.sources)
                except IndexEmpty as exc:
                    raise ToolFailure(str(exc), "index_empty") from None
                results += _with_scene_facts([_local_hit(h.doc, h.score) for h in hits], video_index)
        if input.scope in ("web", "all"):
            results += web_search(query, input.top_k, ctx)
            searched.append("web")
        results.sort(key=lambda h: -h.score)
        return SearchOutput(query=query, results=results[: input.top_k], searched=searched)

    def summarize(self, output: SearchOutput) -> str:
        parts = []
        for i, h in enumerate(output.results, start=1):
            where = h.ref or h.origin or ""
            when = f" {h.span}" if h.span else ""
            parts.append(f"{i}) [{h.kind}/{h.source} {where}{when}] {h.score:.2f} {h.text[:120]!r}")
        return f"'{output.query}' in {', '.join(output.searched) or 'nothing'}: " + ("; ".join(parts) or "no results")

    def span_of(self, input: SearchInput, output: SearchOutput) -> TimeSpan | None:
        top = output.results[0] if output.results else None
        return top.span if top is not None and top.kind == "evidence" else None


def _local_hit(doc: Doc, score: float) -> SearchHit:
    kind = "corpus" if doc.source == "corpus" else "evidence"
    return SearchHit(text=doc.text, score=score, kind=kind, source=doc.source, ref=doc.ref, span=doc.span, origin=doc.origin)


def _with_scene_facts(hits: list[SearchHit], video_index: Any) -> list[SearchHit]:
    """Hits on the video index's scenes, with each scene's speech, screen text and detections typed.

    The index's scenes are read only when a scene is among the hits (once per call).
    """
    indexed = [h for h in hits if h.source == "scene" and h.span and (h.origin or "").startswith("video_index:")]
    if not indexed or video_index is None:
        return hits
    scenes = {(sc.span.start, sc.span.end): sc for sc in video_index.scenes()}
    out = []
    for hit in hits:
        scene = scenes.get((hit.span.start, hit.span.end)) if hit in indexed and hit.span else None
        if scene is not None:
            hit = hit.model_copy(update={"said": scene.speech or None, "shown": list(scene.screen_text),
                                         "objects": list(scene.objects)})
        out.append(hit)
    return out


# --------------------------------------------------------------------------- #
# Corpus files
# --------------------------------------------------------------------------- #

_CUE_TIME = re.compile(r"(\d+):(\d{2}):(\d{2})[.,](\d{3})\s*-->\s*(\d+):(\d{2}):(\d{2})[.,](\d{3})")


def load_corpus(paths: list[str] | str) -> list[Doc]:
    """Documents from the task's corpus files (see the module docstring for formats).

    Raises:
        ToolFailure: ``corpus_not_found`` / ``corpus_unreadable`` naming the file.
    """
    if isinstance(paths, str):
        paths = [paths]
    docs: list[Doc] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_file():
            raise ToolFailure(f"corpus file {path} does not exist: fix tool_settings.search.corpus in the task",
                              "corpus_not_found")
        try:
            text = path.read_text(encoding="utf-8")
            if path.suffix.lower() == ".json":
                docs += _json_docs(json.loads(text), str(path))
            elif path.suffix.lower() in (".srt", ".vtt"):
                docs += _subtitle_docs(text, str(path))
            else:
                docs += [Doc(text=p, source="corpus", origin=str(path)) for p in _paragraphs(text)]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ToolFailure(f"cannot read corpus file {path}: {type(exc).__name__}: {exc}; use UTF-8 text, "
                              "a transcript JSON ({segments: [{span, text}]}) or .srt/.vtt", "corpus_unreadable") from None
    return docs


def _paragraphs(text: str, max_words: int = 80) -> list[str]:
    """Blank-line paragraphs, long ones cut into pieces of at most `max_words` words."""
    out = []
    for para in re.split(r"\n\s*\n", text):
        tokens = para.split()
        for i in range(0, len(tokens), max_words):
            out.append(" ".join(tokens[i : i + max_words]))
    return [p for p in out if p]


def _json_docs(data: Any, origin: str) -> list[Doc]:
    items = data.get("segments", []) if isinstance(data, dict) else data
    docs = []
    for item in items:
        span = item.get("span")
        docs.append(Doc(text=str(item["text"]), span=TimeSpan.model_validate(span) if span else None,
                        source="corpus", origin=origin))
    return docs


def _subtitle_docs(text: str, origin: str) -> list[Doc]:
    docs = []
    for block in re.split(r"\n\s*\n", text.replace("\r", "")):
        match = _CUE_TIME.search(block)
        if not match:
            continue
        g = [int(x) for x in match.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        lines = block[match.end():].strip().splitlines()
        body = " ".join(re.sub(r"<[^>]+>", "", line) for line in lines).strip()
        if body:
            docs.append(Doc(text=body, span=TimeSpan(start=start, end=max(start, end)), source="corpus", origin=origin))
    return docs


# --------------------------------------------------------------------------- #
# The web
# --------------------------------------------------------------------------- #


def web_search(query: str, k: int, ctx: ToolContext) -> list[SearchHit]:
    """``ddgs`` text search, cached by query. Raises ToolFailure when disabled or offline."""
    if ctx.settings.get("web", False) is not True:  # only a YAML true opens the network: "false" is not consent
        raise ToolFailure("web search is off for this task: use scope=local, or set tool_settings.search.web: true "
                          "in the task to allow it", "web_disabled")
    try:
        from ddgs import DDGS
        from ddgs.exceptions import DDGSException
    except ImportError:
        raise ToolFailure("web search needs ddgs: pip install 'internvideo3-mcr[search]'", "web_unavailable") from None
    timeout = int(ctx.settings.get("web_timeout_s", 10))
    backend = str(ctx.settings.get("web_backend", "auto"))
    cache = ResultCache.for_context(ctx)
    key = web_cache_key(cache, query, k, backend)
    cached = cache.get(key, WebResults)
    if cached is not None:
        return cached.hits
    try:
        records = DDGS(proxy=ctx.settings.get("web_proxy"), timeout=timeout).text(query, max_results=k, backend=backend)
    except DDGSException as exc:
        raise ToolFailure(f"web search failed — offline or blocked ({type(exc).__name__}: {exc}); "
                          "use scope=local", "offline") from None
    except OSError as exc:  # DNS / socket errors that slip past ddgs
        raise ToolFailure(f"web search failed — offline ({exc}); use scope=local", "offline") from None
    hits = parse_web_results(records)
    cache.put(key, WebResults(hits=hits))
    return hits


def web_cache_key(cache: ResultCache, query: str, k: int, backend: str = "auto") -> str:
    """Where a web query's hits are cached (by query, count and engine; not by episode)."""
    return cache.key("search_web", None, None, {"query": query, "k": k, "backend": backend})


def parse_web_results(records: list[dict[str, Any]]) -> list[SearchHit]:
    """ddgs result records (text: title/href/body; news: title/url/body/source) → hits.

    Records without a link or any text are dropped; the score falls with the
    rank (0.5, 0.25, 0.17, ...): engines give no comparable score, and a web page
    weighs less than this video's own evidence (local scores reach 1.0).
    """
    hits = []
    for record in records:
        if not isinstance(record, dict):
            continue
        url = record.get("href") or record.get("url") or record.get("link")
        title = str(record.get("title") or "").strip()
        body = str(record.get("body") or record.get("snippet") or record.get("excerpt") or "").strip()
        if not url or not (title or body):
            continue
        text = f"{title}: {body}" if title and body else title or body
        hits.append(SearchHit(text=text, score=round(0.5 / (len(hits) + 1), 4), kind="web", source="web",
                              origin=str(url), title=title or None))
    return hits
