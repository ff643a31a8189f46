"""web_demo_2.6 driven through gradio_client against the launched app (tiny model)."""

import time

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from minicpmv_app.ui.gradio_26 import build_demo, examples
from tests.ui.conftest import roles, served

SAMPLING = ("Sampling", 0.7, 0.8, 100, 1.05, 3)


def settings(max_new_tokens=16, system_prompt="", mode=SAMPLING):
    return (*mode, max_new_tokens, system_prompt)


@pytest.fixture(scope="module")
def app(ui_chat):
    with served(build_demo(ui_chat)) as (url, client):
        yield url, client


def ask(client, text, files=(), **kw):
    client.predict({"text": text, "files": [handle_file(str(f)) for f in files]}, api_name="/add_turn")
    job = client.submit(*settings(**kw), api_name="/respond")
    final = job.result()
    return final, job.outputs()


def bubble_text(bubble):
    return "".join(part.get("text", "") for part in bubble["content"])


def files_in(display):
    return [part for bubble in display for part in bubble["content"] if part.get("type") == "file"]


def test_single_image_streams_an_answer(app, image_file, recorder, ui_chat):
    _, client = app
    recorder.force_length = True  # 300 tokens, however early random weights would stop (see test_gradio_25)
    final, outputs = ask(client(), "What is in the image?", [image_file()], max_new_tokens=300)
    assert roles(final) == ["user", "user", "assistant"]  # the picture, the question, the answer
    assert bubble_text(final[2]) and not bubble_text(final[2]).startswith("⚠️")
    assert len(outputs) > 2  # the answer arrived in several updates
    assert recorder.images_in_last_prompt(ui_chat.backend.processor) == 1


def test_two_images_reach_the_model_and_show_in_the_chat(app, image_file, recorder, ui_chat):
    _, client = app
    final, _ = ask(client(), "Compare them.", [image_file((255, 0, 0), name="a.png"), image_file((0, 0, 255), name="b.png")])
    assert len(files_in(final)) == 2
    assert recorder.images_in_last_prompt(ui_chat.backend.processor) == 2


def test_video_goes_to_the_model_as_video(app, clip, recorder):
    _, client = app
    final, _ = ask(client(), "What happens?", [clip(seconds=3, fps=5)])
    assert not bubble_text(final[-1]).startswith("⚠️")
    sent = recorder.calls[-1]["kwargs"]
    assert "pixel_values_videos" in sent and sent["target_sizes_videos"].shape[0] == 3


def test_history_goes_back_to_the_model_and_clear_forgets_it(app, image_file, recorder, ui_chat):
    _, client = app
    session = client()
    ask(session, "First question", [image_file()])
    ask(session, "Second question")
    prompt = recorder.last_prompt(ui_chat.backend.processor)
    assert "First question" in prompt and "Second question" in prompt
    assert recorder.images_in_last_prompt(ui_chat.backend.processor) == 1
    assert session.predict(api_name="/clear")[0] == []
    ask(session, "Fresh start")
    assert "First question" not in recorder.last_prompt(ui_chat.backend.processor)


def test_regenerate_redoes_the_last_answer(app, recorder):
    _, client = app
    session = client()
    first, _ = ask(session, "Tell me something.")
    prompt_ids = recorder.calls[-1]["kwargs"]["input_ids"].tolist()
    session.predict(api_name="/regenerate")
    again = session.submit(*settings(), api_name="/regenerate_respond").result()
    assert roles(again) == ["user", "assistant"]
    assert recorder.calls[-1]["kwargs"]["input_ids"].tolist() == prompt_ids


def test_stop_mid_stream_keeps_the_partial_answer(app, recorder):
    _, client = app
    recorder.force_length = True
    session = client()
    session.predict({"text": "Talk for a long time.", "files": []}, api_name="/add_turn")
    job = session.submit(*settings(max_new_tokens=3000), api_name="/respond")
    deadline = time.time() + 60
    while len(job.outputs()) < 3 and time.time() < deadline:
        time.sleep(0.05)
    session.predict(api_name="/stop")
    final = job.result(timeout=60)
    produced = recorder.calls[-1]["output"].shape[1] - recorder.calls[-1]["kwargs"]["input_ids"].shape[1]
    assert produced < 3000
    assert bubble_text(final[-1])
    recorder.force_length = False
    # The conversation goes on, with the partial answer in it.
    nxt, _ = ask(session, "Go on.")
    assert roles(nxt) == ["user", "assistant", "user", "assistant"]


