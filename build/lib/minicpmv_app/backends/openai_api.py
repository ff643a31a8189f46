"""A model served elsewhere, over the OpenAI chat-completions API: vLLM, SGLang, llama.cpp, Ollama,
``transformers serve``. The UIs stay the same; the server batches many users at once.

Images go as ``image_url`` data URLs; video as its sampled frames (or one ``video_url`` for servers that take
it, e.g. vLLM). Answers stream over SSE; reasoning arrives as ``reasoning_content`` (or ``reasoning``) deltas from
servers with a reasoning parser, where ``content`` may be null, or as ``<think>`` text from those without.
Fields outside OpenAI's own (``top_k``, ``repetition_penalty``, ``chat_template_kwargs`` for thinking,
``mm_processor_kwargs`` for token compression) are sent where the server accepts them and dropped, once and for
good, where it rejects them (``transformers serve`` refuses top_k; Ollama ignores them all).
"""

from __future__ import annotations

import json

import base64
import io
import logging
from typing import Any, Iterator, Optional

from PIL import Image

from ..errors import GenerationError, InvalidInputError, ModelLoadError
from ..media.video import Video, write_video
from ..messages import Conversation
from ..presets import GenerationSettings
from ..settings import PRESETS, SAMPLING, SCHEMA
from ..reasoning import BudgetSpent, Reasoning
from .base import TaggedThinking

log = logging.getLogger(__name__)

# Fields outside OpenAI's own, from the settings schema: decoding fields, and where the knobs go.
EXTRA_FIELDS = tuple(dict.fromkeys(
    [s.openai for s in SCHEMA if s.openai and s.openai_extra] + [s.openai_path[0] for s in SCHEMA if s.openai_path]
))
# What the app offers for a served model: thinking (vLLM/SGLang read chat_template_kwargs), 4.6's token compression
# (vLLM reads mm_processor_kwargs["downsample_mode"]), and the frames the app itself samples from a video.
SERVER_KNOBS = {"enable_thinking": False, "downsample_mode": "16x", "max_num_frames": 64}
REASONING_FIELDS = ("reasoning_content", "reasoning")
# The schema's fields that map to OpenAI's own request fields (max_tokens is set from the token budget).
STANDARD_FIELDS = {s.name: s.openai for s in SCHEMA if s.openai and not s.openai_extra and s.name in PRESETS[SAMPLING]}
DEFAULT_CONCURRENCY = 16
VIDEO_MODES = ("frames", "video_url")


