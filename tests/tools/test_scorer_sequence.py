"""Sequences: what happens right after an event, the last step told in other words, cuts counted, and
where an answer is cited.

Questions, options and sentences are written here (none from a suite); the
units are built as the tools write them. The reader needs WordNet.
"""

from __future__ import annotations

import pytest

from mcr.context import Context, Instruction, Observation, Thought, TimeSpan, ToolCall, ToolResult, VideoRef
from mcr.language.lexicon import lexicon_available
from mcr.tools.evidence import build_verifier
from mcr.tools.evidence.asked import asked
from mcr.tools.evidence.checks import option_scores
from mcr.tools.evidence.score import VIOLATED_RELATION_P, scored
from mcr.tools.evidence.units import Unit, units_of

pytestmark = pytest.mark.skipif(not lexicon_available(),
                                reason="needs the Debian packages wordnet-base and wordnet-sense-index")


def _said(ref: str, start: float, end: float, text: str) -> Unit:
    return Unit(ref, "speech", TimeSpan(start=start, end=end), speech=text)


STORY = [
    _said("e2", 1.0, 4.0, "The ferry left the harbour at dawn."),
    _said("e2", 6.0, 9.0, "A gull stole the captain's sandwich."),
    _said("e2", 11.0, 14.0, "The crew found a map in the lighthouse."),
    _said("e2", 16.0, 19.0, "They sailed north towards the islands."),
]
RIGHT_AFTER = ("Which line comes immediately after the one about the lighthouse?",
               ["the gull stole a sandwich", "the crew sailed north", "the ferry left at dawn"])


def test_an_option_said_before_the_event_is_contradicted_even_when_only_its_own_sentence_is_cited():
    q = asked(*RIGHT_AFTER[:1], tuple(RIGHT_AFTER[1]))
    cited = [STORY[1]]  # the answer cites only the gull's sentence, which comes before the lighthouse
    alone = scored(q, RIGHT_AFTER[1], cited, around=STORY)
    assert alone[0].relation == 0.0 and alone[0].p <= VIOLATED_RELATION_P
    everywhere = scored(q, RIGHT_AFTER[1], STORY)
    best = max(everywhere, key=lambda s: s.p)
    assert best.option == "the crew sailed north" and best.relation == 1.0


def test_the_last_step_told_with_pronouns_is_placed_by_its_best_match():
    steps = [
        _said("e3", 0.5, 3.0, "First, Omar washes the lettuce."),
        _said("e3", 4.0, 7.0, "Then he chops two tomatoes."),
        _said("e3", 8.0, 11.0, "At the end he sprinkles them with salt."),
    ]
    options = ["washes the lettuce", "chops the tomatoes", "sprinkles the salad with salt"]
    found = {s.option: s for s in scored(asked("What does the chef do at the very end?", tuple(options)),
                                         options, steps)}
    assert max(found.values(), key=lambda s: s.p).option == "sprinkles the salad with salt"
    assert found["chops the tomatoes"].note.startswith("not the last one")


@pytest.mark.parametrize(("question", "verb"), [
    ("How many times does the footage cut away?", "cut"),
    ("How often is the lighthouse mentioned?", "mention"),
    ("How many times did the camera switch?", "switch"),
])
def test_an_occurrence_question_names_what_occurs_by_its_verb(question, verb):
    q = asked(question, ())
    assert q.counts_occurrences and q.occurrence == verb


def _segment(n_shots: int) -> ToolResult:
    shots = [{"index": i + 1, "span": {"start": 5.0 * i, "end": 5.0 * (i + 1)}} for i in range(n_shots)]
    return ToolResult(id="e5", step=1, tool="segment", output={"mode": "temporal", "shots": shots},
                      span=TimeSpan(start=0.0, end=5.0 * n_shots))


def test_cuts_are_counted_between_shots_and_shots_are_still_counted_as_shots():
    units = units_of(_segment(6))
    options = ["four", "five", "six", "seven"]
    cuts = scored(asked("How many times does the footage cut away?", tuple(options)), options, units)
    assert max(cuts, key=lambda s: s.p).option == "five"
    shots = scored(asked("How many shots does the clip contain?", tuple(options)), options, units)
    assert max(shots, key=lambda s: s.p).option == "six"


