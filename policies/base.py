"""The Policy protocol: who decides the next step, and what a decision is.

A policy reads the context and the tool schemas and returns one Decision:
either tool calls (optionally with a thought) or a final answer. It never runs
tools and never appends to the context itself — the graph does both, so every
policy (scripted, replayed, a local model, a server) is driven the same way.

Policies must be resumable: whatever state they need must be derivable from the
context (e.g. the scripted policy counts its earlier decisions), because after a
crash the graph resumes from a checkpoint with a freshly built policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from mcr.context import Context, Fold
from mcr.tools.side import EpisodeModel
from mcr.usage import Usage
from mcr.verify import Verifier


class CallRequest(BaseModel):
    """One tool call as the policy asked for it (validated against Input later)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolCalls(BaseModel):
    """Decision: run these tools, in order, then come back to the policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["tool_calls"] = "tool_calls"
    calls: tuple[CallRequest, ...] = Field(min_length=1)
    thought: str | None = None
    usage: Usage | None = None


class FinalAnswer(BaseModel):
    """Decision: propose this answer (the verifier may still reject it).

    Attributes:
        text: the answer.
        option: the chosen option letter for multiple-choice questions.
        evidence: ids of the context entries the answer relies on.
        low_confidence: a last-step guess (the budget is nearly spent): the
            verifier accepts it marked as such if only evidence checks fail,
            so an episode ends with an answer rather than none.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["final_answer"] = "final_answer"
    text: str
    option: str | None = None
    evidence: tuple[str, ...] = ()
    low_confidence: bool = False
    thought: str | None = None
    usage: Usage | None = None


class InvalidOutput(BaseModel):
    """Decision: the policy (a model) produced output that is not a valid decision.

    The graph records it as a ToolError so the model sees what went wrong and
    can try again on its next turn.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["invalid_output"] = "invalid_output"
    raw: str
    error: str
    thought: str | None = None
    usage: Usage | None = None


Decision = ToolCalls | FinalAnswer | InvalidOutput
"""One decision. ``usage`` (model policies) is what producing it cost; the graph
adds it to the episode's token count and writes it into the trace."""


@runtime_checkable
class Policy(Protocol):
    """Decides the next step. A model policy reports each decision's cost in ``Decision.usage``."""

    name: str

    def decide(self, context: Context, tools: list[dict[str, Any]]) -> Decision:
        """Return the next decision given the context and the tool schemas."""
        ...


@runtime_checkable
class ModelBackedPolicy(Protocol):
    """A policy around a model session, which model-backed tools may fork.

    ``episode_model(tools)`` gives the session with the head of the policy's
    prompt (system text, tool schemas), so a tool's side query continues the
    policy's prompt and reuses its cache (see :mod:`mcr.tools.side`).
    """

    name: str

    def decide(self, context: Context, tools: list[dict[str, Any]]) -> Decision: ...

    def episode_model(self, tools: list[dict[str, Any]]) -> EpisodeModel: ...


@runtime_checkable
class JudgingPolicy(Protocol):
    """A policy that judges candidate answers before it proposes them.

    It judges with the episode's own verifier, which the loop hands it
    (``Agent`` calls ``use_verifier``): a policy never builds the evidence
    checks itself, so the verify node and the policy cannot disagree.
    """

    def use_verifier(self, verifier: Verifier) -> None: ...


@runtime_checkable
class WindowedPolicy(Protocol):
    """A policy whose model reads the context through a window of limited length (:mod:`mcr.window`).

    Before each decision the graph calls :meth:`fit_context` and appends the
    fold it returns; a ``ContextExhausted`` it raises ends the episode with stop
    reason ``context_exhausted``. After each tool call the graph bounds the
    result's rendering to :meth:`entry_limit`.
    """

    name: str

    def decide(self, context: Context, tools: list[dict[str, Any]]) -> Decision: ...

    def fit_context(self, context: Context, tools: list[dict[str, Any]], step: int) -> Fold | None:
        """The fold that keeps the next prompt inside the window (None: none needed).

        ``step`` is the step the episode has reached (the decision about to be made is ``step + 1``); the
        fold carries it, so it belongs to the steps it digests.

        Raises:
            mcr.window.ContextExhausted: it cannot fit, folded or not.
        """
        ...

    def entry_limit(self) -> tuple[int, Callable[[str], int]]:
        """The most tokens one entry's rendering may take, and the model's token count of a text."""
        ...


class PolicyError(Exception):
    """The policy cannot go on (e.g. a scripted plan ran out). Ends the episode."""
