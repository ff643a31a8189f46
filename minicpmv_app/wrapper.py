"""``MiniCPMVChat``: the one object every UI calls, whatever the model generation or where it runs."""

from __future__ import annotations

import logging
import threading
from typing import Any, Iterator, Optional

from . import presets
from .backends import Backend, load_backend
from .grounding import GroundingFilter
from .hub import resolve_model_path
from .messages import Conversation, parse_request, validate
from .presets import GenerationSettings
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
    ) -> None:
        self.model_path = model_path
        if backend is None and api_base:
            from .backends.openai_api import OpenAIBackend

            backend = OpenAIBackend(api_base, api_key=api_key, model=api_model, timeout=api_timeout)
        if backend is None:
            folder = resolve_model_path(model_path, hub=hub, revision=revision, cache_dir=cache_dir)
            backend = load_backend(folder, device, dtype)
        self.backend = backend
        self.strip_grounding = strip_grounding
        # In-process models answer one request at a time; servers batch, so they get more slots.
        self._slots = threading.BoundedSemaphore(max(1, backend.concurrency))
        log.info("Ready: %s", backend.describe())

    # -- upstream-compatible API -------------------------------------------------------------
    def chat(self, input: dict, **params: Any) -> str:
        """The whole answer as one string (upstream's ``MiniCPMVChat.chat``)."""
        return "".join(self.stream(input, **params))

    def stream(self, input: dict, *, stop_event: Optional[threading.Event] = None, **params: Any) -> Iterator[str]:
        """Yield the answer as it is generated. Beam search yields it once, whole.

        ``params`` (or ``input["params"]``) take ``decode_type`` ("Sampling" / "Beam Search") or ``sampling``,
        ``max_new_tokens``, ``system_prompt`` and the preset's own keys. Setting ``stop_event`` ends generation.
        """
        merged = dict(input.get("params") or {}) if isinstance(input, dict) else {}
        merged.update(params)
        conversation = parse_request(input)
        return self.stream_conversation(conversation, self.settings(**merged), stop=stop_event)

    # -- for UIs, which hold a Conversation already --------------------------------------------
    def settings(self, **params: Any) -> GenerationSettings:
        unknown = set(params) - set(_SETTING_KEYS)
        if unknown:
            from .errors import InvalidInputError

            raise InvalidInputError(f"Unknown generation setting(s): {', '.join(sorted(unknown))}.")
        return presets.resolve(
            params.pop("decode_type", None), model_defaults=self.backend.preset_overrides, **params
        )

    def stream_conversation(
        self, conversation: Conversation, settings: GenerationSettings, *, stop: Optional[threading.Event] = None
    ) -> Iterator[str]:
        validate(conversation)
        if settings.system_prompt and not conversation.system_prompt:
            conversation = Conversation(conversation.messages, settings.system_prompt)
        return self._generate(conversation, settings, stop if stop is not None else threading.Event())

    def _generate(self, conversation: Conversation, settings: GenerationSettings, stop: threading.Event) -> Iterator[str]:
        with self._slots:
            pieces = self.backend.generate(conversation, settings, stop=stop)
            if not self.strip_grounding:
                yield from pieces
                return
            grounding = GroundingFilter()
            try:
                for piece in pieces:
                    shown = grounding.feed(piece)
                    if shown:
                        yield shown
            finally:
                pieces.close()
            tail = grounding.flush()
            if tail:
                yield tail


# MiniCPM-V 1.0's docs call it OmniLMMChat.
OmniLMMChat = MiniCPMVChat
