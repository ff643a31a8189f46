"""What a person sees in Chromium with the trained tiny: the Thinking block (both Gradio demos), boxes drawn on the
picture (checked in the pixels of the rendered image), Locate, and Zoom into a new image turn."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from minicpmv_app.grounding import iou, parse
from minicpmv_app.tiny_task import draw_with_box
from tests.ui.conftest import served
from tests.ui.conftest import needs_chromium, wait_for

pytestmark = [needs_chromium, pytest.mark.slow]
BOX_COLOUR = (230, 25, 75)  # grounding.PALETTE[0]: the first region's outline
# Greedy decoding: the tiny's answers, and so the assertions, do not depend on sampling luck.
GREEDY = {"decode_type": "Beam Search", "num_beams": 1, "max_new_tokens": 32}
TITLES = ("Thinking", "Raw answer (with grounding tags)")  # collapsed blocks, not answers


@pytest.fixture
def blue_square(tmp_path):
    image, box = draw_with_box("blue", "square", size=(200, 160), rng=random.Random(7))
    path = tmp_path / "blue-square.png"
    image.save(path)
    return path, box


def bot_texts(page) -> list[str]:
    bots = page.locator('[data-testid="bot"]')
    return [t.strip() for t in bots.all_inner_texts()]  # one read: a message may go meanwhile


def answered(page, count: int):
    """Waits until there are ``count`` answers (bot messages with text, Thinking titles aside)."""
    return wait_for(lambda: len([t for t in bot_texts(page) if t and t.split("\n")[0] not in TITLES]) >= count
                    and page.locator("#stop-button").is_disabled(), timeout=90)


def ask(page, text: str, files=()):
    if files:
        page.locator("#chat-input input[type=file]").set_input_files([str(f) for f in files])
        wait_for(lambda: page.locator("#chat-input img").count() >= len(files), timeout=30)
    page.locator("#chat-input textarea").fill(text)
    page.locator("#chat-input textarea").press("Enter")


def test_thinking_on_shows_a_closed_block_and_off_shows_none_2_6(chat, trained_recorder, browser, blue_square,
                                                                 tmp_path):
    from minicpmv_app.ui.gradio_26 import build_demo

    with served(build_demo(chat, lang="en", defaults=GREEDY)) as (url, _):
        page = browser.new_page()
        page.goto(url)
        page.locator("#setting-enable-thinking input").check()
        ask(page, "What colour is the shape?", [blue_square[0]])
        answered(page, 1)
        thought = page.locator(".thought-group")
        assert thought.count() == 1 and "Thinking" in thought.inner_text()
        assert page.get_by_text("I see a blue").count() == 0  # closed: the reasoning is not on the page
        assert bot_texts(page)[-1] == "blue"
        page.screenshot(path=str(tmp_path / "thinking_closed.png"), full_page=True)

        thought.locator(".title").click()  # open it: the reasoning is there
        wait_for(lambda: page.get_by_text("I see a blue square.").count() == 1, timeout=10)

        page.locator("#setting-enable-thinking input").uncheck()
        again = tmp_path / "same-square.png"  # a browser sends no change event for the same file twice
        again.write_bytes(blue_square[0].read_bytes())
        ask(page, "What colour is the shape?", [again])
        answered(page, 2)
        assert page.locator(".thought-group").count() == 1  # no block for the answer given without thinking
        assert bot_texts(page)[-1] == "blue"
        prompt = trained_recorder.last_prompt(chat.backend.processor)
        assert "I see a" not in prompt  # the earlier reasoning is not sent back
        assert prompt.endswith("<think>\n\n</think>\n\n")  # thinking off: the template closes an empty block


def test_thinking_block_in_the_2_5_demo(chat, browser, blue_square):
    from minicpmv_app.ui.gradio_25 import build_demo

    with served(build_demo(chat, lang="en", defaults=GREEDY)) as (url, _):
        page = browser.new_page()
        page.goto(url)
        page.locator("#setting-enable-thinking input").check()
        page.locator("input[type=file]").first.set_input_files(str(blue_square[0]))
        wait_for(lambda: page.locator("img").count() > 0, timeout=30)
        page.locator("#chat-input textarea").fill("What colour is the shape?")
        page.locator("#chat-input textarea").press("Enter")
        answered(page, 1)
        assert page.locator(".thought-group").count() == 1
        assert page.get_by_text("I see a blue").count() == 0
        assert bot_texts(page)[-1] == "blue"


def figure_pixels(page, index: int) -> Image.Image:
    """The n-th drawn picture in the chat, as the browser shows it (an element screenshot)."""
    figure = page.locator('[data-testid="bot"] img').nth(index)
    figure.scroll_into_view_if_needed()
    return Image.open(io.BytesIO(figure.screenshot())).convert("RGB")


def outline_box(picture: Image.Image):
    """Where the box colour is, as fractions of the picture: (left, top, right, bottom), or None."""
    width, height = picture.size
    pixels = picture.load()
    hits = [(x, y) for y in range(height) for x in range(width)
            if sum(abs(a - b) for a, b in zip(pixels[x, y], BOX_COLOUR)) < 60]
    if len(hits) < 20:
        return None
    xs, ys = [h[0] for h in hits], [h[1] for h in hits]
    return min(xs) / width, min(ys) / height, max(xs) / width, max(ys) / height


def test_boxes_drawn_locate_and_zoom_in_the_2_6_demo(chat, trained_recorder, browser, blue_square, tmp_path):
    from minicpmv_app.ui.gradio_26 import build_demo

    path, true_box = blue_square
    with served(build_demo(chat, lang="en", defaults=GREEDY)) as (url, _):
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.goto(url)
        ask(page, "Where is the shape?", [path])
        answered(page, 1)
        assert "blue square" in bot_texts(page)[0] and "<box>" not in bot_texts(page)[0]  # names, not tags
        drawn = outline_box(figure_pixels(page, 0))
        assert drawn is not None, "no box colour in the rendered picture"
        # The raw answer (its block opened) gives the box the model wrote; the pixels show it there. (Whether the
        # tiny's box sits on the shape is its own accuracy: README, "--model tiny".)
        page.get_by_text("Raw answer (with grounding tags)").click()
        (written,) = parse(wait_for(lambda: page.locator('[data-testid="bot"] code').first.inner_text(), timeout=10))
        assert iou(drawn, written.bounds) >= 0.8, (drawn, written.bounds)
        assert iou(written.bounds, true_box) > 0  # on the picture, overlapping the shape
        page.screenshot(path=str(tmp_path / "grounded.png"), full_page=True)

        # Locate in a new conversation, on a picture waiting in the message box (the tiny grounds in one turn only).
        page.locator("#clear-button").click()
        wait_for(lambda: page.locator('[data-testid="bot"]').count() == 0, timeout=10)
        again = tmp_path / "same-square.png"  # a browser sends no change event for the same file twice
        again.write_bytes(path.read_bytes())
        page.locator("#chat-input input[type=file]").set_input_files(str(again))
        wait_for(lambda: page.locator("#chat-input img").count() == 1, timeout=30)
        page.locator("#locate-input textarea").fill("shape")
        page.locator("#locate-button").click()
        answered(page, 1)
        assert "blue square" in bot_texts(page)[0]
        assert page.locator('[data-testid="bot"] img').count() == 1 and outline_box(figure_pixels(page, 0)) is not None
        asked = page.locator('[data-testid="user"]').last.inner_text()
        assert "Locate: shape" in asked and "<ref>" not in asked  # as the person asked, not the prompt sent
        assert "<ref>shape</ref>" in trained_recorder.last_prompt(chat.backend.processor)  # what the model got

        page.locator("#zoom-button").click()  # the first box of the latest answer
        wait_for(lambda: page.locator("#chat-input img").count() == 1, timeout=30)
        page.locator("#chat-input textarea").fill("What colour is the shape?")
        page.locator("#chat-input textarea").press("Enter")
        answered(page, 2)
        assert bot_texts(page)[-1] == "blue"
        # The crop went as a new picture turn: a user image smaller than the original, mostly the shape.
        crop = page.locator('[data-testid="user"] img').last
        assert crop.count() == 1


def test_a_refused_locate_and_zoom_say_why_in_the_page(chat, browser):
    from minicpmv_app.ui.gradio_26 import build_demo

    with served(build_demo(chat, lang="zh", defaults=GREEDY)) as (url, _):
        page = browser.new_page()
        page.goto(url)
        page.locator("#locate-input textarea").fill("shape")
        page.locator("#locate-button").click()
        wait_for(lambda: page.get_by_text("请先上传图片").count() > 0, timeout=30)
        page.locator("#zoom-button").click()
        wait_for(lambda: page.get_by_text("还没有可以放大的框").count() > 0, timeout=30)
