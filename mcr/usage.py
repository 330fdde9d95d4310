"""What a model call cost: one record for the session, the decision, the trace and the viewer.

``ModelSession`` fills it for every call, a policy's ``Decision`` carries it to
the graph, the trace's ``model_call`` events store it as JSON under the same
field names, and the viewer and the OpenTelemetry export read those names. It
belongs to the shared vocabulary, so model/, policies/ and traces/ can all use
it without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, computed_field


class Usage(BaseModel):
    """Token and time cost of one model call (or of a decision's calls, summed).

    Attributes:
        prompt_tokens: tokens of the rendered prompt.
        reused_tokens: prompt tokens served from the in-memory cache.
        prefix_loaded_tokens: prompt tokens served from a saved prefix on disk.
        prefilled_tokens: prompt tokens run through the model to build the
            cache (the prompt's delta), so ``cached_tokens + prefilled_tokens
            == prompt_tokens``. A forced reply prefix counts in both.
        generated_tokens: tokens decoded.
        scored_tokens: tokens of candidate continuations scored on forks of
            the prompt (a policy choosing among well-formed replies): run
            through the model, but neither prompt nor reply, so counted apart
            (they were once counted as prefilled: "prefilled" exceeded "prompt").
        cache_bytes: size of the cache after the call.
        prefill_s: seconds spent prefilling.
        latency_s: seconds for the whole call.
        raw_output: what the model wrote (policies record it for the trace).
    """

    model_config = ConfigDict(extra="ignore")

    prompt_tokens: int = 0
    reused_tokens: int = 0
    prefix_loaded_tokens: int = 0
    prefilled_tokens: int = 0
    generated_tokens: int = 0
    scored_tokens: int = 0
    cache_bytes: int = 0
    prefill_s: float = 0.0
    latency_s: float = 0.0
    raw_output: str | None = None

    TOKEN_FIELDS: ClassVar[tuple[str, ...]] = (
        "prompt_tokens", "reused_tokens", "prefix_loaded_tokens", "prefilled_tokens", "generated_tokens", "scored_tokens")

    @classmethod
    def total(cls, records: Iterable[Usage | dict[str, Any]]) -> Usage:
        """The token counts of several calls (or episodes), summed."""
        sums = dict.fromkeys(cls.TOKEN_FIELDS, 0)
        for record in records:
            data = record if isinstance(record, dict) else record.model_dump(include=set(cls.TOKEN_FIELDS))
            for name in cls.TOKEN_FIELDS:
                sums[name] += int(data.get(name) or 0)
        return cls(**sums)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cached_tokens(self) -> int:
        """Prompt tokens that were not computed again: from memory or from disk."""
        return self.reused_tokens + self.prefix_loaded_tokens

    @property
    def spent_tokens(self) -> int:
        """What counts against an episode's token budget: every token the model ran (prefilled, scored, generated)."""
        return self.prefilled_tokens + self.scored_tokens + self.generated_tokens

    def plus_forced(self, n: int) -> Usage:
        """This record with ``n`` forced reply-prefix tokens: fed like prompt, so prompt and prefilled grow."""
        return self.model_copy(update={"prompt_tokens": self.prompt_tokens + n,
                                       "prefilled_tokens": self.prefilled_tokens + n})

    def plus_scored(self, n: int) -> Usage:
        """This record with ``n`` more tokens of scored candidate continuations."""
        return self.model_copy(update={"scored_tokens": self.scored_tokens + n})