def data_url(image: Image.Image, quality: int = 95) -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def video_data_url(video: Video) -> str:
    """The sampled frames re-encoded as a short MP4 (1 frame per sample), for servers that take ``video_url``."""
    buffer = io.BytesIO()
    write_video(buffer, video.frames, fps=max(1, round(video.sample_fps)), size=video.frames[0].size)
    return "data:video/mp4;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class OpenAIBackend(TaggedThinking):
    name = "openai"
    is_server = True

    def __init__(
        self,
        api_base: str,
        *,
        api_key: Optional[str] = None,
        model: Optional[str] = None,
        timeout: float = 600.0,
        concurrency: int = DEFAULT_CONCURRENCY,
        video_mode: str = "frames",
    ) -> None:
        from openai import OpenAI

        if video_mode not in VIDEO_MODES:
            raise InvalidInputError(f"video_mode must be one of {VIDEO_MODES}.")
        self.api_base = api_base.rstrip("/")
        # max_retries=0: a retry would hide an unreachable server behind minutes of waiting.
        self.client = OpenAI(base_url=self.api_base, api_key=api_key or "not-needed", timeout=timeout, max_retries=0)
        self.concurrency = max(1, concurrency)
        self.video_mode = video_mode
        self.model = model or self._only_model()
        self.refused: set[str] = set()  # extra fields this server rejected: not sent again
        self.last_usage = None
        self.knobs = dict(SERVER_KNOBS)

    def describe(self) -> str:
        return f"{self.model} served at {self.api_base}"

    def card(self) -> dict:
        return {**super().card(), "server_url": self.api_base, "server_model": self.model}

    def _only_model(self) -> str:
        import openai

        try:
            models = [m.id for m in self.client.models.list()]
        except openai.APIConnectionError as exc:
            raise ModelLoadError(self._unreachable()) from exc
        except openai.APIError as exc:
            raise ModelLoadError(
                f"The server at {self.api_base} did not list its models ({exc}); pass --api-model with the served name."
            ) from exc
        if len(models) != 1:
            raise ModelLoadError(
                f"The server at {self.api_base} serves {len(models)} models ({', '.join(models) or 'none'}); "
                "choose one with --api-model."
            )
        return models[0]

    def _unreachable(self) -> str:
        return (
            f"Cannot reach the model server at {self.api_base}: is it running, and is the URL right (it usually ends "
            "in /v1)? See 'Serving at scale' in the README for the start commands."
        )

    # -- request building ---------------------------------------------------------------------
    def request_messages(self, conversation: Conversation) -> list[dict]:
        messages: list[dict] = []
        if conversation.system_prompt:
            messages.append({"role": "system", "content": conversation.system_prompt})
        for message in conversation.messages:
            if message.role == "assistant":
                messages.append({"role": "assistant", "content": message.text})
                continue
            content: list[dict] = []
            for part in message.parts:
                if isinstance(part, str):
                    content.append({"type": "text", "text": part})
                elif isinstance(part, Video):
                    content += self._video_parts(part)
                else:
                    content.append({"type": "image_url", "image_url": {"url": data_url(part)}})
            messages.append({"role": "user", "content": content})
        return messages

    def _video_parts(self, video: Video) -> list[dict]:
        if self.video_mode == "video_url":
            return [{"type": "video_url", "video_url": {"url": video_data_url(video)}}]
        return [{"type": "image_url", "image_url": {"url": data_url(frame)}} for frame in video.frames]

    def request_body(self, conversation: Conversation, settings: GenerationSettings) -> dict[str, Any]:
        params = dict(settings.params)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": self.request_messages(conversation),
            "max_tokens": settings.max_new_tokens,
            "stream": True,
        }
        if settings.sampling:
            body.update({field: params[name] for name, field in STANDARD_FIELDS.items() if name in params})
        else:
            # Chat-completion servers have no beam search: the closest is greedy decoding.
            body["temperature"] = 0.0
        extras: dict[str, Any] = {s.openai: params[s.name] for s in SCHEMA if s.openai and s.openai_extra and s.name in params}
        if settings.sampling:
            # transformers serve samples only when its generation config says so (the request's temperature alone
            # leaves do_sample off: every answer the same); other servers ignore the field or refuse it once.
            extras["generation_config"] = json.dumps({
                "do_sample": True, "max_new_tokens": settings.max_new_tokens,
                **{name: params[name] for name in ("temperature", "top_p", "top_k", "repetition_penalty") if name in params},
            })
        knobs = settings.knobs
        if "enable_thinking" in knobs:
            extras["chat_template_kwargs"] = {"enable_thinking": bool(knobs["enable_thinking"])}
        if knobs.get("downsample_mode", SERVER_KNOBS["downsample_mode"]) != SERVER_KNOBS["downsample_mode"]:
            extras["mm_processor_kwargs"] = {"downsample_mode": knobs["downsample_mode"]}
        extras = {k: v for k, v in extras.items() if k not in self.refused}
        if extras:
            body["extra_body"] = extras
        return body

    # -- generation ------------------------------------------------------------------------------
    def _pieces(self, conversation: Conversation, settings: GenerationSettings, stop) -> Iterator[str]:
        import httpx
        import openai

        body = self.request_body(conversation, settings)
        stream = self._open(body)
        received = spent = False
        try:
            for chunk in stream:
                if getattr(chunk, "usage", None):
                    self.last_usage = chunk.usage
                if stop is not None and stop.is_set():
                    break  # closing the stream below tells the server to stop generating
                spent = spent or any(getattr(c, "finish_reason", None) == "length" for c in chunk.choices or [])
                for reasoning, content in chunk_parts(chunk):
                    if reasoning:
                        received = True
                        yield Reasoning(reasoning)
                    if content:
                        received = True
                        yield content
        except (openai.APIError, httpx.HTTPError) as exc:  # transport errors mid-stream come from httpx itself
            raise GenerationError(
                "The connection to the model server dropped " + ("mid-answer" if received else "before the answer")
                + f" ({type(exc).__name__}). Ask again.",
                key="server_dropped",
            ) from exc
        finally:
            stream.close()
        if spent:
            yield BudgetSpent()

    def _open(self, body: dict):
        import openai

        try:
            return self.client.chat.completions.create(**body)
        except openai.APITimeoutError as exc:
            raise GenerationError(
                f"The model server at {self.api_base} did not answer in time. Try again, or raise --api-timeout.",
                key="server_timeout",
            ) from exc
        except openai.APIConnectionError as exc:
            raise GenerationError(self._unreachable(), key="server_unreachable", url=self.api_base) from exc
        except openai.AuthenticationError as exc:
            raise GenerationError(f"The server at {self.api_base} refused the API key: check --api-key.", key="server_auth") from exc
        except openai.NotFoundError as exc:
            raise GenerationError(
                f"The server at {self.api_base} has no model {self.model!r}: check --api-model.", key="server_no_model"
            ) from exc
        except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
            detail = _detail(exc)
            rejected = [field for field in body.get("extra_body", {}) if field in detail]
            if rejected:
                log.warning("%s rejects %s; not sending it from now on (the server ignores that setting).",
                            self.api_base, ", ".join(rejected))
                self.refused.update(rejected)
                extras = {k: v for k, v in body["extra_body"].items() if k not in rejected}
                retry = {k: v for k, v in body.items() if k != "extra_body"}
                return self._open({**retry, "extra_body": extras} if extras else retry)
            raise GenerationError(_rejected(self.api_base, self.model, body, detail), key="server_rejected") from exc
        except openai.APIStatusError as exc:
            raise GenerationError(
                f"The model server at {self.api_base} failed ({exc.status_code}: {_detail(exc)[:200]}).",
                key="server_failed", detail=f"{exc.status_code}: {_detail(exc)[:200]}",
            ) from exc


