"""The one small interface every backend implements, and the streaming plumbing they share."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Optional

from ..errors import GenerationError, MiniCPMVError, UnsupportedFeatureError
from ..messages import Conversation
from ..presets import GenerationSettings
from ..reasoning import Encoding, split_reasoning
from .vision_progress import StoppedWhileEncoding


@dataclass(frozen=True)
class LoadStatus:
    """Where a model is: ``starting`` -> ``loading`` (``fraction`` when known) -> ``ready``, or ``failed``."""

    state: str
    stage: str = ""
    fraction: Optional[float] = None
    error: Optional[MiniCPMVError] = None

    @property
    def ready(self) -> bool:
        return self.state == "ready"


READY = LoadStatus("ready")


class Backend(ABC):
    """A loaded model (or a server) that turns a conversation into text pieces."""

    #: Short name shown in logs and the UI ("transformers", "remote-code", "openai").
    name: str = ""
    #: How many generations may run at once; in-process models run one at a time.
    concurrency: int = 1
    #: Per-model changes to the decoding presets (1.0/2.0 sample at temperature 0.6).
    preset_overrides: Mapping[str, Mapping[str, Any]] = {}
    #: Answers come from a chat-completions server: it has no beam search, and the page says what it does with the
    #: model's knobs (the UIs read this, never the backend's name).
    is_server: bool = False
    #: The per-model settings this model takes (settings.KNOBS) with its model card's defaults.
    knobs: Mapping[str, Any] = {}
    #: Fixed instructions the model was trained on (cards.Prompt: MiniCPM-OCR's block prompts), for the UIs to offer.
    prompts: tuple = ()

    @abstractmethod
    def generate(
        self, conversation: Conversation, settings: GenerationSettings, *, stop: Optional[threading.Event] = None
    ) -> Iterator[str]:
        """Yield the answer in pieces. Sampling streams; beam search yields the whole answer once."""

    def describe(self) -> str:
        return self.name

    def status(self) -> LoadStatus:
        """Where loading is; a backend built in this process is loaded once it exists."""
        return READY

    def card(self) -> dict:
        """What runs the model, for an export's run card: the backend, and where and how it runs."""
        return {"backend": self.name, "describe": self.describe()}

    def page_pixels(self, settings: GenerationSettings) -> int:
        """How many pixels a PDF page is drawn with: the model's slice budget (``max_slice_nums`` tiles of its
        ``scale_resolution``, 448 for every released generation)."""
        from ..media.documents import SLICE_SIDE, target_pixels

        return target_pixels(settings.knobs, side=getattr(self, "scale_resolution", SLICE_SIDE))

    def frame_plan(self, settings: GenerationSettings):
        """Which frames of a video this model wants (upstream's ~1 fps, at most ``max_num_frames``, by default)."""
        from ..media.video import MAX_NUM_FRAMES, UniformPlan

        return UniformPlan(max_frames=settings.knobs.get("max_num_frames", MAX_NUM_FRAMES))


def budget_spent(new_tokens, settings: GenerationSettings, eos_token_id) -> bool:
    """Whether generation stopped at ``max_new_tokens`` (the last of exactly that many tokens is not an end)."""
    tokens = list(new_tokens)
    ends = set(eos_token_id if isinstance(eos_token_id, (list, tuple, set)) else [eos_token_id])
    return len(tokens) >= settings.max_new_tokens and bool(tokens) and tokens[-1] not in ends


def one_image_per_conversation(conversation: Conversation, model: str, *, needs_image: bool = False):
    """The conversation's one picture (or None), for models trained on one picture per conversation (1.0, 2.0,
    2.5, OmniLMM); several pictures or a video is refused with a message that says what to do."""
    if conversation.videos:
        raise UnsupportedFeatureError(
            f"This model ({model}) does not understand video: use MiniCPM-V 2.6 or newer.", key="no_video_model")
    images = conversation.images
    if len(images) > 1:
        raise UnsupportedFeatureError(
            f"This model ({model}) takes one image per conversation: clear the chat to ask about another image, "
            "or use MiniCPM-V 2.6 or newer.", key="one_image_model")
    if needs_image and not images:
        raise UnsupportedFeatureError(
            f"This model ({model}, MiniCPM-Llama3-V 2.5) answers about an image: upload one first.", key="needs_image")
    return images[0] if images else None


