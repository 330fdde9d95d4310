"""`mcr mcp` through the MCP SDK's own client: stdio (tools with schemas, calls, cache, trace, restart) and HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import anyio
import pytest

from mcr.model.media.audio import normalize_words  # noqa: E402

mcp = pytest.importorskip("mcp")
from mcp import Client, StdioServerParameters  # noqa: E402

PLUGIN = textwrap.dedent('''
    from mcr.tools.base import tool

    @tool
    def count_words(text: str, minimum: int = 1) -> int:
        """Count the words of a text that have at least `minimum` letters."""
        return sum(len(w) >= minimum for w in text.split())
''')


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def _stdio(workdir, plugin, media) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, env=_env(),
                                 args=["-m", "mcr.cli", "mcp", "--workdir", str(workdir), "--plugin", str(plugin),
                                       "--allowed-media-path", str(media)])


def _events(path) -> list[dict]:
    return [json.loads(line) for line in open(path)]


def test_tools_over_stdio_are_cached_and_traced_as_an_episode(tmp_path, sample_with_subtitles):
    plugin = tmp_path / "my_tools.py"
    plugin.write_text(PLUGIN)
    episode = tmp_path / "default" / "episode"  # session workdirs live under the server's --workdir
    session = {"video": str(sample_with_subtitles), "workdir": "episode"}
    media = sample_with_subtitles.parent

    async def first_server():
        async with Client(_stdio(tmp_path / "default", plugin, media)) as client:
            listed = {t.name: t for t in (await client.list_tools()).tools}
            assert {"video_info", "segment", "transcribe", "search", "count_words"} <= set(listed)
            words = listed["count_words"].input_schema
            assert words["required"] == ["session", "text"]
            assert words["properties"]["minimum"] == {"default": 1, "title": "Minimum", "type": "integer"}
            assert words["properties"]["session"]["required"] == ["video"]

            said = await client.call_tool("transcribe", {"session": session})
            assert not said.is_error and "seven ships" in " ".join(normalize_words(said.content[0].text))  # Whisper: any case
            assert said.structured_content["segments"]
            counted = await client.call_tool("count_words", {"session": session, "text": "a bb ccc", "minimum": 2})
            assert counted.structured_content == {"result": 2}
            bad = await client.call_tool("count_words", {"session": session, "text": 3})
            assert bad.is_error and "invalid_arguments" in bad.content[0].text
            nosession = await client.call_tool("video_info", {})
            assert nosession.is_error and "session" in nosession.content[0].text
            return said.meta["mcr/trace"]

    trace = anyio.run(first_server)
    # Cached where an episode with this workdir caches; traced as an episode (mcr view reads it).
    assert list((episode / "artifacts" / "cache" / "transcribe").rglob("*.json"))
    events = _events(trace)
    assert events[0]["type"] == "episode_start" and events[0]["policy"] == "mcp"
    calls = [e for e in events if e["type"] == "tool_call"]
    assert [c["tool"] for c in calls] == ["transcribe", "count_words", "count_words"]
    assert [e["entry"]["kind"] for e in events if e["type"] == "entry"] == [
        "observation", "instruction", "tool_call", "tool_result", "tool_call", "tool_result", "tool_call", "tool_error"]

    async def restarted_server():  # a new process continues the same session from its trace
        async with Client(_stdio(tmp_path / "default", plugin, media)) as client:
            again = await client.call_tool("video_info", {"session": session})
            assert not again.is_error and again.structured_content["duration"] == pytest.approx(24.0, abs=0.1)
            return again.meta["mcr/entry"]

    assert anyio.run(restarted_server) == "e9"
    assert [e["type"] for e in _events(trace)].count("episode_start") == 1


def test_tools_over_streamable_http(tmp_path, sample_with_subtitles):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mcr.cli", "mcp", "--http", "--port", str(port),
                             "--workdir", str(tmp_path), "--allowed-media-path", str(sample_with_subtitles.parent)],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "mcr mcp --http did not start"
                time.sleep(0.2)

        async def talk():
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                names = [t.name for t in (await client.list_tools()).tools]
                info = await client.call_tool("video_info", {"session": {"video": str(sample_with_subtitles)}})
                return names, info

        names, info = anyio.run(talk)
        assert "video_info" in names
        assert not info.is_error and info.structured_content["has_audio"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=10)