def test_bad_file_shows_a_message_and_the_chat_goes_on(app, tmp_path, recorder, ui_chat):
    _, client = app
    session = client()
    fake = tmp_path / "photo.png"
    fake.write_text("I am not a picture")
    final, _ = ask(session, "What is it?", [fake])
    assert bubble_text(final[-1]).startswith("⚠️") and "not an image" in bubble_text(final[-1])
    calls = len(recorder.calls)
    nxt, _ = ask(session, "Hello?")
    assert not bubble_text(nxt[-1]).startswith("⚠️")
    assert len(recorder.calls) == calls + 1
    assert "What is it?" not in recorder.last_prompt(ui_chat.backend.processor)  # the failed turn stays out


def test_images_and_video_cannot_be_mixed(app, image_file, clip):
    _, client = app
    session = client()
    with pytest.raises(AppError, match="cannot be mixed"):  # refused with its reason (the page shows it too)
        session.predict({"text": "both", "files": [handle_file(str(image_file())), handle_file(str(clip()))]},
                        api_name="/add_turn")
    final, _ = ask(session, "Just text now.")  # nothing was recorded: the next question is the first turn
    # One question and its answer (random weights may also write grounding tags, which add raw-answer and notice
    # bubbles: gradio_common.render).
    roles = [b["role"] for b in final]
    assert roles[:2] == ["user", "assistant"] and roles.count("user") == 1


def test_few_shot_examples_go_first(app, image_file, recorder, ui_chat):
    _, client = app
    session = client()
    session.predict(handle_file(str(image_file((255, 0, 0), name="r.png"))), "Colour?", "red", api_name="/add_example")
    session.predict(handle_file(str(image_file((0, 0, 255), name="b.png"))), "Colour?", "blue", api_name="/add_example")
    session.predict(handle_file(str(image_file((0, 255, 0), name="g.png"))), "Colour?", api_name="/few_shot_question")
    final = session.submit(*settings(), api_name="/few_shot_respond").result()
    assert roles(final)[-2:] == ["user", "assistant"]
    prompt = recorder.last_prompt(ui_chat.backend.processor)
    assert prompt.index("red") < prompt.index("blue") < prompt.rindex("Colour?")
    assert recorder.images_in_last_prompt(ui_chat.backend.processor) == 3


def test_sessions_do_not_see_each_other(app, image_file):
    _, client = app
    alice, bob = client(), client()
    ask(alice, "Alice's secret question", [image_file(name="alice.png")])
    final, _ = ask(bob, "Bob here")
    assert "Alice" not in str(final)
    assert not files_in(final)


def test_examples_are_local_files():
    found = examples()
    assert len(found) == 4
    assert any(f.endswith(".mp4") for e in found for f in e["files"])
    assert examples(lang="zh")[0]["text"] == "这张收据的总金额是多少？"  # translated in a Chinese page


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_tiny_answers_each_of_its_examples_with_the_default_settings(trained_chat, lang):
    """With --model tiny the examples are questions it answers: each one, as the page sends it, gets the colour
    or shape its picture holds (the file names say which), at the app's default settings."""
    from pathlib import Path

    from minicpmv_app.session import ChatSession
    from minicpmv_app.ui.gradio_26 import TINY_EXAMPLES

    found = examples(trained_chat, lang)
    keys = [key for key, _, languages in TINY_EXAMPLES if lang in languages]
    assert len(found) == len(keys) >= 2 and any(f.endswith(".mp4") for e in found for f in e["files"])
    for key, example in zip(keys, found):
        session = ChatSession()
        session.submit(example["text"], example["files"])
        list(session.answer(trained_chat, {}))
        colour, shape = Path(example["files"][-1]).stem.split("-")  # the last picture's, as drawn
        assert session.turns[-1].answer.strip() == (shape if key == "example_q_shape" else colour), example
