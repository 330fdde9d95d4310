"""On-screen text with positions: RapidOCR (ONNX models shipped in its wheel), loaded once.

One place for OCR so every tool reads text the same way: `read_text` takes a
frame (RGB array) or an image file and returns each line read with its box
and score. Lines under `MIN_SCORE` are dropped: RapidOCR's low-score lines on
video frames are mostly texture read as letters. OCR engines trained on
Chinese+Latin drop spaces between capital words ("THERED LIGHTHOUSE"); the
lines are re-spaced with `respace`: tokens that are not words are split with a
unigram lexicon (the embedding model's WordPiece vocabulary, ranked by frequency).
"""

from __future__ import annotations

import functools
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from mcr.tools.base import ToolFailure

MIN_SCORE = 0.5
OCR_HELP = "pip install --no-deps rapidocr-onnxruntime (its models ship in the wheel)"

_engine: Any = None
_lock = threading.Lock()


class TextLine(BaseModel):
    """One line of text read on screen."""

    text: str
    box: tuple[float, float, float, float] = Field(description="[x0, y0, x1, y1] in frame pixels")
    score: float
    t: float | None = Field(default=None, description="time (s) of the frame it was read in")
    ground: str | None = Field(default=None, description="named colour behind the letters (the box's edge), "
                               "e.g. the card or screen the text is on")
    ink: str | None = Field(default=None, description="named colour of the letters")


def engine() -> Any:
    """The process-wide RapidOCR engine (~1 s to load), created on first use.

    Raises:
        ToolFailure (``ocr_not_installed``): rapidocr-onnxruntime is missing.
    """
    global _engine
    with _lock:
        if _engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:
                raise ToolFailure(f"OCR is not available ({exc}): {OCR_HELP}", "ocr_not_installed") from None
            _engine = RapidOCR()
        return _engine


def read_text(
    image: np.ndarray | str | Path, t: float | None = None, min_score: float = MIN_SCORE, respaced: bool = True
) -> list[TextLine]:
    """Lines of text in an (H, W, 3) uint8 RGB frame or an image file, top to bottom.

    Each line carries the colour it is written on (`ground`) and its letters'
    colour (`ink`), measured on the line's own box (`mcr.tools.pixels.text_colours`),
    so "the word on the red card" is judged on the card, not on the whole frame.

    Args:
        t: the frame's time, copied into each line (so facts can cite it).
        min_score: drop lines RapidOCR scores below this.
        respaced: put back spaces OCR dropped between words.
    """
    from mcr.tools.pixels import text_colours

    ocr = engine()
    if not isinstance(image, np.ndarray):
        import cv2

        bgr = cv2.imread(str(image))
        if bgr is None:
            raise ValueError(f"read_text cannot read the image file {image}; is it a JPEG or PNG?")
        image = np.ascontiguousarray(bgr[..., ::-1])
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"read_text wants an (H, W, 3) uint8 RGB image, not {image.dtype} {image.shape}")
    source: Any = np.ascontiguousarray(image[..., ::-1])  # RapidOCR reads arrays as OpenCV BGR
    with _lock:  # onnxruntime sessions are not re-entrant across our threads
        result, _ = ocr(source)
    lines = []
    for points, text, score in result or []:
        if float(score) < min_score or not str(text).strip():
            continue
        pts = np.asarray(points, np.float32)  # (4, 2) corners
        box = (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))
        value = str(text).strip()
        if respaced:
            value = respace(value)
        ground, ink = text_colours(image, box)
        lines.append(TextLine(text=value, box=tuple(round(v, 1) for v in box), score=round(float(score), 3),
                              t=None if t is None else round(t, 3), ground=ground, ink=ink))
    return sorted(lines, key=lambda line: (line.box[1], line.box[0]))


# A fixed cost per word on top of its rank cost, so a split into more, commoner
# words ("NO ON MARKET") loses to fewer, rarer ones ("NOON MARKET").
_WORD_COST = 4.0


