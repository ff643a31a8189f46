"""OmniLMM-12B on the project's own implementation (``minicpmv_app.models.omnilmm``) and the app's transformers.

It follows upstream's chat path (github OpenBMB/MiniCPM-V at 0dbb566, ``chat.py``): one picture per conversation,
in the first user message; ``generate(inputs_embeds=...)``, so the answer's ids hold only new tokens and the
repetition penalty sees only them; the answer stripped. Sampling defaults are upstream's ``OmniLMM12B.decode``
(chat.py L100-108): temperature 0.6, top_p 0.9, top_k 30, repetition_penalty 1.1.
"""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterator, Optional

from .. import quantization
from ..devices import Placement
from ..errors import ModelLoadError
from ..messages import Conversation
from ..presets import GenerationSettings
from ..settings import SAMPLING
from ..reasoning import BudgetSpent
from .base import (
    Backend, as_generation_error, budget_spent, one_image_per_conversation, stopping_criteria, stream_from_thread,
)

log = logging.getLogger(__name__)

# chat.py L100-108 (0dbb566): the values upstream samples OmniLMM-12B with.
UPSTREAM_SAMPLING = {"temperature": 0.6, "top_p": 0.9, "top_k": 30, "repetition_penalty": 1.1}
# A CPU load needs the weights plus a quarter for activations, the tokenizer and the app; a start that cannot fit
# is refused before a byte is read (fp32 12B: about 58 GB), instead of swapping the machine to a halt.
CPU_MEMORY_FACTOR = 1.25
# Upstream generates from embeddings alone, so the penalty sees only the answer's tokens: intended, not a warning.
warnings.filterwarnings("ignore", message="Passing `repetition_penalty` with `inputs_embeds`")


class OmniLMMBackend(Backend):
    name = "omnilmm"
    preset_overrides = {SAMPLING: UPSTREAM_SAMPLING}

    def __init__(self, folder: Path, placement: Placement, config: dict, *,
                 announce: Optional[Callable[[Backend], None]] = None):
        import torch

        from ..models.omnilmm import OmniLMMConfig, OmniLMMForCausalLM, OmniLMMProcessor

        self.placement = placement
        self.folder = folder
        self._torch = torch
        self.quantization = quantization.check(config, folder.name)
        check_quantized_parts(config)
        try:
            model_config = OmniLMMConfig.from_pretrained(folder)
        except (OSError, ValueError, TypeError) as exc:
            raise ModelLoadError(f"{folder} has an OmniLMM config.json that cannot be read ({exc}).") from exc
        if placement.device == "cpu" and not self.quantization:
            check_cpu_memory(model_config, placement.dtype)
        if announce is not None:
            announce(self)
        try:
            self.processor = OmniLMMProcessor.from_pretrained(folder, model_config)
            # A quantized checkpoint keeps the dtype its unquantized tensors were saved in: another one would mix
            # dtypes inside a layer (seen: a bf16 conv weight beside an fp32 bias).
            dtype = "auto" if self.quantization else placement.dtype
            self.model = OmniLMMForCausalLM.from_pretrained(
                folder, config=model_config, dtype=dtype, device_map=placement.device_map
            ).eval()
        except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:
            raise ModelLoadError(
                f"OmniLMM could not be loaded from {folder} ({type(exc).__name__}: {str(exc)[:300]}). "
                "Check that the folder holds the whole openbmb/OmniLMM-12B download."
            ) from exc

    def describe(self) -> str:
        weights = f", {self.quantization.label} weights" if self.quantization else ""
        return f"OmniLMMForCausalLM (the app's own implementation) on {self.placement.device} ({self.placement.dtype}{weights})"

    def card(self) -> dict:
        return {**super().card(), "model_class": "OmniLMMForCausalLM", "device": self.placement.device,
                "dtype": str(self.placement.dtype).removeprefix("torch."),
                **({"quantization": self.quantization.label} if self.quantization else {})}

    def model_inputs(self, conversation: Conversation) -> dict:
        """What ``generate`` receives: the prompt's embeddings (the picture in place) and its attention mask."""
        image = one_image_per_conversation(conversation, "OmniLMM-12B")
        turns = [(m.role, m.text) for m in conversation.messages]
        text = self.processor.prompt_text(turns, has_image=image is not None, system=conversation.system_prompt)
        ids = self.processor.input_ids(text)
        pixels = self.processor.pixel_values(image) if image is not None else None
        device = self.model.get_input_embeddings().weight.device
        ids = ids.to(device)
        with self._torch.inference_mode():
            embeds = self.model.embed_prompt(ids, pixels, self.processor.patch_token_id)
        return {"inputs_embeds": embeds, "attention_mask": self._torch.ones_like(ids)}

    def generate_ids(self, conversation: Conversation, settings: GenerationSettings, *,
                     stop: Optional[threading.Event] = None) -> list[int]:
        """The answer's token ids, whole (beam search, or any mode without streaming)."""
        inputs = self.model_inputs(conversation)
        with self._torch.inference_mode():
            output = self.model.generate(**inputs, **self._generate_kwargs(settings, stop))
        return output[0].tolist()

    def _generate_kwargs(self, settings: GenerationSettings, stop) -> dict:
        kwargs = settings.generate_kwargs()
        kwargs["stopping_criteria"] = stopping_criteria(stop)
        kwargs["pad_token_id"] = self.processor.tokenizer.eos_token_id  # upstream's generate falls back to eos
        return kwargs

    def generate(
        self, conversation: Conversation, settings: GenerationSettings, *, stop: Optional[threading.Event] = None
    ) -> Iterator[str]:
        if not settings.sampling:
            # Beam search cannot stream: the best sequence is only known at the end.
            try:
                ids = self.generate_ids(conversation, settings, stop=stop)
            except Exception as exc:
                raise as_generation_error(exc) from exc
            yield self.processor.decode(ids)
            if budget_spent(ids, settings, self.processor.tokenizer.eos_token_id):
                yield BudgetSpent()
            return
        try:
            inputs = self.model_inputs(conversation)
        except Exception as exc:
            raise as_generation_error(exc) from exc
        kwargs = self._generate_kwargs(settings, stop)

        outputs = []

        def run(streamer) -> None:
            with self._torch.inference_mode():
                outputs.append(self.model.generate(**inputs, **kwargs, streamer=streamer))

        started = False
        for piece in stream_from_thread(run, self.processor.tokenizer, stop=stop):
            if not started:  # upstream strips the answer; a stream can only strip its start
                piece = piece.lstrip()
                started = bool(piece)
            if piece:
                yield piece
        if outputs and budget_spent(outputs[0][0].tolist(), settings, self.processor.tokenizer.eos_token_id):
            yield BudgetSpent()


