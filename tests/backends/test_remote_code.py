"""The remote-code backend through AutoModel.from_pretrained(trust_remote_code=True) on test-only model code
implementing each documented legacy chat() shape."""

import json
import shutil
import threading

import pytest
from PIL import Image

from chat import MiniCPMVChat, img2base64
from minicpmv_app.errors import ModelLoadError, UnsupportedFeatureError
from minicpmv_app.media.video import Video
from minicpmv_app.messages import Conversation, Message


def ask(text, image=None):
    return {"image": image, "question": json.dumps([{"role": "user", "content": text}])}


def last_call(chat):
    return chat.backend.model.calls[-1]


@pytest.mark.parametrize("flavour, shape", [("v1", "1.0/2.0"), ("v25", "2.5"), ("v26", "2.6+")])
def test_shape_is_read_from_the_chat_signature(legacy_chats, flavour, shape):
    assert legacy_chats[flavour].backend.flavour.name == shape


@pytest.mark.parametrize("flavour", ["v1", "v25", "v26"])
def test_upstream_call_answers(legacy_chats, image_file, flavour):
    answer = legacy_chats[flavour].chat(ask("What is it?", img2base64(image_file())), max_new_tokens=5)
    assert isinstance(answer, str)


def test_v1_gets_context_and_its_own_temperature(legacy_chats, image_file):
    chat = legacy_chats["v1"]
    chat.chat(ask("What?", img2base64(image_file())), max_new_tokens=3)
    call = last_call(chat)
    assert call["context"] is None
    assert isinstance(call["image"], Image.Image)
    assert call["generate"]["temperature"] == 0.6


def test_v25_takes_the_image_apart_and_str_content(legacy_chats, image_file):
    chat = legacy_chats["v25"]
    msgs = [
        {"role": "user", "content": "What?"},
        {"role": "assistant", "content": "A square."},
        {"role": "user", "content": "Colour?"},
    ]
    chat.chat({"image": img2base64(image_file()), "question": json.dumps(msgs)}, max_new_tokens=3)
    call = last_call(chat)
    assert isinstance(call["image"], Image.Image)
    assert [m["content"] for m in call["msgs"]] == ["What?", "A square.", "Colour?"]


def test_v25_refuses_a_second_image_with_advice(legacy_chats, image_file):
    first, second = img2base64(image_file(name="a.png")), img2base64(image_file(name="b.png"))
    msgs = [{"role": "user", "content": [{"type": "image", "pairs": first}, {"type": "image", "pairs": second}, "Compare"]}]
    with pytest.raises(UnsupportedFeatureError, match="one image"):
        legacy_chats["v25"].chat({"question": json.dumps(msgs)})


def test_v26_gets_images_inside_content(legacy_chats, image_file):
    chat = legacy_chats["v26"]
    red, blue = img2base64(image_file((255, 0, 0), name="r.png")), img2base64(image_file((0, 0, 255), name="b.png"))
    msgs = [{"role": "user", "content": [{"type": "image", "pairs": red}, {"type": "image", "pairs": blue}, {"type": "text", "pairs": "Compare."}]}]
    chat.chat({"image": None, "question": json.dumps(msgs)}, max_new_tokens=3)
    content = last_call(chat)["msgs"][0]["content"]
    assert [type(p).__name__ for p in content] == ["Image", "Image", "str"]
    assert content[0].getpixel((0, 0)) == (255, 0, 0) and content[1].getpixel((0, 0)) == (0, 0, 255)
    assert last_call(chat)["image"] is None


@pytest.mark.parametrize("flavour", ["v25", "v26"])
def test_sampling_streams_and_beam_search_does_not(legacy_chats, flavour, image_file):
    chat = legacy_chats[flavour]
    request = ask("Tell me a story.", img2base64(image_file()))
    pieces = list(chat.stream(request, max_new_tokens=30))
    assert last_call(chat)["stream"] is True and len(pieces) >= 1
    beam = list(chat.stream(request, decode_type="Beam Search", num_beams=2, max_new_tokens=8))
    call = last_call(chat)
    assert call["stream"] is False and len(beam) <= 1
    assert call["generate"]["num_beams"] == 2 and "top_p" not in call["generate"]


