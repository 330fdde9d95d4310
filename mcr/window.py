"""The context window: how much of a model's window the prompt may take, and what a full one does.

A policy's model reads the whole context every turn, and the context only
grows. Left alone, a long video's transcript and scene notes grow the prompt
past the model's window (issue 22: 26,716 tokens against SmolLM2's 8,192).
Three measures keep every prompt inside ``window - reserve`` (the reserve is
what the policy adds after the context: its reply, a side query's question):

* **bounded renderings** — one tool result may take at most
  :data:`ENTRY_SHARE` of the usable window; past it the policy reads a
  summary, counts, the lines most like the question and a handle to the rest
  (:mod:`mcr.tools.rendering`), while the whole output stays in the entry, the
  run's artifacts and the per-video index;
* **folding** — past :data:`FOLD_AT` of the usable window, a
  :class:`~mcr.context.Fold` entry is appended that digests everything before
  it (ids and spans kept, so citations resolve); the prompt then renders the
  pinned entries, the fold and what follows it (:mod:`mcr.folding`);
* **context_exhausted** — what still does not fit (a question longer than the
  window allows) ends the episode with that stop reason and a message saying
  what to shorten, never a traceback.

This module holds the numbers and the error, and imports nothing but the
standard library (it is vocabulary: the model runtime raises the error, the
loop catches it).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ContextExhausted", "PromptBudget", "DEFAULT_WINDOW_TOKENS", "OPENING_LOOK_FRAMES", "FOLD_AT", "ENTRY_SHARE", "DIGEST_SHARE",
           "QUESTION_SHARE", "question_char_limit"]

#: SmolLM2-135M-Instruct's window (its config's ``max_position_embeddings``): the offline default policy.
DEFAULT_WINDOW_TOKENS = 8192
#: Fold once the prompt passes this share of the usable window (room for a few more turns before the next fold).
FOLD_AT = 0.7
#: One entry's rendering may take at most this share of the usable window.
ENTRY_SHARE = 0.12
#: A fold's digest may take at most this share of the usable window.
DIGEST_SHARE = 0.2
#: A question may take at most this share of the window (the rest is the system text, tools and evidence).
QUESTION_SHARE = 0.25
#: Frames of the opening look at the whole video (the first observation) for a model that receives frames:
#: a fixed cost whatever the video's length (the ``overview`` tool's 32-64 frames at most, too).
OPENING_LOOK_FRAMES = 64
#: Characters per token of English prose in BPE vocabularies (SmolLM2 and Qwen measure ~4): the task schema's
#: character limit is a cheap first bound; the exact one is counted in tokens when the policy's model runs.
PROSE_CHARS_PER_TOKEN = 4


class ContextExhausted(RuntimeError):
    """The prompt cannot fit the model's window even after folding: the episode ends, stop reason
    ``context_exhausted``. The message says what did not fit and what to shorten."""


@dataclass(frozen=True)
class PromptBudget:
    """How a policy's prompt stands against its model's window, measured in the model's own tokens.

    Attributes:
        window: the model's context window (its config's ``max_position_embeddings``).
        reserve: tokens kept free for what the policy adds after the context (its reply, a side question).
        used: tokens the context renders to now (system text, tool schemas and entries).
    """

    window: int
    reserve: int
    used: int = 0

    @property
    def usable(self) -> int:
        return max(self.window - self.reserve, 0)

    @property
    def fits(self) -> bool:
        return self.used <= self.usable

    @property
    def near(self) -> bool:
        """Past :data:`FOLD_AT` of the usable window: time to fold."""
        return self.used > FOLD_AT * self.usable

    @property
    def entry_tokens(self) -> int:
        """The most one entry's rendering may take."""
        return max(int(ENTRY_SHARE * self.usable), 64)

    @property
    def digest_tokens(self) -> int:
        """The most a fold's digest may take."""
        return max(int(DIGEST_SHARE * self.usable), 64)

    def describe(self) -> str:
        return f"{self.used:,} of {self.window:,} tokens ({self.reserve:,} kept for the reply)"


def question_char_limit(window: int | None, fallback: int) -> int:
    """The longest question (in characters) a task may ask a policy whose model has ``window`` tokens.

    A question may take :data:`QUESTION_SHARE` of the window at :data:`PROSE_CHARS_PER_TOKEN`
    (8,192 characters for SmolLM2's 8K window). Text that tokenises worse than prose is caught
    exactly at run time (``context_exhausted``). ``fallback`` applies when the window is unknown.
    """
    if window is None:
        return fallback
    return int(window * QUESTION_SHARE * PROSE_CHARS_PER_TOKEN)
