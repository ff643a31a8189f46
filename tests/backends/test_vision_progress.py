"""The vision pass reports progress per layer and stops between layers and within one
(minicpmv_app/backends/vision_progress.py), on the real tiny, in this process and across the model process's pipe."""

from __future__ import annotations


import pytest
from PIL import Image

from minicpmv_app.session import ChatSession, Done, Progress, State, Stopped, TextDelta

SAMPLING = {"decode_type": "Sampling", "max_new_tokens": 8}


def photo(tmp_path, name="photo.jpg", size=(1920, 1440)):
    path = tmp_path / name
    Image.new("RGB", size, (200, 40, 40)).save(path, quality=85)
    return str(path)


def answer(session, chat, text, files, on_event=None):
    session.submit(text, files)
    events = []
    for event in session.answer(chat, SAMPLING):
        events.append(event)
        if on_event is not None:
            on_event(session, event)
    return events


def test_a_photo_reports_each_vision_layer_before_the_first_word(tiny_chat, tmp_path):
    layers = len(tiny_chat.backend.vision_layers)
    assert layers >= 2  # the tiny's encoder: something to count
    events = answer(ChatSession(), tiny_chat, "What is it?", [photo(tmp_path)])
    encoding = [e for e in events if isinstance(e, Progress) and e.kind == "encoding"]
    # Said first, before the picture is even decoded; then the pass's start, and each layer.
    assert events[0] == Progress(0, 0, "encoding")
    encoding = encoding[1:]
    assert [e.done for e in encoding] == list(range(0, layers + 1))
    assert {e.total for e in encoding} == {layers}
    assert encoding[0].left_s is None  # nothing to estimate from yet
    assert encoding[-1].left_s == 0 and all(e.left_s >= 0 for e in encoding[1:])
    first_word = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert events.index(encoding[-1]) < first_word  # all of the vision pass comes before the answer
    assert isinstance(events[-1], Done)


def test_a_text_question_reports_no_encoding(tiny_chat):
    events = answer(ChatSession(), tiny_chat, "Hello", [])
    assert not [e for e in events if isinstance(e, Progress)]


def test_stop_during_the_vision_pass_ends_the_answer_before_its_first_token(tiny_chat, tmp_path):
    def stop_at_first_layer(session, event):
        if isinstance(event, Progress) and event.kind == "encoding" and event.done == 1:
            session.stop()

    session = ChatSession()
    events = answer(session, tiny_chat, "What is it?", [photo(tmp_path)], stop_at_first_layer)
    finished = [e for e in events if isinstance(e, Progress) and e.kind == "encoding" and e.done]
    assert len(finished) < len(tiny_chat.backend.vision_layers)  # the pass did not run to its end
    assert isinstance(events[-1], Stopped) and not [e for e in events if isinstance(e, TextDelta)]
    assert session.turns[-1].state == State.STOPPED and session.turns[-1].answer == ""
    # The hooks are gone and the model is whole: the next question is answered in full.
    after = answer(session, tiny_chat, "And now?", [photo(tmp_path, "second.jpg", (640, 480))])
    assert isinstance(after[-1], Done)
    assert len([e for e in after if isinstance(e, Progress) and e.kind == "encoding"]) == len(
        tiny_chat.backend.vision_layers) + 2


def test_stop_inside_a_vision_layer_ends_the_pass_within_that_layer(tiny_chat, tmp_path):
    """A layer over 36 slices of a real-size model takes about 10 s on a CPU: Stop is checked at its matrix products
    too, so it is not kept waiting for the layer's end."""
    import torch

    session = ChatSession()
    first_layer = tiny_chat.backend.vision_layers[0]
    products = [m for m in first_layer.modules() if isinstance(m, torch.nn.Linear)]
    assert len(products) >= 2
    handle = products[1].register_forward_pre_hook(lambda module, args: session.stop())  # pressed mid-layer
    try:
        events = answer(session, tiny_chat, "What is it?", [photo(tmp_path)])
    finally:
        handle.remove()
    # The start was shown, and not even layer 1 ended.
    assert [(e.done, e.total) for e in events if isinstance(e, Progress) and e.kind == "encoding"] == [
        (0, 0), (0, len(tiny_chat.backend.vision_layers))]
    assert isinstance(events[-1], Stopped) and session.turns[-1].answer == ""


def test_the_progress_crosses_the_model_process(tiny_folder, tmp_path):
    from minicpmv_app import MiniCPMVChat

    chat = MiniCPMVChat(str(tiny_folder), device="cpu", process="model")
    try:
        events = answer(ChatSession(), chat, "What is it?", [photo(tmp_path)])
        encoding = [e for e in events if isinstance(e, Progress) and e.kind == "encoding"]
        assert encoding and encoding[-1].done == encoding[-1].total
        assert isinstance(events[-1], Done)
    finally:
        chat.backend.close()


@pytest.mark.parametrize("lang, words", [("en", "Encoding picture… 2 of 27, about 50 s left"),
                                         ("zh", "正在编码图片…第 2/27 层，约剩 50 秒")])
def test_the_words_say_how_far_and_how_long(lang, words):
    from minicpmv_app.ui.i18n import progress_words

    assert progress_words(Progress(2, 27, "encoding", 49.6), lang) == words
    assert "27 of 27" in progress_words(Progress(27, 27, "encoding", 0.0), "en")
    assert progress_words(Progress(0, 0, "encoding"), lang) == words.split("…")[0] + "…"  # before the pass
