"""Built-in tools, registered explicitly in one place.

Each entry names a module and a class. A tool whose optional dependencies are
not installed is simply absent from the registry (and `mcr tools` says why), so
the core installs lean and the heavy parts come with the extras.
"""

from __future__ import annotations

import importlib

from mcr.tools.base import Tool, ToolContext, ToolFailure, ToolRegistry, tool

# name -> (module, class). Order is the order the policy sees them in.
BUILTIN_TOOLS: dict[str, tuple[str, str]] = {
    "video_info": ("mcr.tools.probe", "VideoInfoTool"),
    "segment": ("mcr.tools.segment", "SegmentTool"),
    "look": ("mcr.tools.look", "LookTool"),
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


__all__ = ["BUILTIN_TOOLS", "Tool", "ToolContext", "ToolFailure", "ToolRegistry", "builtin_registry", "tool"]
