"""Past chats kept in the browser, export and import, in Chromium with the trained tiny (the 2.6 demo).

A chat survives a reload and a server restart (the store is the browser's; the server keeps nothing); Clear
removes it; an exported HTML page opens offline with its pictures; an exported JSON imports into a fresh browser
and the next answer sees its picture; a bad file is refused in the page."""

from __future__ import annotations

import json
import random
from contextlib import contextmanager
from pathlib import Path

import pytest

from minicpmv_app.tiny_task import draw
from tests.ui.conftest import free_port
from tests.ui.conftest import needs_chromium, wait_for
from tests.ui.test_browser_thinking_grounding import answered, ask, bot_texts

pytestmark = [needs_chromium, pytest.mark.slow]
GREEDY = {"decode_type": "Beam Search", "num_beams": 1, "max_new_tokens": 12}


@pytest.fixture(autouse=True)
def own_key(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICPMV_HOME", str(tmp_path / "home"))  # the browser-state key of this test only
    monkeypatch.delenv("MINICPMV_BROWSER_SECRET", raising=False)


@contextmanager
def app_on(chat, port: int, lang: str = "en"):
    from minicpmv_app.ui.gradio_26 import build_demo
    from minicpmv_app.ui.gradio_common import NO_LOCALHOST_PROBE

    demo = build_demo(chat, lang=lang, defaults=GREEDY)
    demo.queue()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **NO_LOCALHOST_PROBE)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def picture(tmp_path, colour: str, shape: str = "square") -> Path:
    path = tmp_path / f"{colour}-{shape}.png"
    draw(colour, shape, size=(160, 120), rng=random.Random(11)).save(path)
    return path


def open_panel(page, elem_id: str):
    panel = page.locator(f"#{elem_id}")
    if not panel.locator("button").nth(1).is_visible():
        panel.locator("button").first.click()


def user_texts(page) -> list[str]:
    users = page.locator('[data-testid="user"]')
    return [t.strip() for t in users.all_inner_texts() if t.strip()]


def test_a_chat_survives_a_reload_and_a_server_restart_and_clear_removes_it(chat, browser, tmp_path):
    port = free_port()
    context = browser.new_context()
    page = context.new_page()
    with app_on(chat, port) as url:
        page.goto(url)
        ask(page, "What colour is the shape?", [picture(tmp_path, "green")])
        answered(page, 1)
        assert bot_texts(page) == ["green"]
        open_panel(page, "chats-panel")
        wait_for(lambda: "Memory: 0.0" in page.locator("#memory-status").inner_text()
                 and "0.00 of" not in page.locator("#memory-status").inner_text())
        page.reload()
        wait_for(lambda: bot_texts(page) == ["green"], timeout=30)
        assert user_texts(page) == ["What colour is the shape?"]
        assert page.locator('[data-testid="user"] img').count() == 1  # with its picture
    with app_on(chat, port) as url:  # a new server process state: nothing of the chat was kept there
        page.goto(url)
        wait_for(lambda: bot_texts(page) == ["green"], timeout=30)
        ask(page, "What colour is the shape?")  # and it continues: the picture is still the conversation's
        answered(page, 2)
        assert bot_texts(page) == ["green", "green"]
        page.locator("#clear-button").click()
        wait_for(lambda: bot_texts(page) == [])
        open_panel(page, "chats-panel")
        wait_for(lambda: "0.00 of" in page.locator("#memory-status").inner_text())
        page.reload()
        page.wait_for_selector("#chat-input")
        page.wait_for_timeout(1500)
        assert bot_texts(page) == []
    context.close()


def test_past_chats_open_rename_and_delete(chat, browser, tmp_path):
    with app_on(chat, free_port()) as url:
        page = browser.new_context().new_page()
        page.goto(url)
        ask(page, "What colour is the shape?", [picture(tmp_path, "red")])
        answered(page, 1)
        open_panel(page, "chats-panel")
        page.locator("#new-chat").click()
        wait_for(lambda: bot_texts(page) == [])
        ask(page, "What colour is the shape?", [picture(tmp_path, "blue")])
        answered(page, 1)
        wait_for(lambda: page.locator("#memory-status").inner_text().count("of") == 1)
        page.locator("#past-chats input").click()
        options = page.locator('[role="option"]')
        wait_for(lambda: options.count() == 2)
        options.nth(1).click()  # the older chat (newest first)
        page.locator("#open-chat").click()
        wait_for(lambda: bot_texts(page) == ["red"])
        page.locator("#chat-name textarea, #chat-name input").first.fill("Red square")
        page.locator("#rename-chat").click()
        wait_for(lambda: "Red square" in page.locator("#past-chats input").input_value())
        page.locator("#delete-chat").click()
        wait_for(lambda: bot_texts(page) == [])
        page.locator("#past-chats input").click()
        wait_for(lambda: options.count() == 1)
        assert "Red square" not in options.first.inner_text()


def import_file(page, path: Path):
    with page.expect_file_chooser() as chooser:
        page.locator("#import-json").click()
    chooser.value.set_files(str(path))


def export(page, kind: str, tmp_path) -> Path:
    open_panel(page, "export-panel")
    page.locator(f"#export-{kind}").click()
    link = page.locator("#exported-file a").first
    link.wait_for(timeout=30_000)
    with page.expect_download() as download:
        link.click()
    target = tmp_path / download.value.suggested_filename
    download.value.save_as(target)
    assert target.name.startswith("minicpmv-chat-")
    return target


def test_export_html_opens_offline_and_json_imports_and_continues(chat, browser, tmp_path):
    with app_on(chat, free_port()) as url:
        page = browser.new_context().new_page()
        page.goto(url)
        ask(page, "What colour is the shape?", [picture(tmp_path, "blue", "circle")])
        answered(page, 1)
        html_file = export(page, "html", tmp_path)
        json_file = export(page, "json", tmp_path)

        offline = browser.new_context(offline=True).new_page()
        offline.goto(html_file.resolve().as_uri())
        assert "What colour is the shape?" in offline.content() and "blue" in offline.locator(".bot").inner_text()
        images = offline.locator("img")
        assert images.count() == 1
        assert images.first.evaluate("img => img.complete && img.naturalWidth") == 160  # drawn from the page itself
        offline.screenshot(path=str(tmp_path / "exported.png"), full_page=True)

        record = json.loads(json_file.read_text())
        assert record["run_card"]["model"] == "tiny" and record["run_card"]["settings"]["decode_type"] == "Beam Search"

        fresh = browser.new_context().new_page()  # another browser: nothing in its memory
        fresh.goto(url)
        open_panel(fresh, "export-panel")
        import_file(fresh, json_file)
        wait_for(lambda: bot_texts(fresh) == ["blue"], timeout=30)
        ask(fresh, "What colour is the shape?")  # no new picture: the imported one is the conversation's
        answered(fresh, 2)
        assert bot_texts(fresh)[-1] == "blue"


@pytest.mark.parametrize("lang, message", [("en", "not a conversation exported"), ("zh", "不是本应用导出的")])
def test_a_bad_import_file_is_refused_in_the_page(chat, browser, tmp_path, lang, message):
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": "world"}')
    with app_on(chat, free_port(), lang) as url:
        page = browser.new_context().new_page()
        page.goto(url)
        open_panel(page, "export-panel")
        import_file(page, bad)
        wait_for(lambda: page.get_by_text(message).count() >= 1, timeout=30)
        assert bot_texts(page) == []