def _context_with_a_wide_and_a_narrow_transcript() -> Context:
    ctx = Context()
    ctx.append(Observation(video=VideoRef(path="clip.mp4", duration=600.0),
                           span=TimeSpan(start=0.0, end=600.0), text="a 10-minute clip"))
    ctx.append(Instruction(text="On which day does the parcel arrive, according to the speaker?",
                           options=("Tuesday", "Friday", "Sunday"), video=VideoRef(path="clip.mp4", duration=600.0)))
    wide = [{"span": {"start": 30.0 * i, "end": 30.0 * i + 4.0}, "text": f"Nothing happens in part {i}."}
            for i in range(20)]
    wide[11] = {"span": {"start": 330.0, "end": 334.0}, "text": "The parcel will arrive on Friday."}
    ctx.append(ToolResult(step=1, tool="transcribe", output={"segments": wide}, span=TimeSpan(start=0.0, end=600.0)))
    return ctx  # entries e0 (observation), e1 (instruction), e2 (the whole transcript)


def test_an_answer_cites_the_narrow_entry_that_measured_the_same_fact():
    ctx = _context_with_a_wide_and_a_narrow_transcript()
    friday = [s for s in option_scores(ctx) if s.letter == "B"][0]
    assert friday.refs == ("e2",) and friday.span == TimeSpan(start=330.0, end=334.0)
    narrow = ctx.append(ToolResult(step=2, tool="transcribe",
                                   output={"segments": [{"span": {"start": 330.1, "end": 333.9},
                                                         "text": "The parcel will arrive on Friday."}]},
                                   span=TimeSpan(start=329.5, end=334.5)))
    friday = [s for s in option_scores(ctx) if s.letter == "B"][0]
    assert friday.refs == (narrow.id,)


def test_the_offline_explorer_confirms_a_wide_citation_once_and_never_a_narrow_one():
    from mcr.policies.explore import CONFIRM_WHY, confirming_call
    from mcr.tools import builtin_registry

    ctx = _context_with_a_wide_and_a_narrow_transcript()
    tools = builtin_registry().schemas()
    call = confirming_call(ctx, tools, ("e2",), TimeSpan(start=330.0, end=334.0))
    assert call is not None and call.tool == "transcribe"
    assert call.arguments["span"] == {"start": 329.5, "end": 334.5} and "Friday" in call.arguments["hints"]
    assert confirming_call(ctx, tools, ("e2",), TimeSpan(start=0.0, end=500.0)) is None  # as wide as cited
    ctx.append(Thought(step=2, text=CONFIRM_WHY))
    ctx.append(ToolCall(step=2, tool=call.tool, arguments=call.arguments))
    assert confirming_call(ctx, tools, ("e2",), TimeSpan(start=330.0, end=334.0)) is None  # once per episode


def test_the_verifier_rejects_an_answer_placed_before_the_event_it_must_follow():
    ctx = Context()
    ctx.append(Observation(video=VideoRef(path="clip.mp4", duration=20.0),
                           span=TimeSpan(start=0.0, end=20.0), text="a clip"))
    question, options = RIGHT_AFTER[0], RIGHT_AFTER[1]
    ctx.append(Instruction(text=question, options=tuple(options)))
    segments = [{"span": {"start": u.span.start, "end": u.span.end}, "text": u.speech} for u in STORY]
    ctx.append(ToolResult(step=1, tool="transcribe", output={"segments": segments}, span=TimeSpan(start=0.0, end=20.0)))
    gull = ctx.append(ToolResult(step=2, tool="transcribe", output={"segments": [segments[1]]},
                                 span=TimeSpan(start=5.5, end=9.5)))
    verifier = build_verifier()
    wrong = ctx.propose_answer(step=3, text=options[0], option="A", evidence=(gull.id,))
    verdict = verifier.verify(wrong, ctx)
    assert not verdict.accepted and "lighthouse" in verdict.reason


@pytest.mark.parametrize(("text", "start", "end"), [
    ("from 50:00 until 1:05:00", 3000.0, 3900.0),
    ("1:15:00 - 1:30:30", 4500.0, 5430.0),
    ("between 0:00 and 12:30", 0.0, 750.0),
])
def test_a_range_written_with_hours_is_read_in_seconds(text, start, end):
    from mcr.tools.evidence.match import time_range

    span = time_range(text)
    assert span is not None and (span.start, span.end) == (start, end)


