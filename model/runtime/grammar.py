"""Constrained decoding with llguidance: one logits processor for every grammar.

The InternVideo3 policy constrains its replies to well-formed tool calls or an
answer (a Lark grammar with JSON-schema rules), and model-backed tools
constrain short replies to a pattern (``ground`` asks for ``start - end``
seconds). Both are the same mechanism: llguidance compiles the grammar against
the tokenizer once and, at each step, gives the bitmask of tokens that keep the
output inside the language (end of sequence only where the language allows
it). ``ModelSession.generate(logits_processor=...)`` applies it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GrammarConstraint", "ll_tokenizer"]

_LL_TOKENIZERS: dict[int, tuple[Any, Any]] = {}  # id(hf tokenizer) -> (hf tokenizer, llguidance tokenizer)


def ll_tokenizer(hf_tokenizer: Any) -> Any:
    """llguidance's view of a Hugging Face fast tokenizer, built once per tokenizer (~1 s)."""
    key = id(hf_tokenizer)
    hit = _LL_TOKENIZERS.get(key)
    if hit is not None and hit[0] is hf_tokenizer:
        return hit[1]
    try:
        import llguidance.hf
    except ImportError:
        raise ImportError("constrained decoding needs llguidance: pip install llguidance") from None
    built = llguidance.hf.from_tokenizer(hf_tokenizer)
    _LL_TOKENIZERS[key] = (hf_tokenizer, built)
    return built


class GrammarConstraint:
    """A logits processor that only allows continuations inside a grammar.

    Args:
        tokenizer: the Hugging Face tokenizer of the model (its llguidance view
            is built once and reused).
        lark: the grammar, in llguidance's Lark dialect (``%json {...}`` for
            JSON-schema rules, ``/regex/`` terminals).
    """

    def __init__(self, tokenizer: Any, lark: str):
        import llguidance

        self.tokenizer = ll_tokenizer(tokenizer)
        self.grammar = llguidance.grammar_from("lark", lark)
        self.matcher = llguidance.LLMatcher(self.tokenizer, self.grammar)
        if self.matcher.is_error():
            raise ValueError(f"could not build the grammar: {self.matcher.get_error()}")
        self._fed = 0

    @classmethod
    def regex(cls, tokenizer: Any, pattern: str) -> GrammarConstraint:
        """Decoding restricted to a full match of the regular expression ``pattern`` (no ``/`` in it)."""
        if "/" in pattern:
            raise ValueError(f"regex {pattern!r}: write '/' as a character class ([/]) or use a Lark grammar")
        return cls(tokenizer, f"start: /{pattern}/\n")

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Mask ``scores`` ``(1, V)`` to the tokens the grammar allows after ``input_ids`` ``(1, n)``."""
        import torch
        import llguidance.torch as lt

        ids = input_ids[0].tolist()
        if len(ids) < self._fed:  # a new sequence: start the grammar again
            self.matcher.reset()
            self._fed = 0
        for token in ids[self._fed:]:
            self.matcher.consume_token(token)
        self._fed = len(ids)
        n = self.tokenizer.vocab_size
        mask = lt.allocate_token_bitmask(1, n)
        lt.fill_next_token_bitmask(self.matcher, mask, 0)
        head = scores[:, :n].clone()  # (1, n)
        lt.apply_token_bitmask_inplace(head, mask)
        out = torch.full_like(scores, float("-inf"))  # tokens beyond the tokenizer are never allowed
        out[:, :n] = head
        return out
