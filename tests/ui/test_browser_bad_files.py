"""One bad file costs only its own turn, in Chromium (2.6 demo, the trained tiny): a 0-byte picture, a truncated
JPEG, a text file renamed .png and an upload deleted from the server's folder, in one chat between good turns.
Every export (HTML, JSON, Markdown) is made, names what it left out, and a reload shows every good turn."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from tests.ui.conftest import free_port
from tests.ui.conftest import needs_chromium, wait_for
from tests.ui.test_browser_chats import app_on, open_panel, own_key, picture  # noqa: F401  (fixture)
from tests.ui.test_browser_thinking_grounding import ask, bot_texts

pytestmark = [needs_chromium, pytest.mark.slow]
QUESTION = "What colour is the shape?"


def settled(page, count: int):
    """``count`` bot messages and the answer finished (failed turns have a message too)."""
    wait_for(lambda: len([t for t in bot_texts(page) if t]) >= count and page.locator("#stop-button").is_disabled(),
             timeout=300)  # a hang guard, not a speed check: under load one turn took over 90 s


def export(page, kind: str, suffix: str, tmp_path) -> Path:
    """Press an export button and download what it made (waiting for this kind's file, not the previous one)."""
    open_panel(page, "export-panel")
    page.locator(f"#export-{kind}").click()
    link = page.locator("#exported-file a").first
    wait_for(lambda: link.count() and (link.get_attribute("href") or "").endswith(suffix), timeout=30)
    with page.expect_download() as download:
        link.click()
    target = tmp_path / download.value.suggested_filename
    download.value.save_as(target)
    return target


def bad_files(tmp_path) -> dict:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    whole = io.BytesIO()
    from minicpmv_app.tiny_task import draw

    draw("yellow", "circle", size=(400, 300)).save(whole, format="JPEG", quality=95)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 3])
    text = tmp_path / "notes.png"
    text.write_text("these are my notes, not a picture\n" * 20)
    return {"empty": empty, "truncated": truncated, "text": text}


def test_bad_files_cost_only_their_turns_exports_and_memory_keep_the_rest(chat, browser, tmp_path):
    bad = bad_files(tmp_path)
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    with app_on(chat, free_port()) as url:
        page.goto(url)
        ask(page, QUESTION, [picture(tmp_path, "green")])
        settled(page, 1)
        # The green picture's upload disappears from the server's folder (a cleaned temp dir).
        deleted = list(Path(os.environ["GRADIO_TEMP_DIR"]).rglob("green-square.png"))
        assert deleted
        for found in deleted:
            found.unlink()
        for number, name in enumerate(("empty", "truncated", "text"), 2):
            ask(page, QUESTION, [bad[name]])
            settled(page, number)
        ask(page, QUESTION)  # a follow-up: the conversation's picture is still the green square
        settled(page, 5)
        texts = bot_texts(page)
        assert texts[0] == "green" and texts[-1] == "green"
        assert "empty (0 bytes)" in texts[1]  # each bad file: its own message, in its own turn
        assert all(t.startswith("⚠️") for t in texts[1:4])

        exported = {suffix: export(page, kind, "." + suffix, tmp_path)
                    for kind, suffix in (("html", "html"), ("json", "json"), ("markdown", "md"))}
        assert all(path.stat().st_size > 0 for path in exported.values())
        record = json.loads(exported["json"].read_text())
        assert [t["answer"] for t in record["turns"] if t["state"] == "answered"] == ["green", "green"]
        left_out = [name for t in record["turns"] for name in t["left_out"]]
        assert {"empty.png", "notes.png"} <= set(left_out)
        assert len(record["turns"][0]["images"]) == 1  # the deleted upload: the picture the model saw
        assert "Not included" in exported["md"].read_text() and "Not included" in exported["html"].read_text()
        open_panel(page, "chats-panel")
        assert "Error" not in page.locator("#chats-panel").inner_text()  # no bare red badges
        # the memory line says what it could not keep
        wait_for(lambda: "empty.png" in page.locator("#memory-status").inner_text(), timeout=10)

        page.reload()  # the chat comes back whole: good turns, and each bad file's message
        wait_for(lambda: len(bot_texts(page)) >= 5, timeout=30)
        assert bot_texts(page) == texts
        ask(page, QUESTION)  # and goes on with its picture
        settled(page, 6)
        assert bot_texts(page)[-1] == "green"
    context.close()
