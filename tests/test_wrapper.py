"""MiniCPMVChat end to end on the tiny native checkpoint: the upstream call, streaming, presets, stop, errors."""

import json
import threading
import time

import pytest
import torch

from chat import MiniCPMVChat, OmniLMMChat, img2base64
from minicpmv_app.backends.base import Backend
from minicpmv_app.errors import InvalidInputError, MediaError
from minicpmv_app.media.video import load_video
from minicpmv_app.messages import Conversation, Message


@pytest.fixture
def generate_calls(tiny_chat, monkeypatch):
    """Record what ``model.generate`` receives (and returns) without changing it."""
    model = tiny_chat.backend.model
    original = model.generate
    calls = []

    def recording(*args, **kwargs):
        call = {"kwargs": kwargs}
        calls.append(call)
        call["output"] = original(*args, **kwargs)
        return call["output"]

    monkeypatch.setattr(model, "generate", recording)
    return calls


def ask(text, image=None, **extra):
    msgs = [{"role": "user", "content": text}]
    return {"image": image, "question": json.dumps(msgs), **extra}


def test_upstream_call_returns_the_models_answer(tiny_chat, image_file, generate_calls):
    answer = tiny_chat.chat(ask("What is in the image?", img2base64(image_file())), max_new_tokens=8)
    call = generate_calls[-1]
    sent, prompt_length = call["kwargs"], call["kwargs"]["input_ids"].shape[1]
    decoded = tiny_chat.backend.processor.decode(call["output"][0, prompt_length:], skip_special_tokens=True)
    assert answer == decoded  # the whole generated text, nothing lost or added on the way
    assert sent["pixel_values"].numel() > 0  # the image reached the model
    assert sent["max_new_tokens"] == 8


def test_omnilmmchat_answers_the_upstream_1_0_call(tmp_path):
    """MiniCPM-V 1.0's docs construct OmniLMMChat; it loads and answers like MiniCPMVChat (the trained tiny)."""
    from minicpmv_app.tiny_task import draw

    red = tmp_path / "red.png"
    draw("red", "square").save(red)
    answer = OmniLMMChat("tiny", device="cpu").chat(ask("What colour is the shape?", img2base64(str(red))))
    assert answer.split()[0].strip(".,").lower() == "red"


def test_multi_turn_sends_the_history(tiny_chat, image_file, generate_calls):
    image = img2base64(image_file())
    msgs = [{"role": "user", "content": "What colour is it?"}]
    first = tiny_chat.chat({"image": image, "question": json.dumps(msgs)}, max_new_tokens=4)
    msgs += [{"role": "assistant", "content": first}, {"role": "user", "content": "And the shape?"}]
    tiny_chat.chat({"image": image, "question": json.dumps(msgs)}, max_new_tokens=4)
    prompt = tiny_chat.backend.processor.decode(generate_calls[-1]["kwargs"]["input_ids"][0])
    assert "What colour is it?" in prompt and "And the shape?" in prompt
    assert prompt.count("<|im_start|>assistant") == 2


def test_upstream_26_pairs_form_with_two_images(tiny_chat, image_file, generate_calls):
    one = {"type": "image", "pairs": img2base64(image_file((255, 0, 0), name="a.png"))}
    two = {"type": "image", "pairs": img2base64(image_file((0, 0, 255), name="b.png"))}
    msgs = [{"role": "user", "content": [one, two, {"type": "text", "pairs": "Compare them."}]}]
    tiny_chat.chat({"image": None, "question": json.dumps(msgs)}, max_new_tokens=4)
    two_images = generate_calls[-1]["kwargs"]["input_ids"].shape[1]
    msgs[0]["content"] = [one, {"type": "text", "pairs": "Compare them."}]
    tiny_chat.chat({"image": None, "question": json.dumps(msgs)}, max_new_tokens=4)
    assert two_images > generate_calls[-1]["kwargs"]["input_ids"].shape[1]


def test_stream_yields_increments_that_add_up_to_chat(tiny_chat, image_file):
    request = ask("Describe it.", img2base64(image_file()))
    torch.manual_seed(7)
    pieces = list(tiny_chat.stream(request, max_new_tokens=40))
    torch.manual_seed(7)
    whole = tiny_chat.chat(request, max_new_tokens=40)
    assert len(pieces) > 1
    assert "".join(pieces) == whole


def test_presets_and_overrides_reach_generate(tiny_chat, generate_calls):
    tiny_chat.chat(ask("hi"), max_new_tokens=3, temperature=0.3, top_k=5)
    sent = generate_calls[-1]["kwargs"]
    assert (sent["do_sample"], sent["temperature"], sent["top_k"], sent["top_p"]) == (True, 0.3, 5, 0.8)
    tiny_chat.chat(ask("hi"), max_new_tokens=3, decode_type="Beam Search", num_beams=2)
    sent = generate_calls[-1]["kwargs"]
    assert (sent["do_sample"], sent["num_beams"], sent["repetition_penalty"]) == (False, 2, 1.2)
    assert "temperature" not in sent


