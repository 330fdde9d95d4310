"""A small pool of ModelSessions with prefix routing and a bounded queue.

This is llama.cpp's slot cache over our own runtime: the server keeps a few
:class:`~mcr.model.runtime.session.ModelSession` objects (each one KV or
M^2LA latent cache over the same loaded model) and sends each request to the
free session whose cached tokens share the longest prefix with the request's
prompt (when that prefix is at least half the prompt, as llama.cpp's slot
similarity rule has it). A conversation that continues — the same messages plus a few new ones
— lands on the session that served its previous turn, which then prefills
only the delta (the session itself crops the cache at the common prefix, so
reuse is exact). A new conversation takes the least recently used session.

Bounded concurrency: at most ``max_running`` requests run at once (one per
session; the server's ``--max-batch``: they decode together in one batch,
see :mod:`.engine`), at most ``max_waiting`` wait, and the rest are refused
at once with :class:`PoolBusy` (HTTP 503 with ``Retry-After``) rather than
piling up. A request waiting counts from before its prompt is rendered, so
tokenising is inside the bound too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["SessionPool", "PoolBusy", "Slot"]


class PoolBusy(RuntimeError):
    """Every session is busy and the waiting queue is full (or the wait timed out)."""


@dataclass
class Slot:
    """One session of the pool and when it last served."""

    index: int
    session: Any
    busy: bool = False
    last_used: float = 0.0
    served: int = 0
    prompt: Any = None  # what the current request rendered


class SessionPool:
    """Sessions over one loaded model, routed by common token prefix.

    Args:
        loaded: a :class:`~mcr.model.runtime.loader.LoadedModel`.
        sessions: how many caches to keep (each holds one conversation).
        max_running: requests that run at once (≤ ``sessions``).
        max_waiting: requests that may wait for a session; more get PoolBusy.
        wait_timeout_s: how long a request waits before PoolBusy.
        min_similarity: the share of the prompt a session's cache must cover to be
            chosen for it (llama.cpp's ``--slot-prompt-similarity``, also 0.5).
        make_session: builds one session (tests and M^2LA variants override it).
    """

    def __init__(
        self,
        loaded: Any,
        *,
        sessions: int = 4,
        max_running: int = 1,
        max_waiting: int = 8,
        wait_timeout_s: float = 600.0,
        min_similarity: float = 0.5,
        make_session: Any = None,
    ):
        if sessions < 1 or not 1 <= max_running <= sessions or max_waiting < 0:
            raise ValueError(f"need sessions >= 1, 1 <= max_running <= sessions, max_waiting >= 0 "
                             f"(got {sessions}, {max_running}, {max_waiting})")
        from mcr.model.runtime.prompt import PromptRenderer
        from mcr.model.runtime.session import ModelSession

        self.loaded = loaded
        # One renderer for all sessions: a video is decoded once whichever session prefills it.
        self.renderer = PromptRenderer(loaded)
        build = make_session or (lambda: ModelSession(loaded, renderer=self.renderer))
        self.slots = [Slot(i, build()) for i in range(sessions)]
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.wait_timeout_s = wait_timeout_s
        self.min_similarity = min_similarity
        self._cond = threading.Condition()
        self._running = 0
        self._waiting = 0
        self._max_prompt_chars: int | None = None

    @property
    def window(self) -> int | None:
        """The model's context window in tokens (None if the config does not say)."""
        text = self.loaded.model.config.get_text_config(decoder=True)
        return getattr(text, "max_position_embeddings", None)

    @property
    def max_prompt_chars(self) -> int | None:
        """Characters beyond which no prompt can fit the window, whatever its text.

        No token covers more characters than the vocabulary's longest token, so
        a text of more than ``window × longest`` characters has more tokens than
        the window holds: it is refused by counting, before any tokeniser pass.
        """
        if self._max_prompt_chars is None and self.window:
            tok = self.loaded.tokenizer
            longest = max(len(t) for t in tok.convert_ids_to_tokens(list(range(len(tok)))) if t)
            self._max_prompt_chars = self.window * max(longest, 1)
        return self._max_prompt_chars

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def running(self) -> int:
        return self._running

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> Any:
        return self.renderer.render(messages, tools)

    def _best(self, prompt: Any) -> Slot:
        """The free session sharing the longest prefix, if that covers ``min_similarity`` of the
        prompt; else the least recently used one (an empty session first), so a new conversation
        does not evict another for the sake of a few shared template tokens."""
        free = [s for s in self.slots if not s.busy]
        shared = {s.index: s.session.state.common_prefix(prompt) for s in free}
        best = max(free, key=lambda s: (shared[s.index], -s.last_used))
        if shared[best.index] >= self.min_similarity * max(len(prompt), 1):
            return best
        return min(free, key=lambda s: (s.session.cached_tokens > 0, s.last_used))

    def take(self, prompt: Any) -> Slot:
        """The best free session for ``prompt``, held until :meth:`release`.

        ``prompt`` may be a callable that renders it: it is then called once the
        request has a place in the bounded queue, so tokenising (and decoding
        media) is bounded too — a flood of requests is refused before any of
        them costs a tokeniser pass. The slot's ``prompt`` is what it rendered.

        Raises:
            PoolBusy: the queue is full, or no session came free within the timeout.
        """
        with self._cond:
            if self._running >= self.max_running and self._waiting >= self.max_waiting:
                raise PoolBusy(f"the server is busy ({self._running} running, {self._waiting} waiting); retry later")
            self._waiting += 1
        try:
            rendered = prompt() if callable(prompt) else prompt
            with self._cond:
                deadline = time.monotonic() + self.wait_timeout_s
                while self._running >= self.max_running:
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._cond.wait(timeout=left):
                        if self._running >= self.max_running:
                            raise PoolBusy(f"no session came free within {self.wait_timeout_s:.0f} s; retry later")
                slot = self._best(rendered)
                slot.busy = True
                slot.prompt = rendered
                self._running += 1
                self._waiting -= 1
        except BaseException:
            with self._cond:
                self._waiting -= 1
                self._cond.notify()
            raise
        return slot

    def release(self, slot: Slot) -> None:
        """Give ``slot`` back (the engine calls it when the slot's request ends, cancelled or not)."""
        with self._cond:
            if not slot.busy:
                return
            slot.busy = False
            slot.last_used = time.monotonic()
            slot.served += 1
            self._running -= 1
            self._cond.notify()

    @contextmanager
    def acquire(self, prompt: Any) -> Iterator[Slot]:
        """Hold the best session for ``prompt`` while the block runs (:meth:`take` then :meth:`release`)."""
        slot = self.take(prompt)
        try:
            yield slot
        finally:
            self.release(slot)

    def stats(self) -> list[dict[str, Any]]:
        """What each session holds (for ``GET /v1/slots``)."""
        return [{"index": s.index, "cached_tokens": s.session.cached_tokens, "busy": s.busy, "served": s.served}
                for s in self.slots]
