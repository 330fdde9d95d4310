"""How the verifier matches words it reads in evidence against words of a question or an option.

Evidence text comes from machines that mishear and misread: Whisper tiny.en on
espeak-ng speech writes "Thomas" for *Tomas*, "Caddles" for *kettles*, "Free"
for *three*, "Sophie Myse" for *Sofia buys*; OCR splits a title into lines.
Exact word equality would reject most right answers, so a word matches when
it is *similar enough*, in one of two ways, whichever is higher:

* **spelling** — difflib's ratio of the two lowercase words (2·matches / total
  letters): "tomas" ~ "thomas" 0.91;
* **sound** — the same ratio over a rough phonetic key (:func:`sound_key`:
  consonant classes, no vowels after the first letter, no doubled letters), so
  "caddles" and "kettles" both become ``ktls``, while "candles" stays ``kntls``.

An evidence word may also be two heard words run together ("in these" for
*Ines*): :func:`best_similarity` tries windows of one and two words. Digits
become number words ("7" → "seven"). Thresholds are not guessed: the
similarity of each narrated word to what Whisper heard, against its similarity
to the words that were *not* said, was measured on the truth suite's speech
(``benchmarks/make_verifier_set.py --measure-words``; table in
``benchmarks/RESULTS.md``, "Verifier").

Colours are matched by distance, not by name: an option's colour word gets its
sRGB from a colour table (CSS4 names through matplotlib when installed, plus the
`look` palette's names), and its CIELAB distance to a measured colour decides
("white" vs a measured "light grey": ΔE 10; vs "yellow": ΔE 30+).
"""

from __future__ import annotations

import functools
import re
from difflib import SequenceMatcher

import numpy as np

from mcr.tools.index import stopwords

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                "nineteen", "twenty")
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Words that say *where to look* or *what is asked*, not what the answer is about: never anchors.
QUESTION_WORDS = frozenset("""
according narration narrator narrated say says said saying speak speaks spoken mention mentions mentioned hear heard
tell tells told voice audio video clip film footage scene scenes shot shots screen onscreen written write writes
shown show shows showing displayed display appear appears appearing appeared visible seen see title titles titled
text caption label labelled labeled sign word words background foreground colour color colours colors photograph
photo photos picture image frame frames animal animals object objects thing things first last earliest latest
before after many much number count counted new start starts cut cuts which what who whom whose where when why how
these those following one ones kind type name named called answer time times seconds second end
about during while whose also here does did do were onto over under between across you your can could would
""".split())


def tokens(text: str) -> list[str]:
    """Lowercase word tokens; digits become number words ("7" → "seven"); apostrophes go ("count's" → counts)."""
    out = []
    for tok in _TOKEN.findall(text.lower()):
        tok = tok.replace("'", "")
        if tok.isdigit() and int(tok) < len(NUMBER_WORDS):
            tok = NUMBER_WORDS[int(tok)]
        out.append(tok)
    return out


def key_tokens(text: str) -> list[str]:
    """Tokens without stopwords and one-letter leftovers ("count's" leaves an "s")."""
    stop = stopwords()
    return [t for t in tokens(text) if t not in stop and len(t) > 1]


_SOUND_RULES = (("ph", "f"), ("th", "t"), ("ck", "k"), ("sch", "sk"), ("sh", "s"), ("ch", "k"), ("qu", "k"),
                ("wh", "w"), ("kn", "n"), ("gh", "g"))
_SOUND_CLASS = str.maketrans({"c": "k", "q": "k", "g": "k", "d": "t", "b": "p", "v": "f", "z": "s", "x": "k",
                              "j": "k", "h": "", "w": ""})