def test_a_count_asked_with_a_pronoun_counts_the_noun_it_stands_for_and_never_the_cuts():
    said = [_said("e2", 0.5, 3.5, "To start, Ilse slices two lemons."), _said("e2", 5.0, 8.0, "She adds ice.")]
    units = said + units_of(_segment(3))  # three shots, two cuts: neither is what is asked
    options = ["one", "two", "three"]
    q = asked("The drink begins with lemons - how many of them are used?", tuple(options))
    assert q.count_target == "lemons"
    best = max(scored(q, options, units), key=lambda s: s.p)
    assert best.option == "two" and best.unit.kind == "speech"


def test_text_read_on_screen_is_matched_by_spelling_not_by_sound():
    from mcr.tools.evidence.score import fact_of

    written = asked("Which weekday is written on the sign?", ("Tuesday", "Friday"))
    sign = Unit("e3", "frame", TimeSpan(start=2.0, end=2.0), text="DUSTY ROAD")
    assert fact_of(written, "Tuesday", sign) == 0.0  # sounds like "dusty", is not written
    assert fact_of(written, "Tuesday", Unit("e3", "frame", sign.span, text="TUESDAY")) == 1.0
    said = asked("Which weekday does the caller mention?", ("Tuesday", "Friday"))
    heard = Unit("e4", "speech", TimeSpan(start=2.0, end=3.0), speech="see you on dusty")  # Whisper mishears
    assert fact_of(said, "Tuesday", heard) == 1.0


def test_an_overview_skim_and_focus_are_read_as_evidence():
    frame = {"t": 40.0, "colours": [{"name": "red", "share": 0.9}], "text": [{"text": "HARBOUR", "box": [0, 0, 9, 9],
                                                                             "score": 0.9}], "objects": []}
    outline = [{"span": {"start": 0.0, "end": 300.0}, "text": "The ferry leaves at dawn. Gulls circle the mast…"}]
    for tool in ("overview", "skim", "focus"):
        output = {"span": {"start": 0.0, "end": 600.0}, "frames": [frame], "frames_used": 1,
                  "outline": outline if tool == "overview" else []}
        units = units_of(ToolResult(step=1, tool=tool, output=output, span=TimeSpan(start=0.0, end=600.0)))
        assert any(u.kind == "frame" and "HARBOUR" in u.text for u in units)
        assert any(u.kind == "speech" and u.speech.endswith("circle the mast") for u in units) == (tool == "overview")


def test_a_different_word_of_shared_letters_read_on_screen_is_not_the_option():
    from mcr.tools.evidence.score import fact_of

    q = asked("Which animal is shown in the photograph?", ("horses", "a dog"))
    title = Unit("e3", "frame", TimeSpan(start=30.0, end=30.0), text="ROSE SHORE")
    assert fact_of(q, "horses", title) == 0.0  # SHORE shares five letters with "horses"
    misread = Unit("e3", "frame", TimeSpan(start=30.0, end=30.0), text="HORSFS")  # one letter misread
    assert fact_of(q, "horses", misread) >= 0.8


def test_a_count_of_the_videos_parts_is_no_count_of_shapes_drawn_in_one_of_them():
    units = units_of(_segment(4))
    options = ["four", "six"]
    q = asked("How many little triangles are painted in the part captioned 'NORTH GATE'?", tuple(options))
    assert all(s.fact == 0.0 for s in scored(q, options, units))
    q = asked("How many shots does the film have?", tuple(options))
    assert max(scored(q, options, units), key=lambda s: s.p).option == "four"


def test_mentions_are_the_count_of_a_how_often_question_with_no_counted_noun():
    said = [_said("e2", 1.0, 3.0, "The kite is red."), _said("e2", 4.0, 6.0, "Birds fly."),
            _said("e2", 7.0, 9.0, "Her kite tangles in a tree.")]
    options = ["once", "twice", "three times"]
    q = asked("How often does the kite come up in what is said?", tuple(options))
    assert max(scored(q, options, said), key=lambda s: s.p).option == "twice"


