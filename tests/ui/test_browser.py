"""A real browser (Debian's chromium, driven by Playwright) against the launched 2.6 demo."""

import io
from pathlib import Path

import pytest

from minicpmv_app.ui.gradio_26 import build_demo
from tests.ui.conftest import needs_chromium, served, wait_for  # the browser fixture is conftest's

ASSETS = Path(__file__).resolve().parents[2] / "assets"

pytestmark = [needs_chromium, pytest.mark.slow]


def test_upload_ask_watch_it_stream_and_stop(ui_chat, recorder, browser, tmp_path):
    recorder.force_length = True  # a long answer, so there is something to stop
    with served(build_demo(ui_chat)) as (url, _):
        page = browser.new_page()
        page.goto(url)
        page.locator("input[type=file]").first.set_input_files(str(ASSETS / "chart.png"))
        page.locator("textarea").first.fill("Which month had the highest sales?")
        page.locator("textarea").first.press("Enter")

        bot = page.locator('[data-testid="bot"]').last
        wait_for(lambda: page.locator('[data-testid="bot"]').count() and len(bot.inner_text()) > 0)
        first = len(bot.inner_text())
        grown = wait_for(lambda: len(bot.inner_text()) > first and len(bot.inner_text()))
        assert grown > first  # text arrives while the answer is generated

        page.locator("#stop-button").click()
        wait_for(lambda: recorder.calls and recorder.calls[-1].get("output") is not None, timeout=30)
        produced = recorder.calls[-1]["output"].shape[1] - recorder.calls[-1]["kwargs"]["input_ids"].shape[1]
        assert produced < 1024  # stopped well before the token budget
        assert page.locator('[data-testid="user"] img').count() >= 1  # the uploaded image shows in the chat
        page.screenshot(path=str(tmp_path / "gradio_26_stop.png"), full_page=True)
        assert (tmp_path / "gradio_26_stop.png").stat().st_size > 10_000


def test_page_follows_a_chinese_browser(ui_chat, browser, tmp_path):
    with served(build_demo(ui_chat)) as (url, _):
        page = browser.new_page(locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        page.goto(url)
        wait_for(lambda: "停止" in page.locator("#stop-button").inner_text(), timeout=30)
        page.get_by_text("生成参数").click()
        wait_for(lambda: page.get_by_text("束搜索").count() > 0, timeout=10)  # decode choices are translated too
        page.screenshot(path=str(tmp_path / "gradio_26_zh.png"))


def test_example_cards_show_their_pictures_and_the_videos_first_frame(ui_chat, browser):
    """Each example card shows what it sends: the pictures, and for the video a frame of it, not a blank box."""
    import av
    from PIL import Image, ImageChops, ImageStat

    with served(build_demo(ui_chat)) as (url, _):
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(url)
        video = page.locator("video").first  # the chat is empty: the only videos are the example cards'
        video.wait_for(state="attached", timeout=60_000)
        page.wait_for_function("() => { const v = document.querySelector('video');"
                               " return v && v.readyState >= 2 && v.videoWidth > 0; }", timeout=30_000)
        video.scroll_into_view_if_needed()
        card = Image.open(io.BytesIO(video.screenshot())).convert("RGB")
        # The frame is fitted into the card's square with the page's background around it.
        shown = card.crop(ImageChops.difference(card, Image.new("RGB", card.size, card.getpixel((0, 0)))).getbbox())
        with av.open(str(ASSETS / "clip.mp4")) as clip:
            first = next(clip.decode(video=0)).to_image().convert("RGB").resize(shown.size)
        difference = ImageStat.Stat(ImageChops.difference(shown, first)).mean
        assert max(difference) < 30, difference  # the card shows the clip's first frame (sky, sun and grass)
        assert max(ImageStat.Stat(shown).stddev) > 20  # not a blank box
        pictures = page.locator("img").evaluate_all("els => els.map(e => [e.complete, e.naturalWidth])")
        assert len(pictures) >= 4 and all(done and width > 0 for done, width in pictures)