def _detail(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("message") or body.get("error") or body)
    return str(exc)


def _rejected(api_base: str, model: str, body: dict, detail: str) -> str:
    has_media = any(
        isinstance(m.get("content"), list) and any(p.get("type") != "text" for p in m["content"]) for m in body["messages"]
    )
    hint = (
        " If it is about images, the served model has no vision support: serve a MiniCPM-V checkpoint "
        "(llama.cpp needs --mmproj)."
        if has_media
        else ""
    )
    return (
        f"The model server at {api_base} rejected the request for {model!r} ({detail[:300]}). "
        f"Check --api-model.{hint}"
    )


def chunk_parts(chunk) -> list[tuple[Optional[str], Optional[str]]]:
    """(reasoning, content) of a stream chunk: from its ``delta`` (reasoning as ``reasoning_content`` or
    ``reasoning``), or from a whole ``message`` where a server sends one instead (``message.reasoning``)."""
    parts = []
    for choice in chunk.choices or []:
        extra = getattr(choice, "model_extra", None) or {}
        for part in (getattr(choice, "delta", None), extra.get("message")):
            if part is None:
                continue
            get = part.get if isinstance(part, dict) else (lambda name, p=part: getattr(p, name, None))
            reasoning = next((r for r in (get(f) for f in REASONING_FIELDS) if r), None)
            parts.append((reasoning, get("content")))
        break  # one answer: the first choice
    return parts
