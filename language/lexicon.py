"""Lexical knowledge: which words mean the same thing or a broader thing (WordNet, read offline).

A question says "people", the detector says ``person``; a question says "bird",
the detector says ``eagle``; a narrator says "van" where an option says "car".
Word identity misses all of these. WordNet 3.0 knows them: synonyms share a
synset, and a broader word is a hypernym a few steps up.

Where the data comes from: Debian's ``wordnet-base`` (the database under
``/usr/share/wordnet``) and ``wordnet-sense-index`` (its ``index.sense``, which
carries each sense's tag count). NLTK's reader wants them in an NLTK data
folder with a ``lexnames`` table that Debian does not ship, so the first use
copies the files into ``~/.cache/mcr/nltk_data/corpora/wordnet`` (a folder the
project manages; NLTK refuses a symlink into another folder) and writes
``lexnames`` from the lexnames(5WN) man page of the same package. Nothing is
downloaded.

Without the Debian packages everything still answers: :func:`lexicon_available`
is False and :func:`relatedness` falls back to spelling (a word and its plural
or a near spelling are related; other pairs are not).
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import shutil
import threading
import warnings
from pathlib import Path
from typing import Any

__all__ = ["relatedness", "words_for_label", "lexicon_available", "wordnet", "sense_count", "lemma_forms",
           "noun_lemma", "parts_of_speech", "tags_by_pos", "data_folder", "WORDNET_SOURCE", "LEXNAMES_MAN_PAGE",
           "names_a_speaker", "names_a_saying", "dominant_pos", "verb_field"]

WORDNET_SOURCE = Path(os.environ.get("MCR_WORDNET_DIR", "/usr/share/wordnet"))  # Debian: wordnet-base
LEXNAMES_MAN_PAGE = Path("/usr/share/man/man5/lexnames.5WN.gz")  # Debian: wordnet-base
# The files NLTK's WordNet reader opens (index.sense comes from wordnet-sense-index).
_FILES = ("adj.exc", "adv.exc", "noun.exc", "verb.exc", "data.adj", "data.adv", "data.noun", "data.verb",
          "index.adj", "index.adv", "index.noun", "index.verb", "index.sense", "cntlist.rev")
_LEXNAME_LINE = re.compile(r"^(\d\d)\t(\w+\.\w+)\s*\t")
_POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
_lock = threading.Lock()


def data_folder() -> Path:
    """The NLTK data folder the project manages (``MCR_NLTK_DATA`` overrides it)."""
    return Path(os.environ.get("MCR_NLTK_DATA", Path.home() / ".cache" / "mcr" / "nltk_data"))


def _lexnames_from_man_page(page: Path) -> str:
    """The ``lexnames`` table: the numbered lines of lexnames(5WN), with the part of speech as a third column."""
    with gzip.open(page, "rt", encoding="utf-8", errors="replace") as fh:
        rows = [m.groups() for line in fh if (m := _LEXNAME_LINE.match(line))]
    if len(rows) != 45 or [int(n) for n, _ in rows] != list(range(45)):
        raise ValueError(f"{page}: expected the 45 numbered lexicographer files, found {len(rows)}")
    return "".join(f"{n}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n" for n, name in rows)


def _install(target: Path) -> None:
    """Copy Debian's WordNet into `target` (an NLTK ``corpora/wordnet`` folder) with a generated lexnames."""
    missing = [f for f in _FILES if not (WORDNET_SOURCE / f).is_file()]
    if missing or not LEXNAMES_MAN_PAGE.is_file():
        raise FileNotFoundError(
            f"WordNet is not installed ({WORDNET_SOURCE} lacks {missing or 'nothing'}; "
            f"{LEXNAMES_MAN_PAGE} {'is missing' if not LEXNAMES_MAN_PAGE.is_file() else 'is present'}); "
            "install the Debian packages wordnet-base and wordnet-sense-index")
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in _FILES:
        shutil.copyfile(WORDNET_SOURCE / name, partial / name)
    (partial / "lexnames").write_text(_lexnames_from_man_page(LEXNAMES_MAN_PAGE), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)  # another process sees either no folder or a whole one


@functools.lru_cache(maxsize=1)
def wordnet() -> Any | None:
    """NLTK's WordNet reader over the project's copy of Debian's WordNet, or None when it is not installed."""
    with _lock:
        target = data_folder() / "corpora" / "wordnet"
        try:
            if not (target / "lexnames").is_file():
                _install(target)
            import nltk
            from nltk.corpus.reader.wordnet import WordNetCorpusReader
        except (FileNotFoundError, ImportError, ValueError, OSError):
            return None
        if str(data_folder()) not in nltk.data.path:  # NLTK reads only from folders on its data path
            nltk.data.path.insert(0, str(data_folder()))
        with warnings.catch_warnings():  # "multilingual functions are not available": we use English only
            warnings.simplefilter("ignore")
            return WordNetCorpusReader(str(target), None)


