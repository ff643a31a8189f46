"""The conversation model shared by every backend, and parsing of the upstream request formats.

A conversation is a list of ``Message(role, parts)``; a part is ``str``, a PIL image or a ``Video``.
Backends translate this one form into what their model wants.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Union

from PIL import Image

from .errors import InvalidInputError, MediaError
from .media.images import prepare_image
from .media.video import Video

Part = Union[str, Image.Image, Video]

ROLES = ("user", "assistant")
# Generous limits; they exist so a pasted novel fails with a message instead of an out-of-memory error.
MAX_TEXT_CHARS = 65_536
MAX_IMAGES = 64


@dataclass
class Message:
    role: str
    parts: list[Part] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(p for p in self.parts if isinstance(p, str))

    @property
    def images(self) -> list[Image.Image]:
        return [p for p in self.parts if isinstance(p, Image.Image)]

    @property
    def videos(self) -> list[Video]:
        return [p for p in self.parts if isinstance(p, Video)]


@dataclass
class Conversation:
    messages: list[Message]
    system_prompt: str = ""

    @property
    def images(self) -> list[Image.Image]:
        return [img for m in self.messages for img in m.images]

    @property
    def videos(self) -> list[Video]:
        return [v for m in self.messages for v in m.videos]


def parse_request(request: Any) -> Conversation:
    """Parse upstream's request: ``{"image": base64 | None, "question": json.dumps(msgs) | msgs}``.

    The top-level image, when given, belongs to the first user turn (as in upstream's chat.py).
    """
    if not isinstance(request, dict):
        raise InvalidInputError('The request must be a dict like {"image": ..., "question": json.dumps(msgs)}.')
    if "question" not in request:
        raise InvalidInputError('The request has no "question": pass json.dumps(msgs) or the msgs list.')
    conversation = parse_messages(request["question"])
    image = request.get("image")
    if image is not None and image != "":
        first_user = next(m for m in conversation.messages if m.role == "user")
        first_user.parts.insert(0, prepare_image(image))
    validate(conversation)
    return conversation


def parse_messages(question: Any) -> Conversation:
    """Parse ``msgs`` (a list, or its JSON text) into a ``Conversation``; a leading system message is kept apart."""
    if isinstance(question, (str, bytes)):
        try:
            msgs = json.loads(question)
        except json.JSONDecodeError:
            # A bare string is one user turn; upstream always JSON-encoded, but people don't.
            msgs = [{"role": "user", "content": question if isinstance(question, str) else question.decode()}]
    else:
        msgs = question
    if isinstance(msgs, dict):
        msgs = [msgs]
    if not isinstance(msgs, list) or not msgs:
        raise InvalidInputError("msgs must be a non-empty list of {'role': ..., 'content': ...} messages.")
    system_prompt = ""
    messages: list[Message] = []
    for index, raw in enumerate(msgs):
        if isinstance(raw, Message):
            messages.append(raw)
            continue
        if not isinstance(raw, dict) or "role" not in raw or "content" not in raw:
            raise InvalidInputError(f"Message {index} must be a dict with 'role' and 'content'.")
        role = raw["role"]
        if role == "system" and not messages:
            system_prompt = _text_of(raw["content"], index)
            continue
        if role not in ROLES:
            raise InvalidInputError(f"Message {index} has role {role!r}; use 'user' or 'assistant'.")
        messages.append(Message(role, list(_parts(raw["content"], index))))
    return Conversation(messages, system_prompt)


def validate(conversation: Conversation) -> Conversation:
    """Check the shape every model needs: user first and last, roles alternating, something to answer."""
    messages = conversation.messages
    if not messages:
        raise InvalidInputError("There is no message to answer.")
    if messages[0].role != "user":
        raise InvalidInputError("The first message must be the user's.")
    if messages[-1].role != "user":
        raise InvalidInputError("The last message must be the user's: the model answers it.")
    for before, after in zip(messages, messages[1:]):
        if before.role == after.role:
            raise InvalidInputError("User and assistant messages must alternate.")
    last = messages[-1]
    if not last.text.strip() and not last.images and not last.videos:
        raise InvalidInputError("The message is empty: type a question or add an image.", key="message_empty")
    total = sum(len(m.text) for m in messages) + len(conversation.system_prompt)
    if total > MAX_TEXT_CHARS:
        raise InvalidInputError(
            f"The conversation is too long ({total:,} characters; the limit is {MAX_TEXT_CHARS:,}). "
            "Shorten the message or clear the chat.",
            key="conversation_too_long", total=f"{total:,}", limit=f"{MAX_TEXT_CHARS:,}",
        )
    if len(conversation.images) > MAX_IMAGES:
        raise InvalidInputError(
            f"Too many images ({len(conversation.images)}; the limit is {MAX_IMAGES}). Remove some or clear the chat.",
            key="too_many_images", count=len(conversation.images), limit=MAX_IMAGES,
        )
    return conversation


def _parts(content: Any, index: int) -> Iterable[Part]:
    if isinstance(content, (str, Image.Image, Video)):
        content = [content]
    if not isinstance(content, list):
        raise InvalidInputError(f"Message {index}: content must be a string or a list.")
    for item in content:
        if isinstance(item, str):
            yield item
        elif isinstance(item, (Image.Image, Video)):
            yield item if isinstance(item, Video) else prepare_image(item)
        elif isinstance(item, dict):
            yield _dict_part(item, index)
        else:
            raise InvalidInputError(f"Message {index}: unsupported content item of type {type(item).__name__}.")


def _dict_part(item: dict, index: int) -> Part:
    """Upstream 2.6 demo items ``{"type": ..., "pairs": ...}`` and chat-template items ``{"type": ..., kind: ...}``."""
    kind = item.get("type")
    value = item.get("pairs", item.get(kind))
    if kind == "text":
        value = item.get("pairs", item.get("text"))
        if not isinstance(value, str):
            raise InvalidInputError(f"Message {index}: a text item needs a string.")
        return value
    if kind in ("image", "image_url"):
        if isinstance(value, dict):  # OpenAI's {"image_url": {"url": ...}}
            value = value.get("url")
        if value is None:
            raise MediaError(f"Message {index}: an image item has no data.")
        return prepare_image(value)
    if kind == "video":
        if isinstance(value, Video):
            return value
        if isinstance(value, (str, os.PathLike)):
            return Video.pending(value)  # decoded by the frame plan of the model that answers
        raise MediaError(f"Message {index}: a video item needs a file path.")
    raise InvalidInputError(f"Message {index}: unknown content type {kind!r} (use text, image or video).")


def _text_of(content: Any, index: int) -> str:
    parts = list(_parts(content, index))
    texts = [p for p in parts if isinstance(p, str)]
    if len(texts) < len(parts):
        raise InvalidInputError("The system message may hold text only.")
    return "".join(texts)
