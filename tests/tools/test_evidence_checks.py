"""The connection, rival and span checks on real tool outputs (Whisper, OCR, YOLO, colours on the truth suite's v1-v6).

The entries come from the labelled set's data file (`benchmarks/make_verifier_set.py`
ran the real tools on the suite's videos); the questions are written here, some
in the suite's style and some in other words, never copied from it, so the
scorer is exercised as a user's own question would. The question is read by
`mcr.language.read_question`; the weights are the fitted ones (`weights.json`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest

from mcr.context import Context, Instruction, Thought, VideoRef
from mcr.language.lexicon import lexicon_available
from mcr.tools.evidence import build_verifier
from mcr.tools.evidence.checks import evidence_connection, rival_options, span_consistency
from mcr.tools.evidence.match import (HEARD_AS_FUNCTION_WORD, best_similarity, ciede2000, colour_distance, colour_of,
                                      similarity, sound_key, tokens)
from mcr.tools.evidence.score import MIN_WORD
from mcr.tools.evidence.units import sentences, units_of
from mcr.context import TimeSpan

needs_wordnet = pytest.mark.skipif(not lexicon_available(),  # the question reader and the scorer read words by WordNet
                                   reason="needs the Debian packages wordnet-base and wordnet-sense-index")

DATA = Path(__file__).parent / "data" / "verifier_set.json"
connection, rival, span_check = evidence_connection(), rival_options(), span_consistency()


@lru_cache(maxsize=1)
def _videos() -> dict:
    return json.loads(DATA.read_text())["videos"]


def _ctx(video: str, question: str, options: list[str] | None = None) -> Context:
    entries = _videos()[video]
    ctx = Context([Instruction(id="e0", text=question, options=tuple(options) if options else None,
                               video=VideoRef(path=f"examples/suites/truth/media/{video}.mp4"))])
    ctx.extend_existing(entries[1:])
    return ctx


def _ids(video: str, tool: str) -> list[str]:
    return [e["id"] for e in _videos()[video] if e["kind"] == "tool_result" and e["tool"] == tool]


def _propose(ctx: Context, text: str, option: str | None, refs: list[str]):
    return ctx.append(ctx.propose_answer(step=1, text=text, option=option, evidence=refs))


# --------------------------------------------------------------------------- #
# Matching: measured ASR confusions, colours
# --------------------------------------------------------------------------- #


def test_word_similarity_tolerates_what_whisper_wrote_for_espeak_speech():
    assert sound_key("kettles") == sound_key("caddles") != sound_key("candles")
    assert similarity("kettles", "caddles") > similarity("candles", "caddles")  # heard "Caddles" for kettles
    assert similarity("tomas", "thomas") > 0.9 and similarity("sofia", "sophie") == 1.0
    heard = tokens("Thomas Count's Free Caddles.")
    assert heard == ["thomas", "counts", "free", "caddles"]
    counts = ["two", "three", "four", "five", "six", "seven", "eight", "nine"]
    assert max(counts, key=lambda w: best_similarity(w, heard)[0]) == "three"
    # a stopword that sounds the same still counts, but less than the word itself
    assert MIN_WORD <= best_similarity("four", tokens("Ines buys for kettles"))[0] == HEARD_AS_FUNCTION_WORD < 1.0
    said = tokens("The porter carried nine lanterns for the guests")
    assert best_similarity("nine", said)[0] > best_similarity("four", said)[0]
    assert best_similarity("three", tokens("at the bakery"))[0] < 0.65  # never "the" for three
    assert tokens("Lena counts 7 candles") == ["lena", "counts", "seven", "candles"]
    assert best_similarity("ines", tokens("in these buys"))[0] >= 0.7  # two heard words run together (0.73)


def test_colour_distance_is_ciede2000():
    # Sharma, Wu and Dalal (2005), pairs 1 and 17 of their test data.
    assert ciede2000((50, 2.6772, -79.7751), (50, 0, -82.7485)) == pytest.approx(2.0425, abs=1e-4)
    assert ciede2000((50, 2.5, 0), (73, 25, -18)) == pytest.approx(27.1492, abs=1e-4)
    dark_blue, purple = colour_of("dark blue"), colour_of("purple")
    assert colour_distance(colour_of("navy"), dark_blue) < colour_distance(colour_of("navy"), purple)
    assert colour_distance(colour_of("white"), colour_of("light grey")) < 10
    assert colour_of("the sky") is None


def test_units_join_a_sentence_whisper_cut_at_a_pause():
    spans = [(TimeSpan(start=0.5, end=1.7), "At the bakery,"), (TimeSpan(start=2.5, end=5.0), "Thomas counts three."),
             (TimeSpan(start=6.1, end=10.0), "Oscar buys seven candles.")]
    joined = sentences(spans)
    assert [t for _, t in joined] == ["At the bakery, Thomas counts three.", "Oscar buys seven candles."]
    assert joined[0][0] == TimeSpan(start=0.5, end=5.0)
    ctx = _ctx("v1", "q")
    kinds = {u.kind for ref in ("e2", "e4", "e6", "e7", "e12") for u in units_of(ctx.get(ref))}
    assert kinds == {"speech", "count", "shot", "scene", "frame", "look"}
    assert units_of(Thought(text="I think it is green")) == []


# --------------------------------------------------------------------------- #
# evidence_connection
# --------------------------------------------------------------------------- #

SPEECH_Q = "According to the narration, what does Tomas count at the bakery?"
ITEMS = ["candles", "apples", "ropes", "kettles"]


@needs_wordnet
def test_connection_accepts_the_misheard_right_answer_and_names_what_to_fetch():
    ctx = _ctx("v1", SPEECH_Q, ITEMS)
    transcript = _ids("v1", "transcribe")
    assert connection(_propose(ctx, "kettles", "D", transcript), ctx) == (True, "")  # heard "Caddles"
    ok, reason = connection(_propose(ctx, "ropes", "C", transcript), ctx)
    assert not ok and "backs option D (kettles), not C (ropes), at the transcript at 0.5-5.0 s (e2)" in reason
    ctx = _ctx("v1", SPEECH_Q, ["lanterns", "apples", "ropes", "baskets"])  # nothing like what was said
    ok, reason = connection(_propose(ctx, "ropes", "C", transcript), ctx)
    assert not ok and "ground 'tomas bakery'" in reason.lower()  # no cited unit holds the option
    looks = _ids("v1", "look")  # the right option, but only pictures cited: nothing says it
    ok, reason = connection(_propose(ctx, "kettles", "D", looks), ctx)
    assert not ok and "ground 'tomas bakery'" in reason.lower()


@pytest.mark.xfail(strict=True, reason="measured regression of the fitted scorer: a scene memory naming 'the bakery' "
                   "with a sentence about other anchors reaches P >= accept (RESULTS, Verifier)")
def test_connection_needs_the_question_and_the_option_in_one_unit():
    # The lexical check's failure: a scene summary that names an option somewhere is not evidence for it.
    ctx = _ctx("v1", "According to the narration, where does Oskar buy the candles?",
               ["at the bakery", "at the harbour", "at the station", "at the library"])
    scene1 = "e7"  # 'At the bakery, Thomas ...': names an option, but not Oskar or candles
    ok, reason = connection(_propose(ctx, "at the bakery", "A", [scene1]), ctx)
    assert not ok
    assert connection(_propose(ctx, "at the harbour", "B", ["e8"]), ctx) == (True, "")


def test_connection_reads_the_colour_of_the_titled_scene():
    ctx = _ctx("v1", "What colour is the background of the scene titled 'HIGH TOWER'?",
               ["white", "purple", "navy", "green"])
    looks = _ids("v1", "look")
    assert connection(_propose(ctx, "green", "D", looks), ctx) == (True, "")
    ok, reason = connection(_propose(ctx, "purple", "B", looks), ctx)
    assert not ok and "backs option D (green)" in reason
    ok, reason = connection(_propose(ctx, "green", "D", _ids("v1", "transcribe")), ctx)  # speech says no colour
    assert not ok and "look at" in reason or "ground" in reason
    # The title is one thing: 'HIGH FOREST' (scene 2, yellow) is not 'HIGH TOWER' half matched.
    ok, _ = connection(_propose(ctx, "white", "A", ["e8"]), ctx)
    assert not ok


@needs_wordnet
def test_colour_while_said_joins_a_sentence_and_the_frames_measured_during_it():
    ctx = _ctx("v1", "What colour is the background while the narrator says that Oskar buys the candles?",
               ["green", "navy", "red", "yellow"])
    refs = _ids("v1", "transcribe") + _ids("v1", "look")
    assert connection(_propose(ctx, "yellow", "D", refs), ctx) == (True, "")
    assert not connection(_propose(ctx, "green", "A", refs), ctx)[0]  # the colour of the Tomas sentence


def test_count_and_order_questions_have_their_own_rules():
    ctx = _ctx("v1", "How many scenes does the video have?", ["seven", "three", "five", "six"])
    shots = _ids("v1", "segment")
    assert connection(_propose(ctx, "three", "B", shots), ctx) == (True, "")
    assert not connection(_propose(ctx, "five", "C", shots), ctx)[0]
    ctx = _ctx("v1", "Which of these titles appears on screen first?", ["HIGH FOREST", "NORTH FOREST", "HIGH TOWER"])
    looks = _ids("v1", "look")
    assert connection(_propose(ctx, "HIGH TOWER", "C", looks), ctx) == (True, "")
    ok, reason = connection(_propose(ctx, "NORTH FOREST", "B", looks), ctx)
    assert not ok


def test_how_many_objects_reads_the_detector_and_how_many_said_reads_the_speech():
    # v1's photograph (Debian's darknet dog.jpg, one bicycle): YOLOv3-tiny draws two overlapping bicycle boxes
    # at 384x216, one object once `objects.one_per_object` keeps one detection per object (the set's look).
    ctx = _ctx("v1", "How many bicycles are in the photograph?", ["one", "two", "three", "four"])
    looks = _ids("v1", "look")
    assert connection(_propose(ctx, "one", "A", looks), ctx) == (True, "")
    ok, reason = connection(_propose(ctx, "two", "B", looks), ctx)
    assert not ok and "backs option A (one)" in reason and "the frame at 12.0 s" in reason
    ctx = _ctx("v1", "According to the narration, how many candles does Oskar buy?", ["six", "seven", "eight", "nine"])
    assert connection(_propose(ctx, "seven", "B", _ids("v1", "transcribe")), ctx) == (True, "")
    assert not connection(_propose(ctx, "six", "A", _ids("v1", "transcribe")), ctx)[0]


@needs_wordnet
def test_how_many_drawn_shapes_counts_in_the_scene_the_question_names():
    # look counts drawn shapes; v1's 'HIGH TOWER' scene has two squares, 'HIGH FOREST' two as well, so ask
    # with the options the count could be confused with.
    ctx = _ctx("v1", "How many small squares are drawn in the scene titled 'HIGH TOWER'?", ["two", "three", "four"])
    looks = _ids("v1", "look")
    assert connection(_propose(ctx, "two", "A", looks), ctx) == (True, "")
    ok, reason = connection(_propose(ctx, "three", "B", looks), ctx)
    assert not ok and "backs option A (two)" in reason and "the frame at 0.0 s" in reason


def test_connection_defers_when_nothing_measured_is_cited():
    ctx = _ctx("v1", SPEECH_Q, ITEMS)
    thought = ctx.append(Thought(text="kettles, I believe"))
    assert connection(_propose(ctx, "kettles", "D", [thought.id]), ctx) == (True, "")  # evidence_support's call
    assert connection(_propose(ctx, "kettles", "Z", _ids("v1", "transcribe")), ctx) == (True, "")  # option_valid's
    free = _ctx("v1", "What happens in the video?")
    assert connection(_propose(free, "people count things", None, ["e2"]), free) == (True, "")


# --------------------------------------------------------------------------- #
# rival_options
# --------------------------------------------------------------------------- #


def test_rival_rejects_when_another_option_is_heard_as_well():
    # "Caddles" is near both "candles" (spelling, 0.86) and "kettles" (the same sound key, 1.0): candles
    # alone would pass the connection check, but kettles is supported better by the same sentence.
    ctx = _ctx("v1", SPEECH_Q, ITEMS)
    transcript = _ids("v1", "transcribe")
    candles = _propose(ctx, "candles", "A", transcript)
    ok, reason = rival(candles, ctx)
    assert not ok and "backs option D (kettles) better than A (candles)" in reason
    assert "transcribe the span 0.5-5.0 s" in reason
    assert rival(_propose(ctx, "kettles", "D", transcript), ctx) == (True, "")
    verdict = build_verifier().verify(candles, ctx)
    assert not verdict.accepted and verdict.checks["rival_options"] is False


# --------------------------------------------------------------------------- #
# span_consistency
# --------------------------------------------------------------------------- #


@needs_wordnet
def test_span_answers_must_overlap_where_the_words_were_heard():
    ctx = _ctx("v1", "When does the narrator say that Oskar buys the candles? Answer with the start and end time in seconds.")
    transcript = _ids("v1", "transcribe")
    assert span_check(_propose(ctx, "6.0 - 10.1 s", None, transcript), ctx) == (True, "")
    ok, reason = span_check(_propose(ctx, "0.5 - 4.9 s", None, transcript), ctx)
    assert not ok and "6.1-10.0 s" in reason
    assert connection(_propose(ctx, "6.0 - 10.1 s", None, _ids("v1", "segment")), ctx)[0] is False  # no speech cited


def test_a_multiple_choice_answer_that_states_a_span_must_state_the_right_one():
    ctx = _ctx("v1", SPEECH_Q, ITEMS)
    transcript = _ids("v1", "transcribe")
    assert span_check(_propose(ctx, "kettles, said at 2.5-5.0 s", "D", transcript), ctx) == (True, "")
    ok, reason = span_check(_propose(ctx, "kettles, said at 11.0-14.0 s", "D", transcript), ctx)
    assert not ok and "does not overlap the transcript at 0.5-5.0 s" in reason


def test_the_default_verifier_runs_the_new_checks_first():
    names = list(build_verifier().checks)
    assert names.index("evidence_connection") < names.index("evidence_support")
    assert {"rival_options", "span_consistency"} <= set(names)
    from mcr.agent import _default_verifier
    from mcr.task import VerifySettings

    assert "evidence_connection" in _default_verifier(VerifySettings(), None).checks  # the verify node's default
    assert "evidence_connection" not in _default_verifier(VerifySettings(evidence=False), None).checks


@needs_wordnet
def test_a_superlative_must_win_among_all_the_evidence_not_only_the_cited():
    """'Which scene is the brightest?' citing only a dim scene's look proves nothing: the brighter ones rival it."""
    import yaml

    suite = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples/suites/truth/suite.yaml").read_text())
    task = next(t for t in suite["tasks"] if t.get("metadata", {}).get("kind") == "brightest-scene")
    video = Path(task["video"]).stem
    ctx = _ctx(video, task["question"], task["options"])
    looks = [e for e in ctx if e.kind == "tool_result" and e.tool == "look" and e.output.get("brightness") is not None]
    assert len(looks) >= 2
    verifier = build_verifier()
    letters = "ABCD"
    by_title = {}
    for look in looks:
        read = " ".join(x["text"] for x in look.output.get("text") or []).upper()
        for i, option in enumerate(task["options"]):
            if all(w in read.split() for w in option.upper().split()):
                by_title[letters[i]] = look
    right = task["answer"]
    assert right in by_title, "the set holds a look at the brightest scene"
    dim = next(letter for letter in by_title if letter != right)
    assert verifier.verify(_propose(ctx, task["options"][letters.index(dim)], dim, [by_title[dim].id]), ctx).accepted is False
    assert verifier.verify(_propose(ctx, task["options"][letters.index(right)], right, [by_title[right].id]), ctx).accepted