def test_params_inside_the_request_are_honoured(tiny_chat, generate_calls):
    tiny_chat.chat(ask("hi", params={"sampling": False, "max_new_tokens": 2}))
    assert generate_calls[-1]["kwargs"]["num_beams"] == 3 and generate_calls[-1]["kwargs"]["max_new_tokens"] == 2


def test_beam_search_streams_one_whole_chunk(tiny_chat):
    pieces = list(tiny_chat.stream(ask("hi"), decode_type="Beam Search", max_new_tokens=12))
    assert len(pieces) <= 1


def test_system_prompt_reaches_the_prompt(tiny_chat, generate_calls):
    tiny_chat.chat(ask("hi"), max_new_tokens=2, system_prompt="Answer in French.")
    prompt = tiny_chat.backend.processor.decode(generate_calls[-1]["kwargs"]["input_ids"][0])
    assert prompt.startswith("<|im_start|>system\nAnswer in French.")


@pytest.fixture
def long_answers(tiny_chat, generate_calls, monkeypatch):
    """Random weights may emit EOS at once; Stop tests need the whole budget used unless stopped."""
    original = tiny_chat.backend.model.generate

    def no_early_eos(*args, **kwargs):
        kwargs["min_new_tokens"] = kwargs["max_new_tokens"]
        return original(*args, **kwargs)

    monkeypatch.setattr(tiny_chat.backend.model, "generate", no_early_eos)
    return generate_calls


def test_stop_event_ends_generation_early(tiny_chat, long_answers):
    generate_calls = long_answers
    stop = threading.Event()
    stream = tiny_chat.stream(ask("hi"), max_new_tokens=2000, stop_event=stop)
    next(stream)
    stop.set()
    list(stream)
    produced = generate_calls[-1]["output"].shape[1] - generate_calls[-1]["kwargs"]["input_ids"].shape[1]
    assert produced < 2000


def test_closing_a_stream_stops_the_model(tiny_chat, long_answers):
    generate_calls = long_answers
    stream = tiny_chat.stream(ask("hi"), max_new_tokens=2000)
    next(stream)
    stream.close()
    produced = generate_calls[-1]["output"].shape[1] - generate_calls[-1]["kwargs"]["input_ids"].shape[1]
    assert produced < 2000  # generation ended early, not just the reading of it
    tiny_chat.chat(ask("again"), max_new_tokens=2)
    assert len(generate_calls) == 2  # the slot was released: the next request reached the model


def test_one_generation_at_a_time(tiny_chat, monkeypatch):
    active, peak = [0], [0]
    original = tiny_chat.backend.model.generate
    lock = threading.Lock()

    def counting(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.05)
            return original(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(tiny_chat.backend.model, "generate", counting)
    threads = [threading.Thread(target=tiny_chat.chat, args=(ask(f"q{i}"),), kwargs={"max_new_tokens": 3}) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 1


def test_video_reaches_the_model_as_video(tiny_chat, clip, generate_calls):
    video = load_video(clip(seconds=3, fps=5))
    conversation = Conversation([Message("user", [video, "What happens?"])])
    settings = tiny_chat.settings(max_new_tokens=3)
    "".join(tiny_chat.stream_conversation(conversation, settings))
    sent = generate_calls[-1]["kwargs"]
    assert "pixel_values_videos" in sent and "pixel_values" not in sent
    assert sent["target_sizes_videos"].shape[0] == 3  # one main slice per sampled frame, no extra slices


@pytest.mark.parametrize(
    "request_, error, match",
    [
        (ask(""), InvalidInputError, "empty"),
        ({"image": "%%%notbase64", "question": json.dumps([{"role": "user", "content": "x"}])}, MediaError, "image"),
        ({"question": json.dumps([{"role": "assistant", "content": "x"}])}, InvalidInputError, "first message"),
        ({"question": json.dumps([{"role": "robot", "content": "x"}])}, InvalidInputError, "role"),
        ({"image": None}, InvalidInputError, "question"),
        ("not a dict", InvalidInputError, "dict"),
    ],
)
def test_bad_requests_raise_typed_errors(tiny_chat, request_, error, match, generate_calls):
    with pytest.raises(error, match=match):
        tiny_chat.chat(request_)
    assert generate_calls == []  # refused before the model
    tiny_chat.chat(ask("still working?"), max_new_tokens=2)
    assert len(generate_calls) == 1  # and the next request is answered


def test_unknown_setting_is_refused(tiny_chat):
    with pytest.raises(InvalidInputError, match="temprature"):
        tiny_chat.chat(ask("hi"), temprature=0.1)


class ScriptedBackend(Backend):
    """Answers with fixed pieces: tests the wrapper's own text handling without a model."""

    name = "scripted"

    def __init__(self, pieces):
        self.pieces = pieces

    def generate(self, conversation, settings, *, stop=None):
        yield from self.pieces


def test_grounding_tags_are_stripped_from_streams_and_answers():
    pieces = ["A <r", "ef>cat</ref><box>(1,2)", ",(3,4)</box> sits."]
    chat = MiniCPMVChat(backend=ScriptedBackend(pieces))
    assert chat.chat(ask("where?")) == "A cat sits."
    raw = MiniCPMVChat(backend=ScriptedBackend(pieces), strip_grounding=False)
    assert "<box>" in raw.chat(ask("where?"))