def lexicon_available() -> bool:
    """True when WordNet could be read (Debian's wordnet-base + wordnet-sense-index and NLTK are installed)."""
    return wordnet() is not None


def _clean(word: str) -> str:
    return re.sub(r"\s+", "_", word.strip().lower())


@functools.lru_cache(maxsize=65_536)
def parts_of_speech(word: str) -> frozenset[str]:
    """WordNet's parts of speech for a word form (``n``, ``v``, ``a``, ``r``; satellites count as ``a``)."""
    wn = wordnet()
    if wn is None:
        return frozenset()
    return frozenset("a" if s.pos() == "s" else s.pos() for s in wn.synsets(_clean(word)))


@functools.lru_cache(maxsize=65_536)
def noun_lemma(word: str) -> str | None:
    """The noun a word form is an inflection of ("people" → "people", "animals" → "animal"), or None."""
    wn = wordnet()
    if wn is None:
        return None
    return wn.morphy(_clean(word), "n")


@functools.lru_cache(maxsize=65_536)
def sense_count(word: str) -> tuple[int, int]:
    """(number of senses, sum of the senses' tag counts in the sense-tagged corpus) of a word form.

    The tag counts (``index.sense``'s last column, from SemCor) say how often a
    word is used; the number of senses says how many things it can mean.
    """
    wn = wordnet()
    if wn is None:
        return (0, 0)
    total, tags = 0, 0
    seen = set()
    for pos in "nvar":
        base = wn.morphy(_clean(word), pos)
        if base is None:
            continue
        for lemma in wn.lemmas(base, pos):
            if lemma.key() in seen:
                continue
            seen.add(lemma.key())
            total += 1
            tags += lemma.count()
    return (total, tags)


@functools.lru_cache(maxsize=65_536)
def tags_by_pos(word: str) -> dict[str, int]:
    """Tag counts of a word form's senses per part of speech (``n``, ``v``, ``a``, ``r``)."""
    wn = wordnet()
    out: dict[str, int] = {}
    if wn is None:
        return out
    for pos in "nvar":
        base = wn.morphy(_clean(word), pos)
        if base is not None:
            lemmas = wn.lemmas(base, pos) + (wn.lemmas(base, "s") if pos == "a" else [])
            out[pos] = sum(lemma.count() for lemma in lemmas)
    return out


@functools.lru_cache(maxsize=65_536)
def lemma_forms(word: str) -> frozenset[str]:
    """A word's base forms in every part of speech, plus the word itself ("cars" → {"cars", "car"})."""
    w = _clean(word)
    wn = wordnet()
    out = {w}
    if wn is not None:
        out |= {b for pos in "nvar" if (b := wn.morphy(w, pos))}
    elif w.endswith("s") and len(w) > 3:
        out.add(w[:-1])
    return frozenset(out)


def _spelling_relatedness(a: str, b: str) -> float:
    a, b = _clean(a), _clean(b)
    if a == b:
        return 1.0
    stem = lambda w: w[:-2] if w.endswith("es") else w[:-1] if w.endswith("s") else w  # noqa: E731
    if len(a) >= 3 and len(b) >= 3 and stem(a) == stem(b):
        return 1.0
    return 0.0


_MIN_SHARE = 0.05  # a sense used less than this share of a word's tagged uses does not stand for the word


@functools.lru_cache(maxsize=16_384)
def _noun_synsets(word: str) -> tuple[Any, ...]:
    """The noun senses a word is used in: those with a share of its tagged uses, else (no tags) all of them.

    "bird" is the animal (29 tags) far more than a young woman (0); "van" has no
    tags at all, so its vehicle sense must not be lost behind "vanguard".
    """
    wn = wordnet()
    if wn is None:
        return ()
    forms = dict.fromkeys([_clean(word), *(wn._morphy(_clean(word), "n") or [])])
    lemmas = [lemma for form in forms for lemma in wn.lemmas(form, "n")]
    if not lemmas:
        return ()
    total = sum(lemma.count() for lemma in lemmas)
    if total == 0:
        return tuple(dict.fromkeys(lemma.synset() for lemma in lemmas))
    chosen = [lemma.synset() for i, lemma in enumerate(lemmas) if i == 0 or lemma.count() >= _MIN_SHARE * total]
    return tuple(dict.fromkeys(chosen))


