"""MiniCPM-V 4.6 and later (4.7, MiniCPM-OCR) through transformers' own classes: ``AutoProcessor`` +
``AutoModelForImageTextToText``, driven by the model type's card (``cards.py``)."""

from __future__ import annotations

import inspect
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

from .. import quantization
from ..devices import Placement
from ..errors import ModelLoadError
from ..media.video import Video
from ..messages import Conversation
from ..presets import GenerationSettings
from ..reasoning import BudgetSpent, prompt_opens_thinking, split_reasoning
from ..settings import SAMPLING
from . import read_config
from .cards import ModelCard, card_for, card_for_processor
from .base import Backend, as_generation_error, budget_spent, stopping_criteria, stream_from_thread
from .vision_progress import vision_layers, watching

log = logging.getLogger(__name__)

class NativeBackend(Backend):
    name = "transformers"

    def __init__(self, folder: Path, placement: Placement, config: Optional[dict] = None, *,
                 announce: Optional[Callable[[Backend], None]] = None):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor, GenerationConfig

        self.placement = placement
        config = config if config is not None else read_config(folder)
        self.model_card: ModelCard = card_for(config.get("model_type")) or unsupported(config)
        self.quantization = quantization.check(config, folder.name)
        try:
            self.processor = AutoProcessor.from_pretrained(folder)
            # What the page lays itself out by comes from the processor and generation_config.json: it is known
            # before the weights are read (``announce``: a model process sends it on).
            self.knobs = model_knobs(self.processor, self.model_card)
            self.prompts = self.model_card.prompts
            self.scale_resolution = int(getattr(self.processor.image_processor, "scale_resolution", 448))
            try:
                self.preset_overrides = {SAMPLING: checkpoint_sampling(GenerationConfig.from_pretrained(folder))}
            except OSError:  # no generation_config.json: transformers' defaults
                self.preset_overrides = {SAMPLING: {}}
            if announce is not None:
                announce(self)
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
        last_position_logits(self.model)
        self.vision_layers = vision_layers(self.model)  # hooked while answering: progress, and Stop, per layer

    def describe(self) -> str:
        weights = f", {self.quantization.label} weights" if self.quantization else ""
        return f"{type(self.model).__name__} via transformers on {self.placement.device} ({self.placement.dtype}{weights})"

    def card(self) -> dict:
        return {**super().card(), "model_class": type(self.model).__name__, "device": self.placement.device,
                "dtype": str(self.placement.dtype).removeprefix("torch."),
                **({"quantization": self.quantization.label} if self.quantization else {})}

    def model_inputs(self, conversation: Conversation, settings: Optional[GenerationSettings] = None):
        """What ``generate`` receives for this conversation (tensors on the model's device)."""
        knobs = settings.knobs if settings is not None else self.knobs
        return build_inputs(self.processor, [conversation], knobs=knobs, card=self.model_card).to(self.model.device)

    def frame_plan(self, settings: GenerationSettings) -> "NativeFramePlan":
        knobs = {**self.knobs, **settings.knobs}
        return NativeFramePlan(self.processor.video_processor, knobs["max_num_frames"], knobs["stack_frames"])

    def generate(
        self, conversation: Conversation, settings: GenerationSettings, *, stop: Optional[threading.Event] = None
    ) -> Iterator[str]:
        try:
            inputs = self.model_inputs(conversation, settings)
        except Exception as exc:
            raise as_generation_error(exc) from exc
        kwargs = settings.generate_kwargs()
        kwargs["stopping_criteria"] = stopping_criteria(stop)
        # The card: downsample_mode goes to the processor (placeholder count) and to generate (the vision encoder).
        kwargs["downsample_mode"] = {**self.knobs, **settings.knobs}["downsample_mode"]
        prompt_length = inputs["input_ids"].shape[1]
        # A template that opens <think> in the prompt makes the model's first words reasoning.
        inside = prompt_opens_thinking(self.processor.decode(inputs["input_ids"][0, -4:]))
        yield from split_reasoning(self._pieces(inputs, kwargs, prompt_length, settings, stop), inside=inside)

    def _pieces(self, inputs, kwargs, prompt_length, settings, stop) -> Iterator[str]:
        if not settings.sampling:
            # Beam search cannot stream: the best sequence is only known at the end.
            try:
                with self._torch.inference_mode():
                    output = self.model.generate(**inputs, **kwargs)
            except Exception as exc:
                raise as_generation_error(exc) from exc
            yield self.processor.decode(output[0, prompt_length:], skip_special_tokens=True)
            if budget_spent(output[0, prompt_length:].tolist(), settings, self.model.generation_config.eos_token_id):
                yield BudgetSpent()
            return
        outputs = []

        def run(streamer) -> None:
            # Each vision layer's progress goes on the streamer's queue, ahead of the answer's first words.
            with self._torch.inference_mode(), watching(self.vision_layers, streamer.text_queue.put, stop):
                outputs.append(self.model.generate(**inputs, **kwargs, streamer=streamer))

        yield from stream_from_thread(run, self.processor.tokenizer, stop=stop)
        eos = self.model.generation_config.eos_token_id
        if outputs and budget_spent(outputs[0][0, prompt_length:].tolist(), settings, eos):
            yield BudgetSpent()