# --------------------------------------------------------------------------- #
# Meaning, not word identity; what a policy that sees pixels may be rejected for
# --------------------------------------------------------------------------- #


def test_generic_question_words_are_never_a_reason_to_reject():
    """Words no evidence carries ("entire", "clip", "whole") weigh nothing: the colour measured decides."""
    ctx = _ctx("v1", "Throughout the entire clip, while the words HIGH TOWER are up, what colour fills the whole frame?",
               ["white", "purple", "navy", "green"])
    looks = _ids("v1", "look")
    for pixels in (False, True):
        verdict = build_verifier(sees_pixels=pixels).verify(_propose(ctx, "green", "D", looks), ctx)
        assert verdict.accepted, verdict.reason


def test_a_policy_that_sees_pixels_is_rejected_only_on_contradiction():
    ctx = _ctx("v1", "In the spoken part, which things get counted by Tomas at the bakery?", ITEMS)
    transcript = _ids("v1", "transcribe")
    seeing = build_verifier(sees_pixels=True)
    assert seeing.verify(_propose(ctx, "kettles", "D", transcript), ctx).accepted
    rival = seeing.verify(_propose(ctx, "ropes", "C", transcript), ctx)  # nothing said is like ropes
    assert not rival.accepted
    # A shot list holds nothing related to kettles; its P (0.2) sits at the fitted `related` bar, so it may pass:
    # the bar is set to reject <= 3% of right answers (RESULTS, Verifier), not to catch every unrelated citation.


