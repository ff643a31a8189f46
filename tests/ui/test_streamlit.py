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
    monkeypatch.setenv("MINICPMV_IN_PROCESS", "1")  # the recorder reads the prompts the model gets, here
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


def shown_words(message) -> str:
    """The words an assistant bubble shows: its answer, or the caption that says why there is none."""
    return " ".join(e.value for e in [*message.markdown, *message.caption] if e.value).strip()


def test_text_mode_answers_and_history_grows(app, recorder):
    send(app, "Hello there")
    assert roles(app) == ["user", "assistant"]
    assert shown_words(app.chat_message[1])  # random weights may answer nothing at all: the bubble then says so
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
    sliders = [s for s in schema.SCHEMA if s.kind in ("float", "int") and schema.SAMPLING in s.modes]
    # The model's own knobs first (a 4.6-architecture checkpoint takes them all), then sampling.
    expected = [text(s.label, "en") for s in sliders if s.knob] + [text(s.label, "en") for s in sliders if not s.knob]
    assert labels == expected
    assert [t.label for t in app.sidebar.toggle] == [text("setting_thinking", "en")]


@pytest.fixture
def trained_app(monkeypatch):
    monkeypatch.setenv("MINICPMV_MODEL", "tiny")
    monkeypatch.setenv("MINICPMV_DEVICE", "cpu")
    monkeypatch.setenv("MINICPMV_IN_PROCESS", "1")  # the recorder reads the prompts the model gets, here
    at = AppTest.from_file(SCRIPT, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    # As good as greedy (the sidebar samples, as upstream's): answers do not depend on sampling luck.
    next(s for s in at.sidebar.slider if s.label == "Temperature").set_value(0.0).run()
    return at


def blue_square() -> bytes:
    import random

    from minicpmv_app.tiny_task import draw_with_box

    buffer = io.BytesIO()
    draw_with_box("blue", "square", size=(200, 160), rng=random.Random(7))[0].save(buffer, format="PNG")
    return buffer.getvalue()


def test_thinking_goes_in_a_closed_block_and_is_not_sent_back(trained_app):
    trained_app.sidebar.radio[0].set_value("mode_single_image").run()
    trained_app.toggle(key="knob_enable_thinking").set_value(True).run()
    send(trained_app, "What colour is the shape?", [("shape.png", blue_square(), "image/png")])
    answer = trained_app.chat_message[1]
    assert answer.markdown[-1].value.strip() == "blue"
    send(trained_app, "What shape is it?")  # a rerun draws the history: the reasoning in a closed expander
    (expander,) = [e for e in trained_app.expander if e.label == "Thinking"][:1]
    assert "I see a blue" in expander.markdown[0].value
    assert not any("I see a" in m.value for m in trained_app.chat_message[1].markdown if m not in expander.markdown)


def test_boxes_are_drawn_and_zoom_sends_the_crop(trained_app):
    trained_app.sidebar.radio[0].set_value("mode_single_image").run()
    send(trained_app, "Where is the shape?", [("shape.png", blue_square(), "image/png")])
    assert "blue square" in trained_app.chat_message[1].markdown[-1].value
    assert "<box>" not in trained_app.chat_message[1].markdown[-1].value
    assert trained_app.get("image"), "no drawn picture under the answer"
    button(trained_app, "Zoom").click().run()
    assert not trained_app.exception, trained_app.exception
    send(trained_app, "What colour is the shape?")  # the crop goes with it, as its picture
    assert trained_app.chat_message[-1].markdown[-1].value.strip() == "blue"
    session = trained_app.session_state["chat_session"]
    crop = session.turns[-1].parts[0]
    assert crop.size[0] < 200 and crop.size[1] < 160  # the crop, not the whole picture


def test_locate_asks_about_the_latest_picture_and_says_so_without_one(trained_app):
    trained_app.sidebar.text_input(key="locate_phrase").set_value("shape")
    button(trained_app, "Locate").click().run()
    assert trained_app.error and "Upload a picture first" in trained_app.error[0].value
    trained_app.sidebar.radio[0].set_value("mode_single_image").run()
    send(trained_app, "What colour is the shape?", [("shape.png", blue_square(), "image/png")])
    trained_app.sidebar.text_input(key="locate_phrase").set_value("shape")
    button(trained_app, "Locate").click().run()
    assert not trained_app.exception, trained_app.exception
    turn = trained_app.session_state["chat_session"].turns[-1]
    # The grounding prompt went with the latest picture and was answered. (What the tiny answers to it in a
    # second turn is not a box: it was trained on one-turn conversations. The boxes are drawn in the test above.)
    assert turn.text.endswith("<ref>shape</ref>") and len(turn.files) == 1 and turn.state.value == "answered"
    assert turn.files[0] == trained_app.session_state["chat_session"].turns[0].files[0]


def button(at, label):
    return next(b for b in at.sidebar.button if b.label == label)


def pdf_bytes(tmp_path, colours, password=None) -> bytes:
    import random

    from minicpmv_app.tiny_task import draw
    from tests.media_factory import write_pdf

    rng = random.Random(3)
    path = write_pdf(tmp_path / "doc.pdf", [draw(c, s, rng=rng) for c, s in colours], password=password)
    return path.read_bytes()


def test_document_mode_sends_the_pages_in_order_with_an_editable_prompt(trained_app, tmp_path):
    # One slice per page: the tiny was trained on small unsliced pictures.
    next(s for s in trained_app.sidebar.slider if s.label.startswith("Image slices")).set_value(1).run()
    trained_app.sidebar.radio[0].set_value("mode_document").run()
    two = pdf_bytes(tmp_path, [("red", "square"), ("blue", "circle")])
    send(trained_app, "What colour is the second image?", [("two.pdf", two, "application/pdf")])
    assert trained_app.chat_message[1].markdown[-1].value.strip() == "blue"
    assert "two.pdf" not in str(trained_app.session_state["chat_session"].turns[0].files)  # our own file name
    assert any(c.value.startswith("📄 two.pdf") and "all pages" in c.value  # the person's own file name, shown
               for c in trained_app.chat_message[0].caption)
    # A page range, and a message with no text of its own: the document prompt (edited here) goes instead.
    three = pdf_bytes(tmp_path, [("red", "square"), ("green", "circle"), ("blue", "triangle")])
    trained_app.sidebar.text_input(key="pdf_pages").set_value("2")
    area = trained_app.text_area(key="doc_prompt_transcribe_en")
    assert area.value.startswith("Transcribe this document")
    area.set_value("What colour is the shape?").run()
    send(trained_app, "", [("three.pdf", three, "application/pdf")])
    turn = trained_app.session_state["chat_session"].turns[-1]
    assert turn.text == "What colour is the shape?" and turn.pages == "2"
    assert len([p for p in turn.parts if not isinstance(p, str)]) == 1


def test_a_locked_pdf_is_refused_with_a_message_and_its_file_is_removed(trained_app, tmp_path):
    trained_app.sidebar.radio[0].set_value("mode_document").run()
    locked = pdf_bytes(tmp_path, [("red", "square")], password="secret")
    send(trained_app, "What colour is the shape?", [("locked.pdf", locked, "application/pdf")])
    assert trained_app.error and "password-protected" in trained_app.error[0].value
    assert trained_app.session_state["chat_session"].turns == []
    assert list(trained_app.session_state["uploads"].path.iterdir()) == []


def test_export_then_import_into_a_new_session_continues_with_the_picture(trained_app, monkeypatch):
    from minicpmv_app import transcript

    trained_app.sidebar.radio[0].set_value("mode_single_image").run()
    send(trained_app, "What colour is the shape?", [("shape.png", blue_square(), "image/png")])
    assert trained_app.chat_message[1].markdown[-1].value.strip() == "blue"
    assert [b.label for b in trained_app.download_button] == ["Markdown", "HTML (to send)", "JSON (to import)"]
    assert any("keeps no memory" in c.value for c in trained_app.sidebar.caption)
    session = trained_app.session_state["chat_session"]
    from minicpmv_app.ui.streamlit_app import load_model, model_options, parse_args

    data = transcript.export_json(session, transcript.run_card(load_model(model_options(parse_args())), session))

    fresh = AppTest.from_file(SCRIPT, default_timeout=120)
    fresh.run()
    next(s for s in fresh.sidebar.slider if s.label == "Temperature").set_value(0.0).run()
    fresh.file_uploader(key="import_0").upload("chat.json", data.encode(), "application/json").run()
    assert not fresh.exception, fresh.exception
    restored = fresh.session_state["chat_session"]
    assert [(t.text, t.answer) for t in restored.turns] == [("What colour is the shape?", "blue")]
    send(fresh, "What colour is the shape?")  # Text mode, no picture: the imported one is the conversation's
    assert fresh.chat_message[-1].markdown[-1].value.strip() == "blue"


def test_a_bad_import_is_refused_in_the_sidebar(app):
    app.file_uploader(key="import_0").upload("chat.json", b'{"format": "something else"}', "application/json").run()
    assert app.sidebar.error and "not a conversation exported" in app.sidebar.error[0].value
    assert app.session_state["chat_session"].turns == []
