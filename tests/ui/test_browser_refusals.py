"""What a person sees in Chromium when the app refuses a click or has something to say, in English and Chinese,
and that the next question still works. The text asserted is the text on the page, not an API return value."""

from __future__ import annotations

import threading

import pytest

from minicpmv_app.ui import gradio_25, gradio_26
from minicpmv_app.ui.i18n import text
from tests.ui.conftest import served
from tests.ui.conftest import needs_chromium, wait_for

pytestmark = [needs_chromium, pytest.mark.slow]
SHORT = {"max_new_tokens": 8}
LANGUAGES = {"en": {}, "zh": {"locale": "zh-CN", "extra_http_headers": {"Accept-Language": "zh-CN,zh;q=0.9"}}}


def message(key: str, lang: str) -> str:
    """The refusal as the page words it: the exception's own English text, or its translation."""
    return text(f"error.{key}", lang) if lang != "en" else ENGLISH[key]


ENGLISH = {
    "one_video": "Send one video at a time.",
    "message_empty": "The message is empty: type a question or add an image.",
    "conversation_is_video": "This conversation is about a video: press Clear to start a new one with images.",
    "nothing_to_regenerate": "There is no answer to regenerate yet.",
    "busy_answering": "An answer is still being written: wait for it, or press Stop.",
    "busy_pending": "The last question is waiting for its answer.",
}


def open_page(browser, url, lang):
    page = browser.new_page(**LANGUAGES[lang])
    page.goto(url)
    page.locator("#chat-input textarea").first.wait_for()
    return page


def send(page, words: str, files=()):
    if files:
        page.locator("input[type=file]").first.set_input_files([str(f) for f in files])
        wait_for(lambda: page.get_by_label("Remove file").count() >= len(files), timeout=30)
    page.locator("#chat-input textarea").first.fill(words)
    page.locator("#chat-input textarea").first.press("Enter")


def bot_count(page) -> int:
    return page.locator('[data-testid="bot"]').count()


def answered(page, before: int) -> bool:
    """A new answer bubble with text appeared, and the input is free again."""
    bots = page.locator('[data-testid="bot"]')
    return bots.count() > before and bool(bots.last.inner_text().strip()) and page.locator("#chat-input textarea").first.is_editable()


def answers(page) -> list[str]:
    """The bot messages that are answers: not a Thinking or raw-answer block, not a drawn picture, not the notice
    that some boxes could not be placed (random weights may write grounding tags)."""
    bots = page.locator('[data-testid="bot"]')
    texts = [t.strip() for t in bots.all_inner_texts()]
    titles = ("Thinking", "Raw answer (with grounding tags)")
    unplaced = text("grounding_unplaced", "en", count=0).split("0", 1)[1]
    return [t for t in texts if t and t.split("\n")[0] not in titles and not t.endswith(unplaced)]


def shows(page, words: str) -> bool:
    return words in page.inner_text("body")


def next_question_works(page):
    """The person takes the refused attachments out (if any) and asks again: an answer comes."""
    while page.get_by_label("Remove file").count():
        page.get_by_label("Remove file").first.click()
    before = bot_count(page)
    send(page, "And now?")
    wait_for(lambda: answered(page, before), timeout=300)  # a hang guard: under load an answer took over 60 s


@pytest.fixture(scope="module")
def app26(ui_chat):
    with served(gradio_26.build_demo(ui_chat, defaults=SHORT)) as (url, _):
        yield url


@pytest.fixture(scope="module")
def app25(ui_chat):
    with served(gradio_25.build_demo(ui_chat, defaults=SHORT)) as (url, _):
        yield url