def check_quantized_parts(config: dict) -> None:
    """A bitsandbytes checkpoint must leave the vision tower and the resampler unquantized (see NOT_QUANTIZED)."""
    from ..models.omnilmm import OmniLMMForCausalLM

    settings = config.get("quantization_config") or {}
    if (settings.get("quant_method") or "bitsandbytes") != "bitsandbytes" or not settings:
        return
    skipped = set(settings.get("llm_int8_skip_modules") or ())
    missing = [name for name in OmniLMMForCausalLM.NOT_QUANTIZED[:2] if name not in skipped]
    if missing:
        raise ModelLoadError(
            f"This OmniLMM checkpoint was quantized with its {' and '.join(missing)} in 4/8-bit, which that code "
            "cannot run. Quantize the language model only: BitsAndBytesConfig(load_in_4bit=True, "
            f"llm_int8_skip_modules={list(OmniLMMForCausalLM.NOT_QUANTIZED)}) (README, OmniLMM-12B).",
            key="quantization_unsupported",
        )


def estimate_memory(folder: Path, dtype) -> int:
    """Bytes the weights take in ``dtype`` for the checkpoint in ``folder`` (nothing is allocated or read)."""
    from ..models.omnilmm import OmniLMMConfig, estimate_weight_bytes

    return estimate_weight_bytes(OmniLMMConfig.from_pretrained(folder), dtype)


def check_cpu_memory(model_config, dtype, available: Optional[int] = None) -> None:
    """Refuse a CPU load whose weights x ``CPU_MEMORY_FACTOR`` exceed the free memory, before reading any."""
    import psutil

    from ..models.omnilmm import estimate_weight_bytes

    needed = estimate_weight_bytes(model_config, dtype) * CPU_MEMORY_FACTOR
    free = psutil.virtual_memory().available if available is None else available
    if needed > free:
        gb = 1e9  # decimal, as the hub shows file sizes (the release: 23.2 GB)
        raise ModelLoadError(
            f"OmniLMM-12B needs about {needed / gb:.0f} GB of memory on the CPU in {str(dtype).removeprefix('torch.')} "
            f"and {free / gb:.1f} GB is free. Run it on a GPU (--device cuda: bf16 takes about 24 GB; a 4-bit "
            "copy of its language model fits a 16 GB card), or use MiniCPM-V 4.6, which fits a laptop.",
            key="not_enough_memory", needed=f"{needed / gb:.0f}", free=f"{free / gb:.1f}",
        )
