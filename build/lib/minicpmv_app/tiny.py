"""Build the offline ``tiny`` checkpoints: transformers' native MiniCPM-V 4.6 classes at toy sizes, and the same
for MiniCPM-V 4.7 (dense and mixture-of-experts) and MiniCPM-OCR (``VARIANTS``; tensor-level tests, not answers).

Everything is made here, with a fixed seed and no network: a byte-level BPE tokenizer trained on a small
built-in corpus, a chat template, image/video processors with a small slice resolution, and random weights.
The folder is saved with ``save_pretrained`` and loaded back through the same ``from_pretrained`` path as a
real checkpoint, so the whole app (and ``transformers serve``) runs on it. Its answers are noise.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The trained checkpoint `--model tiny` loads (scripts/train_tiny.py writes it; it is committed).
TRAINED_TINY = Path(__file__).resolve().parent / "tiny_model"
SEED = 1234
# Bump when the recipe changes so an old cached build is not reused.
RECIPE_VERSION = 3

SPECIAL_TOKENS = {
    "eos_token": "<|im_end|>",
    "pad_token": "<|endoftext|>",
    "unk_token": "<unk>",
}
# The names the MiniCPM-V 4.6 processor reads from the tokenizer.
MULTIMODAL_TOKENS = {
    "image_token": "<|image_pad|>",
    "video_token": "<|video_pad|>",
    "image_start_token": "<image>",
    "image_end_token": "</image>",
    "slice_start_token": "<slice>",
    "slice_end_token": "</slice>",
    "image_id_start_token": "<image_id>",
    "image_id_end_token": "</image_id>",
}
CHAT_TOKENS = ["<|im_start|>"]
# Words of the answer language that real MiniCPM-V tokenizers also hold whole: reasoning and grounding tags, and
# (the tiny's own choice) the coordinates of its 0-1000 grid in steps of 50, so a box costs four tokens.
# Not special: decoding with skip_special_tokens keeps them, as it does for the real checkpoints.
TEXT_TOKENS = ["<think>", "</think>", "<ref>", "</ref>", "<box>", "</box>", "<point>", "</point>", "<quad>", "</quad>"]
GRID_STEP = 50
NUMBER_TOKENS = [str(n) for n in range(0, 1001, GRID_STEP)]

# ChatML, as Qwen-based MiniCPM-V checkpoints use; one placeholder per image or video, which the processor expands
# into the slice layout. ``enable_thinking`` works as in Qwen3's template: off (the default here) closes an empty
# <think></think> block in the prompt, so the model answers at once; on leaves the block to the model.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{- '<|image_pad|>' -}}"
    "{%- elif part['type'] == 'video' -%}{{- '<|video_pad|>' -}}"
    "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}"
    "{%- if not (enable_thinking is defined and enable_thinking) -%}{{- '<think>\\n\\n</think>\\n\\n' -}}{%- endif -%}"
    "{%- endif -%}"
)

# MiniCPM-V 4.7's template thinks unless told not to (llama.cpp docs/multimodal/minicpmv4.7.md: pass
# enable_thinking: false to turn it off): the tiny 4.7 template opens <think> by default, as Qwen3.5's does.
CHAT_TEMPLATE_THINKING_ON = CHAT_TEMPLATE.replace(
    "{%- if not (enable_thinking is defined and enable_thinking) -%}{{- '<think>\\n\\n</think>\\n\\n' -}}{%- endif -%}",
    "{%- if enable_thinking is defined and not enable_thinking -%}{{- '<think>\\n\\n</think>\\n\\n' -}}"
    "{%- else -%}{{- '<think>\\n' -}}{%- endif -%}",
)
# MiniCPM-OCR's block prompts need no thinking: its template has no switch.
CHAT_TEMPLATE_NO_THINKING = CHAT_TEMPLATE.replace(
    "{%- if not (enable_thinking is defined and enable_thinking) -%}{{- '<think>\\n\\n</think>\\n\\n' -}}{%- endif -%}", "")
assert CHAT_TEMPLATE_THINKING_ON != CHAT_TEMPLATE != CHAT_TEMPLATE_NO_THINKING

# transformers' declarative response format (as its Qwen3.5 fallback): <think>…</think> is reasoning, the rest the
# answer. The prompt may already hold the opener or a closed empty block; the start anchor lets the parser see it.
RESPONSE_TEMPLATE = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "reasoning_content": {"open": "<think>", "close": "</think>", "content": "text"},
        "content": {"close_pattern": r"\s*(?:<\|im_end\|>|<\|endoftext\|>)", "content": "text"},
    },
}

# A small corpus so the BPE has real merges (words the demos and tests use, in two languages).
_CORPUS = [
    "What is in the image? Describe the picture in detail. Compare the two images.",
    "The image shows a red square, a blue circle and a green triangle on a white background.",
    "What colour is the shape? red orange yellow green blue purple pink black white grey",
    "circle square triangle first image second image video frame chart diagram text",
    "Read the text in the image. The chart shows sales by month. Summarise the video.",
    "你好，请描述这张图片。图中有什么？这是一个红色的正方形。",
    "The quick brown fox jumps over the lazy dog. 0123456789",
    "I see a red square. Where is the shape? Please provide the bounding box coordinate of the region this "
    "sentence describes: shape",
]

SIZES: dict[str, Any] = {
    "text": dict(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        # One linear-attention layer keeps the real 4.6 code path in use; full attention does the looking.
        layer_types=["linear_attention", "full_attention", "full_attention"],
        linear_num_key_heads=2,
        linear_num_value_heads=2,
        linear_key_head_dim=32,
        linear_value_head_dim=32,
        linear_conv_kernel_dim=4,
        max_position_embeddings=4096,
    ),
    "vision": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        patch_size=14,
        image_size=224,
    ),
    # A 224x224 slice is 16x16 patches -> 16 image tokens at the default 16x downsampling.
    "scale_resolution": 224,
    "max_slice_nums": 4,
    "insert_layer_id": 1,
}


# name -> (model type, chat template, text-model overrides). "4.6" is `tiny-random`; the others are
# `tiny-random-4.7`, `tiny-random-4.7-moe` and `tiny-random-ocr`.
VARIANTS = {
    "4.6": ("minicpmv4_6", CHAT_TEMPLATE, {}),
    "4.7": ("minicpmv4_7", CHAT_TEMPLATE_THINKING_ON, {}),
    # 35B-A3B's shape at toy size: Qwen3.5's mixture of experts (4 experts, 2 per token, one shared expert).
    "4.7-moe": ("minicpmv4_7", CHAT_TEMPLATE_THINKING_ON, dict(
        model_type="qwen3_5_moe_text", num_experts=4, num_experts_per_tok=2, moe_intermediate_size=64,
        shared_expert_intermediate_size=64)),
    "ocr": ("minicpm_ocr", CHAT_TEMPLATE_NO_THINKING, {}),
}


def trained_tiny_available() -> bool:
    return (TRAINED_TINY / "config.json").is_file() and (TRAINED_TINY / "model.safetensors").is_file()


def default_cache_dir() -> Path:
    root = os.environ.get("MINICPMV_APP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "minicpmv-app"
    )
    return Path(root)


def tiny_path(cache_dir: str | os.PathLike | None = None, variant: str = "4.6") -> Path:
    """Folder of the tiny checkpoint (of ``variant``), building it on first use (about a second)."""
    name = f"tiny-v{RECIPE_VERSION}" if variant == "4.6" else f"tiny-{variant}-v{RECIPE_VERSION}"
    folder = Path(cache_dir or default_cache_dir()) / name
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Build into a private temp folder, then rename: two processes starting at once never see half a build.
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=folder.parent))
    try:
        build_tiny_checkpoint(staging, variant=variant)
        try:
            staging.rename(folder)
        except OSError:
            if not (folder / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("Built the tiny checkpoint in %s", folder)
    return folder


def build_tokenizer(chat_template: str = CHAT_TEMPLATE):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [SPECIAL_TOKENS["pad_token"], SPECIAL_TOKENS["unk_token"], SPECIAL_TOKENS["eos_token"]]
    specials += CHAT_TOKENS + list(MULTIMODAL_TOKENS.values())
    backend = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=640,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_CORPUS, trainer=trainer)
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in TEXT_TOKENS + NUMBER_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        extra_special_tokens=dict(MULTIMODAL_TOKENS),
        chat_template=chat_template,
        model_max_length=4096,
        **SPECIAL_TOKENS,
    )
    # How a reply splits into reasoning and answer, for `transformers serve` (it sends `reasoning_content` deltas).
    tokenizer.response_template = RESPONSE_TEMPLATE
    return tokenizer


def build_processor(tokenizer, model_type: str = "minicpmv4_6"):
    from transformers.models import minicpm_ocr, minicpmv4_6, minicpmv4_7

    image: Any
    video: Any
    processor_class: Any
    shared: dict[str, Any] = dict(scale_resolution=SIZES["scale_resolution"], max_slice_nums=SIZES["max_slice_nums"], patch_size=14)
    if model_type == "minicpm_ocr":
        image, video = minicpm_ocr.MiniCPMOcrImageProcessor(**shared), minicpm_ocr.MiniCPMOcrVideoProcessor(**shared)
        processor_class = minicpm_ocr.MiniCPMOcrProcessor
    else:  # 4.7 is built on 4.6's image and video processors (transformers' auto mappings)
        image = minicpmv4_6.MiniCPMV4_6ImageProcessor(**shared)
        video = minicpmv4_6.MiniCPMV4_6VideoProcessor(**shared, max_num_frames=64)
        processor_class = minicpmv4_7.MiniCPMV4_7Processor if model_type == "minicpmv4_7" else minicpmv4_6.MiniCPMV4_6Processor
    return processor_class(image_processor=image, video_processor=video, tokenizer=tokenizer,
                           chat_template=tokenizer.chat_template)


def build_config(tokenizer, model_type: str = "minicpmv4_6", text_overrides=None):
    from transformers import AutoConfig

    vocab = len(tokenizer)
    text = dict(
        SIZES["text"],
        model_type="qwen3_5_text",
        vocab_size=vocab,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    text.update(text_overrides or {})
    extra: dict[str, Any] = {}
    if model_type == "minicpmv4_7":
        # Canvas M-RoPE places the markers around each crop: their ids live in config.json.
        ids = tokenizer.convert_tokens_to_ids
        extra = dict(image_start_id=ids(MULTIMODAL_TOKENS["image_start_token"]),
                     image_end_id=ids(MULTIMODAL_TOKENS["image_end_token"]),
                     slice_start_id=ids(MULTIMODAL_TOKENS["slice_start_token"]),
                     slice_end_id=ids(MULTIMODAL_TOKENS["slice_end_token"]),
                     newline_id=tokenizer.encode("\n", add_special_tokens=False)[0],
                     image_size=SIZES["vision"]["image_size"])
    elif model_type == "minicpmv4_6":
        extra = dict(image_size=SIZES["vision"]["image_size"])
    config_class: Any = type(AutoConfig.for_model(model_type))
    return config_class(
        text_config=text,
        vision_config=dict(SIZES["vision"]),
        insert_layer_id=SIZES["insert_layer_id"],
        image_token_id=tokenizer.convert_tokens_to_ids(MULTIMODAL_TOKENS["image_token"]),
        video_token_id=tokenizer.convert_tokens_to_ids(MULTIMODAL_TOKENS["video_token"]),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def build_tiny_checkpoint(folder: str | os.PathLike, *, seed: int = SEED, variant: str = "4.6") -> Path:
    """Write a complete tiny checkpoint folder. Same seed and versions give the same files."""
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig

    model_type, template, text_overrides = VARIANTS[variant]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(template)
    processor = build_processor(tokenizer, model_type)
    config = build_config(tokenizer, model_type, text_overrides)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, max_new_tokens=64
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "README.md").write_text(
        f"Tiny random {model_type} ({variant}) checkpoint built offline by minicpmv_app.tiny "
        f"(seed {seed}, recipe v{RECIPE_VERSION}). Its answers are noise: it exists to run and test the app.\n"
    )
    return folder


def fingerprint(folder: str | os.PathLike) -> str:
    """Hash of every file's bytes in a checkpoint folder (used to check the build is deterministic)."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


if __name__ == "__main__":
    import sys

    print(tiny_path(sys.argv[1] if len(sys.argv) > 1 else None))
