"""OmniLMM's configuration: Mistral's, plus the vision tower and resampler keys of the released config.json."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import MistralConfig


@strict
class OmniLMMConfig(MistralConfig):
    """The keys openbmb/OmniLMM-12B's config.json adds to Mistral's.

    ``mm_vision_tower`` is a timm model name (the release: ``eva02_enormous_patch14_clip_224.laion2b_plus``);
    ``mm_vision_tower_kwargs`` (absent in the release) overrides timm's sizes, so a tiny test checkpoint can shrink
    the tower. ``num_query`` image tokens (a square grid) stand for each picture, at ``image_size`` pixels a side.
    """

    model_type = "omnilmm"

    mm_vision_tower: str = "eva02_enormous_patch14_clip_224.laion2b_plus"
    mm_vision_tower_kwargs: dict | None = None
    num_query: int = 256
    image_size: int = 448
    mm_use_im_start_end: bool = True

    def __post_init__(self, **kwargs):
        self.mm_vision_tower_kwargs = dict(self.mm_vision_tower_kwargs or {})
        return super().__post_init__(**kwargs)
