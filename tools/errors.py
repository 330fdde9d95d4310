"""The errors of the tool layer: kept apart so every tool module can raise them without cycles."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["PluginError", "ToolFailure", "ToolInputError", "UnknownToolError"]



class ToolFailure(Exception):
    """A tool could not do its job because of its input; recorded as a ToolError.

    ``error_type`` is a short machine-readable tag (``no_audio``,
    ``span_outside_video``...); the message tells the policy what to do instead.
    """

    error_type = "tool_failed"

    def __init__(self, message: str, error_type: str | None = None):
        super().__init__(message)
        if error_type:
            self.error_type = error_type


class ToolInputError(ToolFailure):
    """The arguments did not validate against the tool's Input schema."""

    error_type = "invalid_arguments"


class UnknownToolError(KeyError):
    """A tool name that is not in the registry (in a task file or a model's call)."""

    def __init__(self, name: str, available: Iterable[str]):
        self.name = name
        self.available = sorted(available)
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown tool {self.name!r}; registered tools: {', '.join(self.available) or '(none)'}"


class PluginError(ImportError, ValueError):
    """A tool plugin cannot be loaded: it raised while importing, or defines no tool. Names it and the fix."""

    def __init__(self, spec: str, why: str, fix: str):
        self.spec = spec
        super().__init__(f"tool plugin {spec!r} {why} — {fix}")
