"""What a person sees in Chromium while the real-size MiniCPM-V 4.6 encodes a photo on this CPU, and how fast Stop acts.

    PYTHONPATH=. python bench/encoding_progress.py            # about 5 minutes; builds the checkpoint once

The 2.6 demo is started as a user starts it (``web_demo_2.6.py --model FOLDER --device cpu``) on the checkpoint
``bench/real_size.py`` builds (the released 4.6 config, random weights), at the app's default settings. For each
picture, in one chat: attach it, press Enter, and time until the page says "Encoding picture"; once a few vision
layers are counted, press Stop and time until the bubble says "(stopped)". Times are the page's, polled every 50 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.real_size import build, cache_folder  # noqa: E402
from bench.reliability import free_port  # noqa: E402

PICTURES = [("1344x1344 picture", (1344, 1344)), ("4032x3024 photo (JPEG)", (4032, 3024))]
LAYERS_BEFORE_STOP = 3


def photo(folder: Path, size) -> Path:
    import numpy
    from PIL import Image

    path = folder / f"photo-{size[0]}x{size[1]}.jpg"
    noise = numpy.random.default_rng(7).integers(0, 256, (size[1], size[0], 3), dtype=numpy.uint8)
    Image.fromarray(noise).save(path, quality=90)
    return path


def until(condition, timeout: float, step: float = 0.05) -> float:
    """Seconds until ``condition()`` holds (polled every ``step``)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"gave up after {timeout:.0f} s")
        time.sleep(step)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    folder = build(args.folder or cache_folder())
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    app = subprocess.Popen([sys.executable, "web_demo_2.6.py", "--model", str(folder), "--device", "cpu",
                            "--port", str(port), "--lang", "en"], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    rows = []
    try:
        def served() -> bool:
            try:
                return urllib.request.urlopen(url, timeout=2).status == 200
            except OSError:
                return False

        until(served, 300, 0.2)
        from playwright.sync_api import sync_playwright

        from minicpmv_app.ui.i18n import text

        with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(url)
            box = page.locator("#chat-input textarea").first
            box.wait_for()
            body = lambda: page.inner_text("body")  # noqa: E731
            load_s = until(lambda: "Loading the model" not in body(), 600, 0.2)
            for label, size in PICTURES:
                picture = photo(Path(tmp), size)
                page.locator("input[type=file]").first.set_input_files([str(picture)])
                until(lambda: page.get_by_label("Remove file").count() >= 1, 60)
                bots = page.locator('[data-testid="bot"]').count()
                box.fill("What colour is the shape?")
                box.press("Enter")
                shown_s = until(lambda: text("encoding_picture_start", "en") in body(), 300)
                layers = f"{LAYERS_BEFORE_STOP} of "
                counted_s = until(lambda: layers in body(), 600, 0.1)
                page.locator("#stop-button").click()
                marker = text("stopped", "en")
                stop_s = until(lambda: page.locator('[data-testid="bot"]').count() > bots
                               and page.locator('[data-testid="bot"]').last.inner_text().strip().endswith(marker), 120)
                rows.append((label, shown_s, shown_s + counted_s, stop_s))
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=60)
    print(f"MiniCPM-V 4.6 at real size (random weights), fp32 on the CPU ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores), 2.6 demo at default settings; model loaded {load_s:.1f} s after the page")
    print(f"{'picture':26} {'Enter -> Encoding shown s':>26} {f'layer {LAYERS_BEFORE_STOP} counted s':>18} "
          f"{'Stop -> (stopped) s':>20}")
    for label, shown, counted, stop in rows:
        print(f"{label:26} {shown:26.2f} {counted:18.1f} {stop:20.2f}")


if __name__ == "__main__":
    main()