def test_the_scorer_ranks_the_options_and_names_the_units_that_ranked_them():
    ctx = _ctx("v1", "Tomas is at the bakery. What is he counting, going by the voice-over?", ITEMS)
    scores = build_verifier().score_options(ctx)
    assert [s.letter for s in scores] == ["A", "B", "C", "D"]
    best = max(scores, key=lambda s: s.score)
    assert best.letter == "D" and best.refs and all(ctx.get(r) is not None for r in best.refs)
    assert best.score > max(s.score for s in scores if s.letter != "D")


def _unit(ref, start, end, **facts):
    from mcr.tools.evidence.units import Unit

    return Unit(ref=ref, kind=facts.pop("kind", "scene"), span=TimeSpan(start=start, end=end), **facts)


def test_an_option_that_denies_a_measured_fact_is_contradicted_not_backed():
    """"the heron never shows up" shares its words with the scene that shows the heron: that scene refutes it."""
    from mcr.tools.evidence.asked import asked
    from mcr.tools.evidence.score import denied, scored

    assert denied("the heron never shows up") == "the heron shows up"
    assert denied("she didn't stop") == "she did stop" and denied("a red kite") is None
    assert denied("No, she left the keys at home") is None and denied("No") is None  # a yes/no answer, not a denial
    assert denied("No, nobody came") == "came"
    options = ["before the boat", "the heron never shows up", "after the boat"]
    question = asked("Does the heron appear before or after the boat?", tuple(options))
    units = [_unit("e1", 0, 5, objects=[("boat", 1)]), _unit("e2", 5, 10, objects=[("bird", 1)], text="HERON")]
    found = {s.option: s for s in scored(question, options, units)}
    denial = found["the heron never shows up"]
    assert denial.fact == 0.0 and denial.note.startswith("contradicted") and denial.unit.ref == "e2"
    assert denial.p < found["after the boat"].p  # the heron (5 s) comes after the boat (0 s): measured order
    assert found["after the boat"].fact == 1.0 and found["before the boat"].fact == 0.0
    nothing = {s.option: s for s in scored(question, options, units[:1])}  # no heron measured: nothing refutes it
    assert not nothing["the heron never shows up"].note.startswith("contradicted")


