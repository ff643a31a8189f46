"""One browser session's conversation, independent of the UI toolkit.

The UIs keep a ``ChatSession`` per session (``gr.State``, ``st.session_state``). It holds both what the
model sees (``messages``) and what the person sees (``display``, chat bubbles in Gradio's messages
format, which Streamlit renders too). A user turn is recorded first (instant); its media are decoded when
its answer is generated (slow, with progress); a turn that fails stays on screen with the reason but out of
the model's history, so the next question works and Regenerate retries it.
"""

from __future__ import annotations

import logging
import threading
import time
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from ..errors import InvalidInputError, MiniCPMVError
from ..media.images import prepare_image
from ..media.video import load_video
from ..messages import Conversation, Message, Part
from .i18n import localized
from .i18n import text as ui_text

log = logging.getLogger(__name__)

# Screen updates at most every 40 ms: faster models' tokens are batched into one update, so the UI's
# per-update cost (serialising the whole chat) never slows generation down.
UPDATE_INTERVAL_S = 0.04
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".flv", ".wmv", ".mpeg", ".mpg", ".3gp"}
Progress = Callable[[int, int], None]


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def user_message(exc: BaseException, lang: str = "en") -> str:
    """What to show for an error, in ``lang``: our own messages, and anything else without internals."""
    if isinstance(exc, MiniCPMVError):
        return ui_text("error_prefix", lang, message=localized(exc, lang))
    log.error("Unexpected error while answering", exc_info=exc)
    return ui_text("error_prefix", lang, message=ui_text("unexpected_error", lang, kind=type(exc).__name__))


@dataclass
class PendingTurn:
    text: str
    files: list[str]
    parts: Optional[list[Part]] = None  # decoded once, reused by Regenerate


class ChatSession:
    """Not a dataclass on purpose: Gradio would try to serialise one; it deep-copies this per browser session."""

    def __init__(self) -> None:
        self.messages: list[Message] = []  # answered turns only: what the model sees
        self.display: list[dict] = []  # chat bubbles: what the person sees
        self.pending: Optional[PendingTurn] = None
        self.stop = threading.Event()
        self.error_bubbles: set[int] = set()  # indices into display that hold an error, not an answer

    def __deepcopy__(self, memo) -> "ChatSession":
        # threading.Event cannot be copied; a copy gets its own.
        copy = ChatSession()
        copy.messages = deepcopy(self.messages, memo)
        copy.display = deepcopy(self.display, memo)
        copy.pending = deepcopy(self.pending, memo)
        copy.error_bubbles = set(self.error_bubbles)
        return copy

    # -- recording --------------------------------------------------------------------------
    def add_user_turn(self, text: str, files: Sequence[str] = ()) -> PendingTurn:
        text = (text or "").strip()
        files = [str(f) for f in files or []]
        self._check_media(text, files)
        self.pending = PendingTurn(text, files)
        self.stop = threading.Event()
        self.display += [{"role": "user", "content": {"path": f}} for f in files]
        if text:
            self.display.append({"role": "user", "content": text})
        return self.pending

    def add_answered_turn(self, text: str, files: Sequence[str], answer: str) -> None:
        """A turn whose answer the user supplies: few-shot examples. Its media are checked now."""
        answer = (answer or "").strip()
        if not answer:
            raise InvalidInputError("A few-shot example needs the answer you expect.", key="few_shot_needs_answer")
        before = len(self.display)
        self.add_user_turn(text, files)
        try:
            self.conversation()
        except Exception:
            self.pending = None
            del self.display[before:]
            raise
        self.display.append({"role": "assistant", "content": answer})
        self._finish(answer)

    def _check_media(self, text: str, files: list[str]) -> None:
        if not text and not files:
            raise InvalidInputError("The message is empty: type a question or add an image.", key="message_empty")
        videos = [f for f in files if is_video(f)]
        has_images = len(videos) < len(files)
        if len(videos) > 1:
            raise InvalidInputError("Send one video at a time.", key="one_video")
        if videos and has_images:
            raise InvalidInputError(
                "Images and a video cannot be mixed in one message: send them separately, after Clear.", key="mixed_media"
            )
        kind = self.media_kind
        if kind == "video" and has_images:
            raise InvalidInputError(
                "This conversation is about a video: press Clear to start a new one with images.", key="conversation_is_video"
            )
        if kind == "image" and videos:
            raise InvalidInputError(
                "This conversation is about images: press Clear to start a new one with a video.", key="conversation_is_images"
            )

    @property
    def media_kind(self) -> Optional[str]:
        for message in self.messages:
            if message.videos:
                return "video"
            if message.images:
                return "image"
        return None

    # -- answering --------------------------------------------------------------------------
    def conversation(self, progress: Optional[Progress] = None) -> Conversation:
        """The conversation to answer: history plus the pending turn, its media decoded now."""
        if self.pending is None:
            raise InvalidInputError("There is no question to answer.")
        if self.pending.parts is None:
            parts: list[Part] = []
            for path in self.pending.files:
                parts.append(load_video(path, progress=progress) if is_video(path) else prepare_image(path))
            if self.pending.text:
                parts.append(self.pending.text)
            self.pending.parts = parts
        return Conversation([*self.messages, Message("user", list(self.pending.parts))])

    def stream_answer(self, chat, settings: dict, *, progress: Optional[Progress] = None, lang: str = "en") -> Iterator[list]:
        """Answer the pending turn, yielding ``display`` as the answer grows.

        On any failure the chat shows why and the turn stays out of the model's history. On Stop, the text
        produced so far is kept as the answer.
        """
        if self.pending is None:
            yield self.display
            return
        bubble = {"role": "assistant", "content": ""}
        self.display.append(bubble)
        answer = ""
        try:
            generation = chat.settings(**settings)
            conversation = self.conversation(progress)
            shown_at = 0.0
            for piece in chat.stream_conversation(conversation, generation, stop=self.stop):
                answer += piece
                bubble["content"] = answer
                if time.monotonic() - shown_at >= UPDATE_INTERVAL_S:
                    shown_at = time.monotonic()
                    yield self.display
            self._finish(answer)
            if not answer and self.stop.is_set():
                bubble["content"] = ui_text("stopped", lang)
        except GeneratorExit:
            # The UI stopped reading (Streamlit reruns on any click): keep what was produced.
            self.stop.set()
            self._finish(answer)
            raise
        except Exception as exc:  # shown in the chat, never as a traceback page
            bubble["content"] = user_message(exc, lang)
            self.error_bubbles.add(len(self.display) - 1)
        yield self.display

    def _finish(self, answer: str) -> None:
        if self.pending is None:
            return
        self.messages += [Message("user", list(self.pending.parts or [self.pending.text])), Message("assistant", [answer])]
        self.pending = None

    def prepare_regenerate(self) -> bool:
        """Make the last turn pending again (a failed one, or the last answered one). False when there is none."""
        if self.pending is None:
            if len(self.messages) < 2 or self.messages[-1].role != "assistant":
                return False
            self.messages.pop()
            user = self.messages.pop()
            self.pending = PendingTurn(user.text, [], list(user.parts))
        self.stop = threading.Event()
        while self.display and self.display[-1]["role"] == "assistant":
            self.display.pop()
            self.error_bubbles.discard(len(self.display))
        return True

    def request_stop(self) -> None:
        self.stop.set()

    def clear(self) -> None:
        self.stop.set()  # a running answer stops too
        self.messages.clear()
        self.display.clear()
        self.error_bubbles.clear()
        self.pending = None