def stopping_criteria(stop: Optional[threading.Event]):
    """A transformers ``StoppingCriteriaList`` that ends generation once ``stop`` is set."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _StopOnEvent(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return bool(stop is not None and stop.is_set())

    return StoppingCriteriaList([_StopOnEvent()])


def stream_from_thread(run: Callable[[Any], None], tokenizer, *, stop: Optional[threading.Event], timeout: float = 600.0) -> Iterator[str]:
    """Run ``run(streamer)`` in a thread and yield what the ``TextIteratorStreamer`` receives.

    An exception in the thread is re-raised here (the streamer would otherwise wait forever), and a consumer
    that stops early sets ``stop`` so the thread ends too.
    """
    streamer = token_streamer(tokenizer, timeout=timeout)
    failure: list[BaseException] = []

    def target() -> None:
        try:
            run(streamer)
        except BaseException as exc:  # re-raised in the consumer
            failure.append(exc)
        finally:
            streamer.end()

    thread = threading.Thread(target=target, name="minicpmv-generate", daemon=True)
    thread.start()
    finished = False
    try:
        for piece in streamer:
            if piece or isinstance(piece, Encoding):  # the vision pass's progress comes on the same queue
                yield piece
        finished = True
    finally:
        if not finished and stop is not None:
            stop.set()
        thread.join(timeout=timeout)
    if failure and not isinstance(failure[0], StoppedWhileEncoding):  # Stop during the vision pass: no error
        raise as_generation_error(failure[0])


def token_streamer(tokenizer, *, timeout: float = 600.0):
    """A ``TextIteratorStreamer`` that hands on text at every token, in constant time per token.

    transformers' own waits for a space before it prints (unless the text ends in a CJK character), so an
    answer in a language without spaces, or a long run of symbols, arrives all at once at the end; and it decodes
    everything since the last newline at each token, so a long line costs more and more. This one decodes a short
    window (the tokens since the last piece it handed on, plus the ones before them for context), as servers'
    incremental detokenizers do, and holds back only an incomplete multi-byte character.
    """
    from transformers import TextIteratorStreamer

    class TokenStreamer(TextIteratorStreamer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.prefix_offset = 0  # the window starts here: context for the tokens after read_offset
            self.read_offset = 0  # tokens before this have been handed on

        def put(self, value):
            if len(value.shape) > 1:
                value = value[0]
            if self.skip_prompt and self.next_tokens_are_prompt:
                self.next_tokens_are_prompt = False
                return
            self.token_cache.extend(value.tolist())
            # Decoding the window with and without the new tokens gives their text as it reads in context (a
            # leading space, a merged byte sequence), without decoding the whole answer again.
            done = self.tokenizer.decode(self.token_cache[self.prefix_offset:self.read_offset], **self.decode_kwargs)
            text = self.tokenizer.decode(self.token_cache[self.prefix_offset:], **self.decode_kwargs)
            if text.endswith("\ufffd") or len(text) <= len(done):
                return  # the rest of this character comes with the next token (or nothing to show yet)
            self.prefix_offset, self.read_offset = self.read_offset, len(self.token_cache)
            self.on_finalized_text(text[len(done):])

        def end(self):
            rest = ""
            if self.read_offset < len(self.token_cache):
                done = self.tokenizer.decode(self.token_cache[self.prefix_offset:self.read_offset], **self.decode_kwargs)
                rest = self.tokenizer.decode(self.token_cache[self.prefix_offset:], **self.decode_kwargs)[len(done):]
            self.token_cache, self.prefix_offset, self.read_offset = [], 0, 0
            self.next_tokens_are_prompt = True
            self.on_finalized_text(rest, stream_end=True)

    return TokenStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=timeout)


def as_generation_error(exc: BaseException) -> MiniCPMVError:
    """Map what a model raises while generating to a message users can act on."""
    if isinstance(exc, MiniCPMVError):
        return exc
    text = str(exc)
    if "out of memory" in text.lower() or type(exc).__name__ == "OutOfMemoryError":
        error = GenerationError(
            "The model ran out of memory on this answer. Use fewer or smaller images, fewer video frames, "
            "a lower max new tokens, or an int4 checkpoint.",
            key="out_of_memory",
        )
    else:
        error = GenerationError(
            f"The model failed while answering ({type(exc).__name__}: {text[:300]}).", key="model_failed", kind=type(exc).__name__
        )
    error.__cause__ = exc
    return error


class TaggedThinking(Backend):
    """A backend whose stream holds the model's thinking as <think>…</think> text (a checkpoint's own chat(), a
    chat-completions server without a reasoning parser): ``generate`` keeps the reasoning apart."""

    def generate(
        self, conversation: Conversation, settings: GenerationSettings, *, stop: Optional[threading.Event] = None
    ) -> Iterator[str]:
        # With thinking on, the prompt (the checkpoint's template, or the server's) may already open <think>, so
        # the stream can start inside it.
        return split_reasoning(self._pieces(conversation, settings, stop),
                               maybe_inside=bool(settings.knobs.get("enable_thinking")))

    @abstractmethod
    def _pieces(self, conversation: Conversation, settings: GenerationSettings,
                stop: Optional[threading.Event]) -> Iterator[str]:
        """The raw stream, thinking tags and all."""
