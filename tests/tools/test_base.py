"""The Tool protocol, the @tool decorator, the registry and plugins."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from mcr.context import Context
from mcr.tools import builtin_registry
from mcr.tools.base import (
    Tool,
    ToolContext,
    ToolFailure,
    ToolInputError,
    ToolRegistry,
    UnknownToolError,
    load_plugin,
    tool,
)


class Echo(Tool):
    name = "echo"
    description = "Repeat a word n times."

    class Input(BaseModel):
        word: str
        n: int = 1

    class Output(BaseModel):
        text: str

    def run(self, input, ctx):
        if input.n < 0:
            raise ToolFailure("n must be positive", "bad_count")
        return self.Output(text=" ".join([input.word] * input.n))


@tool
def count_words(text: str, ctx: ToolContext, minimum: int = 0) -> int:
    """Count the words in a text.

    More detail that the policy does not need.
    """
    assert isinstance(ctx, ToolContext)
    return max(minimum, len(text.split()))


CTX = ToolContext(context=Context())


def test_class_tool_validates_and_runs():
    echo = Echo()
    assert echo({"word": "hi", "n": 3}, CTX).text == "hi hi hi"
    with pytest.raises(ToolInputError, match="n: Input should be a valid integer"):
        echo({"word": "hi", "n": "many"}, CTX)
    with pytest.raises(ToolFailure) as info:
        echo({"word": "hi", "n": -1}, CTX)
    assert info.value.error_type == "bad_count"


def test_function_tool_schema_and_call():
    schema = count_words.schema()["function"]
    assert schema["name"] == "count_words"
    assert schema["description"] == "Count the words in a text."
    assert schema["parameters"]["required"] == ["text"]
    assert "ctx" not in schema["parameters"]["properties"]
    assert count_words()({"text": "a b c"}, CTX).result == 3
    assert count_words()({"text": "a", "minimum": 5}, CTX).result == 5
    with pytest.raises(ToolInputError, match="unexpected|Extra inputs"):
        count_words()({"text": "a", "colour": "red"}, CTX)


def test_function_tool_needs_annotations_and_description():
    with pytest.raises(TypeError, match="annotation"):
        @tool
        def untyped(x) -> int:
            """Doc."""
            return 1

    with pytest.raises(TypeError, match="description"):
        @tool
        def undocumented(x: int) -> int:
            return x


def test_registry_lookup_errors_name_the_alternatives():
    registry = ToolRegistry([Echo, count_words])
    assert registry.names == ["echo", "count_words"]
    with pytest.raises(UnknownToolError) as info:
        registry.get("ecco")
    assert "unknown tool 'ecco'" in str(info.value) and "echo" in str(info.value)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Echo)
    assert registry.subset(["echo"]).names == ["echo"]
    with pytest.raises(TypeError):
        registry.register(object())  # type: ignore[arg-type]


def test_registry_as_class_decorator():
    registry = ToolRegistry()

    @registry.register
    class Shout(Echo):
        name = "shout"

    assert "shout" in registry and isinstance(registry.get("shout"), Shout)


def test_plugin_from_file(tmp_path):
    plugin = tmp_path / "my_tools.py"
    plugin.write_text(
        "from mcr.tools.base import tool\n"
        "@tool\n"
        "def reverse(text: str) -> str:\n"
        "    'Reverse a text.'\n"
        "    return text[::-1]\n"
    )
    (found,) = load_plugin(str(plugin))
    assert found.name == "reverse" and found({"text": "abc"}, CTX).result == "cba"
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no Tool"):
        load_plugin(str(empty))
    with pytest.raises(FileNotFoundError):
        load_plugin(str(tmp_path / "missing.py"))


def test_builtin_registry_has_the_video_info_tool(sample_video):
    from mcr.context import VideoRef

    registry = builtin_registry()
    info = registry.get("video_info")({}, ToolContext(context=Context(), video=VideoRef(path=str(sample_video))))
    assert info.duration == pytest.approx(24.0, abs=0.1) and info.has_audio
    with pytest.raises(ToolFailure, match="no video"):
        registry.get("video_info")({}, CTX)
