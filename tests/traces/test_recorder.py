"""The JSONL recorder: durable appends, a reader that survives a torn last line."""

from __future__ import annotations

import pytest

from mcr.traces.recorder import EntryEvent, EpisodeEnd, TornTraceWarning, TraceRecorder, read_trace


def test_events_round_trip_and_entry_ids(tmp_path):
    recorder = TraceRecorder(tmp_path / "sub" / "t.jsonl")
    recorder.write(EntryEvent(node="observe", entry={"id": "e0", "kind": "thought", "text": "hi"}))
    recorder.write(EpisodeEnd(stop_reason="answered", answer="yes", accepted=True))
    events = read_trace(recorder.path)
    assert [e["type"] for e in events] == ["entry", "episode_end"]
    assert events[0]["v"] == 1 and events[1]["answer"] == "yes"
    assert recorder.entry_ids() == {"e0"}


def test_torn_last_line_is_dropped_with_a_warning(tmp_path):
    recorder = TraceRecorder(tmp_path / "t.jsonl")
    recorder.write(EntryEvent(node="observe", entry={"id": "e0"}))
    with open(recorder.path, "a") as handle:
        handle.write('{"v": 1, "type": "entry", "entry": {"id": "e1", "te')  # the process died here
    with pytest.warns(TornTraceWarning, match="torn last line"):
        events = read_trace(recorder.path)
    assert len(events) == 1


def test_damage_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"v": 1, "type": "entry"}\nnot json\n{"v": 1, "type": "entry"}\n')
    with pytest.raises(ValueError, match=":2: not a JSON trace event"):
        read_trace(path)