@functools.lru_cache(maxsize=1)
def _lexicon() -> dict[str, float]:
    """Word → cost (log frequency rank), from the embedding model's WordPiece vocabulary."""
    from mcr.tools.index import load_embedder

    embedder = load_embedder()
    if embedder is None:
        return {}
    vocab = embedder.tokenizer.get_vocab()
    first = vocab.get("the", 0)  # BERT vocabularies list whole words by frequency from "the" on
    costs = {}
    for word, rank in vocab.items():
        if rank < first and word not in ("a", "i"):
            continue  # single characters and reserved tokens are not words
        if word.isalpha():
            costs[word] = math.log(max(rank - first, 0) + 2) + _WORD_COST
    return costs


def respace(text: str) -> str:
    """Put back the spaces OCR dropped: ``'THERED LIGHTHOUSE'`` → ``'THE RED LIGHTHOUSE'``; and take out those
    it added between widely spaced letters (`rejoin_spaced`).

    Each token that is not a word is split into the cheapest sequence of words
    (unigram costs); a token that cannot be split is kept as it is.
    """
    lexicon = _lexicon()
    if not lexicon:
        return text
    out = []
    for token, joined in _rejoined(text.split(), lexicon):
        low = token.lower()
        if not low.isalpha() or low in lexicon or len(low) < 4 or joined:  # a word put back together stays whole
            out.append(token)
            continue
        words = _split(low, lexicon)
        if words is None or any(len(w) <= SPACED_FRAGMENT and lexicon.get(w, RARE_COST + 1) > RARE_COST
                                for w in words):
            out.append(token)  # no split, or one into rare fragments: a word the lexicon lacks ("JIGSAW")
            continue
        pos, pieces = 0, []
        for w in words:
            pieces.append(token[pos : pos + len(w)])
            pos += len(w)
        out.append(" ".join(pieces))
    return " ".join(out)


SPACED_FRAGMENT = 2  # letters: large, widely spaced letters come back from OCR as "JI GS AW"
RARE_COST = 11.0  # a unigram cost (-log p) above this is a rare token: "ji" 13.0, "gs" 14.2; "to" 5.8, "or" 7.6


def rejoin_spaced(text: str, lexicon: dict[str, float]) -> str:
    """Join a run of three or more fragments of at most `SPACED_FRAGMENT` letters that OCR split a word into
    (``'FR OS TY MEADOWS'`` → ``'FROSTY MEADOWS'``): when the joined run is a word, or most of its fragments are
    rare tokens (`RARE_COST`; "TO BE OR" stays as it is)."""
    return " ".join(token for token, _ in _rejoined(text.split(), lexicon))


def _rejoined(tokens: list[str], lexicon: dict[str, float]) -> list[tuple[str, bool]]:
    """`rejoin_spaced` on tokens: each token, and whether it was joined from fragments."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and tokens[j].isalpha() and len(tokens[j]) <= SPACED_FRAGMENT:
            j += 1
        run = tokens[i:j]
        if len(run) >= 3:
            joined = "".join(run)
            strays = sum(lexicon.get(t.lower(), RARE_COST + 1) > RARE_COST for t in run)
            if joined.lower() in lexicon or strays * 2 > len(run):
                out.append((joined, True))
                i = j
                continue
        out.extend((t, False) for t in (run or tokens[i:i + 1]))
        i = max(j, i + 1)
    return out


def _split(s: str, lexicon: dict[str, float], longest: int = 20) -> list[str] | None:
    best = np.full(len(s) + 1, np.inf)  # (n+1,) cheapest cost of s[:i]
    back = [0] * (len(s) + 1)
    best[0] = 0.0
    for i in range(1, len(s) + 1):
        for j in range(max(0, i - longest), i):
            cost = lexicon.get(s[j:i])
            if cost is not None and best[j] + cost < best[i]:
                best[i], back[i] = best[j] + cost, j
    if not np.isfinite(best[-1]):
        return None
    words, i = [], len(s)
    while i > 0:
        words.append(s[back[i] : i])
        i = back[i]
    return words[::-1]
