"""`streamlit run web_demo_streamlit.py -- --model tiny` as users start it, checked in a real browser."""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.ui.conftest import free_port
from tests.ui.conftest import ARGS, CHROMIUM, needs_chromium, wait_for
from tests.processes import listening

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [needs_chromium, pytest.mark.slow]


@pytest.fixture
def streamlit_app(cache_dir, tiny_folder):
    port = free_port()
    env = dict(os.environ, MINICPMV_APP_CACHE=str(cache_dir), HF_HUB_OFFLINE="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "web_demo_streamlit.py", "--server.port", str(port),
         "--", "--model", "tiny", "--device", "cpu"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
            break
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                raise AssertionError(process.stdout.read() if process.poll() is not None else "no start")
            time.sleep(0.5)
    yield process, port
    process.terminate()
    process.wait(timeout=30)


def test_listens_on_loopback_by_default(streamlit_app):
    process, port = streamlit_app
    assert listening(process.pid, port) == {"127.0.0.1"}


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (apt-get install chromium)")
def test_browser_sends_a_question_and_sees_the_answer(streamlit_app, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    _, port = streamlit_app
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        box = page.locator('[data-testid="stChatInputTextArea"]')
        box.wait_for(timeout=90_000)
        box.fill("Hello from the browser")
        box.press("Enter")
        messages = page.locator('[data-testid="stChatMessage"]')
        wait_for(lambda: messages.count() >= 2, timeout=90)
        assert "Hello from the browser" in messages.nth(0).inner_text()
        answer = messages.nth(1).locator('[data-testid="stMarkdownContainer"]')
        wait_for(lambda: answer.count() and answer.first.inner_text().strip(), timeout=90)  # a one-word answer counts
        time.sleep(2)  # let the stream finish before the screenshot
        page.screenshot(path=str(tmp_path / "streamlit.png"), full_page=True)
        browser.close()