@pytest.mark.parametrize("lang", LANGUAGES)
def test_two_videos_are_refused_in_the_page(app26, browser, clip, lang, tmp_path):
    page = open_page(browser, app26, lang)
    send(page, "x", [clip(name="a.mp4"), clip(name="b.mp4")])
    wait_for(lambda: shows(page, message("one_video", lang)), timeout=30)
    assert bot_count(page) == 0 and page.locator("#chat-input textarea").first.input_value() == "x"  # nothing recorded
    page.screenshot(path=str(tmp_path / f"two_videos_{lang}.png"))
    next_question_works(page)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_an_empty_message_is_refused_in_the_page(app26, browser, lang):
    page = open_page(browser, app26, lang)
    send(page, "")
    wait_for(lambda: shows(page, message("message_empty", lang)), timeout=30)
    # The toast's title too reads in the page's language (Gradio writes "Error"; a Chinese page shows "错误").
    title = page.locator(".toast-title").first
    shown = title.evaluate("el => [getComputedStyle(el, '::before').content, getComputedStyle(el).fontSize]")
    if lang == "en":
        assert title.inner_text().strip() == "Error" and shown[0] in ("none", "normal")
    else:
        assert shown == [f'"{text("toast_error", lang)}"', "0px"]
    next_question_works(page)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_an_image_into_a_video_chat_is_refused_in_the_page(app26, browser, clip, image_file, lang):
    page = open_page(browser, app26, lang)
    send(page, "What happens?", [clip()])
    wait_for(lambda: answered(page, 0), timeout=60)
    send(page, "And this picture?", [image_file()])
    wait_for(lambda: shows(page, message("conversation_is_video", lang)), timeout=30)
    assert len(answers(page)) == 1  # the refused question added no answer (grounding notices are not answers)
    next_question_works(page)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_nothing_to_regenerate_is_said_in_the_page(app26, browser, lang):
    page = open_page(browser, app26, lang)
    page.locator("#regenerate-button").click()
    wait_for(lambda: shows(page, message("nothing_to_regenerate", lang)), timeout=30)
    next_question_works(page)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_new_image_in_2_5_says_a_new_conversation_started(app25, browser, image_file, lang):
    page = open_page(browser, app25, lang)
    page.locator("input[type=file]").first.set_input_files(str(image_file((255, 0, 0), name="first.png")))
    send(page, "What is it?")
    wait_for(lambda: answered(page, 0), timeout=60)
    page.locator("input[type=file]").first.set_input_files(str(image_file((0, 0, 255), name="second.png")))
    wait_for(lambda: shows(page, text("new_image_new_chat", lang)), timeout=30)
    wait_for(lambda: bot_count(page) == 0, timeout=10)  # the old conversation is gone, and the page said why
    next_question_works(page)


def test_2_5_labels_are_words_not_objects(app25, app26, browser):
    for url in (app25, app26):
        for lang in LANGUAGES:
            page = open_page(browser, url, lang)
            page.wait_for_timeout(500)
            assert "[object Object]" not in page.inner_text("body")
    page = open_page(browser, app25, "en")
    assert "drop" not in (page.locator("#chat-input textarea").first.get_attribute("placeholder") or "").lower()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_number_typed_outside_a_sliders_range_is_said_and_the_shown_value_is_used(app26, browser, recorder, lang):
    """Gradio clamps a typed 9 to the slider's end when the box loses focus; the page says so under the slider, in
    its language, and the answer is generated with the value the page shows."""
    page = open_page(browser, app26, lang)
    page.get_by_text(text("settings", lang)).click()
    box = page.locator("#setting-temperature input[type=number]")

    note = page.locator("#setting-temperature .range-note")

    def typed_and_clamped() -> bool:
        # Typed again when the box is not clamped after Tab, or not still clamped a second later: a page still
        # starting puts the box back to its default (in 1 of 8 loaded runs after it was clamped), and so may a
        # slow page that had not clamped it yet.
        box.fill("9")
        box.press("Tab")
        if box.input_value() != "5":
            return False
        page.wait_for_timeout(1000)
        return box.input_value() == "5"

    wait_for(typed_and_clamped, timeout=60)
    wait_for(lambda: note.count() and note.inner_text() == text("range_note", lang, low=0, high=5, value=5), timeout=10)
    shown = float(box.input_value())
    send(page, "What now?")
    wait_for(lambda: answered(page, 0), timeout=300)
    assert recorder.calls[-1]["kwargs"]["temperature"] == shown == 5
    box.fill("1")  # a value inside the range takes the note away
    box.press("Tab")
    wait_for(lambda: note.count() == 0, timeout=10)


