"""The optional localhost server for viewer pages."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from mcr.traces.serve import ServeError, make_server, served_files
from mcr.traces.view import write_viewer


@pytest.fixture()
def served(episodes, tmp_path):
    page = write_viewer(episodes["main"], tmp_path / "site" / "view.html", image_limit=10)
    (tmp_path / "secret.txt").write_text("not for the browser")
    server, url = make_server(page, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield page, url
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_serves_the_page_on_localhost(served):
    page, url = served
    assert url.startswith("http://127.0.0.1:") and url.endswith("/view.html")
    status, body = get(url)
    assert status == 200 and body == page.read_bytes()


def test_serves_only_the_page_and_the_media_it_links(served):
    page, url = served
    base = url.rsplit("/", 1)[0]
    assert get(f"{base}/../secret.txt")[0] == 404
    assert get(f"{base}/%2e%2e/secret.txt")[0] == 404
    assert get(f"{base}/secret.txt")[0] == 404 and get(f"{base}/view.html.bak")[0] == 404
    keyframe = next(p for p in served_files(page).values() if p.name == "shot_01.png")
    linked = [u for u, p in served_files(page).items() if p == keyframe]
    status, body = get(base + quote(linked[0]))
    assert status == 200 and body == keyframe.read_bytes()


def test_a_trace_is_turned_into_its_viewer_first(episodes, tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_bytes(episodes["main"].read_bytes())
    server, url = make_server(trace, port=0)
    server.server_close()
    assert url.endswith("/t.html") and (tmp_path / "t.html").is_file()


def test_refuses_a_public_address(served):
    page, _ = served
    with pytest.raises(ServeError, match="localhost only"):
        make_server(page, port=0, host="0.0.0.0")


def test_a_busy_port_is_a_clear_error(served):
    page, url = served
    port = int(url.split(":")[2].split("/")[0])
    with pytest.raises(ServeError, match=f"cannot listen on 127.0.0.1:{port}"):
        make_server(page, port=port)


def test_a_missing_page_is_a_clear_error(tmp_path):
    with pytest.raises(ServeError, match="does not exist"):
        make_server(tmp_path / "none.html", port=0)
