"""MiniCPM-OCR's block prompts in the 2.6 demo, in Chromium: a Table Recognition answer is shown as a real table,
and whatever else the model wrote into its HTML (a script, an event handler, an image that fetches) never runs.

The model is scripted (a tiny OCR checkpoint answers noise); it offers MiniCPM-OCR's card prompts and records what
it was sent, so the test also sees that the picture and the exact prompt reached it."""

from __future__ import annotations

import threading

import pytest

from minicpmv_app import MiniCPMVChat
from minicpmv_app.backends.base import Backend
from minicpmv_app.backends.cards import MINICPM_OCR
from minicpmv_app.ui.gradio_26 import build_demo
from tests.ui.conftest import free_port, served
from tests.ui.conftest import needs_chromium, wait_for
from tests.ui.test_browser_thinking_grounding import answered

pytestmark = [needs_chromium, pytest.mark.slow]


class ScriptedOCR(Backend):
    name = "scripted-ocr"
    prompts = MINICPM_OCR.prompts

    def __init__(self, answer: str):
        self.answer, self.asked = answer, []

    def generate(self, conversation, settings, *, stop=None):
        self.asked.append(conversation)
        yield self.answer


@pytest.fixture
def trap():
    """A loopback server that counts requests: anything the model's HTML fetches would land here."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", hits
    server.shutdown()


def test_a_table_answer_shows_as_a_table_and_its_scripts_never_run(browser, trap, image_file):
    base, hits = trap
    answer = (f'<table onmouseover="fetch(\'{base}/mouse\')" style="background:url({base}/style)">'
              '<tr><th>Item</th><th colspan="2">Price</th></tr>'
              f'<tr><td>Tea<img src="{base}/img" onerror="alert(1)"></td><td>3</td><td>USD</td></tr></table>'
              f'<script>alert("script"); fetch("{base}/script")</script>')
    backend = ScriptedOCR(answer)
    with served(build_demo(MiniCPMVChat(backend=backend), lang="en")) as (url, _):
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        page.locator("#chat-input input[type=file]").set_input_files(str(image_file(name="receipt.png")))
        wait_for(lambda: page.locator("#chat-input img").count() >= 1, timeout=30)
        page.locator("#ocr-choice input").click()
        page.get_by_role("option", name="Table Recognition:").click()
        page.locator("#ocr-button").click()
        answered(page, 1)
        table = page.locator('[data-testid="bot"] table')
        wait_for(lambda: table.count() == 1, timeout=30)
        cells = table.locator("th, td").all_inner_texts()
        assert [c.strip() for c in cells] == ["Item", "Price", "Tea", "3", "USD"]
        assert table.locator("th").nth(1).get_attribute("colspan") == "2"  # table structure is kept
        table.hover()
        page.wait_for_timeout(1000)
        assert dialogs == [] and hits == []  # nothing ran, nothing was fetched
        assert page.locator('[data-testid="bot"] script, [data-testid="bot"] img').count() == 0
        # The model got the picture and the card's exact prompt.
        sent = backend.asked[-1].messages[-1]
        assert sent.text == "Table Recognition:" and len(sent.images) == 1
        assert page.get_by_text("Table Recognition:").count() >= 1  # the person sees what the model was sent


def test_a_latex_formula_answer_is_typeset(browser, image_file):
    backend = ScriptedOCR("The area is \\(\\pi r^2\\) and \\[E = mc^2\\] costs $5.")
    with served(build_demo(MiniCPMVChat(backend=backend), lang="en")) as (url, _):
        page = browser.new_page()
        page.goto(url)
        page.locator("#chat-input input[type=file]").set_input_files(str(image_file(name="formula.png")))
        wait_for(lambda: page.locator("#chat-input img").count() >= 1, timeout=30)
        page.locator("#chat-input textarea").fill("Read the formula.")
        page.locator("#chat-input textarea").press("Enter")
        answered(page, 1)
        bot = page.locator('[data-testid="bot"]').last
        wait_for(lambda: bot.locator(".katex").count() == 2, timeout=30)  # both formulas typeset by KaTeX
        assert "costs $5." in bot.inner_text()  # a price stays text
