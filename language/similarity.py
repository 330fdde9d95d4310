"""How much a word says, and how alike two texts are.

**Word weights.** A question's words are not equally informative: in "which
colour does the screen show throughout the whole video" only the *answer type* matters, and
none of "screen", "whole", "video" can be expected in the evidence. A matcher
that demands every question word rejects right answers. :func:`word_weight`
gives each word a weight in 0..1 from what WordNet knows about it, never from
a list of words:

* a **noun** weighs by how *specific* its commonly used senses are — their
  depth in WordNet's hypernym tree (an "eagle" is 11 steps below "entity", a
  "video" 4, "people" 3) — discounted by how many things it can mean
  (WordNet's sense count: "screen" has 16 senses, "lighthouse" 1);
* an **adjective** weighs by whether it names a *measurable property*: its
  WordNet attribute is a property or a measure (a colour's hue, brightness,
  size, duration, loudness, speed, age) rather than a quality or state
  ("whole" → integrity, "distinct"/"different" → difference);
* a **verb** or **adverb** weighs by rarity: the tag counts of its senses in
  the sense-tagged corpus (``index.sense``): "appear", "happen", "show" are
  used everywhere;
* a **function word** (grammar, :mod:`mcr.language.grammar`) weighs 0; a word
  WordNet does not know (a name, a number, a made-up title) weighs 1.

A word's weight is its best reading's. Without WordNet every content word
weighs 1 (the matchers then fall back to their word-identity behaviour).

**Text similarity.** :func:`text_similarity` is the cosine of MiniLM sentence
embeddings (the shared :class:`~mcr.language.embedder.Embedder`), memoised.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from mcr.language import lexicon
from mcr.language.embedder import load_embedder
from mcr.language.grammar import FUNCTION_WORDS

__all__ = ["word_weight", "text_similarity", "measurable_attribute", "attribute_of", "content_words", "phrase_weight"]

_SPECIFIC_DEPTH = 9  # a noun this deep (longest path from the root) (a kind of animal, vehicle, tool) is fully specific
_GENERAL_DEPTH = 4  # a noun this shallow ("thing", "video" as communication, "people") says nothing
_MEASURABLE_ROOTS = ("property.n.02", "measure.n.02")  # an attribute under one of these can be measured
_MIN_POS_SHARE = 0.25  # a part of speech used less than this share of the time is not the word's reading
_RARE_TAGS = 40.0  # tag count at which a verb's or adverb's weight is halved


def _noun_weight(word: str) -> float:
    synsets = lexicon._noun_synsets(word)  # the senses in use, commonest first
    if not synsets:
        return 0.0
    depth = synsets[0].max_depth()
    specific = min(1.0, max(0.0, (depth - _GENERAL_DEPTH) / (_SPECIFIC_DEPTH - _GENERAL_DEPTH)))
    return specific / (1.0 + math.log(len(synsets)) / 2.0)


@functools.lru_cache(maxsize=16_384)
def attribute_of(adjective: str) -> Any | None:
    """The WordNet synset of the measurable property an adjective names ("bright" → luminosity.n.01), or None
    when it names none ("whole" → integrity, a state; "distinct" → difference, a quality; "crowded": nothing).
    Superlatives and comparatives are reduced first ("brightest" → "bright")."""
    wn = lexicon.wordnet()
    if wn is None:
        return None
    base = wn.morphy(adjective.lower(), "a") or adjective.lower()
    for synset in wn.synsets(base, "a")[:3]:
        heads = [synset, *synset.similar_tos()] if synset.pos() == "s" else [synset]
        for head in heads:
            for attribute in head.attributes():
                roots = {h.name() for path in attribute.hypernym_paths() for h in path}
                if roots & set(_MEASURABLE_ROOTS):
                    return attribute
    return None


def measurable_attribute(adjective: str) -> str | None:
    """The measurable property an adjective names, as a noun ("bright" → "luminosity", "large" → "size"),
    or None (see :func:`attribute_of`)."""
    attribute = attribute_of(adjective)
    return attribute.lemma_names()[0].replace("_", " ") if attribute is not None else None


def _adjective_weight(word: str) -> float:
    return 0.8 if measurable_attribute(word) else 0.05


def _rarity(word: str) -> float:
    _, tags = lexicon.sense_count(word)
    return 1.0 / (1.0 + tags / _RARE_TAGS)


@functools.lru_cache(maxsize=65_536)
def word_weight(word: str, pos: str | None = None) -> float:
    """How much `word` says, 0..1 (see the module docstring): "whole", "video", "screen", "distinct" ≈ 0;
    "eagle", "umbrella", "lighthouse", a name ≈ 1.

    Args:
        word: one word.
        pos: the part of speech it is used in, when known (``n``, ``v``, ``a``, ``r``): only that
            reading is weighed ("screen" the noun, not "to screen" a film). None: its best reading
            among those it is commonly used in.
    """
    w = word.strip().lower().strip("'\"“”‘’.,?!")
    if not w or w in FUNCTION_WORDS:
        return 0.0
    if any(ch.isdigit() for ch in w):
        return 1.0
    if not lexicon.lexicon_available():
        return 1.0
    known = lexicon.parts_of_speech(w)
    if not known:
        return 1.0 if len(w) > 2 else 0.0  # unknown to WordNet: a name or a made-up word says a lot
    tags = lexicon.tags_by_pos(w)
    total = sum(tags.values())
    # the readings the word is used in: a part of speech with a share of its tagged uses (all, when untagged)
    used = {p for p in known if total == 0 or tags.get(p, 0) >= _MIN_POS_SHARE * total} or set(known)
    if pos in known:
        used = {pos}
    weights = []
    if "n" in used:
        weights.append(_noun_weight(w))
    if "a" in used:
        weights.append(_adjective_weight(w))
    if "v" in used or "r" in used:
        weights.append(_rarity(w) * (0.6 if "v" in used else 0.3))
    best = max(weights) if weights else 0.0
    return round(min(1.0, best) * _rarity_floor(w), 3)


def _rarity_floor(word: str) -> float:
    """A word used very often in any sense says less whatever it is ("people", "time", "thing")."""
    return 0.5 + 0.5 * _rarity(word) ** 0.5


_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+(?:[.:]\d+)?")


def content_words(text: str, min_weight: float = 0.3) -> list[str]:
    """The words of `text` that say something (weight ≥ `min_weight`), in order, lowercased."""
    return [w.lower() for w in _WORD.findall(text) if word_weight(w) >= min_weight]


def phrase_weight(phrase: str) -> float:
    """A phrase says as much as its most informative word."""
    return max((word_weight(w) for w in _WORD.findall(phrase)), default=0.0)


@functools.lru_cache(maxsize=65_536)
def text_similarity(a: str, b: str) -> float:
    """Cosine similarity of the MiniLM embeddings of two texts (0.0 when the model is not installed)."""
    embedder = load_embedder()
    if embedder is None or not a.strip() or not b.strip():
        return 0.0
    return embedder.similarity(a, b)
