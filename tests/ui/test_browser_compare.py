"""The Compare tab in Chromium: one message, two configurations, two answers side by side; one Stop for both; a
second model that does not fit is refused in the page (2.6 demo, trained tiny)."""

from __future__ import annotations

import random

import pytest

from minicpmv_app.compare import Contenders
from minicpmv_app.tiny_task import draw
from tests.ui.conftest import GenerateRecorder, served
from tests.ui.conftest import needs_chromium, wait_for

pytestmark = [needs_chromium, pytest.mark.slow]
GREEDY = {"decode_type": "Beam Search", "num_beams": 1, "max_new_tokens": 24}


@pytest.fixture
def blue_square(tmp_path):
    path = tmp_path / "blue.png"
    draw("blue", "square", size=(200, 160), rng=random.Random(7)).save(path)
    return path


def side_texts(page, side: str) -> list[str]:
    bots = page.locator(f'#compare-chat-{side} [data-testid="bot"]')
    return [t.strip() for t in bots.all_inner_texts()]


def compare(page, text: str, files=()):
    page.locator("#compare-tab-button, button[role=tab]:has-text('Compare')").first.click()
    if files:
        page.locator("#compare-input input[type=file]").set_input_files([str(f) for f in files])
        wait_for(lambda: page.locator("#compare-input img").count() >= len(files), timeout=30)
    page.locator("#compare-input textarea").fill(text)
    page.locator("#compare-input textarea").press("Enter")


def settled(page):
    wait_for(lambda: page.locator("#compare-stop").is_disabled() and side_texts(page, "a") and side_texts(page, "b"),
             timeout=120)


def test_two_settings_of_one_model_answer_side_by_side(chat, browser, blue_square, tmp_path):
    from minicpmv_app.ui.gradio_26 import build_demo

    with served(build_demo(chat, lang="en", defaults=GREEDY)) as (url, _):
        page = browser.new_page()
        page.goto(url)
        compare(page, "What colour is the shape?", [blue_square])
        settled(page)
        # A: thinking off, the answer alone. B (thinking on, as the tab starts it): a closed Thinking block first.
        assert side_texts(page, "a") == ["blue"]
        assert page.locator("#compare-chat-a .thought-group").count() == 0
        assert page.locator("#compare-chat-b .thought-group").count() == 1
        assert side_texts(page, "b")[-1] == "blue"
        page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)


def test_one_stop_ends_both_answers(chat, browser, blue_square):
    from minicpmv_app.ui.gradio_26 import build_demo

    recorder = GenerateRecorder(chat.backend.model)
    recorder.force_length = True  # long answers, so there is something to stop
    try:
        with served(build_demo(chat, lang="en", defaults={**GREEDY, "max_new_tokens": 2000})) as (url, _):
            page = browser.new_page()
            page.goto(url)
            compare(page, "What colour is the shape?", [blue_square])
            wait_for(lambda: page.locator("#compare-stop").is_enabled() and recorder.calls, timeout=60)
            page.locator("#compare-stop").click()
            settled(page)
            # Each side ran at most once and ended far short of its 2000 tokens (the tiny writes ~4 characters each).
            assert 1 <= len(recorder.calls) <= 2
            for side in ("a", "b"):
                assert len(" ".join(side_texts(page, side))) < 2000
    finally:
        recorder.restore()


def test_a_second_model_that_does_not_fit_is_refused_in_the_page(chat, browser, blue_square):
    from minicpmv_app.ui.gradio_26 import build_demo

    contenders = Contenders(chat, {"model_path": "tiny-random", "device": "cpu"}, free_memory=lambda device: 1000)
    with served(build_demo(chat, lang="en", defaults=GREEDY, contenders=contenders)) as (url, _):
        page = browser.new_page()
        page.goto(url)
        page.locator("button[role=tab]:has-text('Compare')").first.click()
        page.locator("#compare-model-b input").click()
        page.locator('[role="option"]').nth(1).click()
        compare(page, "What colour is the shape?", [blue_square])
        wait_for(lambda: page.get_by_text("was not loaded").count() >= 1, timeout=30)
        assert side_texts(page, "a") == [] and side_texts(page, "b") == []  # neither side took the message
