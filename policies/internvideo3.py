"""The model as policy: InternVideo3 (or any Qwen-VL / causal LM) decides each step.

Each turn renders the whole context (system prompt with the tool schemas, then
one message per entry) through a :class:`~mcr.model.runtime.session.ModelSession`,
which prefills only what was appended since the last turn, generates, and
parses the output into a Decision (:mod:`mcr.policies.parsing`).

Malformed output is data, not an exception: it becomes ``InvalidOutput``,
which the graph records as a ToolError the model reads next turn. Retries are
bounded and derived from the context (the trailing run of ``invalid_output``
errors), so a resumed episode counts the same: after ``max_invalid_outputs``
in a row the policy raises :class:`PolicyError` (the episode ends with stop
reason ``policy_error``), or, with ``on_invalid="answer"``, gives up with a
FinalAnswer that says so.

Optional grammar-constrained decoding (``grammar=True``, needs ``llguidance``)
masks the logits so the output is always either well-formed tool calls whose
arguments match each tool's JSON schema, or a well-formed answer — even a tiny
or random model then emits calls the graph can run.
"""

from __future__ import annotations

import json
from typing import Any

from mcr.context import DEFAULT_SYSTEM_PROMPT, Context, Fold, Instruction, ToolError, letters_for
from mcr.folding import fit_context
from mcr.language import AnswerType, QuestionFrame, RelationKind, read_question
from mcr.policies.base import Decision, FinalAnswer, InvalidOutput, PolicyError
from mcr.model.runtime.grammar import GrammarConstraint
from mcr.tools.base import schema_function
from mcr.tools.side import EpisodeModel, PromptHead
from mcr.policies.parsing import ANSWER_FORMAT, CALL_FORMAT, parse_decision
from mcr.window import DEFAULT_WINDOW_TOKENS, PromptBudget

__all__ = [
    "ModelPolicy", "InternVideo3Policy", "ToolGrammar", "FORMAT_INSTRUCTIONS", "SESSION_SETTINGS",
    "invalid_streak", "session_from_settings", "policy_settings",
]

FORMAT_INSTRUCTIONS = (
    "Reply in exactly one of two ways.\n"
    f"To use tools, write one or more tool calls: {CALL_FORMAT}\n"
    f"To answer, write: {ANSWER_FORMAT}\n"
    "Give option only for multiple-choice questions; evidence lists the ids of the entries "
    'your answer relies on; confidence="low" marks a last-step guess. '
    "You may reason first inside <think></think>."
)

# How to explore, for a model that writes its own calls: the same rules the offline
# policy follows by construction (policies/explore.py), in words.
EXPLORE_GUIDE = (
    "How to explore:\n"
    "1. Perceive first: transcribe, summarize (scenes with on-screen text, colours, objects), segment. "
    "On a long video (ten minutes or more) work top-down instead, never over the whole video: overview "
    "(a fixed number of frames, the scenes, the transcript's outline), ground the question (it reads the "
    "video's index), skim the located span, then focus on at most 16 s where it points. Each frame counts "
    "against the frame budget.\n"
    "2. Ground the question: ground(query=<the reading's ground query>) finds when it happens. "
    "For 'after X' / 'before X' ground X, then look and listen at the shot or sentence that follows "
    "(precedes) it; for 'while X' at X itself.\n"
    "3. Look closer where it matters, starting with the evidence kind the reading names first: "
    "look(span=<the grounded span>, detail=true), and "
    "transcribe(span=<that span>, hints=<the options and names>).\n"
    "4. Never make the same call twice; the results are above.\n"
    "5. Answer when the evidence decides, citing the most specific entries (the ones whose span holds the fact).\n"
    "6. After a rejection never propose that answer again: gather the evidence the reason names, "
    "or choose the next-best option.\n"
    '7. When a Budget note says it is the last step, answer now; if unsure, add confidence="low".'
)

