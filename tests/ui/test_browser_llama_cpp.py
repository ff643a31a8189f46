"""The page in front of a real llama.cpp server (issue 27): the app starts llama-server with GGUF files that
llama.cpp's own converter made from the tiny, and in Chromium a picture question streams, Stop stops it, and a
video reaches the server as frames."""

from __future__ import annotations

import pytest

from minicpmv_app import MiniCPMVChat
from minicpmv_app.tiny_task import COLOURS, draw
from minicpmv_app.ui.gradio_26 import build_demo
from tests.llama_cpp import SERVER, convert, llama_cpp_layout, needs_llama_server
from tests.media_factory import write_clip
from tests.ui.conftest import served
from tests.ui.conftest import needs_chromium, wait_for
from tests.ui.test_browser_thinking_grounding import answered, ask, bot_texts

pytestmark = [needs_chromium, needs_llama_server, pytest.mark.slow]


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory, tiny_folder):
    """The trained tiny and the random one (which never stops by itself: something to watch stream and Stop)."""
    from minicpmv_app.tiny import TRAINED_TINY

    made = []
    for name, checkpoint in (("trained", TRAINED_TINY), ("random", tiny_folder)):
        folder = tmp_path_factory.mktemp(name)
        made.append(convert(llama_cpp_layout(checkpoint, folder), folder)[0])
    return made


def test_a_picture_streams_and_stop_stops_it_on_llama_server(ggufs, browser, tmp_path):
    # llama-server's own --ignore-eos: random weights would otherwise end by chance within a few words
    chat = MiniCPMVChat(str(ggufs[1]), llama_server=str(SERVER), llama_server_args=["--ignore-eos"])
    try:
        with served(build_demo(chat, lang="en", defaults={"decode_type": "Sampling", "max_new_tokens": 3000})) as (url, _):
            page = browser.new_page()
            page.goto(url)
            picture = tmp_path / "red.png"
            draw("red", "square", size=(200, 150)).save(picture)
            ask(page, "What colour is the shape?", [picture])
            bot = page.locator('[data-testid="bot"]').last
            wait_for(lambda: page.locator('[data-testid="bot"]').count() and len(bot.inner_text()) > 3)
            first = len(bot.inner_text())
            wait_for(lambda: len(bot.inner_text()) > first + 3)  # it grows: the answer streams
            page.locator("#stop-button").click()
            wait_for(lambda: bot_texts(page)[-1].endswith("(stopped)") and page.locator("#stop-button").is_disabled(),
                     timeout=60)
            stopped = len(bot_texts(page)[-1])
            page.wait_for_timeout(1500)
            assert len(bot_texts(page)[-1]) == stopped  # nothing more arrives
            assert chat.backend.last_usage is None or chat.backend.last_usage.completion_tokens < 3000
    finally:
        chat.backend.close()


def test_a_picture_and_a_video_are_answered_by_the_converted_tiny(ggufs, browser, tmp_path):
    chat = MiniCPMVChat(str(ggufs[0]), llama_server=str(SERVER))
    try:
        greedy = {"decode_type": "Beam Search", "num_beams": 1, "max_new_tokens": 8}
        with served(build_demo(chat, lang="en", defaults=greedy)) as (url, _):
            page = browser.new_page()
            page.goto(url)
            picture = tmp_path / "blue.png"
            draw("blue", "circle", size=(200, 150)).save(picture)
            ask(page, "What colour is the shape?", [picture])
            answered(page, 1)
            assert bot_texts(page)[-1] == "blue"
            page.locator("#clear-button").click()
            wait_for(lambda: page.locator('[data-testid="bot"]').count() == 0, timeout=10)
            video = write_clip(tmp_path / "green.mp4", seconds=3.0, fps=10, size=(96, 72), colour=COLOURS["green"])
            page.locator("#chat-input input[type=file]").set_input_files(str(video))
            wait_for(lambda: page.get_by_label("Remove file").count() == 1, timeout=30)
            ask(page, "What colour is the video?")
            answered(page, 1)
            assert bot_texts(page)[-1] == "green"  # its frames reached the server as pictures
    finally:
        chat.backend.close()