@needs_wordnet
def test_it_in_a_denial_is_what_the_question_asks_about():
    """"No, it never turns up" denies the otter of "does the guide talk about the otter?": a detected otter
    refutes it, while "no, it is only on the poster" stays open."""
    from mcr.tools.evidence.asked import asked
    from mcr.tools.evidence.score import scored

    options = ["No, it never turns up", "No, it is only on the poster", "Yes, at the very start"]
    question = asked("Does the guide ever talk about the otter?", tuple(options))
    units = [_unit("e1", 0, 6, kind="speech", speech="Welcome to the river walk."),
             _unit("e2", 6, 12, objects=[("otter", 1)], text="RIVER LIFE")]
    found = {s.option: s for s in scored(question, options, units)}
    assert found["No, it never turns up"].note.startswith("contradicted") and found["No, it never turns up"].fact == 0
    assert not found["No, it is only on the poster"].note.startswith("contradicted")
    nothing = {s.option: s for s in scored(question, options, units[:1])}  # no otter measured: nothing refutes it
    assert not nothing["No, it never turns up"].note.startswith("contradicted")


@needs_wordnet
def test_a_yes_to_was_it_mentioned_is_contradicted_by_a_whole_transcript_that_never_says_it():
    """Only a transcript of the whole video can say "never said"; a transcript of a part cannot."""
    from mcr.context import Context, Instruction, ToolResult, VideoRef
    from mcr.tools.evidence.asked import asked
    from mcr.tools.evidence.checks import everything_measured
    from mcr.tools.evidence.score import scored

    options = ["Yes, when the boats come in", "No, it is only on the poster"]
    question = asked("Does the guide ever talk about the otter?", tuple(options))
    said = [{"span": {"start": 1.0, "end": 4.0}, "text": "Welcome to the river walk."},
            {"span": {"start": 9.0, "end": 12.0}, "text": "The boats come in at noon."}]
    poster = ToolResult(step=2, tool="look", output={"frames": [{"time": 15.0, "objects": [
        {"label": "otter", "box": [0, 0, 10, 10], "score": 0.9}]}]}, span=TimeSpan(start=14.0, end=16.0))

    def judged(span):
        video = VideoRef(path="clip.mp4", duration=20.0)
        ctx = Context()
        for entry in (Instruction(text=question.text, options=tuple(options), video=video),
                      ToolResult(step=1, tool="transcribe", output={"segments": said}, span=span), poster):
            ctx.append(entry.model_copy())
        return {s.option: s for s in scored(question, options, everything_measured(ctx))}

    whole = judged(None)  # no span asked: the whole video was heard
    assert whole["Yes, when the boats come in"].fact == 0.0
    assert whole["Yes, when the boats come in"].note.startswith("contradicted: the whole transcript never says")
    assert whole["No, it is only on the poster"].p > whole["Yes, when the boats come in"].p
    part = judged(TimeSpan(start=0.0, end=12.0))  # only the first 12 s heard: the otter may be said later
    assert not part["Yes, when the boats come in"].note.startswith("contradicted")