def reading_text(frame: QuestionFrame) -> str:
    """One line telling the model how the question was read (answer type, evidence kinds, relation, ...).

    It cites the record, it does not re-read the question: the same reading the
    offline explorer and the verifier use.
    """
    parts = [f"the answer is {_ANSWER_PHRASES[frame.answer_type]}",
             "evidence most likely in " + ", ".join(k.value.replace("_", " ") for k in frame.evidence[:3])]
    if frame.focus:
        parts.append(f"about: {frame.focus}")
    for relation in frame.relations[:2]:
        if relation.kind == RelationKind.AT_TIME:
            continue
        near = ("right " if relation.immediate else "") + relation.kind.value
        parts.append(f"{near} {relation.event!r}" if relation.event else f"the {relation.kind.value} one")
    if frame.negated:
        parts.append("negated: the option that does NOT hold")
    if frame.count_target:
        parts.append(f"count: {frame.count_target}")
    if frame.extreme is not None:
        parts.append(f"the {frame.extreme.direction} of {frame.extreme.measure}")
    parts.append(f"ground query: {frame.grounding_query!r}")
    return "Reading of the question: " + "; ".join(parts) + "."


_ANSWER_PHRASES = {
    AnswerType.ENTITY: "a thing, person or place", AnswerType.NUMBER: "a number", AnswerType.COLOUR: "a colour",
    AnswerType.TEXT: "text shown on screen", AnswerType.TIME: "a time span", AnswerType.YES_NO: "yes or no",
    AnswerType.REASON: "a reason",
}

# Settings keys the factories read for the model and its session.
SESSION_SETTINGS = ("max_new_tokens", "temperature", "top_p", "seed", "prefix_dir", "use_saved_prefixes", "window")


def invalid_streak(context: Context) -> int:
    """How many ``invalid_output`` errors end the context, in a row."""
    n = 0
    for entry in reversed(list(context)):
        if isinstance(entry, ToolError) and entry.error_type == "invalid_output":
            n += 1
        else:
            break
    return n


