"""Each natively supported model type as its model card drives it: data, one card per ``config.json`` model_type.

A card holds the knobs the model takes with the card's defaults and where each comes from, the processor options
for images and for video frames, and the prompts the model offers (MiniCPM-OCR's block prompts). ``NativeBackend`` reads the card and holds no model's values itself; a new
model type is a new entry here. Sources: README, "Each model as its card drives it".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Optional

# github OpenBMB/MiniCPM-V README at 0dbb566d (the 4.6 section; line numbers of that file).
CARD_46 = "github OpenBMB/MiniCPM-V README @0dbb566d"


# A knob whose card passes nothing: the checkpoint's own processor default applies (read at load, see
# PROCESSOR_DEFAULTS), exactly what the card's call gets.
FROM_PROCESSOR = None
# knob -> (processor part, attribute) its default is read from
PROCESSOR_DEFAULTS = {
    "downsample_mode": ("image_processor", "downsample_mode"),
    "max_slice_nums": ("image_processor", "max_slice_nums"),
    "max_num_frames": ("video_processor", "max_num_frames"),
    "stack_frames": ("video_processor", "stack_frames"),
}


@dataclass(frozen=True)
class Prompt:
    """A fixed instruction the model was trained on (MiniCPM-OCR's block prompts)."""

    name: str  # locale key suffix: "ocr_prompt.<name>"
    text: str  # sent to the model as it is
    answer: str = "text"  # "text", "html" (a table) or "latex" (a formula): how the answer is shown


@dataclass(frozen=True)
class ModelCard:
    model_type: str
    name: str
    processor_class: str  # transformers' processor class for this model type
    knobs: Mapping[str, Any]  # settings.KNOBS the model takes -> the card's default (or FROM_PROCESSOR)
    sources: Mapping[str, str]  # knob -> where its default comes from
    image_options: Mapping[str, Any] = field(default_factory=dict)  # processor options for pictures
    video_options: Mapping[str, Any] = field(default_factory=dict)  # ... and for video frames
    prompts: tuple[Prompt, ...] = ()

    def prompt(self, name: str) -> Optional[Prompt]:
        return next((p for p in self.prompts if p.name == name), None)

    def knob_defaults(self, processor) -> dict:
        """The knobs with their defaults for this checkpoint (FROM_PROCESSOR ones read from its processor)."""
        knobs = {}
        for name, value in self.knobs.items():
            if value is FROM_PROCESSOR:
                part, attribute = PROCESSOR_DEFAULTS[name]
                value = getattr(getattr(processor, part), attribute)
            knobs[name] = value
        return knobs


def _card(**values) -> ModelCard:
    for key in ("knobs", "sources", "image_options", "video_options"):
        values[key] = MappingProxyType(dict(values.get(key) or {}))
    return ModelCard(**values)


# The 4.6 card's reference call: images keep id tags and take up to 36 slices; a video frame takes one slice and no
# id; up to 128 main frames, no stacking; 16x token compression.
MINICPMV_4_6 = _card(
    model_type="minicpmv4_6",
    name="MiniCPM-V 4.6",
    processor_class="MiniCPMV4_6Processor",
    knobs={"enable_thinking": False, "downsample_mode": "16x", "max_slice_nums": 36, "max_num_frames": 128,
           "stack_frames": 1},
    sources={
        "enable_thinking": "off unless the checkpoint's chat template thinks by default (4.6-Thinking: "
                           "OpenSQZ/MiniCPM-V-CookBook deployment/vllm/minicpm-v4_6_vllm.md L10)",
        "downsample_mode": f"{CARD_46} L244-253, L310 (to the processor and to generate)",
        "max_slice_nums": f"{CARD_46} L253, L305 (36 for image, 1 for video)",
        "max_num_frames": f"{CARD_46} L281-285, L306",
        "stack_frames": f"{CARD_46} L281-285, L307",
    },
    image_options={"use_image_id": True},
    video_options={"use_image_id": False, "max_slice_nums": 1},
)

# 4.7: the reference call of transformers' model doc (docs/source/en/model_doc/minicpmv4_7.md @10f463ec, "Usage"):
# apply_chat_template with no slice or frame options, so the 4.6 image/video processors' defaults (4.7 is built on
# them: models/auto/image_processing_auto.py, video_processing_auto.py) apply: 9 slices, 128 frames, no stacking;
# downsample_mode "via processor_kwargs and to model.generate"; use_image_id "applies to images only". Positions
# are computed by the model from the prompt's markers ("canvas M-RoPE", MiniCPMV4_7Model.get_rope_index, from the
# processor's mm_token_type_ids; the doc's `target_sizes_mrope` is not in transformers 5.24). Its template thinks by
# default (llama.cpp docs/multimodal/minicpmv4.7.md @41489f07: "The chat template enables thinking by default").
DOC_47 = "transformers docs/source/en/model_doc/minicpmv4_7.md @10f463ec"
MINICPMV_4_7 = _card(
    model_type="minicpmv4_7",
    name="MiniCPM-V 4.7",
    processor_class="MiniCPMV4_7Processor",
    knobs={"enable_thinking": True, "downsample_mode": "16x", "max_slice_nums": FROM_PROCESSOR,
           "max_num_frames": FROM_PROCESSOR, "stack_frames": FROM_PROCESSOR},
    sources={
        "enable_thinking": "llama.cpp docs/multimodal/minicpmv4.7.md @41489f07 (\"The chat template enables thinking "
                           "by default\"); read from the checkpoint's own template at load",
        "downsample_mode": f"{DOC_47}: \"16x (default)\", passed via processor_kwargs and to model.generate",
        "max_slice_nums": f"{DOC_47}: none passed, so the checkpoint's processor default (MiniCPMV4_6ImageProcessor: 9)",
        "max_num_frames": f"{DOC_47}: none passed, so the checkpoint's processor default (MiniCPMV4_6VideoProcessor: 128)",
        "stack_frames": f"{DOC_47}: none passed, so the checkpoint's processor default (MiniCPMV4_6VideoProcessor: 1)",
    },
    image_options={"use_image_id": True},
    video_options={},
)

# MiniCPM-OCR 1.0 reads text-dense pictures at 4x (its config's and image processor's default, transformers 5.24
# models/minicpm_ocr) block by block, one fixed prompt per kind of block; tables come back as HTML and formulas as
# LaTeX (github OpenBMB/MiniCPM-OCR release notes, SDK v1.0.2: "表格以 HTML 表示,公式以 LaTeX 表示"). Only the block
# prompts found in a public source are offered ("Text Recognition:", "Table Recognition:": the model's prompt table
# as packaged in huggingface.co/infosave/MiniCPM-OCR-1.0-cmf); whole-page layout analysis is a separate model
# (PP-DocLayoutV3) and out of scope.
OCR = "transformers 5.24 models/minicpm_ocr"
MINICPM_OCR = _card(
    model_type="minicpm_ocr",
    name="MiniCPM-OCR 1.0",
    processor_class="MiniCPMOcrProcessor",
    knobs={"downsample_mode": FROM_PROCESSOR, "max_slice_nums": FROM_PROCESSOR, "max_num_frames": FROM_PROCESSOR,
           "stack_frames": FROM_PROCESSOR},
    sources={
        "downsample_mode": f"{OCR}: the checkpoint's processor default (MiniCPMOcrImageProcessor: \"4x\", \"what "
                           "text-dense document images are read with\")",
        "max_slice_nums": f"{OCR}: the checkpoint's processor default (MiniCPMOcrImageProcessor: 9)",
        "max_num_frames": f"{OCR}: the checkpoint's processor default (MiniCPMOcrVideoProcessor: 128)",
        "stack_frames": f"{OCR}: the checkpoint's processor default (MiniCPMOcrVideoProcessor: 1)",
    },
    image_options={"use_image_id": True},
    video_options={},
    prompts=(
        Prompt("text", "Text Recognition:"),
        Prompt("table", "Table Recognition:", answer="html"),
    ),
)

CARDS: Mapping[str, ModelCard] = MappingProxyType({c.model_type: c for c in (MINICPMV_4_6, MINICPMV_4_7, MINICPM_OCR)})
_BY_PROCESSOR = {c.processor_class: c for c in CARDS.values()}


def card_for(model_type: Optional[str]) -> Optional[ModelCard]:
    return CARDS.get(model_type or "")


def card_for_processor(processor) -> ModelCard:
    """The card of the model type whose processor this is (4.6 for an unknown one, as before cards existed)."""
    return _BY_PROCESSOR.get(type(processor).__name__, MINICPMV_4_6)


def supported_names() -> str:
    return ", ".join(c.name for c in CARDS.values())