def test_system_prompt_goes_where_each_shape_takes_it(legacy_chats):
    legacy_chats["v26"].chat(ask("hi"), max_new_tokens=2, system_prompt="Be brief.")
    assert last_call(legacy_chats["v26"])["system_prompt"] == "Be brief."
    legacy_chats["v1"].chat(ask("hi"), max_new_tokens=2, system_prompt="Be brief.")
    assert last_call(legacy_chats["v1"])["msgs"][0]["content"].startswith("Be brief.")


@pytest.mark.parametrize("frames, slices", [(8, 2), (20, 1)])
def test_video_as_frames_with_the_documented_options(legacy_chats, frames, slices):
    chat = legacy_chats["v26"]
    video = Video(frames=[Image.new("RGB", (32, 32), (0, 200, 0)) for _ in range(frames)], fps=1.0, duration=float(frames))
    conversation = Conversation([Message("user", [video, "What happens?"])])
    "".join(chat.stream_conversation(conversation, chat.settings(max_new_tokens=2)))
    call = last_call(chat)
    assert (call["use_image_id"], call["max_slice_nums"], call["max_inp_length"]) == (False, slices, 4352)
    assert sum(isinstance(p, Image.Image) for p in call["msgs"][0]["content"]) == frames


def test_stop_reaches_the_remote_generate(legacy_chats):
    chat = legacy_chats["v26"]
    request = ask("Tell me everything.")
    tokens = lambda text: len(chat.backend.tokenizer(text)["input_ids"])  # noqa: E731
    # Beam search is deterministic and is not cut short by our own loop, only by generate() itself.
    free = chat.chat(request, decode_type="Beam Search", max_new_tokens=60)
    stop = threading.Event()
    stop.set()
    stopped = "".join(chat.stream(request, decode_type="Beam Search", max_new_tokens=60, stop_event=stop))
    # One step of generation (a byte-level token may re-tokenise into a few) against a long free answer.
    assert tokens(free) > 20
    assert tokens(stopped) <= 4


def test_broken_remote_code_says_which_transformers_to_use(legacy_folders, tmp_path):
    folder = tmp_path / "MiniCPM-V-2_6-broken"
    shutil.copytree(legacy_folders["v26"], folder)
    code = folder / "modeling_tiny_legacy.py"
    code.write_text("raise ImportError('cannot import name LlamaFlashAttention2')\n" + code.read_text())
    with pytest.raises(ModelLoadError, match=r"transformers==4\.40\.0"):
        MiniCPMVChat(str(folder), device="cpu")


def test_pinned_modules_move_to_the_first_gpu():
    from minicpmv_app.backends.remote_code import pin_modules

    spread = {"vpm.encoder.layers.0": 0, "vpm.encoder.layers.1": 1, "resampler": 1, "llm.model.embed_tokens": 1,
              "llm.model.layers": 1, "llm.lm_head": 1}
    pinned = pin_modules(spread, ("vpm", "resampler", "llm.model.embed_tokens", "llm.lm_head"), 0)
    assert pinned == {"vpm": 0, "resampler": 0, "llm.model.embed_tokens": 0, "llm.model.layers": 1, "llm.lm_head": 0}
    coarse = pin_modules({"llm": 1, "vpm": 1}, ("vpm", "llm.lm_head"), 0)
    assert coarse == {"llm": 1, "vpm": 0, "llm.lm_head": 0}  # longest prefix wins when loading


def test_multi_gpu_map_of_a_remote_checkpoint(legacy_folders, legacy_chats):
    """accelerate balances the tiny legacy model over two (described) GPUs; the pinned parts share GPU 0."""
    import torch

    from minicpmv_app.backends.remote_code import multi_gpu_device_map

    model_class = type(legacy_chats["v26"].backend.model)
    device_map = multi_gpu_device_map(model_class, legacy_folders["v26"], torch.float32, max_memory={0: 2_000_000, 1: 20_000_000, "cpu": 10**9})
    assert set(device_map.values()) >= {0, 1}
    assert device_map["llm.lm_head"] == 0
