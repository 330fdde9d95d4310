"""The viewer shows every string of a hostile trace as text: nothing runs, nothing is fetched.

A real episode (the Agent, a scripted policy, a tool that writes real PNGs)
is recorded with markup in every field a trace carries: the video's and the
images' file names, the trace's own file name, the task name, the thread id,
the question, the option texts, a tool output's keys as well as its values,
``javascript:`` URLs where a path or link could go, SVG and MathML vectors,
CSS ``@import``, ``<base>``, meta refresh, and strings that try to end the
data's ``<script>`` element or the template's placeholders.

Each payload that could run script sets ``window.__pwned`` or calls
``alert``; each that could fetch names a real HTTP server on localhost that
records every request. The page is opened in headless Chromium from disk and
through ``mcr view --serve``; every entry is opened and clicked. Then: no
dialog, no flag, no request to the server, no request but the page and its
data/file media, no console error (a CSP violation would be one: not even an
attempt), no element or URL attribute a payload could have made, and every
payload is on the page as text. A last check proves the CSP itself: script
injected into the live page by DevTools is blocked too.
"""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import BaseModel, ConfigDict

from mcr.agent import Agent
from mcr.context import TimeSpan
from mcr.policies.scripted import ScriptedPolicy
from mcr.task import PlanStep, TaskSpec
from mcr.tools.base import Tool, ToolContext, ToolRegistry
from mcr.traces.view import write_viewer
from mcr.verify import Verifier

sync_api = pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "media" / "sample.mp4"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
URL_ATTRS = ("src", "href", "xlink:href", "action", "formaction", "data", "srcdoc", "poster", "background", "ping")


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"window.__pwned = 'fetched';")

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def listener():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def payloads(origin: str) -> dict[str, str]:
    """Markup that would run script (setting window.__pwned) or fetch from `origin` if rendered as HTML."""
    return {
        "script": "<script>window.__pwned='script';alert(1)</script>",
        "img onerror": "<img src=x onerror=\"window.__pwned='img';alert(2)\">",
        "end the data element": "</script><script>window.__pwned='breakout'</script>",
        "comment then script": "<!--<script>window.__pwned='comment'</script>-->",
        "svg onload": "<svg onload=\"window.__pwned='svg'\"><circle r=5 /></svg>",
        "svg script": "<svg><script>window.__pwned='svgscript'</script></svg>",
        "svg javascript link": "<svg><a xlink:href=\"javascript:window.__pwned='svglink'\"><text y=20>click</text></a></svg>",
        "svg image fetch": f"<svg><image href=\"{origin}/svg-image.png\" /></svg>",
        "svg foreignObject": "<svg><foreignObject><img src=x onerror=\"window.__pwned='fo'\"></foreignObject></svg>",
        "mathml mglyph mXSS": "<math><mtext><table><mglyph><style><img src=x onerror=\"window.__pwned='math'\">",
        "mathml javascript href": "<math href=\"javascript:window.__pwned='mathhref'\">CLICK</math>",
        "css @import": f"<style>@import url({origin}/import.css);</style>",
        "css @import bare": f"@import '{origin}/bare-import.css';",
        "link stylesheet": f"<link rel=stylesheet href=\"{origin}/link.css\">",
        "base href": f"<base href=\"{origin}/\">",
        "meta refresh": f"<meta http-equiv=refresh content=\"0;url={origin}/refresh\">",
        "iframe srcdoc": "<iframe srcdoc=\"<script>parent.__pwned='iframe'</script>\"></iframe>",
        "object data": f"<object data=\"{origin}/object\"></object>",
        "javascript url": "javascript:window.__pwned='jsurl'",
        "template placeholder": "{{DATA}} {{JS}} {{CSP}}",
        "line separators": "a\u2028b\u2029c",
        "fetch call text": f"fetch('{origin}/fetch')",
    }


