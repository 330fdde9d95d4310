"""Serve a viewer page on localhost (optional: the HTML file also works straight from disk).

    from mcr.traces.serve import serve
    serve("run.html", port=8000)          # http://127.0.0.1:8000/run.html until Ctrl-C

Why a server at all: some browsers restrict ``file://`` pages (e.g. media linked
beside a large trace), and a URL is handier on a remote machine through an SSH
tunnel. It serves the page and exactly the media files the page links (an
allowlist read from its inlined data) -- never a whole folder, since linked media
may live anywhere on disk -- binds to the loopback interface only (a trace can
hold private video), and logs nothing unless asked.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import sys
import webbrowser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit


class ServeError(ValueError):
    """The page cannot be served: missing file, a non-local address, or a busy port."""


class _PageHandler(SimpleHTTPRequestHandler):
    files: dict[str, Path] = {}  # URL path -> file; everything else is 404
    verbose = False

    def translate_path(self, path: str) -> str:
        found = self.files.get(unquote(urlsplit(path).path))
        return str(found) if found is not None else str(Path("/nonexistent") / "mcr-not-served")

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # a re-built viewer shows at once
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        if self.verbose:
            super().log_message(format, *args)


def _page(path: str | Path) -> Path:
    """The HTML page to serve; a trace is turned into its viewer beside it first."""
    path = Path(path)
    if not path.is_file():
        raise ServeError(f"{path} does not exist; pass a viewer HTML file (from `mcr view`) or a JSONL trace")
    if path.suffix == ".jsonl":
        from mcr.traces.view import write_viewer

        path = write_viewer(path)
    return path.resolve()


def _links(value: Any) -> list[str]:
    """Every relative ``src`` in the page's data (media linked, not embedded)."""
    if isinstance(value, dict):
        found = [value["src"]] if isinstance(value.get("src"), str) and value["src"].startswith("./") else []
        return found + [link for item in value.values() for link in _links(item)]
    if isinstance(value, list):
        return [link for item in value for link in _links(item)]
    return []


def served_files(page: Path) -> dict[str, Path]:
    """URL path -> file for the page and each file it links, as a browser resolves the links."""
    files = {"/": page, "/" + page.name: page}
    match = re.search(r'<script type="application/json" id="mcr-data">(.*?)</script>', page.read_text(encoding="utf-8"), re.S)
    if match:
        base = "http://localhost/" + quote(page.name)
        for src in _links(json.loads(match.group(1))):
            files[unquote(urlsplit(urljoin(base, src)).path)] = (page.parent / unquote(src)).resolve()
    return files


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def make_server(path: str | Path, port: int = 8000, host: str = "127.0.0.1", verbose: bool = False) -> tuple[ThreadingHTTPServer, str]:
    """A server for the page and the media it links, and the page's URL (port 0 picks a free port).

    Raises:
        ServeError: the page is missing, `host` is not a loopback address, or the port is taken.
    """
    page = _page(path)
    if not _is_loopback(host):
        raise ServeError(f"refusing to serve on {host!r}: the viewer is served on localhost only; share the HTML file instead")
    handler = type("Handler", (_PageHandler,), {"verbose": verbose, "files": served_files(page)})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port} ({exc.strerror}); pass another port, or 0 for any free one") from None
    bound_host, bound_port = server.server_address[:2]
    return server, f"http://{bound_host}:{bound_port}/{quote(page.name)}"


def serve(path: str | Path, port: int = 8000, host: str = "127.0.0.1", open_browser: bool = False) -> None:
    """Serve the page until interrupted (Ctrl-C), printing its URL."""
    server, url = make_server(path, port, host)
    print(f"Serving {url}  (Ctrl-C to stop)", file=sys.stderr)
    if open_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
