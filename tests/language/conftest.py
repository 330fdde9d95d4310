"""The question reader's tests need WordNet (Debian's wordnet-base + wordnet-sense-index)."""

import pytest

from mcr.language.lexicon import lexicon_available

needs_wordnet = pytest.mark.skipif(not lexicon_available(),
                                   reason="needs the Debian packages wordnet-base and wordnet-sense-index")
