"""English and Simplified Chinese: complete tables, forced and browser-following Gradio, Streamlit's selector."""

import io
import re
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image
from streamlit.testing.v1 import AppTest

from minicpmv_app.errors import MediaError
from minicpmv_app.media.images import load_image
from minicpmv_app.ui import gradio_25, gradio_26
from minicpmv_app.ui.i18n import TABLES, language_of, localized
from tests.ui.conftest import served

ROOT = Path(__file__).resolve().parents[2]


def placeholders(value: str) -> set:
    return set(re.findall(r"{(\w+)}", value))


def test_both_tables_have_the_same_keys_and_placeholders():
    assert set(TABLES["en"]) == set(TABLES["zh"])
    for key in TABLES["en"]:
        assert placeholders(TABLES["en"][key]) == placeholders(TABLES["zh"][key]), key
        assert TABLES["zh"][key], key


def test_accept_language_is_read():
    assert language_of("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert language_of("en-GB,en;q=0.9") == "en"
    assert language_of("fr-FR") == "en"
    assert language_of(None) == "en"


def test_python_api_keeps_english_while_the_ui_translates(tmp_path):
    text_file = tmp_path / "notes.jpg"
    text_file.write_text("not an image at all, just text")
    with pytest.raises(MediaError) as info:
        load_image(text_file)
    assert "not an image" in str(info.value)
    assert "不是可读取的图片" in localized(info.value, "zh")


def labels_in(config) -> str:
    return " ".join(str(c.get("props", {}).get("label", "")) + " " + str(c.get("props", {}).get("value", ""))
                    for c in config["components"])


def error_bubble(client, tmp_path) -> str:
    fake = tmp_path / "photo.png"
    fake.write_text("not a picture")
    client.predict({"text": "?", "files": [handle_file(str(fake))]}, api_name="/add_turn")
    final = client.submit("Sampling", 0.7, 0.8, 100, 1.05, 3, 4, "", api_name="/respond").result()
    return "".join(p.get("text", "") for p in final[-1]["content"])


@pytest.mark.parametrize("module", [gradio_26, gradio_25])
def test_forced_chinese_labels(ui_chat, module):
    with served(module.build_demo(ui_chat, lang="zh")) as (url, client):
        text = labels_in(client().config)
        assert "停止" in text and "生成参数" in text and "Stop" not in text


def test_forced_chinese_error_in_the_chat(ui_chat, tmp_path):
    with served(gradio_26.build_demo(ui_chat, lang="zh")) as (url, client):
        assert "不是可读取的图片" in error_bubble(client(), tmp_path)


def test_by_default_the_browser_language_decides(ui_chat, tmp_path):
    with served(gradio_26.build_demo(ui_chat)) as (url, client):
        english = Client(url, verbose=False)
        assert "i18n" in str(english.config) or "__i18n__" in labels_in(english.config)  # labels are translation keys
        assert "not an image" in error_bubble(english, tmp_path)
        chinese = Client(url, verbose=False, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        assert "不是可读取的图片" in error_bubble(chinese, tmp_path)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (255, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_streamlit_language_selector_and_lang_option(tiny_folder, monkeypatch):
    monkeypatch.setenv("MINICPMV_MODEL", str(tiny_folder))
    monkeypatch.setenv("MINICPMV_DEVICE", "cpu")
    at = AppTest.from_file(str(ROOT / "web_demo_streamlit.py"), default_timeout=120)
    at.run()
    assert at.sidebar.radio[0].label == "Mode"
    at.sidebar.selectbox[0].set_value("zh").run()
    assert at.sidebar.radio[0].label == "模式"
    at.sidebar.radio[0].set_value("mode_single_image").run()
    at.chat_input[0].upload("photo.png", b"plain text, not a png", "image/png").set_value("这是什么？").run()
    assert at.error and "不是可读取的图片" in at.error[0].value

    monkeypatch.setenv("MINICPMV_LANG", "zh")  # what --lang zh does
    forced = AppTest.from_file(str(ROOT / "web_demo_streamlit.py"), default_timeout=120)
    forced.run()
    assert forced.sidebar.radio[0].label == "模式" and forced.title[0].value.startswith("MiniCPM-V：")
