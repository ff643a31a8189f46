"""PDFs in Chromium with the trained tiny: pages reach the model in order, a page range picks pages, bad PDFs are
refused in the page, and the document prompts fill the message box."""

from __future__ import annotations

import random

import pytest

from minicpmv_app.tiny_task import draw
from tests.media_factory import write_pdf
from tests.ui.conftest import served
from tests.ui.conftest import needs_chromium, wait_for
from tests.ui.test_browser_thinking_grounding import answered, bot_texts

pytestmark = [needs_chromium, pytest.mark.slow]
# Greedy, and one slice per page: the tiny was trained on small unsliced pictures (a real model takes the card's
# slice budget; the page is then drawn with that many pixels, tests/media/test_documents.py).
GREEDY = {"decode_type": "Beam Search", "num_beams": 1, "max_new_tokens": 16, "max_slice_nums": 1}


@pytest.fixture
def pdfs(tmp_path):
    rng = random.Random(3)
    two = write_pdf(tmp_path / "two-pages.pdf", [draw("red", "square", rng=rng), draw("blue", "circle", rng=rng)])
    three = write_pdf(tmp_path / "three-pages.pdf", [draw("red", "square", rng=rng), draw("green", "circle", rng=rng),
                                                     draw("blue", "triangle", rng=rng)])
    locked = write_pdf(tmp_path / "locked.pdf", [draw("red", "square", rng=rng)], password="secret")
    return two, three, locked


def attach(page, path):
    page.locator("#chat-input input[type=file]").set_input_files(str(path))
    wait_for(lambda: page.locator('#chat-input [aria-label="File thumbnail"]').count() >= 1, timeout=30)


def send(page, text: str):
    page.locator("#chat-input textarea").fill(text)
    page.locator("#chat-input textarea").press("Enter")


def test_a_two_page_pdf_reaches_the_model_as_two_images_in_order(chat, trained_recorder, browser, pdfs, tmp_path):
    from minicpmv_app.ui.gradio_26 import build_demo

    with served(build_demo(chat, lang="en", defaults=GREEDY)) as (url, _):
        page = browser.new_page()
        page.goto(url)
        attach(page, pdfs[0])
        wait_for(lambda: "two-pages.pdf" in page.locator("#attached-files").inner_text(), timeout=10)  # named
        send(page, "What colour is the second image?")
        answered(page, 1)
        assert bot_texts(page)[-1] == "blue"
        assert trained_recorder.images_in_last_prompt(chat.backend.processor) == 2
        assert page.get_by_text("two-pages.pdf: all pages").count() == 1
        page.screenshot(path=str(tmp_path / "pdf_two_pages.png"), full_page=True)


def test_a_page_range_sends_only_those_pages(chat, trained_recorder, browser, pdfs):
    from minicpmv_app.ui.gradio_26 import build_demo

    with served(build_demo(chat, lang="en", defaults=GREEDY)) as (url, _):
        page = browser.new_page()
        page.goto(url)
        page.locator("#pdf-pages textarea, #pdf-pages input").first.fill("2-2")
        attach(page, pdfs[1])
        send(page, "What colour is the shape?")
        answered(page, 1)
        assert bot_texts(page)[-1] == "green"
        assert trained_recorder.images_in_last_prompt(chat.backend.processor) == 1
        assert page.get_by_text("three-pages.pdf: pages 2-2").count() == 1


@pytest.mark.parametrize("lang, message", [("en", "password-protected"), ("zh", "受密码保护")])
def test_an_encrypted_pdf_is_refused_in_the_page_and_the_app_keeps_serving(chat, browser, pdfs, lang, message):
    from minicpmv_app.ui.gradio_26 import build_demo

    with served(build_demo(chat, lang=lang, defaults=GREEDY)) as (url, _):
        page = browser.new_page()
        page.goto(url)
        attach(page, pdfs[2])
        send(page, "What colour is the shape?")
        wait_for(lambda: page.get_by_text(message).count() >= 1, timeout=30)
        assert bot_texts(page) == []  # nothing was added to the chat
        import gradio as gr
        from pathlib import Path

        assert not list(Path(gr.utils.get_upload_folder()).rglob("locked.pdf"))  # and the refused file is gone
        other = browser.new_page()  # another person is served meanwhile
        other.goto(url)
        attach(other, pdfs[0])
        send(other, "What colour is the first image?")
        answered(other, 1)
        assert bot_texts(other)[-1] == "red"