class HostileTool(Tool):
    """Writes real keyframe PNGs with hostile names; returns payloads as keys and values."""

    name = "hostile"
    description = "Return hostile strings as output keys and values, with real keyframe images."
    PAYLOADS: dict[str, str] = {}

    class Input(BaseModel):
        model_config = ConfigDict(extra="forbid")
        count: int = 1

    class Output(BaseModel):
        data: dict[str, Any]
        shots: list[dict[str, Any]]

    def run(self, input: Input, ctx: ToolContext) -> Output:
        out = ctx.workdir / "keyframes"
        out.mkdir(parents=True, exist_ok=True)
        shots = []
        names = ["k<img src=x onerror=\"window.__pwned='file'\">.png", "javascript:window.__pwned='jsfile'.png",
                 "k'\"><svg onload=\"window.__pwned='svgfile'\">.png"]
        for i, name in enumerate(names):
            path = out / name
            Image.new("RGB", (32, 18), (40 * i, 90, 200)).save(path, format="PNG")
            shots.append({"span": {"start": 2.0 * i, "end": 2.0 * i + 2}, "keyframe": str(path),
                          "text": list(self.PAYLOADS.values())[i]})
        shots.append({"span": {"start": 8.0, "end": 9.0}, "keyframe": "javascript:window.__pwned='jsimg'//x.png",
                      "text": "a javascript: image path"})
        data = {key: value for key, value in self.PAYLOADS.items()}  # payloads as values
        data.update({value: key for key, value in self.PAYLOADS.items()})  # and as keys
        data["nested"] = {v: [v, {"k": v}] for v in list(self.PAYLOADS.values())[:6]}
        return self.Output(data=data, shots=shots)

    def span_of(self, input: BaseModel, output: BaseModel) -> TimeSpan | None:
        return TimeSpan(start=0.0, end=9.0)


@pytest.fixture(scope="module")
def hostile(listener, tmp_path_factory) -> dict[str, Any]:
    """The hostile episode's trace and its viewer pages (embedded media, and media linked beside the file)."""
    found = payloads(listener)
    HostileTool.PAYLOADS = found
    root = tmp_path_factory.mktemp("hostile")
    video = root / "media" / "clip \"'><img src=x onerror=\"window.__pwned='video'\">.mp4"
    video.parent.mkdir()
    shutil.copyfile(SAMPLE, video)
    values = list(found.values())
    options = values[:4]
    plan = [PlanStep(think=found["svg onload"], call="hostile"),
            PlanStep(answer=found["script"] + " " + found["mathml mglyph mXSS"], option="B")]
    task = TaskSpec(name=found["img onerror"], video=video, question=found["end the data element"] + " how many?",
                    options=options, policy={"name": "scripted", "plan": [p.model_dump() for p in plan]})
    trace = root / "t<svg onload=alert(9)>'\".jsonl"
    agent = Agent(policy=ScriptedPolicy(plan), tools=ToolRegistry([HostileTool]), workdir=root / "work",
                  verifier=Verifier())
    with agent:
        for _ in agent.stream_task(task, trace_path=trace, thread_id="th<img src=x onerror=alert(8)>'\"&"):
            pass
    (root / "page").mkdir()
    pages = {"embedded": write_viewer(trace, root / "page" / "embedded.html"),
             "linked": write_viewer(trace, root / "page" / "linked.html", video_limit=1000, image_limit=10)}
    return {"trace": trace, "pages": pages, "payloads": found, "texts": values}


@pytest.fixture(scope="module")
def browser():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian chromium is not installed (apt-get install -y --no-install-recommends chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=ARGS)
        yield browser
        browser.close()


def _open_everything(browser, url: str) -> dict[str, Any]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen: dict[str, list] = {"console": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: seen["console"].append(f"pageerror: {e}"))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=10_000)
    for summary in page.locator("details > summary").all():
        summary.click(timeout=3000)
    page.eval_on_selector_all("details", "els => els.forEach(e => { e.open = true; })")
    for image in page.locator("details img").all():
        image.click(timeout=3000)
    for mark in page.locator("svg rect.mark, svg rect.part").all()[:20]:
        mark.click(force=True, timeout=3000)
    if page.locator("button.tab[data-tab=diff]").is_visible():
        page.click("button.tab[data-tab=diff]")
    page.wait_for_timeout(500)
    seen["page"] = page
    return seen


def _check_page(seen: dict[str, Any], hostile: dict[str, Any], allowed_request) -> None:
    page = seen["page"]
    assert seen["dialogs"] == []
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert [m for m in seen["console"] if m.startswith(("error", "pageerror", "warning"))] == []
    assert [u for u in seen["requests"] if not allowed_request(u)] == []
    # No element a payload could have made; the template's own are two scripts, one style, one icon link.
    assert page.locator("script").count() == 2 and page.locator("style").count() == 1
    assert page.locator("link").count() == 1 and page.locator("link[rel=icon][href='data:,']").count() == 1
    for selector in ("iframe", "object", "embed", "base", "math", "form", "a", "meta[http-equiv=refresh]",
                     "svg script", "svg a", "svg image", "svg foreignObject", "[onerror]", "[onload]", "[onclick]"):
        assert page.locator(selector).count() == 0, selector
    urls = page.evaluate("""attrs => [...document.querySelectorAll('*')].flatMap(el =>
        attrs.map(a => el.getAttribute(a)).filter(v => v !== null))""", list(URL_ATTRS))
    assert urls and all(u.startswith(("data:", "./", "file:", "blob:")) or u == "" for u in urls), urls
    assert not any(u.lower().lstrip().startswith(("javascript:", "http:", "https:")) for u in urls)
    text = page.inner_text("body")
    for value in hostile["texts"][:4]:
        assert value in page.inner_text("#facts")  # option texts, shown as text
    flat = text.replace("\u2028", "").replace("\u2029", "")
    # Verbatim (summaries, answers) or as the JSON of the output's detail view (quotes escaped there).
    shown = [v for v in hostile["texts"] if any(form.replace("\u2028", "").replace("\u2029", "") in flat
                                                for form in (v, json.dumps(v, ensure_ascii=False)[1:-1]))]
    assert shown == hostile["texts"], set(hostile["texts"]) - set(shown)


