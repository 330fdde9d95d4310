"""How the verifier matches words it reads in evidence against words of a question or an option.

Evidence text comes from machines that mishear and misread: Whisper tiny.en on
espeak-ng speech writes "Thomas" for *Tomas*, "Caddles" for *kettles*, "Free"
for *three*, "Sophie Myse" for *Sofia buys*; OCR splits a title into lines.
Exact word equality would reject most right answers, so a word matches when
it is *similar enough*, in one of two ways, whichever is higher:

* **spelling** — difflib's ratio of the two lowercase words (2·matches / total
  letters): "tomas" ~ "thomas" 0.91;
* **sound** — 1 when a rough phonetic key (:func:`sound_key`: consonant
  classes, each vowel run one ``a``, no doubled letters) is the same for both,
  so "caddles" and "kettles" (both ``katlas``) match, while "candles"
  (``kantlas``) does not; keys that are merely near do not count (measured:
  near keys made "counts" ~ "candles" 0.83).

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

from mcr.language.lexicon import synonymous
from mcr.tools.index import stopwords

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                "nineteen", "twenty")
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


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
def similarity(a: str, b: str, sound_alike: bool = True) -> float:
    """0..1: the better of spelling and sound similarity of two words (spelling only without `sound_alike`:
    text read on screen is misread letter by letter, never misheard — "TUESDAY" is no "DUSTY")."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    na, nb = number_value(a), number_value(b)
    if na is not None and nb is not None:
        return float(na == nb)  # "8" is eight; "seven" is no "eleven", however alike the letters
    spelling = SequenceMatcher(None, a, b).ratio()
    if (na is not None or nb is not None) and (_onset(a) != _onset(b) or abs(len(a) - len(b)) > 1):
        # a number is misheard as a word that starts and sounds like it ("too", "tree", "free" for three: "th"
        # is heard as "f"), never as one that only rhymes or runs on: "light" shares four of five letters with
        # "eight" and says nothing of eight
        spelling = 0.0
    if not sound_alike:
        return spelling
    ka, kb = sound_key(a), sound_key(b)
    # Sound counts only when the keys agree: near keys ("kants" counts, "kantlas" candles) are different words;
    # and "fr" is too short a key to say two words sound alike.
    sound = 1.0 if ka == kb and len(ka) > 2 else 0.0
    return max(spelling, sound)


def _onset(word: str) -> str:
    """The first sound, with "th" as the "f" it is often heard as (espeak's "three" → Whisper's "free")."""
    return "f" if word.startswith("th") else word[:1]


def number_value(word: str) -> int | None:
    """The number a single token states ("eight", "8"), or None."""
    if word.isdigit():
        return int(word)
    return NUMBER_WORDS.index(word) if word in NUMBER_WORDS else None


#: A word heard only as a function word that sounds like it ("for" for four, "to" for two) is weaker
#: evidence than the word itself: above MIN_WORD, so it still counts when nothing better was heard, but
#: a sentence that also says another option outright ("packed six candlesticks for the journey") backs
#: that option more (measured on the long suite's needles: `benchmarks/RESULTS.md`, "Fifth session").
HEARD_AS_FUNCTION_WORD = 0.75
SYNONYM = 0.85  # a synonym (`lexicon.synonymous`) is the same fact told in another word, a little less sure


def best_similarity(word: str, heard: list[str], sound_alike: bool = True) -> tuple[float, int]:
    """The best similarity of `word` to one heard token or two adjacent ones run together; and where.

    A single stopword matches only a word that sounds the same ("for" ~ four, never "the" ~ three),
    and then at `HEARD_AS_FUNCTION_WORD`; a pair may hold one ("in these" ~ Ines).
    """
    best, where = 0.0, -1
    stop = stopwords()
    for i, tok in enumerate(heard):
        if tok == word:
            s = 1.0
        elif tok in stop or len(tok) < 2:
            s = HEARD_AS_FUNCTION_WORD if sound_alike and len(sound_key(tok)) > 2 and sound_key(tok) == sound_key(word) else 0.0
        else:
            s = similarity(word, tok, sound_alike)
            if s < SYNONYM and synonymous(word, tok):  # said in other words: "shut" for "closed"
                s = SYNONYM
        if i + 1 < len(heard):
            s = max(s, similarity(word, tok + heard[i + 1], sound_alike))
        if s > best:
            best, where = s, i
    return best, where


POSSESSOR_WEIGHT = 0.5  # a possessor ("Lucy's") weighs half a word and is never "a missing part"


def possessors(text: str) -> frozenset[str]:
    """The possessors of a phrase ("Lucy's grandfather" → {"lucys"}), as `tokens` writes them."""
    return frozenset(t for w in re.findall(r"([A-Za-z]+)['’]s\b", text) for t in tokens(w + "s"))


def phrase_match(phrase: list[str], heard: list[str], min_word: float, strict: bool = False,
                 modifiers: frozenset[str] = frozenset(), sound_alike: bool = True) -> float:
    """Share of `phrase`'s words found in `heard` with similarity ≥ `min_word` (weighted by that similarity;
    `modifiers`, the phrase's `possessors`, by `POSSESSOR_WEIGHT`: speech names the possessed thing and says
    "her" for the possessor).

    ``strict``: the phrase is one thing (an option, "NORTH TOWER"), so a part of it is not it: with a
    word missing the score is halved (below any connection threshold of 0.5), not just reduced.
    ``sound_alike``: False for text read on screen (see `similarity`).
    """
    if not phrase:
        return 0.0
    total, weights, missing = 0.0, 0.0, 0
    for word in phrase:
        s, _ = best_similarity(word, heard, sound_alike)
        possessor = word in modifiers  # "Lucy's grandfather" is told as "her grandfather": the head decides
        weight = POSSESSOR_WEIGHT if possessor else 1.0
        total += weight * (s if s >= min_word else 0.0)
        weights += weight
        missing += s < min_word and not possessor
    score = total / weights
    return score / 2 if strict and missing else score


