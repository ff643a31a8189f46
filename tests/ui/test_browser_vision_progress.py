"""While a photo is encoded, Chromium shows "Encoding picture… k of n" with the time left, and Stop stops the vision
pass before the answer's first token (2.6 demo, the trained tiny; its vision pass is held at a layer by the test, as
a real-size model on a CPU spends minutes there)."""

from __future__ import annotations

import threading

import pytest
from PIL import Image

from minicpmv_app.ui.gradio_26 import build_demo
from minicpmv_app.ui.i18n import text
from tests.ui.conftest import served
from tests.ui.conftest import needs_chromium, wait_for
from tests.ui.test_browser_refusals import answered, bot_count, open_page, send, shows

pytestmark = [needs_chromium, pytest.mark.slow]
MARKERS = {"en": "(stopped)", "zh": "（已停止）"}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_page_counts_the_vision_layers_and_stop_ends_the_pass(chat, browser, tmp_path, lang, monkeypatch):
    from minicpmv_app.session import ChatSession

    layers = chat.backend.vision_layers
    stopped = threading.Event()  # the server has taken the Stop (the layer is let go only then)
    original_stop = ChatSession.stop
    monkeypatch.setattr(ChatSession, "stop", lambda self: (original_stop(self), stopped.set())[0])
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (1920, 1440), (30, 60, 220)).save(photo, quality=85)
    reached, release = threading.Event(), threading.Event()

    def hold(module, args):  # the second layer waits until the test lets it go
        reached.set()
        release.wait(timeout=60)

    handle = layers[1].register_forward_pre_hook(hold)
    try:
        with served(build_demo(chat, lang=lang, defaults={"decode_type": "Sampling"})) as (url, _):
            page = open_page(browser, url, lang)
            send(page, "What colour is the shape?", [photo])
            wait_for(reached.is_set, timeout=60)
            words = text("encoding_picture_left", lang, done=1, total=len(layers), seconds=0).rsplit("0", 1)[0]
            wait_for(lambda: shows(page, words), timeout=30)  # "Encoding picture… 1 of n, about" and a time
            page.locator("#stop-button").click()
            wait_for(stopped.is_set, timeout=30)
            release.set()
            wait_for(lambda: bot_count(page) and page.locator('[data-testid="bot"]').last.inner_text().strip()
                     .endswith(MARKERS[lang]), timeout=60)
            shown = page.locator('[data-testid="bot"]').last.inner_text().strip()
            assert shown == MARKERS[lang]  # no word of an answer: the pass ended before the first token
            handle.remove()
            send(page, "What colour is the shape?")
            wait_for(lambda: answered(page, 1), timeout=120)
            # The model is whole: the next question is answered.
            last = page.locator('[data-testid="bot"]').last.inner_text().strip()
            assert last and not last.endswith(MARKERS[lang])
    finally:
        release.set()
        handle.remove()
