"""What reaches ``generate()`` for MiniCPM-V 4.6, 4.7 (dense and mixture of experts) and MiniCPM-OCR equals each
model card's reference call, tensor for tensor (tiny checkpoints of transformers' own classes).

The reference is the card's own code path (github OpenBMB/MiniCPM-V README, 4.6 section):
``processor.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=True,
return_tensors="pt", downsample_mode=..., max_slice_nums=36)`` for an image, and with
``max_num_frames``, ``stack_frames``, ``max_slice_nums=1``, ``use_image_id=False`` for a video file, which
transformers then loads and samples itself. The app decodes the video with its own decoder instead; the frames
and token layout must come out the same. For 4.7 the reference is transformers' model doc (no 4.7 card text was
reachable): ``apply_chat_template(messages, ..., processor_kwargs={"downsample_mode": ...})`` and no slice or frame
options; 4.7 also gets ``mm_token_type_ids``, from which the model computes its canvas M-RoPE positions. For
MiniCPM-OCR, the processor's own defaults (4x) with the mode passed the same way.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from minicpmv_app.backends.cards import MINICPMV_4_6
from minicpmv_app.backends.native import NativeBackend, build_inputs
from minicpmv_app.media.video import load_video, write_video
from minicpmv_app.messages import Conversation, Message
from minicpmv_app.tiny_task import draw

QUESTION = "What colour is the shape?"


VARIANTS = ("4.6", "4.7", "4.7-moe", "ocr")
# The keys each model's generate() reads: 4.7 also computes its canvas M-RoPE from mm_token_type_ids.
IMAGE_KEYS = {v: ["input_ids", "attention_mask", "pixel_values", "target_sizes"] for v in VARIANTS}
VIDEO_KEYS = {v: ["input_ids", "pixel_values_videos", "target_sizes_videos"] for v in VARIANTS}
for _variant in ("4.7", "4.7-moe"):
    IMAGE_KEYS[_variant] = IMAGE_KEYS[_variant] + ["mm_token_type_ids"]
    VIDEO_KEYS[_variant] = VIDEO_KEYS[_variant] + ["mm_token_type_ids"]


def card_image_options(variant: str, mode: str) -> dict:
    """Each card's own image call (module docstring)."""
    if variant == "4.6":
        return {"downsample_mode": mode, "max_slice_nums": 36}
    return {"processor_kwargs": {"downsample_mode": mode}}


def card_video_options(variant: str, stack: int) -> dict:
    options = {"downsample_mode": "16x", "max_num_frames": 64, "stack_frames": stack}
    if variant == "4.6":
        options.update(max_slice_nums=1, use_image_id=False)
    return options


@pytest.fixture(scope="module")
def chats(tiny_chat, cache_dir):
    from minicpmv_app import MiniCPMVChat
    from minicpmv_app.tiny import tiny_path

    loaded = {"4.6": tiny_chat}
    loaded.update({v: MiniCPMVChat(str(tiny_path(cache_dir, v)), device="cpu") for v in VARIANTS[1:]})
    return loaded


def reference_image_call(processor, image, **options):
    messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": QUESTION}]}]
    return processor.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=True,
                                         return_tensors="pt", **options)


def assert_same(ours, reference, keys):
    for key in keys:
        assert torch.equal(ours[key], reference[key]), key


@pytest.fixture(scope="module")
def large_picture():
    return draw("red", "square", size=(1792, 1344))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("mode", ["16x", "4x"])
def test_a_large_image_reaches_generate_as_the_card_builds_it(chats, large_picture, mode, variant):
    chat = chats[variant]
    backend: NativeBackend = chat.backend
    settings = chat.settings(downsample_mode=mode)
    ours = backend.model_inputs(Conversation([Message("user", [large_picture, QUESTION])]), settings)
    reference = reference_image_call(backend.processor, large_picture, **card_image_options(variant, mode))
    assert_same(ours, reference, IMAGE_KEYS[variant])