@functools.lru_cache(maxsize=65_536)
def singular(word: str) -> str:
    """'horses' → 'horse', 'buses' → 'bus', 'candles' → 'candle' (only for matching labels; never shown).

    WordNet's own lemmatiser where it knows the word (a spelling rule alone
    cannot tell "horses" from "buses"); else the rule: -ches/-shes/-sses/-xes/-zes
    lose "es", -ies becomes -y, any other -s (not -ss) is dropped.
    """
    from mcr.language.lexicon import noun_lemma

    lemma = noun_lemma(word) if word.isalpha() else None
    if lemma:
        return word if lemma == word.lower() else lemma
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
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
    """CIEDE2000 ΔE between two sRGB colours.

    Not the plain Lab distance (ΔE76): that puts CSS navy (0, 0, 128) nearer to
    a purple (ΔE76 29) than to a dark blue (38), because saturated blues
    stretch b*; CIEDE2000's hue and chroma terms put it with the blue.
    """
    from mcr.tools.pixels import _to_lab

    lab = _to_lab(np.array([a, b], np.uint8)).astype(np.float64)  # (2, 3)
    return ciede2000(tuple(lab[0]), tuple(lab[1]))


def ciede2000(lab1: tuple[float, float, float], lab2: tuple[float, float, float]) -> float:
    """ΔE00 of two CIELAB colours (Sharma, Wu and Dalal 2005, with kL = kC = kH = 1)."""
    import math

    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    c_mean = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360 if c1p else 0.0
    h2p = math.degrees(math.atan2(b2, a2p)) % 360 if c2p else 0.0
    dl, dc = l2 - l1, c2p - c1p
    dh = 0.0
    if c1p * c2p:
        dh = h2p - h1p
        dh = dh - 360 if dh > 180 else dh + 360 if dh < -180 else dh
    d_hue = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dh) / 2)
    l_mean, cp_mean = (l1 + l2) / 2, (c1p + c2p) / 2
    h_mean = h1p + h2p
    if c1p * c2p:
        h_mean = (h1p + h2p) / 2 if abs(h1p - h2p) <= 180 else (h1p + h2p + (360 if h1p + h2p < 360 else -360)) / 2
    t = (1 - 0.17 * math.cos(math.radians(h_mean - 30)) + 0.24 * math.cos(math.radians(2 * h_mean))
         + 0.32 * math.cos(math.radians(3 * h_mean + 6)) - 0.20 * math.cos(math.radians(4 * h_mean - 63)))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / math.sqrt(20 + (l_mean - 50) ** 2)
    s_c, s_h = 1 + 0.045 * cp_mean, 1 + 0.015 * cp_mean * t
    r_t = (-2 * math.sqrt(cp_mean**7 / (cp_mean**7 + 25.0**7))
           * math.sin(math.radians(60 * math.exp(-(((h_mean - 275) / 25) ** 2)))))
    return math.sqrt((dl / s_l) ** 2 + (dc / s_c) ** 2 + (d_hue / s_h) ** 2 + r_t * (dc / s_c) * (d_hue / s_h))


_CLOCK = r"(?:(\d+(?::\d{2})?):(\d{2}(?:\.\d+)?)|(\d+(?:\.\d+)?))"  # h:mm:ss or m:ss, or seconds
_TIME_RANGE = re.compile(_CLOCK + r"\s*(?:s|sec|secs|seconds?)?\s*(?:-|–|—|to|and|until)\s*" + _CLOCK
                         + r"\s*(s|sec|secs|seconds?|min|minutes?)?\b")
_HAS_TIME_UNIT = re.compile(r"\d:\d{2}|\d\s*(?:s|sec|secs|seconds?|min|minutes?)\b")


def _seconds(minutes: str | None, secs: str | None, plain: str | None, unit: str | None) -> float:
    if minutes is not None:  # "m" of m:ss, or "h:mm" of h:mm:ss
        hours, _, mins = minutes.rpartition(":")
        return int(hours or 0) * 3600 + int(mins) * 60 + float(secs or 0)
    value = float(plain or 0)
    return value * 60 if unit and unit.startswith("min") else value


def time_range(text: str, require_unit: bool = True):
    """The stretch of video a text names ("5–10 s", "between 5 and 10 seconds", "0:05-0:10", "45:00 to
    1:00:00", "1 to 2 minutes"), as a ``TimeSpan``; None for text that names no range of times.

    Args:
        require_unit: an option's "3 - 4 apples" names no time, so a unit (or m:ss) must be written;
            an answer the policy states as a span ("from 3.0 s to 7.5 s") may leave it out.
    """
    from mcr.context import TimeSpan

    low = (text or "").lower()
    m = _TIME_RANGE.search(low)
    if not m or (require_unit and not _HAS_TIME_UNIT.search(low)):
        return None
    unit = m.group(7)
    a = _seconds(m.group(1), m.group(2), m.group(3), unit)
    b = _seconds(m.group(4), m.group(5), m.group(6), unit)
    a, b = sorted((a, b))
    if require_unit and b <= a:
        return None  # "5 and 5 s" is no stretch to choose
    return TimeSpan(start=a, end=b)
