"""A stopped answer keeps a visible "(stopped)" marker in Chromium, in English and in Chinese, and the marker is
never part of the next prompt (2.6 demo, the trained tiny made to write a long answer)."""

from __future__ import annotations

import pytest

from minicpmv_app.ui.gradio_26 import build_demo
from tests.ui.conftest import served
from tests.ui.conftest import needs_chromium, wait_for
from tests.ui.test_browser_thinking_grounding import answered, ask, bot_texts

pytestmark = [needs_chromium, pytest.mark.slow]
MARKERS = {"en": "(stopped)", "zh": "（已停止）"}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_stopped_answer_shows_the_marker_and_the_next_prompt_does_not_hold_it(chat, trained_recorder, browser,
                                                                                image_file, lang):
    trained_recorder.force_length = True  # a long answer, so there is something to stop
    defaults = {"decode_type": "Sampling", "max_new_tokens": 2000}
    with served(build_demo(chat, lang=lang, defaults=defaults)) as (url, _):
        page = browser.new_page()
        page.goto(url)
        ask(page, "What colour is the shape?", [image_file(name="red.png")])
        bot = page.locator('[data-testid="bot"]').last
        wait_for(lambda: page.locator('[data-testid="bot"]').count() and len(bot.inner_text()) > 5)
        page.locator("#stop-button").click()
        wait_for(lambda: bot_texts(page)[-1].endswith(MARKERS[lang]) and page.locator("#stop-button").is_disabled(),
                 timeout=30)
        trained_recorder.force_length = False
        ask(page, "What colour is the shape?")
        answered(page, 2)
        prompt = trained_recorder.last_prompt(chat.backend.processor)
        assert MARKERS["en"] not in prompt and MARKERS["zh"] not in prompt
