"""Counting occurrences: "how often" / "how many times" read as occurrences, counted in what was said.

Questions and sentences are written here (none from a suite). Needs WordNet.
"""

from __future__ import annotations

import pytest

from mcr.context import TimeSpan
from mcr.language import read_question
from mcr.language.lexicon import lexicon_available
from mcr.tools.evidence.asked import asked
from mcr.tools.evidence.score import number_of, scored
from mcr.tools.evidence.units import Unit

pytestmark = pytest.mark.skipif(not lexicon_available(),
                                reason="needs the Debian packages wordnet-base and wordnet-sense-index")


@pytest.mark.parametrize(("question", "occurrences"), [
    ("How often does the lighthouse come up in the story?", True),
    ("How many times is the lighthouse named by the guide?", True),
    ("How many lighthouses can be seen?", False),
])
def test_occurrence_questions_are_typed_as_such(question, occurrences):
    assert read_question(question, ("one", "two")).counts_occurrences is occurrences


def test_a_speech_act_noun_makes_speech_the_evidence():
    assert read_question("How often does the lighthouse come up in the lecture?").evidence[0].value == "speech"


@pytest.mark.parametrize(("option", "n"), [("twice", 2), ("once", 1), ("3 times", 3), ("four times", 4),
                                           ("never", 0), ("a few", None)])
def test_an_option_states_a_number_in_words_digits_or_frequency(option, n):
    assert number_of(option) == n


def _said(ref: str, start: float, end: float, text: str) -> Unit:
    return Unit(ref, "speech", TimeSpan(start=start, end=end), speech=text)


def test_mentions_are_counted_once_per_stretch_of_speech_however_often_it_was_transcribed():
    units = [_said("e3", 0.0, 3.0, "We walked past the old lighthouse."),
             _said("e3", 4.0, 7.0, "The keeper lit a lamp in the lighthouse, then another lighthouse lamp."),
             _said("e3", 8.0, 11.0, "Then we went home."),
             _said("e9", 4.1, 6.9, "The keeper lit a lamp in the lighthouse, then another lighthouse lamp."),  # heard again
             Unit("e5", "count", TimeSpan(start=0.0, end=11.0), count=3, counted="scenes")]
    options = ["twice", "three times", "four times", "five times"]
    found = scored(asked("How often is the lighthouse mentioned?", tuple(options)), options, units)
    best = max(found, key=lambda s: s.p)
    assert best.option == "three times" and best.unit.kind == "count" and best.unit.counted == "mentions"
    assert best.unit.span == TimeSpan(start=0.0, end=7.0)  # the sentences that mention it, not the whole transcript


def test_a_number_read_on_a_sign_is_not_a_count_of_what_is_asked():
    options = ["four", "five", "six"]
    units = [Unit("e2", "scene", TimeSpan(start=0.0, end=6.0), text="GATE 4"),
             Unit("e3", "count", TimeSpan(start=0.0, end=30.0), count=5, counted="scenes")]
    found = {s.option: s for s in scored(asked("How many separate scenes does the clip have?", tuple(options)),
                                         options, units)}
    assert found["four"].fact == 0.5 and found["five"].fact == 1.0 and found["five"].unit.kind == "count"
    assert found["five"].p > found["four"].p + 0.5  # the count of scenes decides, the sign's number is weak
    said = [Unit("e4", "speech", TimeSpan(start=1.0, end=3.0), speech="Tom bought four apples at the market.")]
    found = scored(asked("How many apples did Tom buy?", tuple(options)), options, said)
    assert [s.fact for s in found] == [1.0, 0.0, 0.0]  # said with what it counts: that is the count
    misheard = [Unit("e4", "speech", TimeSpan(start=1.0, end=3.0), speech="Tim bought five nipples at the market.")]
    found = scored(asked("How many apples did Tom buy?", tuple(options)), options, misheard)
    assert max(found, key=lambda s: s.p).option == "five"  # the only number said, though its noun was misheard


def test_which_is_not_said_is_told_apart_by_the_facts_when_no_unit_holds_the_anchors():
    options = ["a baker", "a pilot", "a nurse"]
    units = [_said("e3", 0.0, 3.0, "The baker opened early."), _said("e3", 4.0, 7.0, "A nurse came by at noon.")]
    found = scored(asked("Each of these people comes up in the tale except one. Which one?", tuple(options)),
                   options, units)
    assert max(found, key=lambda s: s.p).option == "a pilot"


def test_a_count_of_the_videos_parts_is_not_a_count_of_things_bought():
    options = ["three", "five"]
    units = [Unit("e4", "count", TimeSpan(start=0.0, end=20.0), count=3, counted="scenes"),
             _said("e3", 4.0, 7.0, "Marco buys five baskets at the market.")]
    found = scored(asked("According to the narration, how many baskets does Marco buy?", tuple(options)),
                   options, units)
    assert max(found, key=lambda s: s.p).option == "five"


# --- counting a broader word, and counting kinds (wordings written here) ---------------------------------------- #

@pytest.mark.parametrize(("question", "target"), [
    ("How many kinds of fruit lie on the table?", "fruit"),
    ("How many different types of boat sail past the pier?", "boat"),
    ("How many species of bird visit the feeder?", "bird"),
    ("How many sorts of bread does the baker sell?", "bread"),
    ("how many kinds of tools did she use?", "tools"),
])
def test_a_count_of_kinds_is_read_as_such(question, target):
    frame = read_question(question, ("two", "three"))
    assert frame.counts_kinds and frame.count_target == target


@pytest.mark.parametrize("question", ["How many boats sail past the pier?", "How many colours of paint are used?",
                                      "How many pieces of cake are left?"])
def test_a_count_of_things_is_not_a_count_of_kinds(question):
    assert not read_question(question, ("two", "three")).counts_kinds


def _seen(ref: str, start: float, objects: list[tuple[str, int]]) -> Unit:
    return Unit(ref, "scene", TimeSpan(start=start, end=start + 5.0), objects=objects)


def test_a_broader_word_counts_every_label_that_is_one_and_no_other():
    options = ["one", "two", "three", "four"]
    units = [_seen("e4", 0.0, [("person", 1), ("dog", 1), ("horse", 1)])]  # a rider's person is no animal
    best = max(scored(asked("Apart from the rider, how many animals are in the photo?", tuple(options)), options, units),
               key=lambda s: s.p)
    assert best.option == "two"


def test_kinds_are_counted_by_label_not_by_animal():
    options = ["two", "three", "five", "six"]
    units = [_seen("e4", 0.0, [("zebra", 3), ("giraffe", 2), ("bird", 1)])]
    best = max(scored(asked("How many kinds of animal graze on the plain?", tuple(options)), options, units),
               key=lambda s: s.p)
    assert best.option == "three"
