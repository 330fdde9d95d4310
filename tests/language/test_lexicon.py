"""Lexical knowledge from WordNet: broader words, plurals, detector labels; soft failure without WordNet."""

import importlib

import pytest

from mcr.language import lexicon
from mcr.language.lexicon import relatedness, words_for_label

needs_wordnet = pytest.mark.skipif(not lexicon.lexicon_available(),
                                   reason="needs the Debian packages wordnet-base and wordnet-sense-index")


@needs_wordnet
@pytest.mark.parametrize("a, b", [("eagle", "bird"), ("person", "people"), ("person", "man"), ("person", "woman"),
                                  ("van", "car"), ("van", "truck"), ("dog", "animal"), ("men", "person")])
def test_related_words_score_high_both_ways(a, b):
    assert relatedness(a, b) >= 0.5
    assert relatedness(b, a) == relatedness(a, b)


@needs_wordnet
@pytest.mark.parametrize("a, b", [("eagle", "car"), ("umbrella", "bird"), ("kettle", "giraffe"), ("dog", "people")])
def test_unrelated_words_score_zero(a, b):
    assert relatedness(a, b) == 0.0


@needs_wordnet
def test_closer_words_score_higher():
    assert relatedness("eagle", "eagle") == 1.0
    assert relatedness("eagle", "bird") > relatedness("eagle", "animal") > 0
    assert relatedness("car", "automobile") == 1.0  # synonyms share a synset


@needs_wordnet
def test_words_for_a_detector_label():
    assert {"person", "people", "individual"} <= words_for_label("person")
    assert {"eagle", "bird"} <= words_for_label("eagle")
    assert "automobile" in words_for_label("car")


def test_without_wordnet_relatedness_falls_back_to_spelling(monkeypatch, tmp_path):
    monkeypatch.setattr(lexicon, "WORDNET_SOURCE", tmp_path / "nowhere")
    monkeypatch.setenv("MCR_NLTK_DATA", str(tmp_path / "nltk"))
    caches = (lexicon.wordnet, lexicon.relatedness, lexicon._noun_synsets, lexicon.parts_of_speech,
              lexicon.words_for_label)
    for fn in caches:
        fn.cache_clear()
    try:
        assert not lexicon.lexicon_available()
        assert relatedness("cars", "car") == 1.0
        assert relatedness("eagle", "bird") == 0.0
        assert words_for_label("person") == {"person"}
    finally:
        for fn in caches:
            fn.cache_clear()


@needs_wordnet
def test_the_lexnames_table_comes_from_the_man_page():
    table = lexicon._lexnames_from_man_page(lexicon.LEXNAMES_MAN_PAGE).splitlines()
    assert len(table) == 45
    assert table[5].split("\t") == ["05", "noun.animal", "1"]
    assert table[44].split("\t") == ["44", "adj.ppl", "3"]


@needs_wordnet
@pytest.mark.parametrize(("word", "broader", "expected"), [
    ("horse", "animals", True), ("zebra", "animal", True), ("truck", "vehicle", True), ("dogs", "dog", True),
    ("person", "animal", False),  # siblings under "organism", not one within the other
    ("kite", "bird", False),  # a detected kite is the toy (first sense), not the hawk
    ("animal", "horse", False),  # the narrower word is not the broader one
])
def test_is_a_reads_kinds_not_kinship(word, broader, expected):
    assert lexicon.is_a(word, broader) is expected


@needs_wordnet
@pytest.mark.parametrize("a, b", [("shut", "closed"), ("purchased", "bought"), ("large", "big"), ("kids", "children"),
                                  ("shop", "store"), ("automobile", "car"), ("kites", "kite"), ("went", "go")])
def test_synonyms_in_a_sense_both_words_are_used_in(a, b):
    assert lexicon.synonymous(a, b) and lexicon.synonymous(b, a)


@needs_wordnet
@pytest.mark.parametrize("a, b", [("dog", "cat"), ("left", "forgot"), ("red", "blue"), ("one", "two"),
                                  ("walked", "ran"), ("minute", "seconds")])
def test_no_synonym_through_a_rare_sense(a, b):
    assert not lexicon.synonymous(a, b)


@needs_wordnet
@pytest.mark.parametrize("noun, told", [("forecast", True), ("news", True), ("announcement", True),
                                        ("photograph", False), ("title", False), ("video", False), ("dog", False)])
def test_a_message_is_something_told(noun, told):
    assert lexicon.names_a_message(noun) == told
