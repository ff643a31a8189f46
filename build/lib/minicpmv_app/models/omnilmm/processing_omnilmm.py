"""OmniLMM's prompt and pixels, as the released model was trained on them.

- The prompt is the checkpoint's own chat template (Zephyr's) over a system message and the turns. Upstream adds
  its default system message when the conversation has none (omnilmm/train/train_utils.py at 0dbb566,
  ``omni_preprocess``), and puts the picture into the first user message as ``<im_start>`` + ``num_query`` x
  ``<im_patch>`` + ``<im_end>`` + a newline before the text, or in place of an ``<image>`` the text holds
  (chat.py L62-69).
- Pixels: resized to ``image_size`` square (bicubic), OpenAI CLIP's mean and std, then rounded to fp16 as
  upstream's ``OmniLMM12B.decode`` does (chat.py L99: ``image.unsqueeze(0).half()``) before the tower's dtype.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch
from PIL import Image

IMAGE_PLACEHOLDER = "<image>"
PATCH_TOKEN, START_TOKEN, END_TOKEN = "<im_patch>", "<im_start>", "<im_end>"
# omnilmm/train/train_utils.py (0dbb566), omni_preprocess: the system message when a conversation has none.
DEFAULT_SYSTEM = ("You are an artificial intelligence assistant, which gives helpful, detailed, and polite answers "
                  "to the human's questions.")
# chat.py L27-28 (0dbb566): the tokenizer is loaded with model_max_length=2048.
MAX_PROMPT_TOKENS = 2048


class OmniLMMProcessor:
    def __init__(self, tokenizer, *, image_size: int, num_query: int):
        self.tokenizer = tokenizer
        self.image_size, self.num_query = image_size, num_query
        self.patch_token_id = tokenizer.convert_tokens_to_ids(PATCH_TOKEN)

    @classmethod
    def from_pretrained(cls, folder: Path, config) -> "OmniLMMProcessor":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder, model_max_length=MAX_PROMPT_TOKENS)
        return cls(tokenizer, image_size=config.image_size, num_query=config.num_query)

    def image_tokens(self) -> str:
        return START_TOKEN + PATCH_TOKEN * self.num_query + END_TOKEN

    def prompt_text(self, turns: Sequence[tuple[str, str]], *, has_image: bool, system: Optional[str] = None) -> str:
        """The chat template's text for ``turns`` ((role, text) pairs) ending with the assistant's turn."""
        messages = [{"role": "system", "content": system or DEFAULT_SYSTEM}]
        # Image markers typed by a person are text, not image slots (the picture's slots must match its features).
        messages += [{"role": role, "content": self._plain(text)} for role, text in turns]
        if has_image:
            first = next(m for m in messages if m["role"] == "user")
            if IMAGE_PLACEHOLDER in first["content"]:
                first["content"] = first["content"].replace(IMAGE_PLACEHOLDER, self.image_tokens(), 1)
            else:
                first["content"] = self.image_tokens() + "\n" + first["content"]
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    @staticmethod
    def _plain(text: str) -> str:
        for marker in (PATCH_TOKEN, START_TOKEN, END_TOKEN):
            text = text.replace(marker, marker.replace("<", "< "))
        return text

    def input_ids(self, text: str) -> torch.Tensor:
        """[1, length]; the picture's tokens must survive, so a prompt too long for the model is refused."""
        ids = self.tokenizer(text, return_tensors="pt")["input_ids"]
        if ids.shape[1] > MAX_PROMPT_TOKENS:
            from ...errors import InvalidInputError

            raise InvalidInputError(
                f"This conversation is {ids.shape[1]} tokens long; OmniLMM takes {MAX_PROMPT_TOKENS}. "
                "Clear the chat or ask a shorter question.", key="prompt_too_long",
            )
        return ids

    def pixel_values(self, image: Image.Image) -> torch.Tensor:
        """[1, 3, image_size, image_size] in fp16 (the tower casts it to its own dtype)."""
        from timm.data import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
        from torchvision import transforms

        transform = transforms.Compose([
            transforms.Resize((self.image_size, self.image_size), interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.ToTensor(),
            transforms.Normalize(OPENAI_CLIP_MEAN, OPENAI_CLIP_STD),
        ])
        return transform(image.convert("RGB")).unsqueeze(0).half()

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()
