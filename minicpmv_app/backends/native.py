"""MiniCPM-V 4.6 and later through transformers' own classes: ``AutoProcessor`` + ``AutoModelForImageTextToText``."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from ..devices import Placement
from ..errors import ModelLoadError
from ..media.video import Video
from ..messages import Conversation
from ..presets import GenerationSettings
from .base import Backend, as_generation_error, stopping_criteria, stream_from_thread

log = logging.getLogger(__name__)

# Processor options from the model card: images use id tags and slicing; video frames use neither.
IMAGE_OPTIONS = {"use_image_id": True}
VIDEO_OPTIONS = {"use_image_id": False, "videos_kwargs": {"max_slice_nums": 1}}


class NativeBackend(Backend):
    name = "transformers"

    def __init__(self, folder: Path, placement: Placement):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.placement = placement
        try:
            self.processor = AutoProcessor.from_pretrained(folder)
            self.model = AutoModelForImageTextToText.from_pretrained(
                folder, dtype=placement.dtype, device_map=placement.device_map
            ).eval()
        except (OSError, ValueError, KeyError, ImportError) as exc:
            raise ModelLoadError(
                f"transformers could not load {folder.name} ({type(exc).__name__}: {str(exc)[:300]}). "
                "If the model card asks for a newer transformers, upgrade it: pip install -U transformers."
            ) from exc
        self._torch = torch
        report_linear_attention_kernels(self.model, placement.device)

    def describe(self) -> str:
        return f"{type(self.model).__name__} via transformers on {self.placement.device} ({self.placement.dtype})"

    def model_inputs(self, conversation: Conversation):
        """What ``generate`` receives for this conversation (tensors on the model's device)."""
        return build_inputs(self.processor, [conversation]).to(self.model.device)

    def generate(
        self, conversation: Conversation, settings: GenerationSettings, *, stop: Optional[threading.Event] = None
    ) -> Iterator[str]:
        try:
            inputs = self.model_inputs(conversation)
        except Exception as exc:
            raise as_generation_error(exc) from exc
        kwargs = settings.generate_kwargs()
        kwargs["stopping_criteria"] = stopping_criteria(stop)
        prompt_length = inputs["input_ids"].shape[1]
        if not settings.sampling:
            # Beam search cannot stream: the best sequence is only known at the end.
            try:
                with self._torch.inference_mode():
                    output = self.model.generate(**inputs, **kwargs)
            except Exception as exc:
                raise as_generation_error(exc) from exc
            yield self.processor.decode(output[0, prompt_length:], skip_special_tokens=True)
            return

        def run(streamer) -> None:
            with self._torch.inference_mode():
                self.model.generate(**inputs, **kwargs, streamer=streamer)

        yield from stream_from_thread(run, self.processor.tokenizer, stop=stop)


# transformers warns once per kernel (four lines at the first answer) when these are missing; one line at load
# says the same, and what to do, instead.
LINEAR_ATTENTION_KERNELS = {"fla": "flash-linear-attention", "causal_conv1d": "causal-conv1d"}
_KERNEL_WARNING = "falling back to its reference PyTorch implementation"


class _DropKernelFallbackWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _KERNEL_WARNING not in record.getMessage()


def report_linear_attention_kernels(model, device: str) -> Optional[str]:
    """One line about the fast linear-attention kernels (4.6's Qwen3.5 layers), instead of transformers' warnings."""
    import importlib.util

    layer_types = getattr(getattr(model.config, "text_config", model.config), "layer_types", None) or []
    if "linear_attention" not in layer_types:
        return None
    logging.getLogger("transformers.integrations.hub_kernels").addFilter(_DropKernelFallbackWarnings())
    missing = [dist for module, dist in LINEAR_ATTENTION_KERNELS.items() if importlib.util.find_spec(module) is None]
    if not device.startswith("cuda"):
        line = (f"Linear-attention layers run on transformers' reference PyTorch kernels on {device} "
                "(correct; the fast kernels are for CUDA GPUs).")
    elif missing:
        line = (f"Linear-attention layers run on the slow reference kernels: {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not installed. For speed: pip install -r requirements-cuda.txt")
    else:
        line = "Linear-attention layers use the fast kernels (flash-linear-attention, causal-conv1d)."
    log.info(line)
    return line


def build_inputs(processor, conversations: Sequence[Conversation], *, add_generation_prompt: bool = True):
    """Processor inputs for a batch of conversations (all with video, or none): the chat template's text,
    the images, and the app's own sampled video frames with their metadata. Training uses this too."""
    texts, images, videos = [], [], []
    for conversation in conversations:
        messages = [{"role": m.role, "content": [_template_part(p) for p in m.parts]} for m in conversation.messages]
        if conversation.system_prompt:
            messages.insert(0, {"role": "system", "content": [{"type": "text", "text": conversation.system_prompt}]})
        texts.append(processor.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False))
        images += conversation.images
        videos += conversation.videos
    options: dict[str, Any] = dict(VIDEO_OPTIONS if videos else IMAGE_OPTIONS)
    if videos:
        from transformers.video_utils import VideoMetadata

        options["videos"] = [v.frames for v in videos]
        options["video_metadata"] = [
            VideoMetadata(
                total_num_frames=len(v.frames),
                fps=v.sample_fps,
                duration=v.duration,
                width=v.frames[0].width,
                height=v.frames[0].height,
                frames_indices=list(range(len(v.frames))),
            )
            for v in videos
        ]
        options["do_sample_frames"] = False  # frames are already sampled by media.video
    return processor(text=texts, images=images or None, return_tensors="pt", **options)


def _template_part(part) -> dict:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if isinstance(part, Video):
        return {"type": "video"}
    return {"type": "image"}