def unsupported(config: dict):
    """One line for an image-text model this app does not drive (a Qwen2-VL folder, say)."""
    from .cards import supported_names

    raise ModelLoadError(
        f"This checkpoint is a {config.get('model_type')!r} model, not a MiniCPM-V one. This app runs OmniLMM-12B, "
        f"MiniCPM-V 1.0 to 4.5 and MiniCPM-o (their own code), and {supported_names()} (transformers' classes).",
        key="not_minicpmv", model_type=str(config.get("model_type")),
    )


def last_position_logits(model) -> bool:
    """Have the prompt's pass compute the next token's logits only, not one row per prompt position.

    generate() asks for that itself (``logits_to_keep=1``) where a model's forward takes it; MiniCPM-V 4.6's does
    not (transformers 5.24), so for a 2,600-token prompt (an image at 4x) the lm_head wrote 2,600 x 248,094 logits
    (2.6 GB in fp32, over a TFLOP on a CPU) to use one row. This app only generates, so the lm_head sees the last
    position of a multi-position input. Returns whether the hook was needed."""
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        return False
    head = model.get_output_embeddings()
    if head is None:
        return False

    def last_position(_module, args):
        hidden = args[0]
        return (hidden[:, -1:, :],) + tuple(args[1:]) if hidden.dim() == 3 and hidden.shape[1] > 1 else None

    head.register_forward_pre_hook(last_position)
    return True


# The sampling values a checkpoint's generation_config.json may set; they replace upstream's 2.6-era preset
# (the released 4.6 sets temperature 0.7, top_p 1.0, top_k 0 = off, repetition_penalty 1.0).
CHECKPOINT_SAMPLING = ("temperature", "top_p", "top_k", "repetition_penalty")


def checkpoint_sampling(generation_config) -> dict:
    """The checkpoint's own sampling defaults: those its generation_config.json sets (not transformers' defaults)."""
    own = generation_config.to_diff_dict() if generation_config is not None else {}
    return {name: own[name] for name in CHECKPOINT_SAMPLING if own.get(name) is not None}


def model_knobs(processor, card: ModelCard) -> dict:
    """The knobs this checkpoint takes, with its card's defaults. Thinking only where the card and the chat template
    have an ``enable_thinking`` switch; it starts on where the template itself thinks unless told not to."""
    knobs = card.knob_defaults(processor)
    if "enable_thinking" not in knobs:
        return knobs
    template = getattr(processor, "chat_template", None) or ""
    if "enable_thinking" not in template:
        del knobs["enable_thinking"]
    else:
        probe = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
        rendered = processor.apply_chat_template(probe, add_generation_prompt=True, tokenize=False)
        knobs["enable_thinking"] = prompt_opens_thinking(rendered)
    return knobs


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


