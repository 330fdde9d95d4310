"""Calibration and healing text that exists on every machine, offline.

Conversion needs a few thousand tokens of representative text; healing needs
far more (10^5+), because a few thousand are memorised within minutes
(``mcr.model.m2la.heal``). Python itself ships ~460K characters of English prose —
the language reference and library topics behind ``help()``, in
``pydoc_data.topics`` — so that is the default source: no download, same text
on every machine with the same Python. Users add their own files (subtitles,
manuals, transcripts of their domain) with ``paths``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

__all__ = ["corpus_ids", "python_reference_texts", "split_ids"]


def python_reference_texts() -> list[str]:
    """The Python reference/help topics (``pydoc_data.topics``), in a stable order."""
    try:
        from pydoc_data.topics import topics
    except ImportError as e:  # stripped-down Pythons drop pydoc_data
        raise RuntimeError("this Python has no pydoc_data (help() topics); pass calibration text files "
                           "explicitly (paths=...)") from e
    return [topics[k] for k in sorted(topics)]


def corpus_ids(tokenizer, n_tokens: int | None, paths: Iterable[str | Path] = (),
               python_docs: bool = True) -> torch.Tensor:
    """The first ``n_tokens`` tokens ``(1, n_tokens)`` of ``paths`` (files, or folders of ``*.txt``) then, if
    ``python_docs``, the Python reference topics (~116K SmolLM2 tokens); ``None``: all of them.

    Each document is tokenised on its own and the results concatenated, so no
    document pays for a gigantic single tokenizer call.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: the sources hold fewer than ``n_tokens`` tokens (says how many).
    """
    texts: list[str] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"calibration text {p}: no such file or folder")
        files = sorted(p.glob("*.txt")) if p.is_dir() else [p]
        texts += [f.read_text(errors="replace") for f in files]
    if python_docs:
        texts += python_reference_texts()
    chunks, total = [], 0
    for text in texts:
        ids = tokenizer(text, return_tensors="pt").input_ids[0]  # (n,)
        chunks.append(ids)
        total += ids.numel()
        if n_tokens is not None and total >= n_tokens:
            break
    if total == 0:
        raise ValueError("no calibration text: pass text files or folders (paths=...) or keep python_docs")
    n_tokens = total if n_tokens is None else n_tokens
    if total < n_tokens:
        raise ValueError(f"calibration sources hold {total} tokens, {n_tokens} requested; add text files")
    return torch.cat(chunks)[None, :n_tokens]


def split_ids(ids: torch.Tensor, held_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, held_out)``: the last ``held_out`` tokens of ``ids`` ``(1, N)`` are held out."""
    if not 0 < held_out < ids.shape[1]:
        raise ValueError(f"held_out must be in (0, {ids.shape[1]}), got {held_out}")
    return ids[:, :-held_out], ids[:, -held_out:]
