"""From a job's tokens to what the client reads: one completion, or a stream of OpenAI chunks.

Streaming must never show the client text it would not get without
streaming, so a delta is held back while it might still become:

* part of a **stop string** (the stop sequence is not part of the reply);
* the start of a ``<tool_call>`` block, when tools are offered (a call is
  sent as a ``tool_calls`` delta once its block is complete and parsed);
* half of a multi-byte character (the tokenizer decodes it as U+FFFD).

At the end the text is cut at the first stop string and split into content
and tool calls exactly as a non-streamed reply is (:func:`split_tool_calls`),
and whatever content was held back is sent.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from mcr.serving.engine import Finished, TokenEvent
from mcr.serving.protocol import chat_chunk, chat_response, logprob_entry, split_tool_calls

__all__ = ["Reply"]

_CALL_OPEN = "<tool_call>"
_FINISH = {"eos": "stop", "stop": "stop", "length": "length"}


def _held_suffix(text: str, needles: tuple[str, ...]) -> int:
    """Length of the longest end of ``text`` that is a proper prefix of one of ``needles``."""
    best = 0
    for needle in needles:
        for n in range(min(len(needle) - 1, len(text)), best, -1):
            if text.endswith(needle[:n]):
                best = n
                break
    return best


class Reply:
    """Accumulates a job's :class:`TokenEvent` s; renders deltas while streaming and the final message.

    Args:
        tokenizer: to decode the token ids.
        model_id: the ``model`` field of every chunk.
        tools: the request's tools when calls may be written (None: plain text).
        stops: the request's stop strings.
        logprobs: whether to report logprobs.
        eos_ids: end-of-sequence ids (never part of the text).
    """

    def __init__(self, tokenizer: Any, model_id: str, *, tools: list[dict[str, Any]] | None,
                 stops: tuple[str, ...], logprobs: bool, eos_ids: set[int]):
        self.tokenizer, self.model_id = tokenizer, model_id
        self.tools, self.stops, self.want_logprobs, self.eos_ids = tools, stops, logprobs, eos_ids
        self.ids: list[int] = []
        self.logprobs: list[dict[str, Any]] = []
        self.id = f"chatcmpl-{uuid.uuid4().hex[:16]}"
        self.created = int(time.time())
        self._emitted = ""  # content already streamed
        self._logprobs_sent = 0

    # -- accumulate ----------------------------------------------------------- #
    def add(self, event: TokenEvent) -> None:
        self.ids.append(event.token_id)
        if self.want_logprobs and event.logprob is not None:
            self.logprobs.append(logprob_entry(self.tokenizer, event.token_id, event.logprob, event.top))

    def text(self) -> str:
        """The reply so far, cut at the first stop string."""
        text = self.tokenizer.decode([t for t in self.ids if t not in self.eos_ids], skip_special_tokens=False)
        for s in self.stops:
            if s in text:
                text = text[: text.index(s)]
        return text

    def message(self) -> tuple[str | None, list[dict[str, Any]]]:
        """``(content, tool_calls)`` of the whole reply."""
        text = self.text()
        return split_tool_calls(text, self.tools) if self.tools else (text, [])

    # -- the non-streamed reply ---------------------------------------------- #
    def completion(self, done: Finished) -> dict[str, Any]:
        content, calls = self.message()
        return chat_response(self.model_id, content, calls, _FINISH.get(done.reason, "stop"), done.usage,
                             self.logprobs if self.want_logprobs else None)

    # -- streaming ------------------------------------------------------------ #
    def first_chunk(self) -> dict[str, Any]:
        return chat_chunk(self.id, self.model_id, self.created, {"role": "assistant", "content": ""})

    def delta_chunk(self) -> dict[str, Any] | None:
        """The content that is safe to show now (None if nothing new is)."""
        text = self.text()
        if self.tools and _CALL_OPEN in text:
            text = text[: text.index(_CALL_OPEN)]
        held = _held_suffix(text, self.stops + ((_CALL_OPEN,) if self.tools else ()))
        visible = text[: len(text) - held]
        while visible.endswith("\ufffd"):
            visible = visible[:-1]
        if not visible.startswith(self._emitted) or len(visible) == len(self._emitted):
            return None
        delta, self._emitted = visible[len(self._emitted):], visible
        return chat_chunk(self.id, self.model_id, self.created, {"content": delta}, logprobs=self._new_logprobs())

    def last_chunks(self, done: Finished, include_usage: bool) -> list[dict[str, Any]]:
        """Held-back content, the tool calls, the finish reason, and (if asked) the usage chunk."""
        content, calls = self.message()
        chunks = []
        rest = (content or "")[len(self._emitted):] if (content or "").startswith(self._emitted) else ""
        if rest:
            chunks.append(chat_chunk(self.id, self.model_id, self.created, {"content": rest},
                                     logprobs=self._new_logprobs()))
        for i, call in enumerate(calls):
            chunks.append(chat_chunk(self.id, self.model_id, self.created,
                                     {"tool_calls": [{"index": i, **call}]}))
        finish = "tool_calls" if calls else _FINISH.get(done.reason, "stop")
        chunks.append(chat_chunk(self.id, self.model_id, self.created, {}, finish=finish,
                                 logprobs=self._new_logprobs() if self.want_logprobs else None))
        if include_usage and done.usage is not None:
            chunks.append(chat_chunk(self.id, self.model_id, self.created, None, usage=done.usage))
        return chunks

    def _new_logprobs(self) -> list[dict[str, Any]] | None:
        if not self.want_logprobs:
            return None
        new, self._logprobs_sent = self.logprobs[self._logprobs_sent:], len(self.logprobs)
        return new