def test_csp_is_strict(hostile):
    html = hostile["pages"]["embedded"].read_text(encoding="utf-8")
    csp = html.split('http-equiv="Content-Security-Policy" content="', 1)[1].split('"', 1)[0]
    rules = dict(part.strip().split(" ", 1) for part in csp.split(";") if part.strip())
    assert rules["default-src"] == "'none'" and rules["base-uri"] == "'none'" and rules["form-action"] == "'none'"
    assert rules["script-src"].startswith("'sha256-") and "unsafe" not in rules["script-src"]
    assert "connect-src" not in rules and "frame-src" not in rules and "object-src" not in rules  # fall back to 'none'
    assert "http" not in csp and "*" not in csp


@pytest.mark.parametrize("variant", ["embedded", "linked"])
def test_hostile_trace_from_disk_runs_and_fetches_nothing(browser, hostile, listener, ledger, variant):
    _Recorder.hits.clear()
    seen = _open_everything(browser, hostile["pages"][variant].as_uri())
    try:
        _check_page(seen, hostile, lambda u: u.startswith(("file://", "data:")))
        assert _Recorder.hits == []
    finally:
        seen["page"].close()
    for name, value in hostile["payloads"].items():
        ledger.case("security", f"viewer ({variant}, from disk): {name}", outcome="shown as text; nothing ran or fetched",
                    message=value)
    for field in ("video file name", "image file names", "trace file name", "task name", "thread id", "question",
                  "option texts", "tool output keys", "tool output values", "javascript: image path", "thought", "answer"):
        ledger.case("security", f"viewer ({variant}): payloads in the {field}", outcome="shown as text or absent")


def test_hostile_trace_served_on_localhost_runs_and_fetches_nothing(browser, hostile, listener, ledger):
    from mcr.traces.serve import make_server

    server, url = make_server(hostile["pages"]["linked"], port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = url.split("/", 3)[:3]
    _Recorder.hits.clear()
    try:
        seen = _open_everything(browser, url)
        _check_page(seen, hostile, lambda u: u.startswith("/".join(origin) + "/") or u.startswith("data:"))
        assert _Recorder.hits == []
        seen["page"].close()
    finally:
        server.shutdown()
        server.server_close()
    ledger.case("security", "viewer served by mcr view --serve: every payload", outcome="nothing ran or fetched")


def test_the_csp_blocks_script_and_requests_that_get_into_the_page(browser, hostile, listener, ledger):
    """Defence in depth: markup injected into the live page (by DevTools, not the viewer) is still inert."""
    _Recorder.hits.clear()
    seen = _open_everything(browser, hostile["pages"]["embedded"].as_uri())
    page = seen["page"]
    page.evaluate("""origin => {
        document.body.insertAdjacentHTML('beforeend',
            `<img src=x onerror="window.__pwned='injected'"><img src="${origin}/injected.png">` +
            `<style>@import url(${origin}/injected.css);</style><iframe src="${origin}/frame"></iframe>`);
        const s = document.createElement('script'); s.textContent = "window.__pwned='inline'"; document.body.appendChild(s);
        const r = document.createElement('script'); r.src = origin + '/remote.js'; document.body.appendChild(r);
        try { fetch(origin + '/fetch').catch(() => {}); } catch (e) {}
    }""", listener)
    page.wait_for_timeout(800)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert _Recorder.hits == []
    blocked = [m for m in seen["console"] if "Content Security Policy" in m]
    assert blocked, seen["console"]  # the browser says why: the CSP refused them
    page.close()
    ledger.case("security", "viewer CSP: script and requests injected into the live page",
                outcome=f"blocked ({len(blocked)} CSP reports); nothing ran or fetched", message=blocked[0])
