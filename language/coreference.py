"""Who "she" is: the people a narrated sentence's personal pronouns refer to.

Why: narration names a person once ("Martha left her umbrella on the bus")
and then says "she" ("The pharmacy had already shut, so she went home"). A
question names the person ("Did Martha get her medicine?"), so without this
the sentence that answers it is about nobody the question names.

The rule is the simplest one that holds for narration: a sentence with a
personal pronoun and no name of its own refers to the people named in the
latest earlier sentence that named any. A person's name is a capitalised word
that is not a function word and that WordNet knows as nobody's common noun —
either not at all, or first as a person ("Martha", "Daniel"; not "Later" at
a sentence's start, not "Monday").
"""

from __future__ import annotations

import functools

from mcr.language import lexicon
from mcr.language.grammar import is_function_word, split_sentences, tokens

#: Third-person pronouns that stand for a person (not "it": that is a thing as often as not).
PERSONAL_PRONOUNS = frozenset("he him his himself she her hers herself they them their theirs themselves".split())

@functools.lru_cache(maxsize=8192)
def _is_a_persons_name(word: str) -> bool:
    if not word[:1].isupper() or is_function_word(word) or not word.isalpha():
        return False
    wn = lexicon.wordnet()
    if wn is None:  # without the lexicon only a capitalised word inside a sentence reads as a name
        return True
    common = wn.synsets(word.lower())
    if not common:
        return True
    return common[0].lexname() == "noun.person" and any(
        lemma.name()[:1].isupper() for lemma in common[0].lemmas())  # "Martha", never "teacher"


def people_named(sentence: str) -> list[str]:
    """The persons' names a sentence says, in order."""
    words = [w for w in tokens(sentence) if w[:1].isalpha()]
    return list(dict.fromkeys(w for i, w in enumerate(words)
                              if _is_a_persons_name(w) and (i > 0 or lexicon.wordnet() is not None)))


def says_a_personal_pronoun(sentence: str) -> bool:
    return any(w.lower() in PERSONAL_PRONOUNS for w in tokens(sentence))


def referents(timeline: list[tuple[float, str]]) -> dict[str, tuple[str, ...]]:
    """For each sentence of a transcript (`(start, sentence)` pairs, any order) that says a personal pronoun
    and names nobody, the people named in the latest earlier sentence that named anyone."""
    found: dict[str, tuple[str, ...]] = {}
    latest: tuple[str, ...] = ()
    for _, sentence in sorted(timeline, key=lambda item: item[0]):
        named = tuple(people_named(sentence))
        if named:
            latest = named
        elif latest and says_a_personal_pronoun(sentence):
            found.setdefault(sentence, latest)
    return found