@functools.lru_cache(maxsize=65536)
def sound_key(word: str) -> str:
    """A rough phonetic key: consonant classes, every vowel run one ``a``, no doubled letters.

    ``kettles``, ``caddles`` → ``katlas``; ``sophie``, ``sofia`` → ``safa``; ``tomas``, ``thomas`` → ``tamas``.
    """
    w = word.lower()
    for a, b in _SOUND_RULES:
        w = w.replace(a, b)
    w = re.sub(r"[aeiouy]+", "a", w.translate(_SOUND_CLASS))
    key = ""
    for ch in w:
        if not key or ch != key[-1]:
            key += ch
    return key


@functools.lru_cache(maxsize=262144)
def similarity(a: str, b: str) -> float:
    """0..1: the better of spelling and sound similarity of two words."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    spelling = SequenceMatcher(None, a, b).ratio()
    ka, kb = sound_key(a), sound_key(b)
    if ka == kb:
        sound = 1.0 if len(ka) > 2 else 0.0  # "fr": too short a key to say two words sound alike
    else:
        sound = SequenceMatcher(None, ka, kb).ratio() if min(len(ka), len(kb)) > 3 else 0.0
    return max(spelling, sound)


def best_similarity(word: str, heard: list[str]) -> tuple[float, int]:
    """The best similarity of `word` to one heard token or two adjacent ones run together; and where.

    A single stopword matches only a word that sounds the same ("for" ~ four, never "the" ~ three);
    a pair may hold one ("in these" ~ Ines).
    """
    best, where = 0.0, -1
    stop = stopwords()
    for i, tok in enumerate(heard):
        if tok in stop or len(tok) < 2:
            s = 1.0 if len(sound_key(tok)) > 2 and sound_key(tok) == sound_key(word) else 0.0
        else:
            s = similarity(word, tok)
        if i + 1 < len(heard):
            s = max(s, similarity(word, tok + heard[i + 1]))
        if s > best:
            best, where = s, i
    return best, where


def phrase_match(phrase: list[str], heard: list[str], min_word: float) -> float:
    """Share of `phrase`'s words found in `heard` with similarity ≥ `min_word` (weighted by that similarity)."""
    if not phrase:
        return 0.0
    total = 0.0
    for word in phrase:
        s, _ = best_similarity(word, heard)
        total += s if s >= min_word else 0.0
    return total / len(phrase)


def singular(word: str) -> str:
    """'horses' → 'horse', 'candles' → 'candle' (only for matching labels; never shown)."""
    if len(word) > 3 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


# --------------------------------------------------------------------------- #
# Colours
# --------------------------------------------------------------------------- #


@functools.lru_cache(maxsize=1)
def colour_table() -> dict[str, tuple[int, int, int]]:
    """Colour word → sRGB: the `look` palette's names first, then CSS4 names (matplotlib) for the rest."""
    from mcr.tools.pixels import PALETTE

    table: dict[str, tuple[int, int, int]] = {}
    try:
        from matplotlib.colors import CSS4_COLORS, to_rgb

        for name, value in CSS4_COLORS.items():
            table[name] = tuple(round(255 * x) for x in to_rgb(value))  # type: ignore[assignment]
    except ImportError:  # the palette alone still names the basic colours
        pass
    for name, rgb in PALETTE.items():
        table[name.replace(" ", "")] = rgb
        table[name] = rgb
    table["gray"] = table["grey"]
    return table


def colour_of(text: str) -> tuple[int, int, int] | None:
    """The sRGB of a colour word or phrase ("navy", "dark grey", "light green"); None when it names no colour."""
    table = colour_table()
    words = tokens(text)
    for n in (2, 1):
        for i in range(len(words) - n + 1):
            name = "".join(words[i : i + n])
            if name in table:
                return table[name]
            spaced = " ".join(words[i : i + n])
            if spaced in table:
                return table[spaced]
    return None


def colour_distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """CIELAB ΔE76 between two sRGB colours."""
    from mcr.tools.pixels import _to_lab

    lab = _to_lab(np.array([a, b], np.uint8))  # (2, 3)
    return float(np.linalg.norm(lab[0] - lab[1]))
