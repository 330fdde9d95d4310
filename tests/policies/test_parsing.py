"""Parsing model output into decisions: a table of real-looking outputs."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from mcr.context import TimeSpan
from mcr.policies.base import FinalAnswer, InvalidOutput, ToolCalls
from mcr.policies.parsing import parse_decision, schema_errors
from mcr.tools.base import Tool, ToolContext, ToolRegistry


class ZoomInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    span: TimeSpan
    fps: float = Field(default=2.0, gt=0, le=8)


class ZoomOutput(BaseModel):
    frames: int


class Zoom(Tool):
    name = "zoom"
    description = "Look at a span at a higher frame rate."
    Input = ZoomInput
    Output = ZoomOutput

    def run(self, input: ZoomInput, ctx: ToolContext) -> ZoomOutput:  # pragma: no cover - not run here
        return ZoomOutput(frames=1)


class SearchInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1)
    top_k: int = Field(default=3, ge=1, le=10)


class Search(Tool):
    name = "search"
    description = "Search the transcript."
    Input = SearchInput
    Output = ZoomOutput

    def run(self, input, ctx):  # pragma: no cover - not run here
        return ZoomOutput(frames=0)


REGISTRY = ToolRegistry([Zoom, Search])
TOOLS = REGISTRY.schemas()
OPTIONS = ("five", "six", "seven", "eight")

VALID = [
    # (output, expected calls)
    ('<tool_call>{"name": "search", "arguments": {"query": "ships"}}</tool_call>', [("search", {"query": "ships"})]),
    (
        '<think>I should look closer.</think>\n<tool_call>\n{"name": "zoom", "arguments": '
        '{"span": {"start": 6, "end": 12}, "fps": 4}}\n</tool_call>',
        [("zoom", {"span": {"start": 6, "end": 12}, "fps": 4})],
    ),
    (
        '<tool_call>{"name": "search", "arguments": {"query": "ships"}}</tool_call>\n'
        '<tool_call>{"name": "zoom", "arguments": {"span": {"start": 0, "end": 3}}}</tool_call>',
        [("search", {"query": "ships"}), ("zoom", {"span": {"start": 0, "end": 3}})],
    ),
    # arguments given as a JSON string, and a code fence: lenient but unambiguous
    ('<tool_call>{"name": "search", "arguments": "{\\"query\\": \\"bread\\"}"}</tool_call>', [("search", {"query": "bread"})]),
    ('<tool_call>```json\n{"name": "search", "arguments": {"query": "x"}}\n```</tool_call>', [("search", {"query": "x"})]),
    # cut off before the closing tag, JSON complete
    ('<tool_call>{"name": "search", "arguments": {"query": "x"}}', [("search", {"query": "x"})]),
]


@pytest.mark.parametrize("registry", [REGISTRY, None], ids=["pydantic", "json-schema"])
@pytest.mark.parametrize("text,expected", VALID)
def test_valid_calls(text, expected, registry):
    decision = parse_decision(text, TOOLS, registry=registry)
    assert isinstance(decision, ToolCalls), decision
    assert [(c.tool, c.arguments) for c in decision.calls] == expected


def test_thought_is_kept_with_calls():
    decision = parse_decision(
        'Let me search first.\n<tool_call>{"name": "search", "arguments": {"query": "a"}}</tool_call>', TOOLS
    )
    assert isinstance(decision, ToolCalls)
    assert decision.thought == "Let me search first."


INVALID = [
    # (output, words the error must contain)
    ('<tool_call>{"name": "search", "arguments": {"query": "ships"</tool_call>', ["not valid JSON", "<tool_call>"]),
    ('<tool_call>{"name": "teleport", "arguments": {}}</tool_call>', ["no tool 'teleport'", "search", "zoom"]),
    ('<tool_call>{"arguments": {"query": "x"}}</tool_call>', ['"name"']),
    ('<tool_call>{"name": "search", "arguments": [1, 2]}</tool_call>', ["must be an object"]),
    ('<tool_call>{"name": "search", "arguments": {}}</tool_call>', ["query", "required"]),
    ('<tool_call>{"name": "search", "arguments": {"query": "x", "top_k": 50}}</tool_call>', ["top_k", "10"]),
    ('<tool_call>{"name": "zoom", "arguments": {"span": {"start": 0, "end": 3}, "fps": 0}}</tool_call>', ["fps"]),
    ('<tool_call>{"name": "search", "arguments": {"query": "x", "limit": 2}}</tool_call>', ["limit"]),
    ('<tool_call>{"name": "zoom", "arguments": {"span": "6-12"}}</tool_call>', ["span"]),
    ("", ["empty reply", "<tool_call>", "<answer"]),
    ("<think>hmm</think>", ["empty reply"]),
]


@pytest.mark.parametrize("registry", [REGISTRY, None], ids=["pydantic", "json-schema"])
@pytest.mark.parametrize("text,words", INVALID)
def test_invalid_outputs_say_what_is_wrong(text, words, registry):
    decision = parse_decision(text, TOOLS, registry=registry)
    assert isinstance(decision, InvalidOutput), decision
    assert decision.raw == text
    for word in words:
        assert word in decision.error, (word, decision.error)


def test_one_bad_call_invalidates_the_batch():
    text = (
        '<tool_call>{"name": "search", "arguments": {"query": "x"}}</tool_call>'
        '<tool_call>{"name": "nope", "arguments": {}}</tool_call>'
    )
    decision = parse_decision(text, TOOLS, registry=REGISTRY)
    assert isinstance(decision, InvalidOutput)
    assert "tool call 2" in decision.error


ANSWERS = [
    # (output, options, text, option, evidence)
    ('<answer option="C" evidence="e3,e5">seven</answer>', OPTIONS, "seven", "C", ("e3", "e5")),
    ("<answer option=C evidence=e3>seven</answer>", OPTIONS, "seven", "C", ("e3",)),
    ("<answer option='(b)'>six ships</answer>", OPTIONS, "six ships", "B", ()),
    ("<answer>The answer is C.</answer>", OPTIONS, "The answer is C.", "C", ()),
    ('<think>The narration says seven.</think><answer option="C">seven', OPTIONS, "seven", "C", ()),
    ('<answer evidence="e2">A red lighthouse.</answer>', None, "A red lighthouse.", None, ("e2",)),
    ('<answer option="B">bread</answer>', None, "bread", None, ()),  # open question: option dropped
    ("The keeper counts seven ships, so the answer is C.", OPTIONS, None, "C", ()),
    ("(D) eight", OPTIONS, "(D) eight", "D", ()),
    ("Answer: b", OPTIONS, "Answer: b", "B", ()),
    ("A farmer plants barley.", None, "A farmer plants barley.", None, ()),
]


@pytest.mark.parametrize("text,options,answer,option,evidence", ANSWERS)
def test_answers(text, options, answer, option, evidence):
    decision = parse_decision(text, TOOLS, options=options)
    assert isinstance(decision, FinalAnswer), decision
    if answer is not None:
        assert decision.text == answer
    assert decision.option == option
    assert decision.evidence == evidence


@pytest.mark.parametrize(
    "text,words",
    [
        ('<answer option="F">nine</answer>', ["'F'", "A, B, C, D"]),
        ("<answer>seven or eight</answer>", ["no option", "A, B, C, D"]),
        ("I am not sure what happens.", ["neither a tool call nor an answer", "A, B, C, D"]),
        ("<answer></answer>", ["no option"]),
        ("A lighthouse on a cliff.", ["neither a tool call"]),  # a sentence starting with "A" names no option
    ],
)
def test_bad_answers_to_multiple_choice(text, words):
    decision = parse_decision(text, TOOLS, options=OPTIONS)
    assert isinstance(decision, InvalidOutput), decision
    for word in words:
        assert word in decision.error


def test_empty_open_answer_is_invalid():
    assert isinstance(parse_decision("<answer></answer>", TOOLS), InvalidOutput)


def test_schema_errors_follow_refs_and_anyof():
    schema = ZoomInput.model_json_schema()
    assert schema_errors({"span": {"start": 1.0, "end": 2.0}}, schema) == []
    errors = schema_errors({"span": {"start": -1.0}}, schema)
    assert any("span.end" in e for e in errors) and any("span.start" in e for e in errors)
    optional = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert schema_errors(None, optional) == [] and schema_errors(3, optional) == []
    assert schema_errors("x", optional) != []
    assert schema_errors(True, {"type": "integer"}) != []  # bools are not numbers in JSON Schema
