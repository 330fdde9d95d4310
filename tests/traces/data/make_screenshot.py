"""Make docs/viewer.png: a real episode on the sample video, opened in the viewer.

    .venv/bin/python tests/traces/data/make_screenshot.py [OUT.png]

The episode uses the real `segment` (shot detection + keyframes) and `transcribe`
(pocketsphinx) tools, plus the test suite's `outline` tool for a mask overlay,
driven by the test suite's list policy that reports token usage like a cached
model session. Needs Debian chromium and Python Playwright.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "traces"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conftest import SAMPLE, OutlineTool, UsagePolicy  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from mcr.agent import Agent  # noqa: E402
from mcr.policies.base import CallRequest, FinalAnswer, ToolCalls  # noqa: E402
from mcr.tools import builtin_registry  # noqa: E402
from mcr.tools.base import ToolRegistry  # noqa: E402
from mcr.traces.view import write_viewer  # noqa: E402


def record(workdir: Path) -> Path:
    builtins = builtin_registry()
    tools = ToolRegistry([builtins.get("segment"), builtins.get("transcribe"), OutlineTool])
    decisions = [
        ToolCalls(calls=(CallRequest(tool="segment", arguments={"mode": "temporal"}),),
                  thought="Split the video into shots first, to find the night scene."),
        ToolCalls(calls=(CallRequest(tool="transcribe", arguments={}),),
                  thought="Listen to the narration: the keeper may say the number."),
        ToolCalls(calls=(CallRequest(tool="outline", arguments={"span": {"start": 6.0, "end": 12.0}, "threshold": 100, "below": 0.7}),),
                  thought="Shot 2 (6-12 s) is the night sea; outline the boats on the sea."),
        FinalAnswer(text="seven", option="C", evidence=("e10", "e7"),
                    thought="The outline finds seven boats on the night sea: the keeper counts seven ships."),
    ]
    raws = ['<think>…</think><tool_call>{"name": "segment", "arguments": {"mode": "temporal"}}</tool_call>',
            '<tool_call>{"name": "transcribe", "arguments": {}}</tool_call>',
            '<tool_call>{"name": "outline", "arguments": {"span": {"start": 6.0, "end": 12.0}, "threshold": 100, "below": 0.7}}</tool_call>',
            "<answer option=C evidence=e10,e7>seven</answer>"]
    trace = workdir / "ships.jsonl"
    with Agent(policy=UsagePolicy(decisions, raws), tools=tools, workdir=workdir) as agent:
        for _ in agent.stream(SAMPLE, "How many ships does the keeper count at night?",
                              ["five", "six", "seven", "eight"], trace_path=trace, thread_id="ships-demo"):
            pass
    return trace


def wait_until(page, expression: str, timeout_s: float = 20.0) -> None:
    """Poll with evaluate(): wait_for_function would eval() in the page, which its CSP forbids."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the viewer never reached: {expression}")
        page.wait_for_timeout(50)


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        html = write_viewer(record(Path(tmp)), Path(tmp) / "ships.html")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
            page.goto(html.as_uri())
            page.wait_for_selector("body[data-ready=true]")
            wait_until(page, "video.readyState >= 2")
            page.click("details.entry[data-id=e10] > summary")  # the outline: seeks to 6 s, shows the overlay
            wait_until(page, "!video.seeking && video.readyState >= 3")
            page.wait_for_timeout(1500)  # let the player's seek spinner fade
            page.screenshot(path=str(out))
            browser.close()
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "viewer.png")
