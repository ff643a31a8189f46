"""Make the README's grounding screenshot: the trained tiny, asked "Where is the shape?" in the 2.6 demo, in Chromium.

    python scripts/grounding_screenshot.py            # writes assets/grounding.png

Needs Debian's chromium and Playwright (both in requirements-dev.txt / the README's test setup). Offline.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=ROOT / "assets" / "grounding.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from minicpmv_app import MiniCPMVChat
    from minicpmv_app.tiny_task import draw_with_box
    from minicpmv_app.ui.gradio_26 import build_demo
    from tests.ui.conftest import served

    picture = Path(tempfile.mkdtemp()) / "shape.png"
    draw_with_box("green", "triangle", size=(320, 240), rng=random.Random(11))[0].save(picture)
    chat = MiniCPMVChat("tiny", device="cpu")
    with served(build_demo(chat, lang="en")) as (url, _), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(url)
        page.locator("#chat-input input[type=file]").set_input_files(str(picture))
        page.wait_for_selector("#chat-input img")
        page.locator("#chat-input textarea").fill("Where is the shape?")
        page.locator("#chat-input textarea").press("Enter")
        page.wait_for_selector('[data-testid="bot"] img', timeout=120_000)
        time.sleep(0.5)  # the picture's fade-in
        chatbot = page.locator('[data-testid="bot"] img').first.locator("xpath=ancestor::div[contains(@class,'bubble-wrap')]")
        target = chatbot if chatbot.count() else page.locator('[data-testid="bot"] img').first
        args.output.parent.mkdir(parents=True, exist_ok=True)
        target.first.screenshot(path=str(args.output))
        browser.close()
    print(args.output)


if __name__ == "__main__":
    main()
