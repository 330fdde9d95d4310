"""Turn a model's raw text into a Decision: tool calls, a final answer, or InvalidOutput.

The model is asked (system prompt) to reply either with one or more
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks or with
``<answer option="B" evidence="e3,e5">text</answer>``; reasoning may come first,
bare or inside ``<think>…</think>``. Real models stray from that, so parsing is
lenient where the intent is unambiguous (code fences around JSON, arguments
given as a JSON string, a missing closing tag at the end of the output, a
plain-text answer that names one option) and strict where it is not.

Anything the graph could not act on becomes :class:`InvalidOutput` with a
message written *for the model* — it is shown to it on its next turn as a
ToolError — naming what was wrong and what a valid reply looks like.

Arguments are validated against the tool's pydantic ``Input`` when a registry
is given (the authority), else against the JSON schema the policy was shown
(a subset of JSON Schema: types, required, enum, bounds, ``$ref``, ``anyOf``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from mcr.context import letters_for
from mcr.policies.base import CallRequest, Decision, FinalAnswer, InvalidOutput, ToolCalls
from mcr.tools.base import schema_function

__all__ = ["parse_decision", "schema_errors", "CALL_FORMAT", "ANSWER_FORMAT"]

CALL_FORMAT = '<tool_call>{"name": "<tool>", "arguments": {...}}</tool_call>'
# More calls than this in one reply is a model stuck in a loop, not a plan: the reply is refused whole
# (the model is told, and tries again), so a hundred calls never queue up behind each other.
MAX_CALLS_PER_REPLY = 16
ANSWER_FORMAT = '<answer option="B" evidence="e3,e5">your answer</answer>'

_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.S)
_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S)
_ANSWER = re.compile(r"<answer\b([^>]*)>(.*?)(?:</answer>|$)", re.S)
_ATTR = re.compile(r"""(\w+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
_PLAIN_OPTION = re.compile(
    r"(?:^\(?([A-Z])(?:\)|[.:])|\b(?i:answer|option|choice)\s*(?:is|:)?\s*\(?([A-Za-z])\)?(?=[\s.,:;)]|$))", re.M
)


def _thought(text: str) -> str | None:
    parts = [m.strip() for m in _THINK.findall(text)]
    outside = _CALL.sub("", _THINK.sub("", text))
    outside = _ANSWER.sub("", outside).strip()
    if outside and _CALL.search(text):  # free text beside calls is reasoning too
        parts.append(outside)
    joined = "\n".join(p for p in parts if p)
    return joined or None


def _tool_names(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for t in tools:
        fn = schema_function(t)
        out[fn["name"]] = fn.get("parameters", {})
    return out


def parse_decision(
    text: str,
    tools: list[dict[str, Any]],
    *,
    options: tuple[str, ...] | list[str] | None = None,
    registry: Any = None,
) -> Decision:
    """Parse one model output.

    Args:
        text: the raw generated text (special tokens already stripped).
        tools: the tool schemas the model was shown (OpenAI function format).
        options: the question's options, if multiple choice.
        registry: a :class:`~mcr.tools.base.ToolRegistry` to validate arguments
            with the tools' own ``Input`` models.
    """
    raw = text
    thought = _thought(text)
    body = _THINK.sub("", text).strip()
    if not body and "<think>" in text and "</think>" not in text:
        return InvalidOutput(
            raw=raw, thought=thought,
            error="the reasoning never ended: <think> has no closing </think> (the reply ran out of tokens); "
            f"think briefly, close it with </think>, then call a tool with {CALL_FORMAT} or answer with {ANSWER_FORMAT}",
        )
    blocks = _CALL.findall(body)
    if len(blocks) > MAX_CALLS_PER_REPLY:
        return InvalidOutput(
            raw=raw, thought=thought,
            error=f"the reply has {len(blocks)} tool calls; at most {MAX_CALLS_PER_REPLY} are run per reply — "
            "call the few you need now (more on the next turn)",
        )
    if blocks:
        return _parse_calls(raw, blocks, tools, registry, thought)
    answer = _ANSWER.search(body)
    if answer:
        return _parse_answer(raw, answer, options, thought)
    if not body:
        return InvalidOutput(
            raw=raw, thought=thought,
            error=f"empty reply: call a tool with {CALL_FORMAT} or answer with {ANSWER_FORMAT}",
        )
    return _plain_answer(raw, body, options, thought)


def _parse_calls(raw: str, blocks: list[str], tools, registry, thought) -> Decision:
    known = _tool_names(tools)
    calls: list[CallRequest] = []
    problems: list[str] = []
    for i, block in enumerate(blocks, 1):
        where = f"tool call {i}" if len(blocks) > 1 else "the tool call"
        payload = _FENCE.sub("", block.strip())
        try:
            obj = json.loads(payload)
        except json.JSONDecodeError as exc:
            problems.append(f"{where} is not valid JSON ({exc.msg} at char {exc.pos}); write {CALL_FORMAT}")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            problems.append(f'{where} needs a "name" string and an "arguments" object: {CALL_FORMAT}')
            continue
        name, args = obj["name"], obj.get("arguments", obj.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError:
                problems.append(f'{where}: "arguments" of {name} is a string that is not JSON; give an object')
                continue
        if not isinstance(args, dict):
            problems.append(f'{where}: "arguments" of {name} must be an object, not {type(args).__name__}')
            continue
        if name not in known:
            problems.append(f"{where}: there is no tool {name!r}; available tools: {', '.join(sorted(known)) or '(none)'}")
            continue
        errors = _validate(name, args, known[name], registry)
        if errors:
            problems.append(f"{where}: bad arguments for {name}: {errors}")
            continue
        calls.append(CallRequest(tool=name, arguments=args))
    if problems:
        return InvalidOutput(raw=raw, error="; ".join(problems), thought=thought)
    return ToolCalls(calls=tuple(calls), thought=thought)


def _validate(name: str, args: dict[str, Any], schema: dict[str, Any], registry: Any) -> str:
    if registry is not None and name in registry:
        from mcr.tools.base import ToolInputError

        try:
            registry.get(name).validate_input(args)
        except ToolInputError as exc:
            return str(exc).split(": ", 1)[-1]
        return ""
    return "; ".join(schema_errors(args, schema))


def _parse_answer(raw: str, match: re.Match, options, thought) -> Decision:
    attrs = {m.group(1).lower(): next(g for g in m.groups()[1:] if g is not None) for m in _ATTR.finditer(match.group(1))}
    text = match.group(2).strip()
    option = (attrs.get("option") or "").strip().strip("()").upper() or None
    evidence = tuple(e.strip() for e in re.split(r"[,\s]+", attrs.get("evidence", "")) if e.strip())
    if options:
        letters = letters_for(options)
        if option is None:
            option = _option_in(text, letters)
        if option is None or option not in letters:
            got = f"option {option!r}" if option else "no option"
            return InvalidOutput(
                raw=raw, thought=thought,
                error=f"the answer gives {got}; choose one of {', '.join(letters)}: {ANSWER_FORMAT}",
            )
    elif option is not None:
        option = None  # an open question has no options to pick from
    if not text and option is None:
        return InvalidOutput(raw=raw, thought=thought, error=f"the answer is empty; write {ANSWER_FORMAT}")
    low = (attrs.get("confidence") or "").strip().lower() == "low"
    return FinalAnswer(text=text or f"Option {option}", option=option, evidence=evidence, thought=thought,
                       low_confidence=low)


def _option_in(text: str, letters: list[str]) -> str | None:
    found = {(m.group(1) or m.group(2)).upper() for m in _PLAIN_OPTION.finditer(text)} & set(letters)
    return found.pop() if len(found) == 1 else None


def _plain_answer(raw: str, body: str, options, thought) -> Decision:
    """Text with no tags: accept it as the answer when that is unambiguous."""
    if options:
        letters = letters_for(options)
        option = _option_in(body, letters)
        if option is None:
            return InvalidOutput(
                raw=raw, thought=thought,
                error=f"the reply is neither a tool call nor an answer naming one option ({', '.join(letters)}); "
                f"call a tool with {CALL_FORMAT} or answer with {ANSWER_FORMAT}",
            )
        return FinalAnswer(text=body, option=option, thought=thought)
    return FinalAnswer(text=body, thought=thought)


# --------------------------------------------------------------------------- #
# A small JSON-schema check (what pydantic's model_json_schema emits)
# --------------------------------------------------------------------------- #

_TYPES = {
    "string": str, "integer": int, "number": (int, float), "boolean": bool,
    "array": (list, tuple), "object": dict, "null": type(None),
}


def schema_errors(value: Any, schema: dict[str, Any], path: str = "", root: dict[str, Any] | None = None) -> list[str]:
    """Problems of ``value`` against ``schema`` (empty when valid)."""
    root = root or schema
    where = path or "arguments"
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {})
        return schema_errors(value, target, path, root)
    if "anyOf" in schema or "oneOf" in schema:
        branches = schema.get("anyOf") or schema.get("oneOf")
        results = [schema_errors(value, b, path, root) for b in branches]
        return [] if any(not r for r in results) else min(results, key=len)
    errors: list[str] = []
    kind = schema.get("type")
    if kind:
        kinds = kind if isinstance(kind, list) else [kind]
        ok = any(
            isinstance(value, _TYPES[k]) and not (k in ("integer", "number") and isinstance(value, bool))
            for k in kinds if k in _TYPES
        )
        if not ok:
            return [f"{where}: expected {' or '.join(kinds)}, got {json.dumps(value)[:40]}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: must be one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: must be {schema['const']!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for key, test, word in (
            ("minimum", lambda v, b: v >= b, ">="), ("maximum", lambda v, b: v <= b, "<="),
            ("exclusiveMinimum", lambda v, b: v > b, ">"), ("exclusiveMaximum", lambda v, b: v < b, "<"),
        ):
            if key in schema and not test(value, schema[key]):
                errors.append(f"{where}: must be {word} {schema[key]}, got {value}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: must have at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: must have at most {schema['maxLength']} characters")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for req in schema.get("required", []):
            if req not in value:
                errors.append(f"{path + '.' if path else ''}{req}: field required")
        if schema.get("additionalProperties") is False:
            for extra in sorted(set(value) - set(props)):
                errors.append(f"{path + '.' if path else ''}{extra}: unknown field (allowed: {', '.join(props)})")
        for key, sub in props.items():
            if key in value:
                errors += schema_errors(value[key], sub, f"{path}.{key}" if path else key, root)
    if isinstance(value, (list, tuple)) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{where}[{i}]", root)
    return errors
