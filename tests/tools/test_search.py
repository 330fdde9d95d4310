"""`search`: local search over the sample's real transcript and a task corpus, web search
opt-in with a clear offline error, the ddgs record parser, and typed errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcr.context import Context, Instruction, TimeSpan, ToolCall, ToolResult, VideoRef
from mcr.tools.asr import TranscribeTool
from mcr.tools.base import ToolContext, ToolFailure
from mcr.tools.cache import ResultCache
from mcr.tools.search import SearchHit, SearchTool, WebResults, load_corpus, parse_web_results, web_cache_key

DATA = Path(__file__).parent / "data"
UNREACHABLE_PROXY = "http://127.0.0.1:9"  # nothing listens there: web calls fail at once, never reach a network


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "reasoning-agent" / "artifacts"  # shared with the other reasoning-tool tests


@pytest.fixture(scope="module")
def evidence(sample_mp4, workdir) -> Context:
    video = VideoRef(path=str(sample_mp4), duration=24.0)
    ctx = Context()
    ctx.append(Instruction(text="What does the narrator say about the morning?", video=video))
    out = TranscribeTool()({}, ToolContext(context=ctx, video=video, workdir=workdir))
    call = ctx.append(ToolCall(tool="transcribe"))
    ctx.append(ToolResult(tool="transcribe", refs=(call.id,), output=out.model_dump(mode="json")))
    return ctx


def _tc(ctx: Context, workdir: Path, **settings) -> ToolContext:
    return ToolContext(context=ctx, video=ctx.instruction.video, workdir=workdir, settings=settings)


def test_local_search_returns_the_transcript_segment(evidence, workdir, sample_facts):
    result = evidence.results_of("transcribe")[-1]
    for seg in result.output["segments"]:
        out = SearchTool()({"query": seg["text"], "top_k": 3}, _tc(evidence, workdir))
        top = out.results[0]
        assert (top.kind, top.source, top.ref) == ("evidence", "transcript", result.id)
        assert top.text == seg["text"] and top.span == TimeSpan.model_validate(seg["span"])
    # The generator's sentence for the morning scene finds the line ASR heard there.
    morning = sample_facts["scenes"][2]["narration"]
    top = SearchTool()({"query": morning["text"]}, _tc(evidence, workdir)).results[0]
    assert top.span.iou(TimeSpan(start=morning["start"], end=morning["end"])) >= 0.5
    assert out.searched == ["evidence"]


def test_corpus_files_are_searched_with_their_origin(evidence, workdir, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# Keeper's log\n\nThe keeper logs every ship that passes the cliff.\n\n"
                     "Barley is sown in spring and harvested in late summer.\n")
    other = tmp_path / "other_video.json"
    other.write_text(json.dumps({"segments": [{"span": {"start": 3, "end": 5}, "text": "the harbour bell rings twice"}]}))
    subs = tmp_path / "film.srt"
    subs.write_text("1\n00:00:01,000 --> 00:00:02,500\n<i>Lanterns glow</i> over the bay\n\n"
                    "2\n00:01:00,000 --> 00:01:03,000\nThe ferry leaves at dawn\n")
    tc = _tc(evidence, workdir, corpus=[str(notes), str(other), str(subs)])
    hit = SearchTool()({"query": "when is barley harvested"}, tc).results[0]
    assert (hit.kind, hit.source, hit.origin) == ("corpus", "corpus", str(notes))
    hit = SearchTool()({"query": "harbour bell"}, tc).results[0]
    assert hit.origin == str(other) and hit.span == TimeSpan(start=3, end=5)
    hit = SearchTool()({"query": "ferry at dawn"}, tc).results[0]
    assert hit.text == "The ferry leaves at dawn" and hit.span == TimeSpan(start=60, end=63)
    assert len(load_corpus([str(notes)])) == 3  # heading + two paragraphs


def test_corpus_alone_is_enough_and_bad_corpus_files_are_typed(workdir, tmp_path):
    notes = tmp_path / "n.txt"
    notes.write_text("Seven ships were counted on the night watch.")
    empty = Context([Instruction(id="e0", text="q")])
    out = SearchTool()({"query": "ships"}, _tc(empty, workdir, corpus=str(notes)))
    assert out.searched == ["corpus"] and out.results[0].kind == "corpus"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for paths, kind in (([str(tmp_path / "missing.txt")], "corpus_not_found"), ([str(bad)], "corpus_unreadable")):
        with pytest.raises(ToolFailure) as info:
            SearchTool()({"query": "ships"}, _tc(empty, workdir, corpus=paths))
        assert info.value.error_type == kind and str(paths[0]) in str(info.value)


def test_typed_errors_for_empty_query_and_no_evidence(evidence, workdir):
    with pytest.raises(ToolFailure) as info:
        SearchTool()({"query": "  "}, _tc(evidence, workdir))
    assert info.value.error_type == "empty_query"
    with pytest.raises(ToolFailure) as info:
        SearchTool()({"query": "ships"}, _tc(Context([Instruction(id="e0", text="q")]), workdir))
    assert info.value.error_type == "no_evidence" and "transcribe" in str(info.value)
    with pytest.raises(ToolFailure) as info:
        SearchTool()({"query": "ships", "sources": ["corpus"]}, _tc(evidence, workdir))
    assert info.value.error_type == "index_empty" and "transcript" in str(info.value)  # says what there is


def test_web_is_opt_in(evidence, workdir):
    with pytest.raises(ToolFailure) as info:
        SearchTool()({"query": "lighthouse", "scope": "web"}, _tc(evidence, workdir))
    assert info.value.error_type == "web_disabled" and "web: true" in str(info.value)


def test_web_offline_is_a_clear_error(evidence, workdir, tmp_path):
    tc = ToolContext(context=evidence, workdir=tmp_path, settings={"web": True, "web_proxy": UNREACHABLE_PROXY,
                                                                  "web_timeout_s": 3})
    with pytest.raises(ToolFailure) as info:
        SearchTool()({"query": "red lighthouse northern cliff", "scope": "web"}, tc)
    assert info.value.error_type == "offline" and "scope=local" in str(info.value)


def test_parser_on_recorded_ddgs_records():
    records = json.loads((DATA / "ddgs_text_records.json").read_text())
    hits = parse_web_results(records)
    assert [h.origin for h in hits] == [
        "https://en.wikipedia.org/wiki/Lighthouse",
        "https://en.wikipedia.org/wiki/Lighthouse_keeper",
        "https://example.org/news/red-lighthouse-reopens",  # a news record: 'url', not 'href'
    ]
    assert hits[0].text.startswith("Lighthouse - Wikipedia: A lighthouse is a tower")
    assert all(h.kind == "web" and h.source == "web" for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True) and hits[0].score <= 0.5


def test_web_results_are_cached_and_rank_below_strong_local_evidence(evidence, workdir, tmp_path):
    """A cached query needs no network (the proxy would fail it); local evidence outranks the web."""
    tc = ToolContext(context=evidence, video=evidence.instruction.video, workdir=workdir,
                     settings={"web": True, "web_proxy": UNREACHABLE_PROXY})
    seg = evidence.results_of("transcribe")[-1].output["segments"][2]
    hits = parse_web_results(json.loads((DATA / "ddgs_text_records.json").read_text()))
    ResultCache.for_context(tc).put(web_cache_key(ResultCache.for_context(tc), seg["text"], 5), WebResults(hits=hits))
    out = SearchTool()({"query": seg["text"], "scope": "all"}, tc)
    assert out.searched == ["evidence", "web"]
    assert out.results[0].kind == "evidence" and out.results[0].text == seg["text"]
    assert any(isinstance(h, SearchHit) and h.kind == "web" for h in out.results)


def test_a_word_the_asr_misheard_is_still_found_by_its_sound(monkeypatch):
    """Whisper tiny wrote "carves" for "scarves" in a real 60-minute needle (RESULTS, "Long videos"): BM25 alone
    misses it and the embedding prefers a title about velvet; the sound-alike term finds the sentence."""
    from mcr.tools import index as text_index
    from mcr.tools.index import Doc, TextIndex

    docs = [Doc(text="VELVET WOODS", span=TimeSpan(start=60.0, end=75.0), source="ocr"),
            Doc(text="A weaver sells bread in the square.", span=TimeSpan(start=100.0, end=104.0), source="transcript"),
            Doc(text="a daily packed five carves for the journey.", span=TimeSpan(start=1411.0, end=1414.7),
                source="transcript"),
            Doc(text="The rain kept falling on the harbour.", span=TimeSpan(start=200.0, end=204.0), source="transcript")]
    assert TextIndex(docs, embedder=False).search("scarves Ottilie", k=1)[0].doc.span.start == 1411.0
    assert TextIndex(docs, embedder=False).search("train", k=1)[0].sparse == 0.0  # short words: no sound-alikes
    monkeypatch.setattr(text_index, "HEARD_ALIKE", 1.01)  # exact tokens only, as before
    assert TextIndex(docs, embedder=False).search("scarves Ottilie", k=1)[0].sparse == 0.0