def image_tokens(inputs, processor) -> int:
    return int((inputs["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum())


def test_4x_gives_four_times_the_visual_tokens_of_16x_and_36_slices_many_more_than_9(tiny_chat, large_picture):
    backend = tiny_chat.backend
    conversation = Conversation([Message("user", [large_picture, QUESTION])])
    count = {mode: image_tokens(backend.model_inputs(conversation, tiny_chat.settings(downsample_mode=mode)),
                                backend.processor) for mode in ("16x", "4x")}
    # The documented factor, up to each tile's rounding to whole merge blocks (2303 against 4 x 575 here).
    assert abs(count["4x"] / count["16x"] - 4) < 0.02
    nine = image_tokens(backend.model_inputs(conversation, tiny_chat.settings(max_slice_nums=9)), backend.processor)
    assert count["16x"] > 2 * nine  # the card's 36 slices, not the processor's default 9


def test_the_card_defaults_are_the_models_knobs(tiny_chat):
    assert tiny_chat.knobs == {"enable_thinking": False, "downsample_mode": "16x", "max_slice_nums": 36,
                               "max_num_frames": 128, "stack_frames": 1}
    assert dict(MINICPMV_4_6.knobs) == tiny_chat.knobs


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """150 s at 4 fps whose frames differ (a moving shape), small so the reference can load it quickly."""
    path = tmp_path_factory.mktemp("clip") / "long.mp4"
    frames = []
    for n in range(600):
        image = Image.new("RGB", (112, 84), (230, 230, 230))
        x = (n * 3) % 90
        image.paste((30, 70, 220), (x, 20, x + 20, 60))
        frames.append(image)
    write_video(path, frames, fps=4, size=(112, 84))
    return path


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("stack", [1, 3])
def test_a_150s_video_reaches_generate_as_the_card_builds_it(chats, long_clip, stack, variant):
    """The card's call loads the file itself with torchcodec (``get_frames_at(indices)``: the sampled frames in the
    sampler's order, main frames then sub-frames, repeats kept), which needs FFmpeg's shared libraries, absent
    here. So the reference decodes the same frames with transformers' own ``load_video(backend="pyav")`` and puts
    them in that order itself. (transformers' PyAV reader alone returns them sorted and de-duplicated, which
    mixes sub-frames into main frames when stacking: 174 frames instead of 192 here.) Then the processor runs with
    the card's video options; the app decodes with its own reader and frame plan."""
    from functools import partial

    from transformers.video_utils import load_video as transformers_load_video

    chat = chats[variant]
    backend = chat.backend
    processor = backend.processor
    settings = chat.settings(max_num_frames=64, stack_frames=stack, downsample_mode="16x")
    video = load_video(long_clip, plan=chat.frame_plan(settings), backend="pyav")
    ours = build_inputs(processor, [Conversation([Message("user", [video, QUESTION])])], knobs=settings.knobs,
                        card=backend.model_card)

    sampler = partial(processor.video_processor.sample_frames, max_num_frames=64, stack_frames=stack)
    wanted: list = []

    def every_sampled_frame(metadata, **kwargs):
        wanted.extend(sampler(metadata))
        return sorted(set(wanted))

    decoded, metadata = transformers_load_video(str(long_clip), backend="pyav", sample_indices_fn=every_sampled_frame)
    position = {index: n for n, index in enumerate(sorted(set(wanted)))}
    frames = decoded[[position[index] for index in wanted]]  # as get_frames_at(indices) returns them
    metadata.frames_indices = wanted
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUESTION}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    reference = processor(text=[text], videos=[frames], video_metadata=[metadata], do_sample_frames=False,
                          return_tensors="pt", **card_video_options(variant, stack))
    # 150 s > 64 frames: 64 main frames; stacking 3 adds 2 sub-frames a second (128 of them, composited by pairs).
    assert len(video.frames) == len(frames) == 64 * (1 if stack == 1 else 3)
    assert video.indices == list(metadata.frames_indices)
    assert_same(ours, reference, VIDEO_KEYS[variant])


def test_sampling_defaults_come_from_the_checkpoints_generation_config(tiny_folder, tmp_path, shared_dir):
    """The released 4.6 generation_config.json (temperature 0.7, top_p 1.0, top_k 0, repetition_penalty 1.0)
    replaces upstream's 2.6-era preset (top_p 0.8, top_k 100, 1.05) unless the person changes a value."""
    import json
    import shutil

    from minicpmv_app import MiniCPMVChat

    released = json.loads((shared_dir / "model_configs" / "minicpm-v-4.6" / "generation_config.json").read_text())
    folder = tmp_path / "with-released-sampling"
    shutil.copytree(tiny_folder, folder)
    config = json.loads((folder / "generation_config.json").read_text())
    config.update({k: released[k] for k in ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty")})
    (folder / "generation_config.json").write_text(json.dumps(config))
    chat = MiniCPMVChat(str(folder), device="cpu")
    assert dict(chat.settings().params) == {"temperature": 0.7, "top_p": 1.0, "top_k": 0, "repetition_penalty": 1.0}
    assert chat.settings(top_p=0.5).params["top_p"] == 0.5
    # The UIs start from them too (a slider that started at upstream's value would override the checkpoint).
    from minicpmv_app.ui.gradio_26 import build_demo

    sliders = {c["props"].get("label"): c["props"].get("value") for c in build_demo(chat, lang="en").config["components"]
               if c.get("type") == "slider"}
    assert (sliders["Top p"], sliders["Top k"], sliders["Repetition penalty"]) == (1.0, 0, 1.0)
    # A checkpoint that sets none keeps upstream's preset.
    assert dict(MiniCPMVChat(str(tiny_folder), device="cpu").settings().params)["top_k"] == 100
