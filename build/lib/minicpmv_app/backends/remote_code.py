"""MiniCPM-V 1.0 to 4.5 (and MiniCPM-o 2.6 for vision): the checkpoint's own code and its ``chat()`` method.

Three ``chat()`` shapes exist (docs/MODEL_API.md, "Legacy chat()"). Which one a checkpoint has is read from the
method's own signature, not from its name, so a renamed folder or a fine-tune works the same.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from .. import quantization
from ..devices import Placement
from . import remote_compat as compat
from ..errors import ModelLoadError
from ..media.video import Video
from ..messages import Conversation
from ..presets import SAMPLING, GenerationSettings
from .base import Backend, TaggedThinking, as_generation_error, one_image_per_conversation, stopping_criteria

log = logging.getLogger(__name__)

# Upstream pins these to one device when it spreads a model over several GPUs: the vision tower's output,
# the resampler and the token embeddings are combined in one tensor, and the LM head reads the embeddings.
PINNED_MODULES = ("vpm", "resampler", "llm.model.embed_tokens", "llm.lm_head")
# MiniCPM-o loads its audio and speech modules unless told not to; the app uses vision only (MiniCPM-o 4.5
# card: "For vision-only model: set init_audio=False and init_tts=False"; the o-2.6 card has the same flags).
VISION_ONLY: dict[str, dict[str, bool]] = {"minicpmo": {"init_vision": True, "init_audio": False, "init_tts": False}}
# Upstream's web demo and the 4.0 card sample video at about 1 fps, at most 64 frames (MAX_NUM_FRAMES=64).
REMOTE_MAX_NUM_FRAMES = 64
DEFAULT_MAX_SLICE_NUMS = 9
THINKING_GENERATIONS = {("minicpmv", "4.5"), ("minicpmo", "4.5")}  # the 2.6-era config.json slice_config, where a checkpoint does not say
# Video as frames (docs/MODEL_API.md): no image ids, few slices, a longer input budget.
VIDEO_MAX_INP_LENGTH = 4352
VIDEO_MANY_FRAMES = 16


@dataclass(frozen=True)
class ChatFlavour:
    """The shape of a remote ``chat()``."""

    name: str
    images_in_content: bool  # 2.6+: PIL images inside each message's content list
    returns_tuple: bool  # 1.0/2.0: (answer, context, generation_config)
    can_stream: bool
    system_prompt: bool
    video_options: bool  # accepts use_image_id / max_slice_nums
    needs_image: bool = False  # 2.5's own code fails on a text-only turn (IndexError in its processor)
    thinking: bool = False  # 4.5 / o-4.5: chat(..., enable_thinking=...)


def detect_flavour(chat_method) -> ChatFlavour:
    params = inspect.signature(chat_method).parameters
    if "context" in params:
        return ChatFlavour("1.0/2.0", False, True, False, False, False)
    if "max_slice_nums" in params or "use_image_id" in params:
        return ChatFlavour("2.6+", True, False, "stream" in params, "system_prompt" in params, True,
                           thinking="enable_thinking" in params)
    return ChatFlavour("2.5", False, False, "stream" in params, "system_prompt" in params, False, needs_image=True)


class RemoteCodeBackend(TaggedThinking):
    name = "remote-code"

    def __init__(self, folder: Path, placement: Placement, config: dict, *,
                 announce: Optional[Callable[[Backend], None]] = None):
        import torch

        self.placement = placement
        self._torch = torch
        self.quantization = quantization.check(config, folder.name)
        try:
            model_class = compat.resolve_class(config["auto_map"]["AutoModel"], folder)
            if announce is not None and callable(getattr(model_class, "chat", None)):
                # chat()'s signature (the flavour) gives the knobs before the weights are read.
                self._set_flavour(detect_flavour(model_class.chat), config)
                announce(self)
            device_map = (
                multi_gpu_device_map(model_class, folder, placement.dtype) if placement.multi_gpu else placement.device_map
            )
            # dtype explicit: transformers 4.x and 5.x pick different defaults (and name the argument differently).
            self.model = model_class.from_pretrained(
                folder, trust_remote_code=True, device_map=device_map, **{dtype_argument(): placement.dtype},
                **VISION_ONLY.get(config.get("model_type", ""), {}),
            ).eval()
            self.tokenizer = load_tokenizer(folder)
        except Exception as exc:
            raise ModelLoadError(_load_failure(folder, config, exc)) from exc
        if not callable(getattr(self.model, "chat", None)):
            raise ModelLoadError(f"{folder.name} loads with remote code but has no chat() method; it is not a MiniCPM-V checkpoint.")
        self._set_flavour(detect_flavour(self.model.chat), config)
        self._stop: Optional[threading.Event] = None
        self._install_stop_hook()

    def _set_flavour(self, flavour: ChatFlavour, config: dict) -> None:
        self.flavour = flavour
        if flavour.returns_tuple:
            self.preset_overrides = {SAMPLING: {"temperature": 0.6}}
        self.knobs = flavour_knobs(flavour, config)

    def describe(self) -> str:
        weights = f", {self.quantization.label} weights" if self.quantization else ""
        return f"{type(self.model).__name__} (chat() {self.flavour.name}) via remote code on {self.placement.device}{weights}"

    def card(self) -> dict:
        import transformers

        return {**super().card(), "model_class": type(self.model).__name__, "device": self.placement.device,
                "dtype": str(self.placement.dtype).removeprefix("torch."), "transformers": transformers.__version__,
                **({"quantization": self.quantization.label} if self.quantization else {})}

    def _install_stop_hook(self) -> None:
        """Let the Stop button reach generate(): remote chat() drops unknown kwargs, so wrap the inner LM's generate."""
        inner = getattr(self.model, "llm", None)
        original = getattr(inner, "generate", None)
        if original is None:
            log.warning("This checkpoint has no .llm.generate; Stop will only stop showing text.")
            return

        def generate_with_stop(*args, **kwargs):
            if self._stop is not None:
                criteria = stopping_criteria(self._stop)
                if kwargs.get("stopping_criteria"):
                    criteria.extend(kwargs["stopping_criteria"])
                kwargs["stopping_criteria"] = criteria
            return original(*args, **kwargs)

        inner.generate = generate_with_stop  # type: ignore[union-attr]  # found above

    def chat_arguments(self, conversation: Conversation, settings: GenerationSettings) -> dict[str, Any]:
        return chat_arguments(self.flavour, conversation, settings, self.tokenizer)

    def _pieces(self, conversation: Conversation, settings: GenerationSettings, stop) -> Iterator[str]:
        kwargs = self.chat_arguments(conversation, settings)
        # chat() asserts sampling for streams; beam search answers arrive whole.
        stream = self.flavour.can_stream and settings.sampling
        if stream:
            kwargs["stream"] = True
        self._stop = stop
        try:
            with self._torch.inference_mode():
                result = self.model.chat(**kwargs)
            if self.flavour.returns_tuple:
                result = result[0]
            if isinstance(result, str):
                yield result
                return
            for piece in result:
                if stop is not None and stop.is_set():
                    break
                if piece:
                    yield piece
        except GeneratorExit:
            if stop is not None:
                stop.set()
            raise
        except Exception as exc:
            raise as_generation_error(exc) from exc
        finally:
            self._stop = None