@functools.lru_cache(maxsize=16_384)
def _senses(word: str) -> tuple[frozenset[Any], frozenset[Any]]:
    """(first senses, common senses) of `word` in every part of speech: the sense it is used in most (WordNet
    lists it first) and each sense with at least `_MIN_SHARE` of its tagged uses (the first alone if untagged)."""
    wn = wordnet()
    if wn is None or not word.isalpha():
        return frozenset(), frozenset()
    first, common = [], []
    for pos in "nvar":
        lemmas = [lemma for form in dict.fromkeys([_clean(word), *(wn._morphy(_clean(word), pos) or [])])
                  for lemma in wn.lemmas(form, pos)]
        total = sum(lemma.count() for lemma in lemmas)
        first += [lemma.synset() for lemma in lemmas[:1]]
        common += [lemma.synset() for i, lemma in enumerate(lemmas)
                   if (lemma.count() >= _MIN_SHARE * total if total else i == 0)]
    return frozenset(first), frozenset(common)


@functools.lru_cache(maxsize=65_536)
def synonymous(a: str, b: str) -> bool:
    """Words that can stand for each other: forms of one word ("went"/"go"), or words of which one's main sense
    is a sense the other is commonly used in ("shut"/"closed", "big"/"large", "bought"/"purchased").

    Never through senses secondary to both: "minute" and "second" share "a short moment", and an option of
    "a minute" must not be backed by "ten seconds"; "left" is "forgot" only in a sense nobody tags.
    """
    if a == b or lemma_forms(a) & lemma_forms(b):
        return True
    (first_a, common_a), (first_b, common_b) = _senses(a), _senses(b)
    return bool(first_a & common_b or first_b & common_a)


def _broader(synset: Any) -> list[Any]:
    """One step up: hypernyms, instance hypernyms, and for a group ("people") its members ("person")."""
    up = synset.hypernyms() + synset.instance_hypernyms()
    if synset.lexname() == "noun.group":
        up += synset.member_meronyms()
    return up


@functools.lru_cache(maxsize=16_384)
def _up_distances(synset: Any, limit: int = 14) -> dict[Any, int]:
    """Each broader synset and its fewest steps up (up to `limit`)."""
    out = {synset: 0}
    frontier = [synset]
    for step in range(1, limit + 1):
        nxt = []
        for s in frontier:
            for h in _broader(s):
                if h not in out:
                    out[h] = step
                    nxt.append(h)
        frontier = nxt
    return out


_TOO_GENERAL_DEPTH = 2  # entity, physical entity, abstraction, object: everything is one
_SIBLING_PARENT_DEPTH = 4  # a shared parent must be at least this deep to make two words kin ("artifact" does not)


@functools.lru_cache(maxsize=65_536)
def relatedness(a: str, b: str) -> float:
    """How well one word can stand for the other: 1.0 same word or synonym, decaying with distance in WordNet.

    Symmetric. A broader word ("bird" for "eagle", "animal" for "horse",
    "person" for "people") scores ``max(0.5, 1 - 0.1 × steps)``: a horse *is*
    an animal however many steps lie between. Two words under a close common
    parent ("van"/"car", "man"/"woman") score ``1 - 0.15 × (steps on both sides)``
    up to four steps. Only the senses a word is commonly used in count.
    Without WordNet, spelling: a word and its plural are related.

    Returns:
        a value in 0..1; 0.0 for unrelated words.
    """
    if _spelling_relatedness(a, b) == 1.0:
        return 1.0
    sa, sb = _noun_synsets(a), _noun_synsets(b)
    if not sa or not sb:
        return _spelling_relatedness(a, b)
    best = 0.0
    for x in sa:
        ux = _up_distances(x)
        for y in sb:
            if x == y:
                return 1.0
            uy = _up_distances(y)
            for lower, upper, ups in ((x, y, ux), (y, x, uy)):
                if upper in ups and upper.min_depth() > _TOO_GENERAL_DEPTH:
                    best = max(best, max(0.5, 1.0 - 0.1 * ups[upper]))
            for c in ux.keys() & uy.keys():
                steps = ux[c] + uy[c]
                if steps <= 4 and c.min_depth() >= _SIBLING_PARENT_DEPTH:
                    best = max(best, 1.0 - 0.15 * steps)
    return round(best, 3)


@functools.lru_cache(maxsize=65_536)
def is_a(word: str, broader: str) -> bool:
    """Whether `word` names a kind of `broader` (a horse is an animal; a person is not, though both are organisms).

    Why: counting "animals" must add up exactly the labels that are animals.
    `relatedness` also links siblings under a close parent (person and animal
    share "organism"), which is right for "could this label stand for that
    word" and wrong for "is this one of the things counted". The same word, a
    synonym or a plural counts. `word` is read in its first sense only, as
    `words_for_label` reads a detector label (a detected "kite" is the toy,
    not the hawk); `broader` in every commonly used sense.
    """
    if _spelling_relatedness(word, broader) == 1.0:
        return True
    narrow, wide = _noun_synsets(word)[:1], _noun_synsets(broader)
    return any(y == x or (y in _up_distances(x) and y.min_depth() > _TOO_GENERAL_DEPTH) for x in narrow for y in wide)


