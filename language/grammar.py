"""English grammar words: the closed classes a reader needs to find a question's structure.

These are the function words of English (determiners, pronouns, prepositions,
conjunctions, auxiliaries, wh-words), the same in any question; they carry the
syntax, not the content. Content words are never listed here: what a content
word weighs comes from :mod:`mcr.language.similarity`.
"""

from __future__ import annotations

import re

__all__ = ["WH_WORDS", "DETERMINERS", "PRONOUNS", "PREPOSITIONS", "CONJUNCTIONS", "AUXILIARIES", "NEGATIONS", "QUANTIFIERS",
           "FUNCTION_WORDS", "tokens", "is_function_word"]

WH_WORDS = frozenset("what which who whom whose when where why how".split())
DETERMINERS = frozenset("a an the this that these those each every any some no all both either neither "
                        "another other such my your his her its our their".split())
PRONOUNS = frozenset("i me you he him she it we us they them myself yourself himself herself itself ourselves "
                     "themselves someone somebody something anyone anybody anything one ones".split())
PREPOSITIONS = frozenset("about above across after against along among around as at before behind below beneath "
                         "beside besides between beyond by down during for from in inside into near of off on "
                         "onto out outside over past since through throughout till to toward towards under "
                         "underneath until up upon via with within without".split())
CONJUNCTIONS = frozenset("and or but nor so yet if because while whereas although though than then once unless "
                         "whether".split())
AUXILIARIES = frozenset("be is are was were been being am do does did doing done have has had having can could "
                        "may might must shall should will would 's 're 've 'd 'll".split())
NEGATIONS = frozenset("not no never none nothing nobody nowhere neither nor n't cannot".split())
THING_PRONOUNS = frozenset({"it", "they", "them"})  # pronouns that stand for a thing as often as a person
QUANTIFIERS = frozenset("many much few fewer more most less least several".split())
_OTHER = frozenset("there here also just only very too really please".split())
FUNCTION_WORDS = (WH_WORDS | DETERMINERS | PRONOUNS | PREPOSITIONS | CONJUNCTIONS | AUXILIARIES | NEGATIONS
                  | QUANTIFIERS | _OTHER)

_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[A-Za-z]+(?:[-'][A-Za-z]+)*|n't|[\"“”‘’']|[?,.!;:]")


def tokens(text: str) -> list[str]:
    """Words, numbers, quotes and punctuation, in order ("isn't" → "is", "n't")."""
    text = re.sub(r"(\w)n't\b", r"\1 n't", text)
    return _TOKEN.findall(text)


def is_function_word(word: str) -> bool:
    return word.lower() in FUNCTION_WORDS


def split_sentences(text: str) -> list[str]:
    """A paragraph of speech as sentences, split after each full stop, question or exclamation mark."""
    parts = [p.strip() for p in re.split(r"(?<=[.?!])\s+", text) if p.strip()]
    return parts or ([text.strip()] if text.strip() else [])


def yes_or_no(answer: str) -> str | None:
    """"yes" or "no" when `answer` opens as the answer to a yes/no question ("No, she left it on the bus",
    "Yes."), else None ("No one came" opens with no answer word)."""
    words = answer.split()
    first = words[0].lower().rstrip(",.!") if words else ""
    if first in ("yes", "no") and (len(words) == 1 or words[0][-1] in ",.!"):
        return first
    return None
