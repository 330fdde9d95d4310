"""`mcr mcp`: what a client names is confined, and every bad session is a typed tool error.

Before: ``session.workdir`` was used as given (``/``, ``/etc/…`` and ``../..``
were accepted and traces written there); ``session.video`` could be any
readable file, and since tools may read beside the video, a plugin read a
fake ``~/.ssh/id_rsa`` placed beside a chosen video; ``--http`` took no API
key; and a directory, ``/proc/…``, a file that is not a video or a bad
workdir came back as "Internal server error" (a directory as "does not
exist"). Each probe goes through the MCP SDK's own client, in process (the
real server, its real request handling) or over HTTP to a real ``mcr mcp``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest

mcp = pytest.importorskip("mcp")
from mcp import Client  # noqa: E402
import mcp_types as types  # noqa: E402

from mcr.mcp_server import SessionError, ToolHost, build_server  # noqa: E402
from mcr.tools import registry_with_plugins  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "media" / "sample.mp4"

PEEK = textwrap.dedent('''
    from pathlib import Path
    from mcr.tools.base import tool

    @tool
    def peek(file: str) -> str:
        """Read the start of a file (a plugin that trusts its argument)."""
        return Path(file).read_text()[:40]
''')


@pytest.fixture
def world(tmp_path):
    """A server root, an allowed media folder with a video, and a 'home' with a secret beside another video."""
    media, home, root = tmp_path / "media", tmp_path / "home", tmp_path / "server"
    media.mkdir()
    (home / ".ssh").mkdir(parents=True)
    shutil.copyfile(SAMPLE, media / "clip.mp4")
    shutil.copyfile(SAMPLE, home / "holiday.mp4")
    (home / "id_rsa").write_text("-----BEGIN FAKE PRIVATE KEY-----")
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN FAKE PRIVATE KEY-----")
    (media / "folder.mp4").mkdir()
    (media / "notes.mp4").write_text("not a video at all")
    os.mkfifo(media / "pipe.mp4")
    (root).mkdir()
    (root / "taken").write_text("a file where a workdir would go")
    (root / "out").symlink_to(tmp_path / "home")
    plugin = tmp_path / "peek.py"
    plugin.write_text(PEEK)
    return {"tmp": tmp_path, "media": media, "home": home, "root": root, "plugin": plugin}


def _host(world) -> ToolHost:
    return ToolHost(registry_with_plugins([str(world["plugin"])]), workdir=world["root"], allowed_media=[world["media"]])


def _call(host: ToolHost, tool: str, arguments: dict, roots: list[Path] = ()) -> types.CallToolResult:
    """One tools/call through the SDK's client, connected in process to our server."""
    async def list_roots(context):
        return types.ListRootsResult(roots=[types.Root(uri=r.as_uri()) for r in roots])

    async def talk():
        # Roots are a handshake-era feature (the 2026-07-28 protocol drops them): a client declaring some talks legacy.
        extra = {"list_roots_callback": list_roots, "mode": "legacy"} if roots else {}
        async with Client(build_server(host), **extra) as client:
            return await client.call_tool(tool, arguments)

    return anyio.run(talk)


def _refused(result: types.CallToolResult, *words: str) -> str:
    text = result.content[0].text
    assert result.is_error, text
    assert "Internal server error" not in text and "Traceback" not in text, text
    for word in words:
        assert word in text, text
    return text


@pytest.mark.parametrize("workdir", ["/", "/etc/mcr-escape", "../..", "a/../../b", "~/mcr", "out/escaped", "."])
def test_a_session_workdir_stays_under_the_server_workdir(world, workdir, ledger):
    host = _host(world)
    before = sorted(p.name for p in world["tmp"].iterdir())
    result = _call(host, "video_info", {"session": {"video": str(world["media"] / "clip.mp4"), "workdir": workdir}})
    text = _refused(result, "session.workdir")
    assert not Path("/etc/mcr-escape").exists() and not (world["home"] / "escaped").exists()
    assert sorted(p.name for p in world["tmp"].iterdir()) == before  # nothing written beside the server's root
    ledger.case("security", f"mcr mcp session.workdir {workdir!r}", outcome="tool error; nothing written", message=text)


def test_a_named_subfolder_works(world):
    host = _host(world)
    result = _call(host, "video_info", {"session": {"video": str(world["media"] / "clip.mp4"), "workdir": "ep/one"}})
    assert not result.is_error, result.content[0].text
    assert (world["root"] / "ep" / "one" / "traces").is_dir()


