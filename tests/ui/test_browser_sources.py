"""Picture sources besides upload, in Chromium: a photo from the camera (Chromium's fake camera) and a picture
pasted into the message box both reach the model (2.6 demo, trained tiny)."""

from __future__ import annotations

import base64
import io
import random

import pytest

from minicpmv_app.tiny_task import draw
from tests.ui.conftest import served
from tests.ui.conftest import CHROMIUM, needs_chromium, wait_for
from tests.ui.test_browser_thinking_grounding import answered, bot_texts

pytestmark = [needs_chromium, pytest.mark.slow]
GREEDY = {"decode_type": "Beam Search", "num_beams": 1, "max_new_tokens": 12}


@pytest.fixture
def camera_browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
        yield instance
        instance.close()


def thumbnails(page) -> int:
    return page.locator('#chat-input [aria-label="File thumbnail"]').count()


def send(page, text: str):
    page.locator("#chat-input textarea").fill(text)
    page.locator("#chat-input textarea").press("Enter")


def test_a_camera_photo_joins_the_message_and_reaches_the_model(chat, trained_recorder, camera_browser):
    from minicpmv_app.ui.gradio_26 import build_demo

    with served(build_demo(chat, lang="en", defaults=GREEDY)) as (url, _):
        page = camera_browser.new_context(permissions=["camera"]).new_page()
        page.goto(url)
        page.locator("#camera-panel button").first.click()
        page.get_by_text("Click to Access Webcam").click()
        # Capture once the camera delivers frames (a click before that takes no photo).
        page.wait_for_function("() => { const v = document.querySelector('#camera video');"
                               " return v && v.readyState >= 2 && v.videoWidth > 0; }", timeout=30_000)
        page.locator('#camera button[aria-label="capture photo"]').click()
        wait_for(lambda: thumbnails(page) == 1, timeout=30)
        send(page, "What colour is the shape?")
        answered(page, 1)
        assert trained_recorder.images_in_last_prompt(chat.backend.processor) == 1
        assert page.locator('[data-testid="user"] img').count() == 1  # the photo is shown in the chat


def test_a_pasted_picture_joins_the_message_and_the_model_sees_it(chat, trained_recorder, camera_browser):
    from minicpmv_app.ui.gradio_26 import build_demo

    buffer = io.BytesIO()
    draw("red", "circle", size=(160, 120), rng=random.Random(2)).save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    with served(build_demo(chat, lang="en", defaults=GREEDY)) as (url, _):
        page = camera_browser.new_page()
        page.goto(url)
        # What the browser does on Ctrl+V with a picture on the clipboard: a paste event carrying the file.
        page.locator("#chat-input textarea").evaluate("""(box, data) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "pasted.png", {type: "image/png"}));
            box.dispatchEvent(new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true, cancelable: true}));
        }""", data)
        wait_for(lambda: thumbnails(page) == 1, timeout=30)
        send(page, "What colour is the shape?")
        answered(page, 1)
        assert bot_texts(page) == ["red"]
        assert trained_recorder.images_in_last_prompt(chat.backend.processor) == 1
