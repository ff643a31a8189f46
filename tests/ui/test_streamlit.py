"""web_demo_streamlit.py driven headless with Streamlit's AppTest (tiny model, same process)."""

import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import GenerateRecorder

SCRIPT = str(Path(__file__).resolve().parents[2] / "web_demo_streamlit.py")


def png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def app(tiny_folder, monkeypatch):
    monkeypatch.setenv("MINICPMV_MODEL", str(tiny_folder))
    monkeypatch.setenv("MINICPMV_DEVICE", "cpu")
    at = AppTest.from_file(SCRIPT, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def recorder(app, tiny_folder):
    from minicpmv_app.ui.streamlit_app import load_model, model_options, parse_args

    chat = load_model(model_options(parse_args()))  # the process-wide cached model, same options as the app's run
    rec = GenerateRecorder(chat.backend.model)
    rec.processor = chat.backend.processor
    yield rec
    rec.restore()


def send(at, text, files=()):
    box = at.chat_input[0]
    for name, data, mime in files:
        box.upload(name, data, mime)
    box.set_value(text).run()
    assert not at.exception, at.exception
    return at


def roles(at):
    return [m.name for m in at.chat_message]


def test_text_mode_answers_and_history_grows(app, recorder):
    send(app, "Hello there")
    assert roles(app) == ["user", "assistant"]
    assert app.chat_message[1].markdown and app.chat_message[1].markdown[0].value
    send(app, "And again")
    assert roles(app) == ["user", "assistant", "user", "assistant"]
    prompt = recorder.last_prompt(recorder.processor)
    assert "Hello there" in prompt and "And again" in prompt  # earlier turns go back to the model


def test_single_image_then_follow_up_keeps_the_image(app, recorder):
    app.sidebar.radio[0].set_value("mode_single_image").run()
    send(app, "What colour?", [("red.png", png((255, 0, 0)), "image/png")])
    assert recorder.images_in_last_prompt(recorder.processor) == 1
    send(app, "Are you sure?")
    assert recorder.images_in_last_prompt(recorder.processor) == 1  # the image from turn one is still sent
    assert [type(c).__name__ for c in app.chat_message[0].children.values()] == ["Image", "Markdown"]


def test_multiple_images(app, recorder):
    app.sidebar.radio[0].set_value("mode_multi_image").run()
    send(app, "Compare", [("a.png", png((255, 0, 0)), "image/png"), ("b.png", png((0, 0, 255)), "image/png")])
    assert recorder.images_in_last_prompt(recorder.processor) == 2
    assert roles(app) == ["user", "assistant"]


def test_video(app, recorder, clip):
    app.sidebar.radio[0].set_value("mode_video").run()
    send(app, "What happens?", [("clip.mp4", clip(seconds=3, fps=5).read_bytes(), "video/mp4")])
    assert "pixel_values_videos" in recorder.calls[-1]["kwargs"]
    assert not app.error


def test_bad_upload_shows_an_error_and_the_app_keeps_working(app, recorder):
    app.sidebar.radio[0].set_value("mode_single_image").run()
    send(app, "What is this?", [("photo.png", b"definitely not a png", "image/png")])
    assert app.error and "not an image" in app.error[0].value
    calls = len(recorder.calls)
    send(app, "Hello?")
    assert len(recorder.calls) == calls + 1
    assert "What is this?" not in recorder.last_prompt(recorder.processor)


def test_clear_empties_the_chat_and_the_upload_folder(app, recorder):
    app.sidebar.radio[0].set_value("mode_single_image").run()
    send(app, "What colour?", [("red.png", png((255, 0, 0)), "image/png")])
    folder = app.session_state["uploads"].path
    assert any(folder.iterdir())
    app.sidebar.button[0].click().run()
    assert roles(app) == []
    assert not any(folder.iterdir())
    send(app, "Fresh")
    assert "What colour?" not in recorder.last_prompt(recorder.processor)


def test_uploads_are_stored_under_names_we_choose(app):
    app.sidebar.radio[0].set_value("mode_single_image").run()
    send(app, "x", [("../../etc/evil.png", png((0, 255, 0)), "image/png")])
    folder = app.session_state["uploads"].path
    names = [p.name for p in folder.iterdir()]
    assert names == ["upload-0001.png"]


def test_the_sidebar_is_the_settings_schema(app):
    from minicpmv_app import settings as schema
    from minicpmv_app.ui.i18n import text

    labels = [s.label for s in app.sidebar.slider]
    expected = [text(s.label, "en") for s in schema.SCHEMA if s.kind in ("float", "int") and schema.SAMPLING in s.modes]
    assert labels == expected
