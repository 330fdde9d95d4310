"""What was said backs an option: possessors told as pronouns, and movements told in words.

Questions and sentences are written here (none from a suite). Needs WordNet.
"""

from __future__ import annotations

import pytest

from mcr.context import TimeSpan
from mcr.language.lexicon import lexicon_available
from mcr.tools.evidence.asked import asked
from mcr.tools.evidence.match import possessors
from mcr.tools.evidence.score import fact_of, scored
from mcr.tools.evidence.units import Unit

pytestmark = pytest.mark.skipif(not lexicon_available(),
                                reason="needs the Debian packages wordnet-base and wordnet-sense-index")


def _said(text: str, start: float = 2.0) -> Unit:
    return Unit("e3", "speech", TimeSpan(start=start, end=start + 3.0), speech=text)


def test_a_possessor_is_told_as_a_pronoun_the_possessed_thing_decides():
    assert possessors("Omar's aunt and the dog's bowl") == frozenset({"omars", "dogs"})
    options = ["Omar's aunt", "Omar's uncle", "the baker"]
    units = [_said("The parcel came from his aunt in Lisbon.", 2.0), _said("The baker waved at him.", 8.0)]
    found = scored(asked("Who sent the parcel?", tuple(options)), options, units)
    assert max(found, key=lambda s: s.p).option == "Omar's aunt"
    assert found[0].fact > 0.5 > found[1].fact


def test_a_movement_question_is_also_answered_by_what_was_said():
    question = asked("How long does the skater glide?", ("ten seconds", "a minute"))
    assert "speech" not in question.evidence and "motion" in question.evidence
    unit = _said("The skater glides for ten seconds before she stops.")
    assert fact_of(question, "ten seconds", unit) == 1.0 and fact_of(question, "a minute", unit) == 0.0


@pytest.mark.parametrize("said, option, backed", [
    ("The baker sold 8 loaves before noon.", "eight", True),  # written as a digit
    ("The baker sold three loaves before noon.", "three", True),
    ("The baker sold tree loaves before noon.", "three", True),  # misheard as a word that sounds like it
    ("The baker worked until the evening light.", "eight", False),  # rhymes, shares four letters: not eight
    ("The baker sold eleven loaves before noon.", "seven", False),
    ("The baker sold sixteen loaves before noon.", "six", False),
])
def test_a_number_is_heard_as_its_value_or_its_sound_never_as_a_rhyme(said, option, backed):
    question = asked("How many loaves did the baker sell?", ("three", "six", "seven", "eight"))
    assert (fact_of(question, option, _said(said)) >= 0.5) is backed


def test_an_overview_outline_line_is_read_sentence_by_sentence():
    """A number said in one sentence and the asked thing in the next are not one place, however wide the line."""
    from mcr.context import ToolResult
    from mcr.tools.evidence.units import units_of

    line = "A clerk stamps eight letters at the desk. The gardener waters the pencil cactus by the door."
    entry = ToolResult(step=1, tool="overview", span=TimeSpan(start=0.0, end=1800.0),
                       output={"span": {"start": 0.0, "end": 1800.0}, "frames": [], "frames_used": 0,
                               "outline": [{"span": {"start": 0.0, "end": 160.0}, "text": line}]})
    units = [u for u in units_of(entry) if u.kind == "speech"]
    assert [u.speech for u in units] == ["A clerk stamps eight letters at the desk.",
                                        "The gardener waters the pencil cactus by the door."]
    assert all(u.span == TimeSpan(start=0.0, end=160.0) for u in units)
    question = asked("How many pencils does the gardener water?", ("two", "eight"))
    best = max(scored(question, ["two", "eight"], units), key=lambda s: s.joint)
    assert best.joint < 0.3  # "eight" and "pencil" are never in one sentence


def test_a_fact_told_with_a_synonym_backs_the_option():
    question = asked("Why did the ferry not sail?", ("the harbour was shut", "the captain was ill"))
    unit = _said("The harbour was closed because of the storm.")
    assert fact_of(question, "the harbour was shut", unit) >= 0.8
    assert fact_of(question, "the captain was ill", unit) < 0.5


def test_a_sentence_that_says_she_is_about_the_person_named_before():
    """The question names Priya; the sentence that answers it says "she" — it is about Priya all the same."""
    from mcr.tools.evidence.checks import with_referents

    said = [(0.5, "Priya rode to the library on Monday."), (4.0, "The library was closed, so she read in the park.")]
    units = with_referents([_said(text, start) for start, text in said])
    told = next(u for u in units if "park" in u.speech)
    assert told.refers_to == ("Priya",)
    options = ("in the park", "at the station")
    found = scored(asked("Where did Priya read?", options), list(options), units)
    best = max(found, key=lambda s: s.p)
    assert best.option == "in the park" and best.about > 0.5