def build_inputs(
    processor,
    conversations: Sequence[Conversation],
    *,
    knobs: Optional[Mapping[str, Any]] = None,
    add_generation_prompt: bool = True,
    completions: Optional[Sequence[str]] = None,
    card: Optional[ModelCard] = None,
):
    """Processor inputs for a batch of conversations (all with video, or none), as the model card's reference call
    builds them: the chat template's text (``enable_thinking`` passed to it), the images with the card's slice
    budget and token compression, and the app's own decoded video frames (sampled by the processor's own rule,
    see ``NativeFramePlan``) with their metadata. ``completions`` are appended to each prompt (training)."""
    card = card or card_for_processor(processor)
    knobs = {**card.knob_defaults(processor), **{k: v for k, v in (knobs or {}).items() if v is not None}}
    # Only a template with the switch hears it; one without would render the same either way.
    template_kwargs = {"enable_thinking": bool(knobs["enable_thinking"])} if "enable_thinking" in knobs else {}
    texts, images, videos = [], [], []
    for index, conversation in enumerate(conversations):
        messages = [{"role": m.role, "content": [_template_part(p) for p in m.parts]} for m in conversation.messages]
        if conversation.system_prompt:
            messages.insert(0, {"role": "system", "content": [{"type": "text", "text": conversation.system_prompt}]})
        text = processor.apply_chat_template(
            messages, add_generation_prompt=add_generation_prompt, tokenize=False, **template_kwargs
        )
        texts.append(text + (completions[index] if completions else ""))
        images += conversation.images
        videos += conversation.videos
    options: dict[str, Any] = {"downsample_mode": knobs["downsample_mode"]}
    if videos:
        from transformers.video_utils import VideoMetadata

        # The card's video call (4.6: one slice per frame, no image ids); its frame budget and stacking.
        options.update(card.video_options)
        options.update({name: int(knobs[name]) for name in ("max_num_frames", "stack_frames") if name in knobs})
        options["videos"] = [v.frames for v in videos]
        options["video_metadata"] = [
            VideoMetadata(
                total_num_frames=v.total_frames or len(v.frames),
                fps=v.fps,
                duration=v.duration,
                width=v.frames[0].width,
                height=v.frames[0].height,
                frames_indices=list(v.indices) or list(range(len(v.frames))),
            )
            for v in videos
        ]
        options["do_sample_frames"] = False  # already sampled by the processor's own rule (NativeFramePlan)
    else:
        options.update(card.image_options, max_slice_nums=int(knobs["max_slice_nums"]))
    return processor(text=texts, images=images or None, return_tensors="pt", **options)


class NativeFramePlan:
    """Which frames of a clip to decode: the 4.6 video processor's own ``sample_frames`` (main frames up to
    ``max_num_frames``, then ``stack_frames - 1`` sub-frames per second), so the app's decoder hands the processor
    exactly the frames its reference call would load."""

    def __init__(self, video_processor, max_num_frames: int, stack_frames: int):
        self.video_processor = video_processor
        self.max_num_frames, self.stack_frames = int(max_num_frames), int(stack_frames)
        self.key = ("native", self.max_num_frames, self.stack_frames)

    def indices(self, total_frames: int, fps: float, duration: float) -> list[int]:
        from transformers.video_utils import VideoMetadata

        metadata = VideoMetadata(total_num_frames=total_frames, fps=fps, duration=duration)
        return [int(i) for i in self.video_processor.sample_frames(
            metadata, max_num_frames=self.max_num_frames, stack_frames=self.stack_frames
        )]


def _template_part(part) -> dict:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if isinstance(part, Video):
        return {"type": "video"}
    return {"type": "image"}
