"""The viewer's data and HTML, without a browser: what it shows, how it embeds, how it fails."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import pytest

from mcr.traces.diff import diff_events
from mcr.traces.recorder import read_trace
from mcr.traces.view import (
    MediaResolver,
    ViewerError,
    build_payload,
    build_viewer_html,
    json_for_script,
    load_events,
    write_viewer,
)


def inlined_data(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="mcr-data">(.*?)</script>', html, re.S)
    assert match, "the data element is missing"
    return json.loads(match.group(1))


def payload_of(trace: Path, **limits):
    return build_payload(load_events(trace), trace.name, MediaResolver(trace.parent, **limits))


def test_every_entry_becomes_a_row_grouped_by_step(episodes):
    payload = payload_of(episodes["main"])
    entries = [e["entry"] for e in read_trace(episodes["main"]) if e["type"] == "entry"]
    rows = [row for group in payload.steps for row in group.rows]
    assert [r.id for r in rows] == [e["id"] for e in entries]
    assert [g.step for g in payload.steps] == [0, 1, 2, 3, 4]
    labels = {r.id: r.label for r in rows}
    assert labels["e3"] == "call keyframes" and labels["e9"] == "error keyframes"
    assert labels["e12"] == "rejected" and labels["e15"] == "accepted"
    assert payload.end["accepted"] is True and payload.end["option"] == "C"
    assert payload.question.startswith("How many ships") and payload.options[2] == "seven"


def test_a_resumed_episode_is_noted_at_its_step(episodes, tmp_path):
    events = read_trace(episodes["main"])
    at = next(i for i, e in enumerate(events) if e["type"] == "entry" and e["entry"]["id"] == "e5")
    events.insert(at, {"v": 1, "type": "episode_resumed", "t": events[at]["t"], "thread_id": "viewer-main", "entries_so_far": 5})
    trace = tmp_path / "resumed.jsonl"
    trace.write_text("".join(json.dumps(e) + "\n" for e in events))
    payload = payload_of(trace)
    assert payload.steps[1].notes == ["episode resumed after an interruption (5 entries so far)"]
    assert sum(len(g.rows) for g in payload.steps) == 16


def test_evidence_is_the_accepted_answers_citations(episodes):
    payload = payload_of(episodes["main"])
    rows = {r.id: r for g in payload.steps for r in g.rows}
    assert payload.evidence == ["e8"]
    assert rows["e8"].evidence and rows["e14"].evidence  # the cited result and the accepted answer
    assert not rows["e11"].evidence  # the rejected answer is not final evidence
    assert rows["e8"].span == {"start": 6.0, "end": 12.0}


def test_model_calls_carry_reused_and_prefilled_tokens(episodes):
    payload = payload_of(episodes["main"])
    assert [c.step for c in payload.calls] == [1, 2, 3, 4]
    assert payload.calls[0].cached_tokens == 0 and payload.calls[0].prefilled_tokens == payload.calls[0].prompt_tokens
    assert all(c.cached_tokens + c.prefilled_tokens == c.prompt_tokens for c in payload.calls)
    assert payload.calls[1].cached_tokens > 0 and payload.calls[1].raw_output.startswith("<tool_call>")
    assert [c.step for c in payload.steps[1].calls] == [1]


def test_keyframes_and_overlays_are_embedded_as_data_uris(episodes):
    payload = payload_of(episodes["main"])
    rows = {r.id: r for g in payload.steps for r in g.rows}
    shots = rows["e4"].images
    assert len(shots) == 4 and all(i.embedded and i.src.startswith("data:image/png;base64,") for i in shots)
    assert shots[1].caption == "shots[1].keyframe (6.0–12.0 s)" and shots[1].span == {"start": 6.0, "end": 12.0}
    overlay = rows["e8"].images
    assert len(overlay) == 1 and overlay[0].caption == "overlay"
    png = base64.b64decode(overlay[0].src.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert payload.video.embedded and payload.video.src.startswith("data:video/mp4;base64,")


def test_spans_inside_tool_outputs_become_timeline_parts(episodes):
    payload = payload_of(episodes["main"])
    rows = {r.id: r for g in payload.steps for r in g.rows}
    parts = rows["e4"].parts
    assert [(p.start, p.end) for p in parts] == [(0.0, 6.0), (6.0, 12.0), (12.0, 18.0), (18.0, 24.0)]
    assert parts[1].label == "shots[1]" and rows["e4"].lane == "keyframes" and rows["e8"].lane == "outline"
    assert rows["e8"].parts == [] and rows["e0"].lane == "observation"


def test_transcript_segments_are_labelled_by_their_text(tmp_path):
    output = {"segments": [{"span": {"start": 6.5, "end": 9.4}, "text": "seven ships", "words": [{"word": "seven", "start": 6.5, "end": 7.0}]}]}
    from mcr.traces.view import _scan_output

    images, parts = _scan_output(output, MediaResolver(tmp_path))
    assert images == [] and [(p.start, p.end, p.label) for p in parts] == [(6.5, 9.4, "seven ships")]


def test_strings_that_only_look_like_image_paths_are_harmless(tmp_path):
    from mcr.traces.view import _scan_output

    output = {"a": "x" * 5000 + ".png", "b": "nul\x00.png", "c": "http://example.com/remote.jpg"}
    images, _ = _scan_output(output, MediaResolver(tmp_path))
    assert [i.src for i in images] == [None, None, None]  # missing, never fetched
    assert images[2].note == "missing: http://example.com/remote.jpg"


def test_large_media_is_linked_relative_to_the_html_file(episodes, tmp_path):
    out = tmp_path / "site" / "view.html"
    write_viewer(episodes["main"], out, video_limit=1000, image_limit=10)
    data = inlined_data(out.read_text())
    video_src = data["video"]["src"]
    assert not data["video"]["embedded"] and video_src.startswith("./")
    # the srcs are URLs (a space is %20: the page must load from a folder with a space in its name)
    assert (out.parent / unquote(video_src)).resolve() == Path(read_trace(episodes["main"])[0]["task"]["video"]["path"])
    image = data["steps"][1]["rows"][2]["images"][0]
    assert image["src"].startswith("./") and (out.parent / unquote(image["src"])).resolve().is_file()


def test_embedding_stops_at_the_total_budget(episodes):
    video_size = Path(read_trace(episodes["main"])[0]["task"]["video"]["path"]).stat().st_size
    payload = payload_of(episodes["main"], total_limit=video_size + 1)
    images = [i for g in payload.steps for r in g.rows for i in r.images]
    assert payload.video.embedded and not any(i.embedded for i in images)
    assert all(i.src.startswith("./") for i in images)


def test_missing_media_is_reported_not_fatal(episodes, tmp_path):
    trace = tmp_path / "moved.jsonl"
    events = read_trace(episodes["main"])
    events[0]["task"]["video"]["path"] = "/nowhere/gone.mp4"
    result = next(e for e in events if e["type"] == "entry" and e["entry"]["id"] == "e4")
    result["entry"]["output"]["shots"][0]["keyframe"] = "/nowhere/shot.png"
    trace.write_text("".join(json.dumps(e) + "\n" for e in events))
    payload = payload_of(trace)
    assert payload.video.src is None and payload.video.note == "missing: /nowhere/gone.mp4"
    shots = next(r for g in payload.steps for r in g.rows if r.id == "e4").images
    assert shots[0].src is None and shots[0].note == "missing: /nowhere/shot.png"
    assert all(i.embedded for i in shots[1:])  # the rest still shows


def test_html_is_self_contained_and_admits_only_its_own_script(episodes):
    html = build_viewer_html(episodes["main"])
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    assert "<style>" in html and "{{" not in html.split('id="mcr-data"')[0]


def test_model_output_cannot_break_out_of_the_data_element(episodes):
    html = build_viewer_html(episodes["xss"])
    data_part = html.split('id="mcr-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data_part and ">" not in data_part and "&" not in data_part
    assert "<script>alert(1)</script>" not in html
    assert "alert(1)" in json.dumps(inlined_data(html))  # still there, as data


def test_the_title_is_escaped(episodes, tmp_path):
    events = read_trace(episodes["main"])
    events[0]["task"]["question"] = "</title><script>alert(3)</script>?"
    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(json.dumps(e) + "\n" for e in events))
    html = build_viewer_html(trace)
    assert "<title>MCR trace — &lt;/title&gt;&lt;script&gt;alert(3)&lt;/script&gt;?</title>" in html
    assert "<script>alert(3)" not in html


def test_json_for_script_escapes_tag_breakers_and_line_separators():
    text = json_for_script({"a": "</script><!-- & \u2028 \u2029"})
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == {"a": "</script><!-- & \u2028 \u2029"}


def test_placeholders_inside_data_are_not_expanded(episodes, tmp_path):
    events = read_trace(episodes["main"])
    events[0]["task"]["question"] = "What is {{JS}} and {{CSP}}?"
    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(json.dumps(e) + "\n" for e in events))
    html = build_viewer_html(trace)
    assert inlined_data(html)["question"] == "What is {{JS}} and {{CSP}}?"
    assert html.count("use strict") == 1


def test_diff_finds_the_first_differing_event(episodes):
    a, b = read_trace(episodes["main"]), read_trace(episodes["variant"])
    view = diff_events(a, b, "main", "variant")
    first = view.first
    assert view.same_task and first is not None
    assert a[first]["type"] == "entry" and a[first]["entry"]["id"] == "e6"  # the outline call's span differs
    assert all(r.same for r in view.rows[:first]) and not view.rows[first].same
    assert "6.0" in view.rows[first].a and "12.0" in view.rows[first].b
    assert view.rows[first].where == "entry.arguments.span.start" and view.note.endswith("(entry.arguments.span.start)")
    answer = next(r for r in view.rows if r.a and r.a.startswith("e14 answer"))
    assert not answer.same and answer.where == "entry.span.start"  # same text, different evidence span
    assert diff_events(a, a).first is None and diff_events(a, a).note.startswith("identical")


def test_diff_of_different_tasks_warns_and_marks_missing_events(episodes):
    a, b = read_trace(episodes["main"]), read_trace(episodes["xss"])
    b[0]["task"]["question"] = "Another question?"
    view = diff_events(a, b)
    assert view.same_task is False and "not of the same task" in view.note
    assert view.first == 0 and len(view.rows) == len(a) > len(b)
    assert view.rows[-1].b is None and view.rows[-1].a.startswith("end: answered") and view.rows[-1].where == "(missing)"


def test_viewer_with_diff_inlines_both(episodes, tmp_path):
    out = write_viewer(episodes["main"], tmp_path / "d.html", other=episodes["variant"])
    data = inlined_data(out.read_text())
    assert data["diff"]["first"] is not None and data["diff"]["b_name"] == "variant.jsonl"


def test_default_output_path_is_beside_the_trace(episodes, tmp_path):
    trace = tmp_path / "copy.jsonl"
    shutil.copy(episodes["main"], trace)
    out = write_viewer(trace)
    assert out == tmp_path / "copy.html" and out.stat().st_size > 100_000


def test_torn_last_line_is_tolerated(episodes, tmp_path):
    trace = tmp_path / "torn.jsonl"
    trace.write_text(episodes["main"].read_text() + '{"v": 1, "type": "entry", "entry": {"id": "e1')
    with pytest.warns(UserWarning, match="torn last line"):
        data = inlined_data(build_viewer_html(trace))
    assert data["end"]["accepted"] is True


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "does not exist"),
        ("", "does not start with an episode_start"),
        ('{"v": 1, "type": "entry"}\n', "does not start with an episode_start"),
        ("[1, 2]\n[3]\n", "not a trace event"),  # read_trace refuses a line that is not an event object
        ("garbage\n{}\n", "not a readable MCR trace"),
    ],
)
def test_files_that_are_not_traces_are_refused_with_a_clear_error(tmp_path, content, match):
    trace = tmp_path / "bad.jsonl"
    if content is not None:
        trace.write_text(content)
    with pytest.raises(ViewerError, match=match):
        build_viewer_html(trace)


def test_a_malformed_event_names_its_position(episodes, tmp_path):
    events = read_trace(episodes["main"])
    events[3]["entry"] = {"id": "e2", "kind": "thought"}  # no text
    trace = tmp_path / "bad.jsonl"
    trace.write_text("".join(json.dumps(e) + "\n" for e in events))
    with pytest.raises(ViewerError, match=r"event 4 \(entry\) is malformed"):
        build_viewer_html(trace)


def test_a_bad_diff_trace_is_refused(episodes, tmp_path):
    with pytest.raises(ViewerError, match="does not exist"):
        build_viewer_html(episodes["main"], tmp_path / "missing.jsonl")
