"""web_demo_2.5 driven through gradio_client against the launched app (tiny model)."""

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from minicpmv_app.ui.gradio_25 import build_demo
from tests.ui.conftest import roles, served

SAMPLING = ("Sampling", 0.7, 0.8, 100, 1.05, 3, 16, "")
BEAM = ("Beam Search", 0.7, 0.8, 100, 1.2, 2, 16, "")
LONG = ("Sampling", 0.7, 0.8, 100, 1.05, 3, 300, "")


@pytest.fixture(scope="module")
def app(ui_chat):
    with served(build_demo(ui_chat)) as (url, client):
        yield client


def ask(session, image, text, mode=SAMPLING):
    session.predict(text, handle_file(str(image)) if image else None, None, "", api_name="/add_turn")
    job = session.submit(*mode, api_name="/respond")
    return job.result(), job.outputs()




def test_chat_about_one_image_with_streaming(app, image_file, recorder, ui_chat):
    session = app()
    image = image_file()
    session.predict(handle_file(str(image)), api_name="/new_image")
    # 300 tokens, however early random weights would stop: a short answer can arrive in one update on a busy machine.
    recorder.force_length = True
    final, outputs = ask(session, image, "What is this?", mode=LONG)
    recorder.force_length = False
    assert roles(final) == ["user", "user", "assistant"]  # the picture, the question, the answer
    assert len(outputs) > 2  # the answer arrived in several updates
    ask(session, image, "And the colour?")
    assert recorder.images_in_last_prompt(ui_chat.backend.processor) == 1  # the image is sent once, first turn


def test_beam_search_answers_whole_with_its_parameters(app, image_file, recorder):
    session = app()
    final, outputs = ask(session, image_file(), "Describe.", mode=BEAM)
    sent = recorder.calls[-1]["kwargs"]
    assert (sent["do_sample"], sent["num_beams"], sent["repetition_penalty"]) == (False, 2, 1.2)
    from minicpmv_app.ui.i18n import text

    marker = f"\n\n*{text('cut_off', 'en')}*"  # the random tiny runs to the token budget: the view says so at the end
    answers = {"".join(p.get("text", "") for p in o[-1]["content"]).removesuffix(marker)
               for o in outputs if o and o[-1]["role"] == "assistant"}
    assert len(answers - {""}) == 1  # no partial answers along the way


def test_new_image_starts_a_new_conversation(app, image_file, recorder, ui_chat):
    session = app()
    first = image_file((255, 0, 0), name="first.png")
    ask(session, first, "About the first image")
    second = image_file((0, 0, 255), name="second.png")
    assert session.predict(handle_file(str(second)), api_name="/new_image") == []
    ask(session, second, "About the second image")
    prompt = recorder.last_prompt(ui_chat.backend.processor)
    assert "first image" not in prompt
    pixels = recorder.calls[-1]["kwargs"]["pixel_values"]
    assert pixels[0, 2].mean() > pixels[0, 0].mean()  # blue channel dominates: the new image went in


def test_regenerate_and_clear(app, image_file):
    session = app()
    ask(session, image_file(), "Hi")
    session.predict(api_name="/regenerate")
    assert roles(session.submit(*SAMPLING, api_name="/regenerate_respond").result()) == ["user", "user", "assistant"]
    display, question, _zoom_choices = session.predict(api_name="/clear")
    assert display == [] and question == ""


def test_empty_question_is_refused_without_breaking_the_chat(app):
    session = app()
    with pytest.raises(AppError, match="message is empty"):
        session.predict("   ", None, None, "", api_name="/add_turn")
    final, _ = ask(session, None, "Text only works too.")
    assert roles(final) == ["user", "assistant"]


def test_a_pdf_page_is_the_picture_and_more_than_one_page_is_refused(app, tmp_path, recorder, ui_chat):
    from PIL import Image

    from tests.media_factory import write_pdf

    pdf = write_pdf(tmp_path / "doc.pdf", [Image.new("RGB", (120, 90), c) for c in ((200, 0, 0), (0, 0, 200))])
    session = app()
    with pytest.raises(AppError, match="one page at a time"):
        session.predict("What is this?", None, handle_file(str(pdf)), "1-2", api_name="/add_turn")
    session.predict("What is this?", None, handle_file(str(pdf)), "2", api_name="/add_turn")
    final = session.submit(*SAMPLING, api_name="/respond").result()
    assert roles(final)[-1] == "assistant"
    assert any("doc.pdf: pages 2" in str(m["content"]) for m in final)  # the page shown with the question
    assert recorder.images_in_last_prompt(ui_chat.backend.processor) == 1
    pixels = recorder.calls[-1]["kwargs"]["pixel_values"]
    assert pixels[0, 2].mean() > pixels[0, 0].mean()  # page 2 (blue) went in, not page 1