def test_a_relation_event_told_by_a_verb_of_saying_is_found_by_its_content():
    """"while the harbour is being described": the sentence about the harbour is the event, not one with 'described'."""
    from mcr.tools.evidence.asked import asked
    from mcr.tools.evidence.score import relation_of

    options = ["a lighthouse", "a tractor"]
    question = asked("What is on screen while the old harbour is being described?", tuple(options))
    said = _unit("e1", 10, 14, kind="speech", speech="The old harbour was rebuilt after the storm.")
    during, before = _unit("e2", 9, 15, objects=[("boat", 2)]), _unit("e3", 0, 8, objects=[("tractor", 1)])
    units = [said, during, before]
    assert relation_of(question, during, units) == 1.0 and relation_of(question, before, units) == 0.0


@needs_wordnet
def test_a_colour_question_about_a_detected_thing_reads_that_things_colours():
    """"the automobile by the fence": the car's own box is red; a white truck beside it (a related label, but
    further from "automobile") says nothing about it."""
    from mcr.tools.evidence.asked import asked
    from mcr.tools.evidence.score import colour_match

    question = asked("What colour is the automobile parked by the fence?", ("red", "white", "green"))
    frame = _unit("e5", 3, 3, kind="frame", colours=[("white", 0.4), ("grey", 0.3), ("red", 0.05)],
                  objects=[("car", 1), ("truck", 1)],
                  object_colours=[("car", [("dark red", 0.5), ("grey", 0.3), ("white", 0.05)]),
                                  ("truck", [("white", 0.8), ("grey", 0.2)])])
    red, white = colour_match("red", frame, question), colour_match("white", frame, question)
    assert red > 0.4 and white < 0.25  # only the car's grey resembles white: the truck's white and a 5% edge do not count
    assert colour_match("white", frame) == 1.0  # without the question: every colour in the frame


