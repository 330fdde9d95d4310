"""Built-in tools, registered explicitly in one place.

Each entry names a module and a class. A tool whose optional dependencies are
not installed is simply absent from the registry (and `mcr tools` says why), so
the core installs lean and the heavy parts come with the extras.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from mcr.tools.base import Tool, ToolContext, ToolFailure, ToolRegistry, load_plugin, tool

if TYPE_CHECKING:
    from mcr.task import TaskSpec

# name -> (module, class). Order is the order the policy sees them in.
BUILTIN_TOOLS: dict[str, tuple[str, str]] = {
    "video_info": ("mcr.tools.probe", "VideoInfoTool"),
    "segment": ("mcr.tools.segment", "SegmentTool"),
    "look": ("mcr.tools.look", "LookTool"),
    "overview": ("mcr.tools.coarse", "OverviewTool"),
    "skim": ("mcr.tools.coarse", "SkimTool"),
    "focus": ("mcr.tools.coarse", "FocusTool"),
    "transcribe": ("mcr.tools.asr", "TranscribeTool"),
    "ground": ("mcr.tools.ground", "GroundTool"),
    "search": ("mcr.tools.search", "SearchTool"),
    "summarize": ("mcr.tools.summarize", "SummarizeTool"),
    "verify_answer": ("mcr.tools.verify", "VerifyAnswerTool"),
}

# Tools that could not be loaded, with the reason (shown by `mcr tools`).
UNAVAILABLE: dict[str, str] = {}


def builtin_registry() -> ToolRegistry:
    """A fresh registry holding every built-in tool whose dependencies import."""
    registry = ToolRegistry()
    for name, (module_name, class_name) in BUILTIN_TOOLS.items():
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            UNAVAILABLE[name] = f"{type(exc).__name__}: {exc}"
            continue
        registry.register(cls)
    return registry


def registry_with_plugins(plugins: Iterable[str] = (), *, base: ToolRegistry | None = None,
                          skip_broken: bool = False) -> ToolRegistry:
    """The built-in tools (or a copy of ``base``) plus every plugin's tools, which replace same-named ones.

    The one place plugins are loaded (agent, CLI, replay, evaluation, MCP).

    Args:
        plugins: ``.py`` files or module names.
        base: start from this registry instead of a fresh built-in one (a suite
            reuses one, so tools are imported once).
        skip_broken: leave out plugins that cannot be loaded (a replay serves
            their calls from the trace) instead of raising.

    Raises:
        FileNotFoundError, ImportError, ValueError: a plugin cannot be loaded.
    """
    registry = ToolRegistry(base) if base is not None else builtin_registry()
    for plugin in plugins:
        try:
            tools = load_plugin(plugin)
        except (FileNotFoundError, ImportError, ValueError):
            if skip_broken:
                continue
            raise
        for plugin_tool in tools:
            registry.register(plugin_tool, replace=True)
    return registry


def registry_for_task(task: TaskSpec, *, base: ToolRegistry | None = None) -> ToolRegistry:
    """The tools a task may use: built-ins and its plugins, limited to its ``tools:`` list.

    Raises:
        TaskFileError: the task names a tool that is not registered.
    """
    registry = registry_with_plugins(task.plugins, base=base)
    task.check_tool_names(registry.names)
    return registry.subset(task.tools) if task.tools is not None else registry


__all__ = ["BUILTIN_TOOLS", "Tool", "ToolContext", "ToolFailure", "ToolRegistry", "builtin_registry",
           "registry_for_task", "registry_with_plugins", "tool"]