def flavour_knobs(flavour: ChatFlavour, config: dict) -> dict[str, Any]:
    """The knobs a remote ``chat()`` takes, with the card defaults: image slices and video frames from 2.6 on,
    thinking where ``chat()`` has ``enable_thinking`` (off, as the 4.5 card's example)."""
    if not flavour.video_options:
        return {}
    from ..runtimes.pins import generation_key

    slices = (config.get("slice_config") or {}).get("max_slice_nums") or DEFAULT_MAX_SLICE_NUMS
    knobs: dict[str, Any] = {"max_slice_nums": int(slices), "max_num_frames": REMOTE_MAX_NUM_FRAMES}
    # The 4.5 cards document chat(..., enable_thinking=...); a chat() that takes it through **kwargs is known by
    # its generation.
    if flavour.thinking or generation_key(config) in THINKING_GENERATIONS:
        knobs = {"enable_thinking": False, **knobs}
    return knobs


def chat_arguments(flavour: ChatFlavour, conversation: Conversation, settings: GenerationSettings, tokenizer) -> dict[str, Any]:
    """Keyword arguments for a checkpoint's ``chat()`` of this shape, as its model card calls it."""
    videos = conversation.videos
    if flavour.images_in_content:
        msgs = [
            {"role": m.role, "content": [p for part in m.parts for p in _expand(part)]}
            for m in conversation.messages
        ]
        image = None
    else:
        image = one_image_per_conversation(conversation, f"chat() {flavour.name}", needs_image=flavour.needs_image)
        msgs = [{"role": m.role, "content": m.text} for m in conversation.messages]
    if conversation.system_prompt and not flavour.system_prompt:
        msgs[0]["content"] = _prepend(conversation.system_prompt, msgs[0]["content"])
    kwargs: dict[str, Any] = dict(
        image=image,
        msgs=msgs,
        tokenizer=tokenizer,
        sampling=settings.sampling,
        max_new_tokens=settings.max_new_tokens,
        **settings.params,
    )
    if flavour.returns_tuple:
        kwargs["context"] = None
    if flavour.system_prompt and conversation.system_prompt:
        kwargs["system_prompt"] = conversation.system_prompt
    if flavour.video_options and videos:
        frames = sum(len(v) for v in videos)
        kwargs.update(
            use_image_id=False,
            max_slice_nums=1 if frames > VIDEO_MANY_FRAMES else 2,
            max_inp_length=VIDEO_MAX_INP_LENGTH,
        )
    elif flavour.video_options and settings.knobs.get("max_slice_nums"):
        kwargs["max_slice_nums"] = int(settings.knobs["max_slice_nums"])
    if "enable_thinking" in settings.knobs:
        kwargs["enable_thinking"] = bool(settings.knobs["enable_thinking"])
    return kwargs


