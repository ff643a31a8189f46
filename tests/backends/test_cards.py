"""Model cards as data: each native model type gets its own card's knobs and defaults, and a model type without a
card is refused in one line before anything loads."""

from __future__ import annotations

import json
import shutil

import pytest

from minicpmv_app import MiniCPMVChat, ModelLoadError
from minicpmv_app.backends.cards import CARDS, FROM_PROCESSOR
from minicpmv_app.messages import Conversation, Message
from minicpmv_app.tiny import tiny_path

# The released MiniCPM-V 4.6 (Instruct) chat template's opening and generation prompt (openbmb/MiniCPM-V-4.6 at
# 8169864, as copied in github moderately-ai/lmbrrr docs/research/models/minicpm-v-4.6/hf-model/api-model.json).
RELEASED_46_TEMPLATE_EDGES = (
    "{%- if enable_thinking is not defined -%}{%- set enable_thinking = false -%}{%- endif -%}",
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- else %}{{- '<think>\\n' }}{%- endif %}{%- endif %}",
)


def with_template(folder, target, template: str):
    shutil.copytree(folder, target)
    (target / "chat_template.jinja").write_text(template)
    return target


def test_every_card_cites_a_source_for_each_knob():
    for card in CARDS.values():
        assert set(card.sources) == set(card.knobs), card.model_type
        assert all(card.sources.values())


def test_4_7_thinks_by_default_and_the_toggle_works_both_ways(cache_dir):
    chat = MiniCPMVChat(str(tiny_path(cache_dir, "4.7")), device="cpu")
    assert chat.knobs["enable_thinking"] is True  # its template opens <think> unless told not to
    conversation = Conversation([Message("user", ["hello"])])
    tokenizer = chat.backend.processor.tokenizer

    def prompt(**knobs) -> str:
        return tokenizer.decode(chat.backend.model_inputs(conversation, chat.settings(**knobs))["input_ids"][0])

    assert prompt().endswith("<think>\n")
    assert prompt(enable_thinking=False).endswith("<think>\n\n</think>\n\n")


def test_processor_defaults_are_the_checkpoints_own(cache_dir):
    chat = MiniCPMVChat(str(tiny_path(cache_dir, "ocr")), device="cpu")
    processor = chat.backend.processor
    assert CARDS["minicpm_ocr"].knobs["max_slice_nums"] is FROM_PROCESSOR
    assert chat.knobs == {"downsample_mode": "4x", "max_slice_nums": processor.image_processor.max_slice_nums,
                          "max_num_frames": processor.video_processor.max_num_frames, "stack_frames": 1}
    assert "enable_thinking" not in chat.knobs  # its template has no switch


def test_the_released_4_6_instruct_template_starts_with_thinking_off(tiny_folder, tmp_path):
    """The released template closes an empty think block unless enable_thinking is true; the Cookbook's llama.cpp
    guide says Instruct must never think (its output breaks). The app starts it off and sends the switch off."""
    from minicpmv_app.tiny import CHAT_TEMPLATE

    opening, generation = RELEASED_46_TEMPLATE_EDGES
    body = CHAT_TEMPLATE[:CHAT_TEMPLATE.index("{%- if add_generation_prompt")]
    folder = with_template(tiny_folder, tmp_path / "instruct", opening + body + generation)
    chat = MiniCPMVChat(str(folder), device="cpu")
    assert chat.knobs["enable_thinking"] is False
    inputs = chat.backend.model_inputs(Conversation([Message("user", ["hello"])]), chat.settings())
    assert chat.backend.processor.tokenizer.decode(inputs["input_ids"][0]).endswith("<think>\n\n</think>\n\n")


def test_a_qwen2_vl_folder_is_refused_in_one_line_before_loading(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "qwen2_vl", "architectures": ["Qwen2VLForConditionalGeneration"], "hidden_size": 1536}))
    with pytest.raises(ModelLoadError) as refused:
        MiniCPMVChat(str(tmp_path), device="cpu")  # no weights or tokenizer here: loading would fail otherwise
    message = str(refused.value)
    assert refused.value.key == "not_minicpmv" and len(message.splitlines()) == 1
    assert "'qwen2_vl'" in message and "MiniCPM-V 4.7" in message and "MiniCPM-OCR" in message


@pytest.mark.parametrize("variant", ["4.7", "4.7-moe", "ocr"])
def test_each_new_model_answers_two_pictures_then_a_video_at_4x_and_16x(cache_dir, clip, variant):
    """Random weights: the answers are noise, but each turn runs the whole path (processor, vision tower at both
    detail modes, the language model, its mixture of experts for 35B-A3B) and ends as an answer, not an error."""
    from minicpmv_app.media.video import load_video
    from minicpmv_app.tiny_task import draw

    chat = MiniCPMVChat(str(tiny_path(cache_dir, variant)), device="cpu")
    pictures = [draw("red", "square", size=(640, 480)), draw("blue", "circle", size=(300, 500))]
    for mode in ("16x", "4x"):
        settings = chat.settings(decode_type="Beam Search", num_beams=1, max_new_tokens=4, downsample_mode=mode)
        answer = "".join(chat.stream_conversation(Conversation([Message("user", [*pictures, "Compare them."])]), settings))
        assert isinstance(answer, str)
        video = load_video(clip(seconds=4, fps=4), plan=chat.frame_plan(settings))
        assert isinstance("".join(chat.stream_conversation(Conversation([Message("user", [video, "What moves?"])]),
                                                           settings)), str)
