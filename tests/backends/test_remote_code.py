"""What each legacy ``chat()`` shape receives, built from the signatures docs/MODEL_API.md documents.

The real code of 2.0 and 2.6 runs in tests/runtimes/test_legacy_corpus.py; these cover the argument building for
every shape (2.5 included, whose code is not in the corpus) without a model.
"""

from PIL import Image
import pytest

from minicpmv_app.backends.remote_code import chat_arguments, detect_flavour, flavour_knobs, pin_modules
from minicpmv_app.errors import UnsupportedFeatureError
from minicpmv_app.media.video import Video
from minicpmv_app.messages import Conversation, Message
from minicpmv_app.presets import resolve


# The documented signatures (docs/MODEL_API.md, "Legacy chat()"), without bodies: only their parameters matter here.
def chat_v1(self, image, msgs, context, tokenizer, vision_hidden_states=None, max_new_tokens=1024, sampling=True,
            max_inp_length=2048, **kwargs): ...


def chat_v25(self, image, msgs, tokenizer, processor=None, vision_hidden_states=None, max_new_tokens=1024,
             sampling=True, max_inp_length=2048, system_prompt="", stream=False, **kwargs): ...


def chat_v26(self, image, msgs, tokenizer, processor=None, vision_hidden_states=None, max_new_tokens=2048,
             min_new_tokens=0, sampling=True, max_inp_length=8192, system_prompt="", stream=False,
             max_slice_nums=None, use_image_id=None, **kwargs): ...


# MiniCPM-V 4.5 / MiniCPM-o 4.5: as 2.6, plus the cards' enable_thinking.
def chat_v45(self, image, msgs, tokenizer, processor=None, vision_hidden_states=None, max_new_tokens=2048,
             min_new_tokens=0, sampling=True, max_inp_length=8192, system_prompt="", stream=False,
             max_slice_nums=None, use_image_id=None, enable_thinking=False, **kwargs): ...


V1, V25, V26, V45 = (detect_flavour(f) for f in (chat_v1, chat_v25, chat_v26, chat_v45))
RED = Image.new("RGB", (32, 32), (255, 0, 0))
BLUE = Image.new("RGB", (32, 32), (0, 0, 255))


def conversation(*parts, system=""):
    return Conversation([Message("user", list(parts))], system)


def test_shapes_are_read_from_the_signature():
    assert (V1.name, V25.name, V26.name) == ("1.0/2.0", "2.5", "2.6+")
    assert V1.returns_tuple and not V1.can_stream
    assert V25.can_stream and V25.needs_image and not V25.images_in_content
    assert V26.images_in_content and V26.video_options


def test_v1_gets_the_image_apart_and_a_context():
    kwargs = chat_arguments(V1, conversation(RED, "What?"), resolve(), tokenizer="tok")
    assert kwargs["image"] is RED and kwargs["context"] is None and kwargs["tokenizer"] == "tok"
    assert kwargs["msgs"] == [{"role": "user", "content": "What?"}]


def test_v25_takes_str_content_and_refuses_a_second_image_or_none():
    kwargs = chat_arguments(V25, conversation(RED, "What?"), resolve(), tokenizer=None)
    assert kwargs["image"] is RED and kwargs["msgs"][0]["content"] == "What?"
    with pytest.raises(UnsupportedFeatureError, match="one image"):
        chat_arguments(V25, conversation(RED, BLUE, "Compare"), resolve(), tokenizer=None)
    with pytest.raises(UnsupportedFeatureError, match="upload one first"):
        chat_arguments(V25, conversation("Hello"), resolve(), tokenizer=None)


def test_v26_gets_images_inside_content_in_order():
    kwargs = chat_arguments(V26, conversation(RED, BLUE, "Compare."), resolve(), tokenizer=None)
    assert kwargs["image"] is None
    assert kwargs["msgs"][0]["content"] == [RED, BLUE, "Compare."]


def test_decoding_settings_follow_the_preset():
    beam = chat_arguments(V26, conversation("hi"), resolve("Beam Search", num_beams=2, max_new_tokens=8), tokenizer=None)
    assert beam["sampling"] is False and beam["num_beams"] == 2 and beam["max_new_tokens"] == 8 and "top_p" not in beam
    sampling = chat_arguments(V26, conversation("hi"), resolve(top_p=0.5), tokenizer=None)
    assert sampling["sampling"] is True and sampling["top_p"] == 0.5 and "num_beams" not in sampling


def test_system_prompt_goes_where_each_shape_takes_it():
    assert chat_arguments(V26, conversation("hi", system="Be brief."), resolve(), None)["system_prompt"] == "Be brief."
    v1 = chat_arguments(V1, conversation(RED, "hi", system="Be brief."), resolve(), None)
    assert "system_prompt" not in v1 and v1["msgs"][0]["content"].startswith("Be brief.")


@pytest.mark.parametrize("frames, slices", [(8, 2), (20, 1)])
def test_video_as_frames_with_the_documented_options(frames, slices):
    video = Video(frames=[Image.new("RGB", (32, 32), (0, 200, 0)) for _ in range(frames)], fps=1.0, duration=float(frames))
    kwargs = chat_arguments(V26, conversation(video, "What happens?"), resolve(), None)
    assert (kwargs["use_image_id"], kwargs["max_slice_nums"], kwargs["max_inp_length"]) == (False, slices, 4352)
    assert sum(isinstance(p, Image.Image) for p in kwargs["msgs"][0]["content"]) == frames
    with pytest.raises(UnsupportedFeatureError, match="video"):
        chat_arguments(V25, conversation(video, "What happens?"), resolve(), None)


def test_pinned_modules_move_to_the_first_gpu():
    spread = {"vpm.encoder.layers.0": 0, "vpm.encoder.layers.1": 1, "resampler": 1, "llm.model.embed_tokens": 1,
              "llm.model.layers": 1, "llm.lm_head": 1}
    pinned = pin_modules(spread, ("vpm", "resampler", "llm.model.embed_tokens", "llm.lm_head"), 0)
    assert pinned == {"vpm": 0, "resampler": 0, "llm.model.embed_tokens": 0, "llm.model.layers": 1, "llm.lm_head": 0}
    coarse = pin_modules({"llm": 1, "vpm": 1}, ("vpm", "llm.lm_head"), 0)
    assert coarse == {"llm": 1, "vpm": 0, "llm.lm_head": 0}  # longest prefix wins when loading


def test_each_shape_offers_its_knobs_and_passes_them_as_its_card_does():
    assert flavour_knobs(V1, {}) == {} and flavour_knobs(V25, {}) == {}
    assert flavour_knobs(V26, {"slice_config": {"max_slice_nums": 9}}) == {"max_slice_nums": 9, "max_num_frames": 64}
    knobs = flavour_knobs(V45, {"model_type": "minicpmv", "version": 4.5})
    assert knobs == {"enable_thinking": False, "max_slice_nums": 9, "max_num_frames": 64}
    # MiniCPM-o 4.5 whose chat() takes enable_thinking through **kwargs: known by its generation.
    assert "enable_thinking" in flavour_knobs(V26, {"model_type": "minicpmo", "version": "4.5"})
    kwargs = chat_arguments(V45, conversation(RED, "What?"), resolve(enable_thinking=True, max_slice_nums=4, knobs=knobs), None)
    assert (kwargs["enable_thinking"], kwargs["max_slice_nums"]) == (True, 4)
    assert "enable_thinking" not in chat_arguments(V26, conversation(RED, "What?"), resolve(), None)
