"""OmniLMM: Mistral (transformers) reading image features from an EVA02 tower (timm) through a perceiver resampler.

Parameter names follow the released checkpoint (``model.vision_tower.*``, ``model.resampler.*``, ``model.layers.*``,
``lm_head.weight``), so its ``pytorch_model.bin`` loads as it is.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F
from transformers import MistralForCausalLM, MistralModel
from transformers.models.mistral.modeling_mistral import MistralPreTrainedModel

from .configuration_omnilmm import OmniLMMConfig

# The resampler's attention heads are 128 wide (the release: 4096 / 32 heads).
RESAMPLER_HEAD_DIM = 128
LAYER_NORM_EPS = 1e-6


def build_vision_tower(config: OmniLMMConfig) -> nn.Module:
    """timm's EVA02 from the config's model name, sized by ``mm_vision_tower_kwargs``, without its last block.

    The released model reads the second-to-last block's output, so the last block is dropped (its weights are not
    in the checkpoint); ``dynamic_img_size`` resamples the 224-pixel position table to
    ``image_size`` (448: a 32x32 grid of 14-pixel patches)."""
    import timm

    tower = timm.create_model(
        config.mm_vision_tower, pretrained=False, num_classes=0, dynamic_img_size=True, dynamic_img_pad=True,
        **(config.mm_vision_tower_kwargs or {}),
    )
    del tower.blocks[-1]  # type: ignore[operator,union-attr]  # an nn.Sequential
    return tower


def resize_grid(table: torch.Tensor, length: int) -> torch.Tensor:
    """A square grid of position vectors ``[side*side, C]`` resized bicubically to ``length`` positions."""
    side, target = round(math.sqrt(table.shape[0])), round(math.sqrt(length))
    if side == target:
        return table
    grid = table.float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(target, target), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(target * target, -1).to(table.dtype)


class OmniLMMResampler(nn.Module):
    """``num_query`` learned queries attend over the vision features once; the output is the language model's width.

    Keys carry a bicubic resize of the queries' own 2-D position table to the feature grid, so any grid size works.
    """

    def __init__(self, num_queries: int, embed_dim: int, kv_dim: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(num_queries, embed_dim))
        # Stored in the checkpoint (a fixed 2-D sin-cos table); never trained.
        self.pos_embed = nn.Parameter(torch.zeros(num_queries, embed_dim), requires_grad=False)
        self.kv_proj = nn.Linear(kv_dim, embed_dim, bias=False) if kv_dim != embed_dim else nn.Identity()
        self.attn = nn.MultiheadAttention(embed_dim, max(1, embed_dim // RESAMPLER_HEAD_DIM))
        self.ln_q = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self.ln_kv = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self.ln_post = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self.proj = nn.Parameter(torch.zeros(embed_dim, embed_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features`` [batch, length, kv_dim] -> [batch, num_queries, embed_dim]."""
        values = self.ln_kv(self.kv_proj(features)).transpose(0, 1)  # [length, batch, embed]
        batch = values.shape[1]
        queries = (self.ln_q(self.query) + self.pos_embed).unsqueeze(1).expand(-1, batch, -1)
        keys = values + resize_grid(self.pos_embed, values.shape[0]).unsqueeze(1)
        out = self.attn(queries, keys, values, need_weights=False)[0].transpose(0, 1)
        return self.ln_post(out) @ self.proj


class OmniLMMModel(MistralModel):
    config_class = OmniLMMConfig

    def __init__(self, config: OmniLMMConfig):
        super().__init__(config)
        self.vision_tower = build_vision_tower(config)
        self.resampler = OmniLMMResampler(config.num_query, config.hidden_size, int(self.vision_tower.embed_dim))  # type: ignore[arg-type]  # timm: an int


class OmniLMMForCausalLM(MistralForCausalLM):
    """Mistral's causal LM whose ``model`` also holds the vision tower and the resampler.

    ``embed_prompt`` turns the prompt ids and one picture per row into input embeddings: the resampler's
    ``num_query`` vectors replace the ``<im_patch>`` tokens' embeddings; ``generate(inputs_embeds=...)`` answers.
    """

    config_class = OmniLMMConfig
    # Multi-GPU placement never splits a decoder layer, a vision block or the resampler (upstream's own
    # device_map="auto" path keeps Eva, MistralDecoderLayer and Resampler whole: chat.py L35 at 0dbb566).
    _no_split_modules = ["MistralDecoderLayer", "EvaBlock", "EvaBlockPostNorm", "OmniLMMResampler"]
    # bitsandbytes may quantize the language model only: timm's EVA attention and the resampler's attention read
    # their weight matrices directly (F.linear, nn.MultiheadAttention), which packed 4-bit weights cannot serve.
    # A 4-bit copy is made with BitsAndBytesConfig(load_in_4bit=True, llm_int8_skip_modules=list(NOT_QUANTIZED)).
    NOT_QUANTIZED = ("model.vision_tower", "model.resampler", "lm_head")

    def __init__(self, config: OmniLMMConfig):
        MistralPreTrainedModel.__init__(self, config)
        self.model = OmniLMMModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    @classmethod
    def from_pretrained(cls, *args, **kwargs) -> "OmniLMMForCausalLM":
        model = super().from_pretrained(*args, **kwargs)
        # timm keeps EVA's key bias as a zero buffer outside the checkpoint; transformers builds the model on the
        # meta device and leaves such buffers as uninitialised memory (seen: 4.5e30), so they are zeroed here.
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                if name.endswith("attn.k_bias"):
                    buffer.zero_()
        return model

    @property
    def vision_dtype(self) -> torch.dtype:
        return self.model.vision_tower.patch_embed.proj.weight.dtype

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[batch, 3, H, W] -> [batch, num_query, hidden]."""
        tower = self.model.vision_tower
        device = tower.patch_embed.proj.weight.device
        features = tower.forward_features(pixel_values.to(device=device, dtype=self.vision_dtype))
        return self.model.resampler(features[:, tower.num_prefix_tokens:])

    def embed_prompt(self, input_ids: torch.Tensor, pixel_values: Optional[torch.Tensor], patch_token_id: int):
        """Input embeddings of ``input_ids`` [batch, length] with each row's picture in place of its patch tokens."""
        embeds = self.model.embed_tokens(input_ids)
        if pixel_values is None:
            return embeds
        features = self.image_features(pixel_values).to(device=embeds.device, dtype=embeds.dtype)
        slots = input_ids == patch_token_id
        if int(slots.sum()) != features.shape[0] * features.shape[1]:
            raise ValueError(f"the prompt has {int(slots.sum())} image tokens for {features.shape[0]} picture(s) of "
                             f"{features.shape[1]} tokens")
        embeds = embeds.clone()
        embeds[slots] = features.reshape(-1, features.shape[-1])
        return embeds


def estimate_weight_bytes(config: OmniLMMConfig, dtype: torch.dtype) -> int:
    """The weights' size in ``dtype``, counted on a skeleton that allocates nothing (the meta device)."""
    with torch.device("meta"):
        skeleton = OmniLMMForCausalLM(config)
    element = torch.empty((), dtype=dtype).element_size()
    return sum(p.numel() for p in skeleton.parameters()) * element
