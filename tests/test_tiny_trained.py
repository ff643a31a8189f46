"""The trained tiny checkpoint answers its narrow task, so these tests fail if a picture is dropped, swapped or
sent to the wrong session: through the Python API, both Gradio demos, Streamlit, and for video."""

import io
import json
import threading

import pytest
from gradio_client import handle_file

from chat import img2base64
from minicpmv_app.media.video import Video
from minicpmv_app.messages import Conversation, Message
from minicpmv_app.tiny_task import answer_word, draw, solid_frames

GREEDY = dict(decode_type="Beam Search", num_beams=1, max_new_tokens=4)


def ask(chat, text, *images, **settings):
    content = [{"type": "image", "pairs": img2base64(image)} for image in images] + [{"type": "text", "pairs": text}]
    return chat.chat({"image": None, "question": json.dumps([{"role": "user", "content": content}])},
                     **dict(GREEDY, **settings))


def test_red_square_through_the_python_api(trained_chat):
    assert answer_word(ask(trained_chat, "What colour is the shape?", draw("red", "square"))) == "red"
    assert answer_word(ask(trained_chat, "What shape is it?", draw("red", "square"))) == "square"


def test_grounding_answers_name_the_shape_and_give_a_box(trained_chat):
    """8 new pictures: each answer is a <ref> naming the colour and shape drawn, with a well-formed <box>. (The
    issue's goal, IoU >= 0.5 for 6 of 8, is not met by this checkpoint: README, "--model tiny".)"""
    import random

    from minicpmv_app import MiniCPMVChat
    from minicpmv_app.grounding import parse
    from minicpmv_app.tiny_task import COLOURS, SHAPES, draw_with_box

    raw = MiniCPMVChat(backend=trained_chat.backend, strip_grounding=False)
    rng = random.Random(31337)  # not the training (1, 2) or evaluation (2024) seeds
    named = []
    for _ in range(8):
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        answer = ask(raw, "Where is the shape?", draw_with_box(colour, shape, rng=rng)[0], max_new_tokens=24)
        (region,) = parse(answer)
        assert region.kind == "box" and not region.clamped
        named.append(region.label == f"{colour} {shape}")
    assert sum(named) >= 7, named


def test_thinking_writes_its_reasoning_first_and_the_answer_alone(trained_chat):
    msgs = [{"role": "user", "content": [{"type": "image", "pairs": img2base64(draw("purple", "circle"))},
                                         {"type": "text", "pairs": "What colour is the shape?"}]}]
    request = {"image": None, "question": json.dumps(msgs)}
    reply = trained_chat.chat(request, with_reasoning=True, enable_thinking=True, **dict(GREEDY, max_new_tokens=24))
    assert answer_word(reply.answer) == "purple" and "<think>" not in reply.answer
    assert "purple circle" in reply.reasoning
    assert trained_chat.chat(request, enable_thinking=True, **dict(GREEDY, max_new_tokens=24)).strip() == "purple"
    off = trained_chat.chat(request, with_reasoning=True, **dict(GREEDY, max_new_tokens=24))
    assert off.reasoning == "" and answer_word(off.answer) == "purple"


def test_upstream_request_with_top_level_image(trained_chat):
    msgs = [{"role": "user", "content": "What colour is the shape?"}]
    answer = trained_chat.chat({"image": img2base64(draw("blue", "circle")), "question": json.dumps(msgs)}, **GREEDY)
    assert answer_word(answer) == "blue"


def test_second_image_of_two(trained_chat):
    first, second = draw("blue", "circle"), draw("red", "square")
    assert answer_word(ask(trained_chat, "What colour is the second image?", first, second)) == "red"
    assert answer_word(ask(trained_chat, "What colour is the first image?", first, second)) == "blue"


def test_all_green_video(trained_chat):
    video = Video(frames=solid_frames("green", 4), fps=1.0, duration=4.0)
    conversation = Conversation([Message("user", [video, "What colour is the video?"])])
    answer = "".join(trained_chat.stream_conversation(conversation, trained_chat.settings(**GREEDY)))
    assert answer_word(answer) == "green"


def test_all_green_video_file_through_the_decoder(trained_chat, clip):
    from minicpmv_app.media.video import load_video

    video = load_video(clip(seconds=4, fps=5, size=(96, 72), colour=(30, 170, 50)))
    conversation = Conversation([Message("user", [video, "What colour is the video?"])])
    assert answer_word("".join(trained_chat.stream_conversation(conversation, trained_chat.settings(**GREEDY)))) == "green"


@pytest.fixture(scope="module")
def app26(trained_chat):
    from minicpmv_app.ui.gradio_26 import build_demo
    from tests.ui.conftest import served

    with served(build_demo(trained_chat)) as (url, client):
        yield client


def save(image, tmp_path, name):
    path = tmp_path / name
    image.save(path)
    return str(path)


def gradio_answer(client, text, files):
    client.predict({"text": text, "files": [handle_file(f) for f in files]}, api_name="/add_turn")
    final = client.submit("Beam Search", 0.7, 0.8, 100, 1.2, 1, 4, "", api_name="/respond").result()
    return "".join(p.get("text", "") for p in final[-1]["content"])


def test_red_square_through_the_26_demo(app26, tmp_path):
    assert answer_word(gradio_answer(app26(), "What colour is the shape?", [save(draw("red", "square"), tmp_path, "r.png")])) == "red"


def test_two_concurrent_sessions_each_get_their_own_colour(app26, tmp_path):
    red, blue = save(draw("red", "square"), tmp_path, "red.png"), save(draw("blue", "circle"), tmp_path, "blue.png")
    answers = {}

    def user(name, path):
        answers[name] = answer_word(gradio_answer(app26(), "What colour is the shape?", [path]))

    threads = [threading.Thread(target=user, args=("red", red)), threading.Thread(target=user, args=("blue", blue))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {"red": "red", "blue": "blue"}


def test_red_square_through_the_25_demo(trained_chat, tmp_path):
    from minicpmv_app.ui.gradio_25 import build_demo
    from tests.ui.conftest import served

    path = save(draw("red", "square"), tmp_path, "r.png")
    with served(build_demo(trained_chat)) as (url, client):
        session = client()
        session.predict(handle_file(path), api_name="/new_image")
        session.predict("What colour is the shape?", handle_file(path), None, "", api_name="/add_turn")
        final = session.submit("Beam Search", 0.7, 0.8, 100, 1.2, 1, 4, "", api_name="/respond").result()
        assert answer_word("".join(p.get("text", "") for p in final[-1]["content"])) == "red"


def test_red_square_through_streamlit(monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MINICPMV_MODEL", "tiny")
    monkeypatch.setenv("MINICPMV_DEVICE", "cpu")
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "web_demo_streamlit.py"), default_timeout=120)
    at.run()
    at.sidebar.radio[0].set_value("mode_single_image").run()
    at.sidebar.slider[1].set_value(0.0).run()  # temperature 0: as good as greedy, so the answer is stable
    buffer = io.BytesIO()
    draw("red", "square").save(buffer, format="PNG")
    at.chat_input[0].upload("red.png", buffer.getvalue(), "image/png").set_value("What colour is the shape?").run()
    assert not at.exception
    assert answer_word(at.chat_message[1].markdown[0].value) == "red"