def test_an_indexed_scene_hit_brings_its_detections_typed_and_they_back_the_option():
    """A search hit from the video index's scene carries what its detector saw; an option found there beats
    one that only resembles another unit in meaning, though neither unit names the question's focus."""
    hit = {"text": "said: the miller sweeps the yard.; on screen: NORTH MILL; objects: sheep, truck", "score": 0.6,
           "kind": "evidence", "source": "scene", "span": {"start": 300.0, "end": 315.0},
           "said": "the miller sweeps the yard.", "shown": ["NORTH MILL"], "objects": ["sheep", "truck"]}
    ref = ToolResult(id="e5", step=1, tool="search", output={"query": "q", "results": [hit], "searched": []})
    units = units_of(ref)
    assert units and units[0].kind == "scene" and [label for label, _ in units[0].objects] == ["sheep", "truck"]
    assert units[0].text == "NORTH MILL" and "miller" in units[0].speech
    q = asked("At one point a photograph fills the screen instead of the coloured card. Which animal is in it?",
              ("a sheep", "a camel", "an owl"))
    elsewhere = _said("e3", 40.0, 44.0, "The coloured card stays on screen while an animal story is told.")
    best = {s.option: s for s in scored(q, list(q.options), units + [elsewhere])}
    assert best["a sheep"].unit is units[0] and best["a sheep"].p > max(best["a camel"].p, best["an owl"].p)


WHEN = ("When do we hear that the ferry left the harbour?",
        ("between 0:00 and 10:00", "between 10:00 and 20:00", "between 20:00 and 30:00"))


def _when_context(question: tuple[str, tuple[str, ...]] = WHEN) -> Context:
    """A 30-minute clip whose whole transcript's outline line holds the ferry somewhere in 150 s."""
    ctx = Context()
    video = VideoRef(path="clip.mp4", duration=1800.0)
    ctx.append(Observation(video=video, span=TimeSpan(start=0.0, end=1800.0), text="a 30-minute clip"))
    ctx.append(Instruction(text=question[0], options=question[1], video=video))
    outline = [{"span": {"start": 480.0, "end": 630.0}, "text": "The weather turned. Then the ferry left the harbour."}]
    ctx.append(ToolResult(step=1, tool="transcribe", output={"segments": outline}, span=TimeSpan(start=0.0, end=1800.0)))
    return ctx


def test_a_when_answer_takes_the_sentence_inside_a_wide_line_and_confirms_a_wide_citation_twice():
    from mcr.policies.explore import CONFIRM_WHY, confirming_call
    from mcr.tools import builtin_registry

    ctx = _when_context()
    question = asked(*WHEN)
    wide = units_of(ctx[2])
    narrow = units_of(ToolResult(step=2, tool="transcribe", output={"segments": [
        {"span": {"start": 603.0, "end": 607.5}, "text": "Then the ferry left the harbour."}]},
        span=TimeSpan(start=479.5, end=630.5)))
    found = scored(question, list(WHEN[1]), wide + narrow)
    best = max(found, key=lambda s: s.p)
    assert best.option == "between 10:00 and 20:00" and best.unit.span == TimeSpan(start=603.0, end=607.5)
    tools = builtin_registry().schemas()
    call = confirming_call(ctx, tools, ("e2",), TimeSpan(start=480.0, end=630.0))  # 150 s: heard again, for "when"
    assert call is not None and call.tool == "transcribe"
    ctx.append(Thought(step=2, text=CONFIRM_WHY))
    ctx.append(ToolCall(step=2, tool=call.tool, arguments=call.arguments))
    second = ctx.append(ToolResult(step=2, tool="transcribe", output={"segments": [
        {"span": {"start": 603.0, "end": 607.5}, "text": "Then the ferry left the harbour."}]},
        span=TimeSpan(start=479.5, end=630.5)))
    again = confirming_call(ctx, tools, (second.id,), TimeSpan(start=603.0, end=607.5))
    assert again is not None and again.arguments["span"] == {"start": 602.5, "end": 608.0}
    ctx.append(Thought(step=3, text=CONFIRM_WHY))
    assert confirming_call(ctx, tools, (second.id,), TimeSpan(start=603.0, end=607.5)) is None  # twice at most


def test_a_question_that_does_not_ask_when_never_re_hears_minutes():
    from mcr.policies.explore import confirming_call
    from mcr.tools import builtin_registry

    ctx = _when_context(("Which boat left the harbour?", ("the ferry", "the yacht")))
    assert confirming_call(ctx, builtin_registry().schemas(), ("e2",), TimeSpan(start=480.0, end=630.0)) is None