def test_document_prompts_fill_the_box_and_keep_the_attached_pdf(chat, browser, pdfs):
    from minicpmv_app.ui.gradio_26 import build_demo

    with served(build_demo(chat, lang="en", defaults=GREEDY)) as (url, _):
        page = browser.new_page()
        page.goto(url)
        attach(page, pdfs[0])
        page.locator("#preset-table").click()
        wait_for(lambda: "Markdown table" in page.locator("#chat-input textarea").input_value())
        assert page.locator('#chat-input [aria-label="File thumbnail"]').count() == 1
        page.locator("#chat-input textarea").fill("Convert the table to a Markdown table, first page only.")
        assert "first page only" in page.locator("#chat-input textarea").input_value()  # the prompt is editable


def toast_texts(page) -> str:
    return " ".join(page.locator(".toast-body, [data-testid='toast-body']").all_inner_texts())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_protected_then_empty_then_garbage_pdfs_each_get_their_own_message_and_leave_the_box(chat, browser, pdfs,
                                                                                           tmp_path, lang):
    """One after another in the same page; PDFium's stale errors once gave the second the first's reason. A
    refused file leaves the message box: Enter again sends no stale file, and no message names a server path."""
    from pypdf import PdfWriter

    from minicpmv_app.ui.gradio_26 import build_demo
    from minicpmv_app.ui.i18n import text

    empty = tmp_path / "zero-pages.pdf"
    PdfWriter().write(str(empty))
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"this is not a PDF at all\n" * 20)
    with served(build_demo(chat, lang=lang, defaults=GREEDY)) as (url, _):
        page = browser.new_page()
        page.goto(url)
        for path, key in ((pdfs[2], "pdf_encrypted"), (empty, "pdf_no_pages"), (garbage, "pdf_unreadable")):
            message = text(f"error.{key}", lang)[:12]
            attach(page, path)
            send(page, "What colour is the shape?")
            wait_for(lambda: message in toast_texts(page), timeout=30)
            # the refused file left the message box
            wait_for(lambda: page.locator('#chat-input [aria-label="File thumbnail"]').count() == 0, timeout=10)
            for close in page.locator(".toast-close, [data-testid='toast-close']").all():
                close.click()
        import gradio as gr

        folder = str(gr.utils.get_upload_folder())
        send(page, "What colour is the shape?")  # Enter again: a text-only question, no stale file
        try:
            answered(page, 1)
        except AssertionError:  # say what the page showed instead
            page.screenshot(path=str(tmp_path / f"no_answer_{lang}.png"), full_page=True)
            raise AssertionError(f"no answer; the page shows toasts {toast_texts(page)!r}, message box "
                                 f"{page.locator('#chat-input textarea').input_value()!r}, "
                                 f"editable {page.locator('#chat-input textarea').is_editable()}, "
                                 f"bubbles {bot_texts(page)!r}; screenshot {tmp_path}") from None
        said = toast_texts(page) + " ".join(bot_texts(page))
        assert folder not in said and "/tmp" not in said  # no message names a server path


def test_a_page_change_mid_conversation_in_2_5_is_refused_not_ignored(chat, browser, pdfs):
    from minicpmv_app.ui.gradio_25 import build_demo

    with served(build_demo(chat, lang="en", defaults=GREEDY)) as (url, _):
        page = browser.new_page()
        page.goto(url)
        page.locator("#pdf-input input[type=file]").set_input_files(str(pdfs[0]))
        page.locator("#pdf-pages textarea, #pdf-pages input").first.fill("2")
        page.locator("#chat-input textarea").fill("What colour is the shape?")
        page.locator("#chat-input textarea").press("Enter")
        answered(page, 1)
        assert bot_texts(page)[-1] == "blue"
        for pages, reason in (("1", "press Clear"), ("7", "outside this PDF")):
            page.locator("#pdf-pages textarea, #pdf-pages input").first.fill(pages)
            page.locator("#chat-input textarea").fill("What colour is the shape?")
            page.locator("#chat-input textarea").press("Enter")
            wait_for(lambda: reason in toast_texts(page), timeout=30)
            assert len(bot_texts(page)) == 1  # not answered about the old page
