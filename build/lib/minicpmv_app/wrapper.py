"""``MiniCPMVChat``: the one object every UI calls, whatever the model generation or where it runs."""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any, Iterator, NamedTuple, Optional, Sequence

from . import presets
from .backends import Backend, load_backend
from .backends.llama_server import is_gguf
from .grounding import GroundingFilter
from .hub import resolve_model_path
from .media.video import Video
from .messages import Conversation, Message, parse_request, validate
from .presets import GenerationSettings
from .reasoning import BudgetSpent, Encoding, Reasoning
from .settings import NAMES

log = logging.getLogger(__name__)

DEFAULT_MODEL = "openbmb/MiniCPM-V-2_6"
# What settings() accepts: the schema's names, plus upstream's spelling of the decode type.
_SETTING_KEYS = (*NAMES, "sampling")


class MiniCPMVChat:
    """Load a MiniCPM-V checkpoint and chat with it.

    >>> chat_model = MiniCPMVChat("tiny")
    >>> chat_model.chat({"image": img2base64("cat.jpg"), "question": json.dumps(msgs)})

    ``model_path`` is a Hugging Face id, a ModelScope id (with ``hub="modelscope"``), a local folder, or
    ``"tiny"`` (an offline toy checkpoint). With ``api_base`` the model runs on an OpenAI-compatible server
    instead (vLLM, SGLang, llama.cpp, Ollama, ``transformers serve``). ``backend`` passes a ready backend.

    A ``.gguf`` file (its format, whatever its name) runs on llama.cpp: the app starts ``llama-server`` with it and
    its vision projector (``mmproj``, or the one ``*mmproj*.gguf`` beside it; ``llama_server`` names the binary).

    ``process="model"`` runs a local model in a model process of its own (what the demos do: this process then
    never imports torch, and survives the model crashing); ``wait=False`` returns while it loads (``status()``).
    The default, ``"here"``, loads it in this process, except a generation whose model card pins another
    transformers.
    """

    def __init__(
        self,
        model_path: str = DEFAULT_MODEL,
        device: str = "auto",
        dtype: Optional[str] = None,
        *,
        hub: str = "hf",
        revision: Optional[str] = None,
        cache_dir: Optional[str] = None,
        api_base: Optional[str] = None,
        api_key: Optional[str] = None,
        api_model: Optional[str] = None,
        api_timeout: float = 600.0,
        backend: Optional[Backend] = None,
        strip_grounding: bool = True,
        process: str = "here",
        wait: bool = True,
        mmproj: Optional[str] = None,
        llama_server: Optional[str] = None,
        llama_server_args: Sequence[str] = (),
    ) -> None:
        self.model_path = model_path
        self.revision = revision
        self.folder = None  # the checkpoint's local folder (None for a server)
        if backend is None and api_base:
            from .backends.openai_api import OpenAIBackend

            backend = OpenAIBackend(api_base, api_key=api_key, model=api_model, timeout=api_timeout)
        if backend is None and is_gguf(os.path.expanduser(str(model_path))):
            from .backends.llama_server import LlamaServerBackend

            # A GGUF file runs on llama.cpp: a llama-server of this app's own, stopped with it.
            backend = LlamaServerBackend(os.path.expanduser(str(model_path)), mmproj, binary=llama_server,
                                         extra_args=llama_server_args, timeout=api_timeout)
        if backend is None:
            folder = self.folder = resolve_model_path(model_path, hub=hub, revision=revision, cache_dir=cache_dir)
            backend = load_backend(folder, device, dtype, process=process, wait=wait)
        self.backend = backend
        self.strip_grounding = strip_grounding
        # In-process models answer one request at a time; servers batch, so they get more slots.
        self._slots = threading.BoundedSemaphore(max(1, backend.concurrency))
        if backend.status().ready:
            log.info("Ready: %s", backend.describe())

    def status(self):
        """Where loading the model is (``backends.base.LoadStatus``): a model process loads in the background."""
        return self.backend.status()

    # -- upstream-compatible API -------------------------------------------------------------
    def chat(self, input: dict, *, with_reasoning: bool = False, **params: Any):
        """The whole answer as one string (upstream's ``MiniCPMVChat.chat``), without the model's reasoning.
        ``with_reasoning=True`` returns ``Reply(answer, reasoning)`` instead."""
        pieces = list(self.stream(input, reasoning=True, **params))
        answer = "".join(p for p in pieces if not isinstance(p, Reasoning))
        if not with_reasoning:
            return answer
        return Reply(answer, "".join(p for p in pieces if isinstance(p, Reasoning)).strip())

    def stream(self, input: dict, *, stop_event: Optional[threading.Event] = None, reasoning: bool = False,
               **params: Any) -> Iterator[str]:
        """Yield the answer as it is generated. Beam search yields it once, whole.

        ``params`` (or ``input["params"]``) take ``decode_type`` ("Sampling" / "Beam Search") or ``sampling``,
        ``max_new_tokens``, ``system_prompt``, the preset's own keys, and the model's knobs (``knobs``).
        Setting ``stop_event`` ends generation (between vision layers too). ``reasoning=True`` also yields the
        model's reasoning, as ``minicpmv_app.reasoning.Reasoning`` pieces (a ``str`` subclass), and, before the
        answer, one empty ``Encoding`` piece per vision layer (``done``, ``total``, ``left_s``).
        """
        merged = dict(input.get("params") or {}) if isinstance(input, dict) else {}
        merged.update(params)
        conversation = parse_request(input)
        return self.stream_conversation(conversation, self.settings(**merged), stop=stop_event, reasoning=reasoning)

    @property
    def prompts(self) -> tuple:
        """The model's own fixed prompts (``cards.Prompt``; MiniCPM-OCR: "Text Recognition:", ...), or none."""
        return tuple(self.backend.prompts)

    @property
    def knobs(self) -> dict:
        """The per-model settings this model takes, with its model card's defaults."""
        return dict(self.backend.knobs)

    def page_pixels(self, settings: GenerationSettings) -> int:
        """How many pixels each PDF page is drawn with for this model under ``settings``."""
        return self.backend.page_pixels(settings)

    def frame_plan(self, settings: GenerationSettings):
        """Which frames of a video the model wants under ``settings``."""
        return self.backend.frame_plan(settings)

    # -- for UIs, which hold a Conversation already --------------------------------------------
    def settings(self, **params: Any) -> GenerationSettings:
        unknown = set(params) - set(_SETTING_KEYS)
        if unknown:
            from .errors import InvalidInputError

            raise InvalidInputError(f"Unknown generation setting(s): {', '.join(sorted(unknown))}.")
        return presets.resolve(
            params.pop("decode_type", None), model_defaults=self.backend.preset_overrides, knobs=self.backend.knobs,
            **params
        )

    def stream_conversation(
        self, conversation: Conversation, settings: GenerationSettings, *, stop: Optional[threading.Event] = None,
        reasoning: bool = False, keep_grounding: bool = False,
    ) -> Iterator[str]:
        """The answer's pieces; with ``reasoning`` also ``Reasoning`` pieces; with ``keep_grounding`` the grounding
        tags are kept even where ``strip_grounding`` is on (the UIs draw them). Videos the model wants sampled otherwise (another frame plan)
        are decoded again from their file first."""
        validate(conversation)
        conversation = with_frames(conversation, self.frame_plan(settings))
        if settings.system_prompt and not conversation.system_prompt:
            conversation = Conversation(conversation.messages, settings.system_prompt)
        strip = self.strip_grounding and not keep_grounding
        return self._generate(conversation, settings, stop if stop is not None else threading.Event(), reasoning, strip)

    def _generate(self, conversation: Conversation, settings: GenerationSettings, stop: threading.Event,
                  reasoning: bool, strip: bool) -> Iterator[str]:
        with self._slots:
            pieces = self.backend.generate(conversation, settings, stop=stop)
            grounding = GroundingFilter() if strip else None
            try:
                for piece in pieces:
                    if isinstance(piece, BudgetSpent):
                        tail = grounding.flush() if grounding else ""
                        grounding = None
                        if tail:
                            yield tail
                        if reasoning:  # typed pieces are for callers that read them (the UIs)
                            yield piece
                        continue
                    if isinstance(piece, (Reasoning, Encoding)):
                        if reasoning:
                            yield piece
                        continue
                    shown = grounding.feed(piece) if grounding else piece
                    if shown:
                        yield shown
            finally:
                close = getattr(pieces, "close", None)  # a generator's: the backend's own finally runs now
                if close is not None:
                    close()
            tail = grounding.flush() if grounding else ""
            if tail:
                yield tail


class Reply(NamedTuple):
    answer: str
    reasoning: str


def with_frames(conversation: Conversation, plan) -> Conversation:
    """``conversation`` with each video decoded by ``plan`` (only those decoded by another plan change)."""
    if not any(v.source and v.plan_key != plan.key for v in conversation.videos):
        return conversation
    from .media.video import load_video

    def redo(part):
        if isinstance(part, Video) and part.source and part.plan_key != plan.key:
            return load_video(part.source, plan=plan)
        return part

    messages = [Message(m.role, [redo(p) for p in m.parts]) for m in conversation.messages]
    return Conversation(messages, conversation.system_prompt)


# MiniCPM-V 1.0's docs call it OmniLMMChat.
OmniLMMChat = MiniCPMVChat

if TYPE_CHECKING:  # the type checker holds MiniCPMVChat to the seam the session calls
    from .session import ChatModel

    _CHAT_MODEL: type[ChatModel] = MiniCPMVChat
