"""Make docs/viewer.png from a real `make demo` trace.

    make demo
    .venv/bin/python docs/make_screenshot.py runs/demo/traces/<thread>.jsonl [docs/viewer.png]

Writes the trace's viewer page, opens it in headless Debian chromium (Python
Playwright, no network) and saves a 1440x1000 screenshot of the first view.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from mcr.traces.view import write_viewer


def main(trace: str, out: str = "docs/viewer.png") -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("needs Debian chromium: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as tmp:
        page_path = write_viewer(trace, Path(tmp) / "viewer.html")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(page_path.as_uri())
            page.wait_for_timeout(1500)  # let the video element load its first frame
            page.evaluate("document.querySelector('video').currentTime = 8.0")
            page.wait_for_timeout(800)
            page.screenshot(path=out)
            browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