@functools.lru_cache(maxsize=1024)
def words_for_label(label: str) -> frozenset[str]:
    """A detector label → the words a person would use for it: the label, its synonyms and plural-free forms,
    and its broader words up to two steps ("person" → person, people, individual, someone, ...;
    "eagle" → eagle, bird of prey, bird)."""
    base = _clean(label)
    out = {base.replace("_", " ")}
    wn = wordnet()
    if wn is None:
        return frozenset(out)
    for synset in _noun_synsets(base)[:1]:
        for s, steps in _up_distances(synset, 2).items():
            if s.min_depth() > _TOO_GENERAL_DEPTH:
                out |= {name.replace("_", " ").lower() for name in s.lemma_names()}
        for group in synset.member_holonyms():  # "people" for person: the group the label is a member of
            out |= {name.replace("_", " ").lower() for name in group.lemma_names()}
    return frozenset(out)


@functools.lru_cache(maxsize=8192)
def verb_field(word: str) -> str:
    """WordNet's lexicographer field of a verb's commonest sense ("says" → ``verb.communication``; "" unknown)."""
    wn = wordnet()
    if wn is None:
        return ""
    synsets = wn.synsets(_clean(word), "v")
    return synsets[0].lexname() if synsets else ""


def names_a_saying(word: str) -> bool:
    """`word` is, above all, a verb of saying ("described", "mentions", "says", "told").

    In "while the grass is being described" the event is the grass: the verb
    only says that it is spoken about, and a transcript holds the grass, not
    the describing. Words mostly used as nouns ("talk", "word") are kept.
    """
    if "v" not in parts_of_speech(word) or verb_field(word) != "verb.communication":
        return False
    tags = tags_by_pos(word)
    return tags.get("v", 0) >= max(tags.values(), default=0)


def names_a_message(noun: str) -> bool:
    """A noun whose usual sense is a message told ("forecast", "news", "announcement", "story"; WordNet's
    message.n.02), so a question "according to" it asks what was said. A written thing ("text", "title"), a
    picture or the video itself is no message in this sense."""
    synsets = _noun_synsets(noun)
    return bool(synsets) and any("message.n.02" in {s.name() for s in path} for path in synsets[0].hypernym_paths())


@functools.lru_cache(maxsize=8192)
def names_a_speaker(noun: str) -> bool:
    """A noun for someone or something that speaks or is spoken ("narrator", "speaker", "voice", "speech"),
    or an act of speaking ("narration", "lecture": WordNet's speech acts)."""
    wn = wordnet()
    if wn is None:
        return False
    for synset in _noun_synsets(noun)[:2]:
        ancestors = {s.name() for path in synset.hypernym_paths() for s in path}
        if ancestors & {"communicator.n.01", "speech.n.02", "speech.n.01", "auditory_communication.n.01",
                        "sound.n.01", "utterance.n.01", "speech_act.n.01"}:
            return True
    return False


@functools.lru_cache(maxsize=8192)
def dominant_pos(word: str) -> str:
    """The part of speech `word` is most often tagged as in WordNet's sense counts (``n``, ``v``, ``a``,
    ``r``; a tie goes to the noun), or "" when WordNet does not know it."""
    pos = parts_of_speech(word)
    if not pos:
        return ""
    tags = tags_by_pos(word)
    return max(sorted(pos), key=lambda p: (tags.get(p, 0), p == "n"))  # sorted: the same answer in every process


_PHYSICAL = {"noun.artifact", "noun.animal", "noun.person", "noun.food", "noun.plant", "noun.object",
             "noun.body", "noun.substance"}


@functools.lru_cache(maxsize=8192)
def names_an_object(noun: str) -> bool:
    """The noun names something a camera sees as an object (a thing, an animal, a person)."""
    synsets = _noun_synsets(noun)
    if not synsets:
        return False
    first = synsets[0]
    if first.lexname() == "noun.group" and first.member_meronyms():  # "people": a group of persons
        first = first.member_meronyms()[0]
    if first.lexname() in _PHYSICAL:
        return True
    ancestors = {s.name() for path in first.hypernym_paths() for s in path}
    return bool(ancestors & {"person.n.01", "animal.n.01", "physical_object.n.01", "object.n.01"}) and \
        first.lexname() != "noun.location"


def names_a_seen_thing(noun: str) -> bool:
    """An object (`names_an_object`) or a drawn shape ("squares", "dots"): what is counted in the picture,
    never the video's parts."""
    synsets = _noun_synsets(noun)
    return names_an_object(noun) or bool(synsets) and synsets[0].lexname() == "noun.shape"