class ModelPolicy:
    """What every model-backed policy shares: session, prompt, retries, usage."""

    name = "model"

    def __init__(
        self,
        session: Any,
        *,
        registry: Any = None,
        system_prompt: str | None = None,
        max_invalid_outputs: int = 3,
        on_invalid: str = "raise",
        save_video_prefix: bool = False,
    ):
        if on_invalid not in ("raise", "answer"):
            raise ValueError(f"on_invalid must be 'raise' or 'answer', not {on_invalid!r}")
        self.session = session
        self.registry = registry
        self.system_prompt = system_prompt
        self.max_invalid_outputs = max_invalid_outputs
        self.on_invalid = on_invalid
        self.save_video_prefix = save_video_prefix
        self._prefix_saved = False

    def system_text(self, context_default: str = DEFAULT_SYSTEM_PROMPT) -> str:
        """The system message this policy renders: its prompt, then the reply format."""
        base = self.system_prompt if self.system_prompt is not None else context_default
        return f"{base}\n\n{FORMAT_INSTRUCTIONS}"

    def messages(self, context: Context) -> list[dict[str, Any]]:
        """The chat messages for this turn (system prompt + format instructions first)."""
        return context.render(system_prompt=self.system_text(context.system_prompt))

    # -- the context window (mcr/window.py) ---------------------------------- #
    #: Tokens kept free beyond the reply: a tool's side query adds its question (and frames) after the context
    #: (at most an eighth of the window).
    side_reserve_tokens = 512

    @property
    def side_reserve(self) -> int:
        window = getattr(self.session, "window", None) or DEFAULT_WINDOW_TOKENS
        return min(self.side_reserve_tokens, window // 8)

    def reply_tokens(self, context: Context | None = None) -> int:
        """The most tokens this policy adds after the context in one turn (its reply)."""
        return int(getattr(self.session, "max_new_tokens", 256))

    def prompt_budget(self, context: Context, tools: list[dict[str, Any]]) -> PromptBudget | None:
        """The prompt's size against the model's window (None when the model does not say its window)."""
        window = getattr(self.session, "window", None)
        if not window:
            return None
        used = len(self.session.render(self.messages(context), tools))
        return PromptBudget(window=window, reserve=self.reply_tokens(context) + self.side_reserve, used=used)

    def fit_context(self, context: Context, tools: list[dict[str, Any]], step: int) -> Fold | None:
        """A fold when the prompt nears the window (see :func:`mcr.folding.fit_context`)."""
        if not getattr(self.session, "window", None):
            return None
        return fit_context(context, step=step, measure=lambda c: self.prompt_budget(c, tools),  # type: ignore[arg-type,return-value]
                           count=self.session.count_tokens)

    def entry_limit(self) -> tuple[int, Any]:
        """The most tokens one tool result's rendering may take, and the model's token counter."""
        window = getattr(self.session, "window", None) or DEFAULT_WINDOW_TOKENS
        budget = PromptBudget(window=window, reserve=self.reply_tokens() + self.side_reserve)
        return budget.entry_tokens, self.session.count_tokens

    def episode_model(self, tools: list[dict[str, Any]]) -> EpisodeModel:
        """The session and prompt head tools continue, so their forks reuse this policy's cache.

        ``tools`` are the schemas the graph passes to :meth:`decide`.
        """
        return EpisodeModel(self.session, PromptHead(system_prompt=self.system_text(), tools=tools, render=self.messages))

    def _check_retries(self, context: Context) -> FinalAnswer | None:
        streak = invalid_streak(context)
        if streak < self.max_invalid_outputs:
            return None
        last = context[len(context) - 1]
        message = f"the model gave {streak} invalid outputs in a row; the last error: {last.message}"
        if self.on_invalid == "raise":
            raise PolicyError(message)
        return FinalAnswer(text=f"No answer: {message}")

    def _after_call(self) -> None:
        if self.save_video_prefix and not self._prefix_saved and any(k for k in self.session.state.keys):
            self.session.save_prefix()
            self._prefix_saved = True

    @staticmethod
    def options_of(context: Context) -> tuple[str, ...] | None:
        instruction = context.instruction
        return instruction.options if instruction is not None else None


class InternVideo3Policy(ModelPolicy):
    """Free generation by the model, parsed into decisions (optionally grammar-constrained).

    Args:
        session: a ModelSession around the loaded model.
        registry: validate arguments with the tools' own ``Input`` models.
        grammar: constrain decoding to valid calls/answers (needs ``llguidance``).
        max_new_tokens: decode budget per turn.
        **kwargs: see :class:`ModelPolicy`.
    """

    name = "internvideo3"

    def __init__(self, session: Any, *, grammar: bool = False, max_new_tokens: int | None = None, **kwargs: Any):
        super().__init__(session, **kwargs)
        self.grammar = grammar
        self.max_new_tokens = max_new_tokens

    def reply_tokens(self, context: Context | None = None) -> int:
        return int(self.max_new_tokens or getattr(self.session, "max_new_tokens", 256))

    def system_text(self, context_default: str = DEFAULT_SYSTEM_PROMPT) -> str:
        """The shared system text plus :data:`EXPLORE_GUIDE`: this model plans its own calls."""
        return f"{super().system_text(context_default)}\n\n{EXPLORE_GUIDE}"

    def messages(self, context: Context) -> list[dict[str, Any]]:
        """The chat messages, with the question's reading (:func:`reading_text`) after the question.

        The reading is fixed for an episode, so the prompt stays append-stable and its cache is reused.
        """
        messages = super().messages(context)
        entries = context.rendered_entries()
        for i, entry in enumerate(entries):
            if isinstance(entry, Instruction):
                frame = read_question(entry.text, entry.options or ())
                message = messages[i + 1]
                messages[i + 1] = {**message, "content": [*message["content"],
                                                          {"type": "text", "text": reading_text(frame)}]}
                break
        return messages

    @classmethod
    def from_settings(cls, settings: dict[str, Any] | None = None, registry: Any = None) -> InternVideo3Policy:
        """Build from task settings.

        Keys: ``model`` (path or hub id; default InternVideo3-8B-Instruct),
        ``gguf_file``, ``dtype``, ``device_map``, ``attn_implementation``,
        ``trust_remote_code``, ``grammar``, ``max_invalid_outputs``,
        ``on_invalid``, ``save_video_prefix``, ``system_prompt`` and the session
        keys ``max_new_tokens``, ``temperature``, ``top_p``, ``seed``,
        ``prefix_dir``, ``use_saved_prefixes``, ``window`` (use at most this many tokens of the model's window).
        """
        from mcr.model.runtime.loader import INTERNVIDEO3_ID, load_model

        s = dict(settings or {})
        loaded = load_model(
            s.pop("model", INTERNVIDEO3_ID),
            gguf_file=s.pop("gguf_file", None),
            dtype=s.pop("dtype", "auto"),
            device_map=s.pop("device_map", "auto"),
            attn_implementation=s.pop("attn_implementation", "sdpa"),
            trust_remote_code=s.pop("trust_remote_code", False) is True,  # only a YAML true: "false" is not consent
        )
        return cls(session_from_settings(loaded, s), registry=registry, **policy_settings(s, grammar=True))

    def decide(self, context: Context, tools: list[dict[str, Any]]) -> Decision:
        give_up = self._check_retries(context)
        if give_up is not None:
            return give_up
        options = self.options_of(context)
        cite = [e.id for e in context if e.kind in ("tool_result", "observation", "memory")]
        processor = self._grammar(tools, options, cite) if self.grammar else None
        gen = self.session.generate(
            self.messages(context), tools, max_new_tokens=self.max_new_tokens, stop=("</answer>",),
            logits_processor=processor,
        )
        self._after_call()
        decision = parse_decision(gen.text, tools, options=options, registry=self.registry)
        update: dict[str, Any] = {"usage": gen.usage.model_copy(update={"raw_output": gen.text})}
        if isinstance(decision, InvalidOutput) and gen.stop_reason == "length":
            update["error"] = decision.error + " (the reply was cut off; be shorter)"
        return decision.model_copy(update=update)

    def _grammar(self, tools: list[dict[str, Any]], options, evidence_ids: list[str]) -> ToolGrammar:
        return ToolGrammar(self.session.tokenizer, tools, options, evidence_ids)


def session_from_settings(loaded: Any, s: dict[str, Any]) -> Any:
    """A ModelSession from the session keys of ``s`` (popped; the rest stay)."""
    from mcr.model.runtime.session import ModelSession

    kwargs = {k: s.pop(k) for k in SESSION_SETTINGS if k in s}
    return ModelSession(loaded, **kwargs)


def policy_settings(s: dict[str, Any], grammar: bool) -> dict[str, Any]:
    """Pop the ModelPolicy keys of ``s``; anything left over is a typo the user should hear about."""
    keys = ["max_invalid_outputs", "on_invalid", "save_video_prefix", "system_prompt"] + (["grammar"] if grammar else [])
    out = {k: s.pop(k) for k in keys if k in s}
    if s:
        raise ValueError(f"unknown policy settings {sorted(s)}; see the policy's from_settings docstring")
    return out


class ToolGrammar(GrammarConstraint):
    """A logits processor that only allows valid tool calls or a valid answer (llguidance).

    The grammar: one or more ``<tool_call>JSON</tool_call>`` whose JSON is
    ``{"name": <a tool>, "arguments": <that tool's schema>}``, or one
    ``<answer option="X" evidence="...">text</answer>`` (option only when the
    question has options), optionally after a ``<think>`` block.
    """

    def __init__(self, tokenizer: Any, tools: list[dict[str, Any]], options=None, evidence_ids=()):
        super().__init__(tokenizer, self.lark(tools, options, evidence_ids))

    @staticmethod
    def lark(tools: list[dict[str, Any]], options=None, evidence_ids=()) -> str:
        calls = []
        for t in tools:
            fn = schema_function(t)
            parameters = dict(fn.get("parameters", {"type": "object"}))
            # "$ref": "#/$defs/..." resolves from the document root, so the
            # definitions must move up from the nested arguments schema.
            defs = parameters.pop("$defs", None)
            schema = {
                "type": "object",
                "properties": {"name": {"const": fn["name"]}, "arguments": parameters},
                "required": ["name", "arguments"],
                "additionalProperties": False,
                # Compact JSON: free whitespace lets a weak model ramble until its budget ends.
                "x-guidance": {"whitespace_flexible": False},
            }
            if defs:
                schema["$defs"] = defs
            calls.append(f'"<tool_call>" %json {json.dumps(schema)} "</tool_call>"')
        letters = letters_for(options)
        option = f'" option=\\"" /[{"".join(letters)}]/ "\\""' if letters else '""'
        ids = " | ".join(json.dumps(i) for i in evidence_ids)
        evidence = f'(" evidence=\\"" cite ("," cite){{0,7}} "\\"")?' if ids else ""
        rules = [
            "start: think? (calls | answer)",
            'think: "<think>" /[^<]{0,400}/ "</think>" "\\n"?',
            'answer: "<answer" ' + option + " " + evidence + ' confidence? ">" /[^<\\x00-\\x1f]{1,200}/ "</answer>"',
            'confidence: " confidence=\\"low\\""',
        ]
        if ids:
            rules.append(f"cite: {ids}")
        if calls:
            rules.insert(1, "calls: (call \"\\n\"?)+")
            rules.append("call: " + " | ".join(calls))
        else:
            rules[0] = "start: think? answer"
        return "\n".join(rules) + "\n"
