"""Fixtures for the model policies: a tiny Qwen3-VL checkpoint and a tiny test tool."""

from __future__ import annotations

import pytest

from mcr.tools.base import ToolRegistry, tool


@tool
def count_frames(every: int = 1) -> int:
    """Count the frames of the video (a test tool; no arguments are required)."""
    if every < 1:
        raise ValueError("every must be >= 1")
    return 24 // every


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    from mcr.model.runtime.tiny import save_tiny_qwen3vl

    return save_tiny_qwen3vl(tmp_path_factory.mktemp("tiny-qwen3vl"))


@pytest.fixture
def test_registry() -> ToolRegistry:
    return ToolRegistry([count_frames])
