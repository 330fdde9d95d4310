"""Who "she" is: personal pronouns in narration refer to the person named last (`language.coreference`)."""

import pytest

from mcr.language.coreference import people_named, referents
from mcr.language.grammar import split_sentences
from mcr.language.lexicon import lexicon_available

needs_wordnet = pytest.mark.skipif(not lexicon_available(),
                                   reason="needs the Debian packages wordnet-base and wordnet-sense-index")


@needs_wordnet
@pytest.mark.parametrize("sentence, names", [
    ("Priya parked the scooter by the library.", ["Priya"]),
    ("After lunch, Tomasz and Ines climbed the tower.", ["Tomasz", "Ines"]),
    ("Later, he fed the goats.", []),
    ("On Tuesday the market opened late.", []),  # a weekday is nobody
    ("The Teacher waved.", []),  # a common noun written with a capital is no name
])
def test_people_named(sentence, names):
    assert people_named(sentence) == names


@needs_wordnet
def test_a_pronoun_refers_to_the_latest_person_named_before_it():
    timeline = [(0.0, "Priya parked the scooter by the library."), (4.0, "Then she returned two novels."),
                (9.0, "Tomasz waited outside."), (12.0, "He was holding her helmet."), (15.0, "It began to rain.")]
    found = referents(list(reversed(timeline)))  # order is taken from the start times, not the list
    assert found == {"Then she returned two novels.": ("Priya",), "He was holding her helmet.": ("Tomasz",)}


@needs_wordnet
def test_nothing_refers_before_anyone_is_named():
    assert referents([(0.0, "She opened the door."), (3.0, "The dog barked.")]) == {}


def test_sentences_split_after_their_end_marks():
    assert split_sentences("Ana ran. Did she win? Yes!") == ["Ana ran.", "Did she win?", "Yes!"]