def load_tokenizer(folder: Path):
    """The checkpoint's tokenizer (its own remote class where ``auto_map`` names one)."""
    from transformers import AutoTokenizer

    config_file = folder / "tokenizer_config.json"
    settings = json.loads(config_file.read_text()) if config_file.is_file() else {}
    reference = (settings.get("auto_map") or {}).get("AutoTokenizer")
    if reference:
        return compat.resolve_class(reference, folder).from_pretrained(folder, trust_remote_code=True)
    return AutoTokenizer.from_pretrained(folder, trust_remote_code=True)


def multi_gpu_device_map(model_class, folder: Path, dtype, max_memory: Optional[dict] = None) -> dict:
    """accelerate's balanced map over the visible GPUs, with ``PINNED_MODULES`` moved to the first one."""
    from accelerate import infer_auto_device_map, init_empty_weights

    config = model_class.config_class.from_pretrained(folder)
    with init_empty_weights():
        skeleton = model_class._from_config(config, **{dtype_argument(): dtype})
    device_map = infer_auto_device_map(
        skeleton,
        max_memory=max_memory,
        no_split_module_classes=list(getattr(skeleton, "_no_split_modules", None) or []),
        dtype=dtype,
    )
    return pin_modules(device_map, PINNED_MODULES, first_device(device_map))


def first_device(device_map: dict):
    gpus = [d for d in device_map.values() if isinstance(d, int)]
    return min(gpus) if gpus else next(iter(device_map.values()))


def pin_modules(device_map: dict, prefixes, device) -> dict:
    """Put every module under each prefix on ``device``.

    Loading looks a parameter up by its longest matching prefix, so finer entries under a pinned module are
    dropped and the pinned name itself is added; a coarser entry above it (``"llm"``) keeps the rest.
    """
    def under(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    pinned = {n: d for n, d in device_map.items() if not any(under(n, p) for p in prefixes)}
    for prefix in prefixes:
        if any(under(n, prefix) or under(prefix, n) for n in device_map if n):
            pinned[prefix] = device
    return pinned


def _expand(part) -> list:
    """Video goes to remote chat() as its frames, in place."""
    return list(part.frames) if isinstance(part, Video) else [part]


def _prepend(prefix: str, content):
    if isinstance(content, str):
        return f"{prefix}\n\n{content}"
    return [prefix, *content]


def dtype_argument() -> str:
    """``from_pretrained``'s name for the dtype: ``torch_dtype`` before transformers 4.56, ``dtype`` after."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _load_failure(folder: Path, config: dict, exc: BaseException) -> str:
    import transformers

    from ..runtimes import runtime_for

    runtime = runtime_for(config)
    advice = (
        f"its model card asks for transformers=={runtime.transformers}, which the app runs in a worker on its own "
        f"(python -m minicpmv_app.runtimes install {runtime.name})"
        if runtime
        else "install the transformers version its model card asks for, in a separate venv"
    )
    return (
        f"The checkpoint's own code ({folder.name}) failed to load on transformers {transformers.__version__} "
        f"({type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else 'no detail'}). "
        f"Try another --model (MiniCPM-V 4.6 and later load natively), or {advice}."
    )