def test_one_stop_button_enabled_only_while_answering(ui_chat, recorder, browser):
    recorder.force_length = True
    with served(gradio_26.build_demo(ui_chat, defaults={"max_new_tokens": 2000})) as (url, _):
        page = open_page(browser, url, "en")
        stop = page.locator("button:visible", has_text="Stop")
        assert stop.count() == 1 and stop.is_disabled()
        send(page, "Talk for a long time.")
        wait_for(lambda: stop.is_enabled(), timeout=30)
        wait_for(lambda: bot_count(page) and page.locator('[data-testid="bot"]').last.inner_text().strip(), timeout=60)
        stop.click()
        wait_for(lambda: stop.is_disabled(), timeout=30)
        assert page.locator("#chat-input textarea").first.is_editable()


def test_double_regenerate_keeps_one_answer_coming(ui_chat, recorder, browser, clip):
    """Regenerate twice in a row on a video turn: the second press is refused, the first one's answer arrives."""
    with served(gradio_26.build_demo(ui_chat, defaults={"max_new_tokens": 300})) as (url, _):
        page = open_page(browser, url, "en")
        send(page, "What happens?", [clip(seconds=8, fps=5)])
        wait_for(lambda: answered(page, 0), timeout=60)
        calls = len(recorder.calls)
        recorder.hold = threading.Event()  # the first regeneration answers only once the second press is refused
        try:
            page.locator("#regenerate-button").click()
            wait_for(lambda: len(recorder.calls) > calls or shows(page, message("busy_pending", "en")), timeout=30)
            page.locator("#regenerate-button").click()
            wait_for(lambda: shows(page, message("busy_answering", "en")) or shows(page, message("busy_pending", "en")),
                     timeout=30)
        finally:
            recorder.hold.set()
            recorder.hold = None
        wait_for(lambda: answered(page, 0) and len(recorder.calls) == calls + 1
                 and recorder.calls[-1].get("output") is not None, timeout=120)
        # One answer (random weights may write grounding tags: their raw-answer block and drawn picture are not
        # answers of their own).
        assert len(answers(page)) == 1 and answers(page)[0]
        assert len(recorder.calls) == calls + 1  # one regenerated answer, not two, not none


def test_stop_during_video_decoding_stops_before_the_model(ui_chat, recorder, browser, clip, monkeypatch):
    """Stop pressed while frames decode: decoding ends at the next frame, the model is never called, the page
    says (stopped), and the next question works. Decoding is slowed (a pause per decoded frame, the real decoder
    underneath) so the click lands mid-way on any machine."""
    import time as clock

    from minicpmv_app.media import kinds as kinds_module  # where a video file is decoded

    decoded_after_stop = []
    stop_clicked = []

    def slow_load_video(path, progress=None, **kwargs):
        def paced(done, total):
            clock.sleep(0.2)
            if stop_clicked:
                decoded_after_stop.append(done)
            progress(done, total)

        return real_load_video(path, progress=paced, **kwargs)

    real_load_video = kinds_module.load_video
    monkeypatch.setattr(kinds_module, "load_video", slow_load_video)
    with served(gradio_26.build_demo(ui_chat, defaults=SHORT)) as (url, _):
        page = open_page(browser, url, "en")
        send(page, "What happens?", [clip(seconds=30, fps=2)])
        wait_for(lambda: shows(page, text("decoding_video", "en")), timeout=30)
        calls = len(recorder.calls)
        page.locator("#stop-button").click()
        stop_clicked.append(clock.monotonic())
        # The page says the video never reached the model (and how to send it), not just "(stopped)".
        wait_for(lambda: shows(page, text("stopped_unsent", "en")), timeout=30)
        print(f"stop during decoding: marked unsent {clock.monotonic() - stop_clicked[0]:.2f} s after the click")
        assert len(recorder.calls) == calls  # the model never ran
        assert len(decoded_after_stop) <= 2  # at most the frame in hand when Stop arrived (plus the Stop's own trip)
        next_question_works(page)
        assert "pixel_values_videos" not in recorder.calls[-1]["kwargs"]  # the next prompt holds no un-sent video
