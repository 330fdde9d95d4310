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
