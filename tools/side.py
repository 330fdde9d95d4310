"""The episode's model, as tools may use it: side queries that continue the policy's prompt.

Model-backed tools (``ground`` with the model, ``summarize`` captions,
``verify_answer`` with ``recheck``, the verifier's own re-check) ask the
policy's model a side question. They must never touch the main session — its
cache is the policy's — so every side query runs on a *fork*. And a fork only
reuses the cached prefix (the whole video, every earlier turn) when the side
prompt starts exactly as the policy's does: the same system text and the same
tool schemas, then the context. The graph therefore hands tools an
:class:`EpisodeModel` holding the session *and* the :class:`PromptHead` the
policy renders with, taken from the policy when the agent is built, rather
than letting each tool guess.

"No model in this episode" is one typed error, :class:`NoModelError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcr.context import DEFAULT_SYSTEM_PROMPT, Context
from mcr.tools.errors import ToolFailure

if TYPE_CHECKING:  # the model runtime is optional: tools without a model never import torch
    from mcr.model.runtime.session import Generation, ModelSession

__all__ = ["NoModelError", "PromptHead", "EpisodeModel"]


class NoModelError(ToolFailure):
    """A tool needs the episode's model, and this episode runs without one (or without vision)."""

    error_type = "no_model"


@dataclass(frozen=True)
class PromptHead:
    """What comes before the context in the policy's prompt.

    Attributes:
        system_prompt: the full system text the policy renders (format
            instructions included).
        tools: the tool schemas the policy passes to the chat template.
        render: the policy's own rendering of a context into messages, when it adds to
            ``Context.render`` (e.g. the InternVideo3 policy's reading of the question): a fork
            must render the context exactly as the policy did, or its cache reuse stops there.
    """

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    tools: list[dict[str, Any]] | None = None
    render: Callable[[Context], list[dict[str, Any]]] | None = None


@dataclass
class EpisodeModel:
    """The policy's session plus the head of its prompt. Tools only ever fork it."""

    session: ModelSession
    head: PromptHead = field(default_factory=PromptHead)

    @property
    def sees_pixels(self) -> bool:
        """True when the model receives frames (a vision-language model), not a line naming them."""
        return bool(self.session.loaded.multimodal)

    def fork(self) -> ModelSession:
        """A side session sharing the cached prefix; the main session never changes."""
        return self.session.fork()

    def messages(self, context: Context, question: str, parts: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """The policy's messages for ``context``, then one user turn: media ``parts`` and ``question``."""
        content = list(parts or []) + [{"type": "text", "text": question}]
        rendered = self.head.render(context) if self.head.render else context.render(system_prompt=self.head.system_prompt)
        return rendered + [{"role": "user", "content": content}]

    def side_query(self, context: Context, question: str, parts: list[dict[str, Any]] | None = None,
                   **generate: Any) -> Generation:
        """Generate the answer to ``question`` on a fork (``generate``: ``ModelSession.generate`` keywords)."""
        return self.fork().generate(self.messages(context, question, parts), self.head.tools, **generate)
