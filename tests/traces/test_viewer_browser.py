"""The viewer in headless Chromium: offline, every step shown, seeking, no script injection, diff."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mcr.traces.recorder import read_trace
from mcr.traces.view import write_viewer

sync_api = pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed (pip install playwright)")

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser(chromium_path):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def html(episodes, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("html")
    return {
        "main": write_viewer(episodes["main"], out / "main.html", other=episodes["variant"]),
        "xss": write_viewer(episodes["xss"], out / "xss.html"),
        "linked": write_viewer(episodes["main"], out / "sub" / "linked.html", video_limit=1000, image_limit=10),
    }


def poll(page, expression: str, timeout_s: float = 10.0) -> None:
    """Wait until `expression` is true in the page.

    Not wait_for_function: it evaluates its predicate with eval() inside the page when it has to
    poll, which the viewer's Content-Security-Policy forbids (as it should). evaluate() goes
    through the DevTools protocol, which the page's CSP does not govern.
    """
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            state = page.evaluate("[video.readyState, video.networkState, video.error && video.error.message, video.currentTime]")
            raise AssertionError(f"timed out waiting for {expression}; video state {state}")
        page.wait_for_timeout(50)


class Opened:
    """A page plus everything it did: console messages, errors, requests, dialogs."""

    def __init__(self, browser, path: Path):
        self.page = browser.new_page(viewport={"width": 1440, "height": 900})
        self.console: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.url = path.as_uri()
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready=true]", timeout=10_000)

    def video_ready(self) -> None:
        poll(self.page, "document.getElementById('video').readyState >= 1")

    def current_time(self) -> float:
        return self.page.evaluate("document.getElementById('video').currentTime")


@pytest.fixture(scope="module")
def main_page(browser, html):
    opened = Opened(browser, html["main"])
    yield opened
    opened.page.close()


def test_loads_offline_without_console_errors(main_page):
    main_page.page.wait_for_timeout(300)
    assert [m for m in main_page.console if m.startswith(("error", "pageerror", "warning"))] == []
    others = [u for u in main_page.requests if u != main_page.url and not u.startswith("data:")]
    assert others == []
    main_page.video_ready()
    assert main_page.page.evaluate("document.getElementById('video').duration") == pytest.approx(24.0, abs=0.1)


def test_every_step_is_shown(main_page, episodes):
    entries = [e["entry"] for e in read_trace(episodes["main"]) if e["type"] == "entry"]
    shown = main_page.page.eval_on_selector_all("details.entry", "els => els.map(e => e.dataset.id)")
    assert shown == [e["id"] for e in entries]
    heads = main_page.page.eval_on_selector_all(".step-no", "els => els.map(e => e.textContent)")
    assert heads == ["Start", "Step 1", "Step 2", "Step 3", "Step 4"]
    text = main_page.page.inner_text("#steps")
    assert "26 bright objects" in text or "bright objects" in text
    assert "invalid_arguments" in text and "this is a multiple-choice question" in text


def test_clicking_a_step_seeks_the_video_to_its_span(main_page):
    page = main_page.page
    main_page.video_ready()
    page.click("details.entry[data-id=e8] > summary")
    poll(page, "Math.abs(document.getElementById('video').currentTime - 6.0) < 0.05")
    assert page.get_attribute("details.entry[data-id=e8]", "class").count("selected") == 1
    assert page.eval_on_selector("details.entry[data-id=e8]", "e => e.open")
    page.click("details.entry[data-id=e4] > summary")  # the whole video: back to 0
    poll(page, "document.getElementById('video').currentTime < 0.05")
    images = page.locator("details.entry[data-id=e4] img")
    assert images.count() == 4
    assert page.eval_on_selector_all("details.entry[data-id=e4] img", "els => els.every(i => i.naturalWidth === 320)")
    images.nth(2).click()  # shot 3 starts at 12 s
    poll(page, "Math.abs(document.getElementById('video').currentTime - 12.0) < 0.05")


def test_timeline_marks_spans_and_evidence(main_page):
    page = main_page.page
    marks = page.eval_on_selector_all("svg.timeline rect.mark", "els => els.map(e => [e.dataset.id, e.classList.contains('evidence')])")
    assert ["e8", True] in marks and ["e0", False] in marks
    assert page.locator("svg.timeline rect.evidence-band").count() >= 1
    page.click("svg.timeline rect.mark[data-id=e8]")
    poll(page, "Math.abs(document.getElementById('video').currentTime - 6.0) < 0.05")
    assert "selected" in page.get_attribute("details.entry[data-id=e8]", "class")


def test_spans_inside_outputs_are_marked_and_seekable(main_page):
    page = main_page.page
    assert page.locator("svg.timeline rect.part[data-id=e4]").count() == 4
    page.eval_on_selector("details.entry[data-id=e4]", "e => { e.open = true; }")  # earlier tests may have toggled it
    page.locator("details.entry[data-id=e4] .part-line").nth(3).click()  # shot 4 starts at 18 s
    poll(page, "Math.abs(document.getElementById('video').currentTime - 18.0) < 0.05")
    page.locator("svg.timeline rect.part[data-id=e4]").nth(1).click()  # shot 2 starts at 6 s
    poll(page, "Math.abs(document.getElementById('video').currentTime - 6.0) < 0.05")


def test_token_chart_draws_reused_and_prefilled_bars(main_page):
    page = main_page.page
    bars = page.eval_on_selector_all("svg.chart rect.bar", "els => els.map(e => e.getAttribute('class'))")
    assert bars.count("bar reused") == 3 and bars.count("bar prefilled") == 4 and bars.count("bar generated") == 4
    assert page.locator("#calls tr").count() == 5
    assert "of prompt tokens came from the cache" in page.inner_text("#chart")


def test_diff_view_highlights_the_first_difference(main_page):
    page = main_page.page
    page.click("button.tab[data-tab=diff]")
    first = page.locator("tr.first-diff")
    assert first.is_visible() and "e6" in first.inner_text()
    assert "first difference at event" in page.inner_text("#diff")
    assert page.is_hidden("#episode")
    page.click("button.tab[data-tab=episode]")
    assert page.is_visible("#steps")


def test_model_output_html_is_shown_as_text_never_run(browser, html):
    opened = Opened(browser, html["xss"])
    page = opened.page
    page.click("details.entry.kind-thought > summary")
    page.click("details.raw > summary")
    page.wait_for_timeout(300)
    assert opened.dialogs == []
    assert page.locator("img[src=x]").count() == 0 and page.locator("script").count() == 2
    text = page.inner_text("#steps")
    assert "<script>alert(1)</script> then <img src=x onerror=alert(2)>" in text
    assert "<think><script>alert(1)</script></think>" in text
    assert "<script>alert(1)</script>" in page.inner_text("#facts")  # the answer chip
    assert [m for m in opened.console if m.startswith(("error", "pageerror"))] == []
    page.close()


def test_media_too_large_to_embed_loads_from_beside_the_file(browser, html):
    opened = Opened(browser, html["linked"])
    opened.video_ready()
    page = opened.page
    page.click("details.entry[data-id=e4] > summary")
    poll(page, "[...document.querySelectorAll('details.entry[data-id=e4] img')].every(i => i.complete && i.naturalWidth > 0)")
    assert all(u.startswith("file://") for u in opened.requests)
    assert any(u.endswith("sample.mp4") for u in opened.requests)
    assert [m for m in opened.console if m.startswith(("error", "pageerror"))] == []
    page.close()


def test_served_page_loads_linked_media_from_localhost(browser, html):
    import threading

    from mcr.traces.serve import make_server

    server, url = make_server(html["linked"], port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        poll(page, "document.getElementById('video').readyState >= 1")
        page.click("details.entry[data-id=e8] > summary")
        poll(page, "document.querySelector('details.entry[data-id=e8] img').naturalWidth === 320")
        assert errors == []
        page.close()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_the_demo_episode_in_the_viewer(browser, tmp_path, repo_root):
    """The docs screenshot's episode: `make demo` (SmolLM2, real tools) shown in the viewer."""
    from mcr.cli import main

    trace = tmp_path / "demo.jsonl"
    task = repo_root / "examples" / "tasks" / "demo.yaml"
    assert main(["run", str(task), "--workdir", str(tmp_path / "w"), "--trace", str(trace), "-q"]) == 0
    opened = Opened(browser, write_viewer(trace, tmp_path / "demo.html"))
    page = opened.page
    entries = [e["entry"] for e in read_trace(trace) if e["type"] == "entry"]
    assert page.locator("details.entry").count() == len(entries)
    segment = next(e["id"] for e in entries if e["kind"] == "tool_result" and e["tool"] == "segment")
    transcript = next(e["id"] for e in entries if e["kind"] == "tool_result" and e["tool"] == "transcribe")
    page.click(f"details.entry[data-id={segment}] > summary")  # four shots with keyframes
    poll(page, f"[...document.querySelectorAll('details.entry[data-id={segment}] img')].every(i => i.naturalWidth > 0)")
    assert page.locator(f"details.entry[data-id={segment}] img").count() == 4
    assert page.locator(f"svg.timeline rect.part[data-id={transcript}]").count() == 4  # the narration lines
    assert [m for m in opened.console if m.startswith(("error", "pageerror"))] == []
    page.close()
