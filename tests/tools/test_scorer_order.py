"""Options that place the question's subject in time against another event, and plural labels.

Questions and options are written here (none from a suite); the units are
built as the tools write them. The reader needs WordNet.
"""

from __future__ import annotations

import pytest

from mcr.context import TimeSpan
from mcr.language import read_question
from mcr.language.lexicon import lexicon_available
from mcr.language.question import RelationKind, relation_claim
from mcr.tools.evidence.asked import asked
from mcr.tools.evidence.match import singular
from mcr.tools.evidence.score import relation_of, scored
from mcr.tools.evidence.units import Unit

pytestmark = pytest.mark.skipif(not lexicon_available(),
                                reason="needs the Debian packages wordnet-base and wordnet-sense-index")


def test_an_either_or_question_states_no_relation_its_options_do():
    assert not [r for r in read_question("Does the choir sing before or after the speech?").relations if r.event]
    frame = read_question("Is the tractor filmed before or after the windmill?",
                          ("before the windmill", "after the windmill"))
    assert frame.relations == () and "windmill" in " ".join(frame.anchors)
    assert read_question("What is shown right after the bell rings?").relations[0].kind == RelationKind.AFTER


@pytest.mark.parametrize(("option", "kind", "event"), [
    ("after the windmill", RelationKind.AFTER, "windmill"),
    ("just before the ferry leaves", RelationKind.BEFORE, "ferry leaves"),
    ("in the same instant as the whistle", RelationKind.WHILE, "whistle"),
    ("Yes, right after the rain", RelationKind.AFTER, "rain"),
])
def test_an_option_states_a_relation_to_an_event(option, kind, event):
    claim = relation_claim(option)
    assert claim is not None and claim.kind == kind and claim.event == event


@pytest.mark.parametrize("option", ["a windmill on a hill", "the tractor is never filmed", "three"])
def test_options_without_a_relation_word_state_none(option):
    assert relation_claim(option) is None


OPTIONS = ["before the windmill", "after the windmill", "in the same instant as the windmill", "no tractor at all"]
QUESTION = "Is the tractor filmed before or after the windmill?"


def _unit(ref: str, start: float, end: float, label: str) -> Unit:
    return Unit(ref, "look" if end > start else "frame", TimeSpan(start=start, end=end), objects=[(label, 1)])


@pytest.mark.parametrize(("tractor", "windmill", "answer"), [
    ((12.0, 18.0), (0.0, 6.0), "after the windmill"),
    ((0.0, 6.0), (12.0, 18.0), "before the windmill"),
    ((6.0, 6.0), (0.0, 6.0), "after the windmill"),  # a frame at the scene's last instant is after it
    ((3.0, 3.0), (0.0, 6.0), "in the same instant as the windmill"),  # a frame inside it is during it
])
def test_the_order_is_measured_by_when_each_was_first_seen(tractor, windmill, answer):
    units = [_unit("e1", *windmill, "windmill"), _unit("e2", *tractor, "tractor")]
    found = scored(asked(QUESTION, tuple(OPTIONS)), OPTIONS, units)
    assert max(found, key=lambda s: s.p).option == answer
    assert [s.fact for s in found].count(1.0) == 1


def test_without_the_other_event_nothing_is_backed():
    found = scored(asked(QUESTION, tuple(OPTIONS)), OPTIONS, [_unit("e2", 3.0, 9.0, "tractor")])
    assert all(s.fact == 0.0 for s in found)


@pytest.mark.parametrize(("plural", "one"), [("horses", "horse"), ("buses", "bus"), ("houses", "house"),
                                             ("churches", "church"), ("ponies", "pony"), ("kites", "kite")])
def test_plural_labels_are_matched_by_their_lemma(plural, one):
    assert singular(plural) == one


def test_a_question_that_opens_with_its_temporal_clause_keeps_the_relation():
    frame = read_question("Before the ferry docks, which bird lands on the rail?")
    assert frame.relations[0].kind == RelationKind.BEFORE and frame.relations[0].event == "ferry docks"
    assert frame.focus == "bird"
    assert read_question("When the ferry docks, what happens?").relations[0].kind == RelationKind.AT_TIME


def test_while_means_sharing_time_not_touching_at_an_edge():
    options = ["a windmill", "a tractor"]
    question = asked("What can be seen while the farmer talks about the harvest?", tuple(options))
    units = [Unit("e1", "speech", TimeSpan(start=6.0, end=11.0), speech="The farmer talks about the harvest."),
             Unit("e2", "scene", TimeSpan(start=0.0, end=6.0), objects=[("windmill", 1)]),
             Unit("e2", "scene", TimeSpan(start=6.0, end=12.0), objects=[("tractor", 1)])]
    assert relation_of(question, units[2], units) == 1.0  # the scene the sentence is said in
    assert relation_of(question, units[1], units) == 0.0  # the scene that ends as the sentence starts


def test_right_after_a_sentence_is_the_next_sentence_however_often_each_was_transcribed():
    said = [(0.5, 4.0, "The miller counted his sacks."), (5.0, 8.5, "He locked the barn at dusk."),
            (9.5, 12.0, "Then a fox crept past the gate."), (13.0, 16.0, "The hens slept.")]
    units = [Unit("e3", "speech", TimeSpan(start=a, end=b), speech=t) for a, b, t in said]
    units += [Unit("e7", "speech", TimeSpan(start=a + 0.1, end=b), speech=t) for a, b, t in said[1:3]]  # heard again
    units.append(Unit("e5", "scene", TimeSpan(start=4.5, end=16.0), speech=said[1][2]))  # a scene it was said in
    options = ["a fox crept past the gate", "the hens slept", "he counted his sacks", "he locked the barn"]
    found = scored(asked("What does the storyteller say right after the barn is locked?", tuple(options)),
                   options, units)
    assert max(found, key=lambda s: s.p).option == "a fox crept past the gate"
    assert {s.option: s.relation for s in found}["he locked the barn"] != 1.0  # the event is not after itself


def test_the_speaker_of_a_locating_event_is_not_looked_for_in_what_was_said():
    options = ["NORTH GATE", "MILL POND"]
    units = [Unit("e3", "speech", TimeSpan(start=6.0, end=9.0), speech="The harbour was busy at dawn."),
             Unit("e2", "scene", TimeSpan(start=0.0, end=5.5), text="NORTH GATE"),
             Unit("e2", "scene", TimeSpan(start=5.5, end=11.0), text="MILL POND")]
    question = asked("Which caption is up while the announcer talks about the harbour?", tuple(options))
    found = {s.option: s for s in scored(question, options, units)}
    assert found["MILL POND"].relation == 1.0 and found["NORTH GATE"].relation == 0.0