def test_a_video_outside_the_allowed_folders_is_refused_and_nothing_beside_it_is_read(world, ledger):
    host = _host(world)
    chosen = {"video": str(world["home"] / "holiday.mp4")}
    text = _refused(_call(host, "peek", {"session": chosen, "file": str(world["home"] / "id_rsa")}),
                    "outside the allowed media folders", "--allowed-media-path")
    assert "FAKE PRIVATE KEY" not in text
    ledger.case("security", "mcr mcp: video outside --allowed-media-path, plugin reads id_rsa beside it",
                outcome="tool error before any tool runs", message=text)
    # From an allowed video, a path argument cannot leave its folder or the workdir either.
    allowed = {"video": str(world["media"] / "clip.mp4")}
    for path in (str(world["home"] / ".ssh" / "id_rsa"), str(world["media"] / ".." / "home" / "id_rsa"), "/etc/passwd"):
        text = _refused(_call(host, "peek", {"session": allowed, "file": path}), "path_outside_task")
        assert "FAKE PRIVATE KEY" not in text and "root:" not in text
        ledger.case("security", f"mcr mcp: plugin path argument {Path(path).name} from an allowed video",
                    outcome="path_outside_task; the tool never ran", message=text)


def test_without_allowed_folders_only_the_clients_roots_are_allowed(world, ledger):
    host = ToolHost(registry_with_plugins([]), workdir=world["root"])  # no --allowed-media-path
    video = {"session": {"video": str(world["media"] / "clip.mp4")}}
    text = _refused(_call(host, "video_info", video), "allows no media folders", "--allowed-media-path", "root")
    ledger.case("security", "mcr mcp: no allowed folders, no client roots", outcome="every video refused",
                message=text)
    with pytest.raises(SessionError, match="allows no media folders"):  # a root with a NUL grants nothing
        host.call("video_info", video, roots=[Path("/tmp/a\x00b")])
    declared = _call(host, "video_info", video, roots=[world["media"]])
    assert not declared.is_error and declared.structured_content["has_audio"] is True
    other = _call(host, "video_info", {"session": {"video": str(world["home"] / "holiday.mp4")}}, roots=[world["media"]])
    _refused(other, "outside the allowed media folders")
    ledger.case("security", "mcr mcp: a video outside the client's declared roots", outcome="refused",
                message=other.content[0].text)


@pytest.mark.parametrize("name, words", [
    ("folder.mp4", ["is a directory", "name one file inside it"]),
    ("notes.mp4", ["session.video"]),  # the video layer's own message (not a video)
    ("pipe.mp4", ["not a regular file"]),
    ("missing.mp4", ["does not exist"]),
])
def test_bad_videos_are_typed_tool_errors(world, name, words, ledger):
    text = _refused(_call(_host(world), "video_info", {"session": {"video": str(world["media"] / name)}}), *words)
    assert "does not exist" not in text or name == "missing.mp4"  # a directory is not reported as missing
    ledger.case("security", f"mcr mcp: session.video {name}", outcome="typed tool error", message=text)


def test_proc_and_a_blocked_workdir_are_typed_tool_errors(world, ledger):
    host = ToolHost(registry_with_plugins([]), workdir=world["root"], allowed_media=[world["media"], Path("/proc")])
    text = _refused(_call(host, "video_info", {"session": {"video": "/proc/self/environ"}}), "session.video")
    ledger.case("security", "mcr mcp: session.video /proc/self/environ (even when /proc is allowed)",
                outcome="typed tool error", message=text)
    blocked = _call(host, "video_info", {"session": {"video": str(world["media"] / "clip.mp4"), "workdir": "taken/x"}})
    text = _refused(blocked, "session.workdir", "cannot write")
    ledger.case("security", "mcr mcp: session.workdir under a file", outcome="typed tool error", message=text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_needs_the_api_key(world, ledger):
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MCR_TEST_MCP_KEY": "s3cret-key"}
    proc = subprocess.Popen([sys.executable, "-m", "mcr.cli", "mcp", "--http", "--port", str(port), "--workdir",
                             str(world["root"]), "--allowed-media-path", str(world["media"]),
                             "--api-key-env", "MCR_TEST_MCP_KEY"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "mcr mcp --http did not start"
                time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/mcp"
        hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}}}
        heads = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        for auth in (None, "Bearer wrong", "Basic s3cret-key"):
            refused = httpx2.post(url, json=hello, headers={**heads, **({"Authorization": auth} if auth else {})})
            assert refused.status_code == 401, (auth, refused.status_code)
            ledger.case("security", f"mcr mcp --http with Authorization {auth!r}", outcome="401",
                        message=refused.text)

        async def talk():
            client = httpx2.AsyncClient(headers={"Authorization": "bearer s3cret-key"})  # the scheme in any case
            async with Client(streamable_http_client(url, http_client=client)) as session:
                return await session.call_tool("video_info", {"session": {"video": str(world["media"] / "clip.mp4")}})

        info = anyio.run(talk)
        assert not info.is_error and info.structured_content["has_audio"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=10)
