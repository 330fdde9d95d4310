"""Structured output for `mcr serve`: a forced tool call or a JSON reply, as a grammar on decoding.

OpenAI's ``tool_choice`` and ``response_format`` are promises about the shape
of the reply. A server that only asks nicely (a system prompt) breaks them
whenever the model wanders, so here they become a grammar that decoding
cannot leave — the same llguidance engine (:mod:`mcr.model.runtime.grammar`)
that constrains the InternVideo3 policy's tool calls:

* ``tool_choice: {"type": "function", "function": {"name": F}}`` — exactly one
  ``<tool_call>{"name": F, "arguments": <F's parameters schema>}</tool_call>``;
* ``tool_choice: "required"`` — one or more calls, each of a declared tool
  (one only with ``parallel_tool_calls: false``);
* ``response_format: {"type": "json_object"}`` — a JSON object;
* ``response_format: {"type": "json_schema", "json_schema": {"schema": S}}`` —
  JSON valid under ``S`` (strict or not: the grammar is always strict).

The calls are written in the Hermes ``<tool_call>`` form the chat templates
use, and :func:`mcr.serving.protocol.split_tool_calls` turns them into
OpenAI ``tool_calls``.
"""

from __future__ import annotations

import json
from typing import Any

from mcr.serving.protocol import ChatRequest, RequestError
from mcr.tools.base import schema_function

__all__ = ["constraint_for", "grammar_for"]

_COMPACT = {"whitespace_flexible": False}  # free whitespace lets a small model ramble until its budget ends


def _call_schema(tool: dict[str, Any]) -> dict[str, Any]:
    fn = schema_function(tool)
    parameters = dict(fn.get("parameters") or {"type": "object"})
    defs = parameters.pop("$defs", None)  # "$ref": "#/$defs/.." resolves from the document root
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"name": {"const": fn["name"]}, "arguments": parameters},
        "required": ["name", "arguments"],
        "additionalProperties": False,
        "x-guidance": _COMPACT,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def _call_rule(tool: dict[str, Any]) -> str:
    return f'"<tool_call>" %json {json.dumps(_call_schema(tool))} "</tool_call>"'


def grammar_for(request: ChatRequest) -> str | None:
    """The Lark grammar (llguidance dialect) the request's reply must follow, or None for free text.

    Raises:
        RequestError: a ``tool_choice`` naming no declared tool, a malformed
            ``response_format``, or both a forced tool call and a JSON format.
    """
    choice = request.tool_choice
    forced = choice == "required" or isinstance(choice, dict)
    fmt = request.response_format or {}
    kind = fmt.get("type", "text") if isinstance(fmt, dict) else fmt
    if forced and kind != "text":
        raise RequestError("tool_choice forces a tool call and response_format asks for JSON content; "
                           "send one of them", param="response_format")
    if forced:
        if not request.tools:
            raise RequestError(f"tool_choice {json.dumps(choice)} needs tools", param="tool_choice")
        tools = request.tools
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
            if not isinstance(name, str):
                raise RequestError('tool_choice must be "none", "auto", "required" or {"type": "function", '
                                   '"function": {"name": ...}}', param="tool_choice")
            tools = [t for t in request.tools if schema_function(t).get("name") == name]
            if not tools:
                declared = ", ".join(schema_function(t).get("name", "?") for t in request.tools)
                raise RequestError(f"tool_choice names {name!r}, which is not among the tools ({declared})",
                                   param="tool_choice")
            return f"start: {_call_rule(tools[0])}\n"
        many = request.parallel_tool_calls is not False
        rules = ["start: call" + (' ("\\n" call)*' if many else ""),
                 "call: " + " | ".join(_call_rule(t) for t in tools)]
        return "\n".join(rules) + "\n"
    if kind == "text":
        return None
    if kind == "json_object":
        return f'start: %json {json.dumps({"type": "object", "x-guidance": _COMPACT})}\n'
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise RequestError("response_format json_schema needs json_schema.schema (a JSON Schema object)",
                               param="response_format.json_schema.schema")
        return f"start: %json {json.dumps({**schema, 'x-guidance': _COMPACT})}\n"
    raise RequestError(f"response_format type {kind!r} is not supported; use text, json_object or json_schema",
                       param="response_format.type")


def constraint_for(request: ChatRequest, tokenizer: Any) -> Any:
    """A :class:`~mcr.model.runtime.grammar.GrammarConstraint` for the request, or None.

    Raises:
        RequestError: the grammar does not compile (e.g. a schema llguidance cannot take); the message says why.
    """
    lark = grammar_for(request)
    if lark is None:
        return None
    from mcr.model.runtime.grammar import GrammarConstraint

    try:
        return GrammarConstraint(tokenizer, lark)
    except (ValueError, TypeError) as exc:
        where = "tool_choice" if request.tool_choice not in (None, "auto", "none") else "response_format"
        raise RequestError(f"{where}: cannot constrain decoding to it: {exc}", param=where) from None