@needs_wordnet
@pytest.mark.parametrize("options", [
    ["0–4 s", "4–8 s", "8–12 s"],
    ["between 0 and 4 seconds", "between 4 and 8 seconds", "between 8 and 12 seconds"],
    ["0:00-0:04", "0:04-0:08", "0:08-0:12"],
])
def test_time_options_are_backed_by_when_the_event_was_measured(options):
    """"When does the tram first appear?": the option holding the first unit where a tram is detected."""
    from mcr.tools.evidence.asked import asked
    from mcr.tools.evidence.match import time_range
    from mcr.tools.evidence.score import scored

    assert [time_range(o).start for o in options] == [0.0, 4.0, 8.0]
    question = asked("Roughly when does the tram first appear?", tuple(options))
    units = [_unit("e1", 0, 5, objects=[("person", 2)]), _unit("e2", 5.5, 9, objects=[("train", 1)]),
             _unit("e3", 9, 12, objects=[("train", 1)]), _unit("e4", 6, 7, kind="speech", speech="What a busy morning.")]
    found = scored(question, options, units)
    best = max(found, key=lambda s: s.p)
    assert best.option == options[1] and best.unit.ref == "e2"
    assert best.p > 0.8 and all(s.p < 0.2 for s in found if s is not best)
    assert all(s.p == 0 or s.fact == 0 for s in scored(question, options, units[:1]))  # no tram measured: nothing backed
