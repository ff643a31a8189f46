"""One person's conversation as a state machine, with no UI toolkit in it.

A session is a list of turns. The last turn's state is the session's state:

    idle ──submit──▶ pending ──answer()──▶ answering ──▶ answered | failed | stopped
      ▲                 ▲                                      │
      └─────clear───────┴──────────── regenerate ◀─────────────┘

``submit``, ``regenerate``, ``answer`` and ``clear`` refuse what their state does not allow with a typed
``InvalidInputError`` (a ``key`` for each UI's translation) and change nothing then, so a refused click never
corrupts the history. ``stop`` is safe at any moment: it ends an answer between tokens, and media decoding
between frames. ``answer()`` yields typed events (``Progress``, ``TextDelta``, ``ReasoningDelta``) and ends with
exactly one of ``Done``, ``Stopped`` or ``Failed``; the UIs render them (Gradio, Streamlit), translate them and
throttle refreshes.

Only answered turns (and stopped ones with text) are the model's history; a failed turn stays on screen with its
reason, out of the history, so the next question works and Regenerate retries it. A turn keeps the model's
reasoning apart (never sent back) and its raw answer, whose grounding regions are found once it is done (``Locate``
asks for them, ``zoom`` crops one).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterator, Optional, Protocol, Sequence, Union

from PIL import Image

from . import grounding
from .errors import InvalidInputError, MiniCPMVError
from .media import kinds
from .media.documents import MAX_PAGES, check_pdf
from .messages import Conversation, Message, Part
from .presets import GenerationSettings
from .reasoning import BudgetSpent, Encoding, Reasoning

log = logging.getLogger(__name__)
LOCATE_LABEL = "locate_turn"  # the locale key a Locate question is shown with
# The only labels a turn may carry, with the values each needs (an imported chat is checked against them).
LABELS = {LOCATE_LABEL: ("phrase",)}

class State(str, Enum):
    IDLE = "idle"
    PENDING = "pending"
    ANSWERING = "answering"
    ANSWERED = "answered"
    FAILED = "failed"
    STOPPED = "stopped"


class StoppedByUser(MiniCPMVError):
    """Raised inside ``answer()`` when Stop arrives while media are decoding; never leaves the session."""


# -- events ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    """Media are being prepared: ``done`` of ``total`` video frames (``kind`` "video"), PDF pages ("pdf"), or the
    model's vision layers over the pictures ("encoding", with ``left_s``, the estimated seconds to go)."""

    done: int
    total: int
    kind: str = "video"
    left_s: Optional[float] = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class Done:
    answer: str


@dataclass(frozen=True)
class Stopped:
    answer: str  # what was written before Stop ("" when Stop came first)


@dataclass(frozen=True)
class Failed:
    error: BaseException


Event = Union[Progress, TextDelta, ReasoningDelta, Done, Stopped, Failed]


# -- the model, as the session sees it ----------------------------------------------------------------
class ChatModel(Protocol):
    """What a session calls on the model: ``MiniCPMVChat`` (``wrapper.py``), or a test's scripted stand-in."""

    def settings(self, **params: Any) -> GenerationSettings:
        """The generation settings for a UI's values (refusing unknown or out-of-range ones)."""

    def frame_plan(self, settings: GenerationSettings) -> Any:
        """Which frames of a video the model wants (``media.video.UniformPlan`` or a model's own)."""

    def page_pixels(self, settings: GenerationSettings) -> int:
        """How many pixels a PDF page is drawn with."""

    def stream_conversation(self, conversation: Conversation, settings: GenerationSettings, *,
                            stop: Optional[threading.Event] = None, reasoning: bool = False,
                            keep_grounding: bool = False) -> Iterator[str]:
        """The answer in pieces: plain text, ``Reasoning`` pieces, and ``Encoding``/``BudgetSpent`` markers."""


# The streaming call ``answer`` uses: ``chat.stream_conversation``, or ZeroGPU's, which runs it in a GPU slot.
Generate = Callable[..., Iterator[str]]


# -- turns -------------------------------------------------------------------------------------------
@dataclass(eq=False)  # a turn is itself, not its values: caches elsewhere hold it by identity (weakly)
class Turn:
    text: str
    files: list[str]
    state: State = State.PENDING
    answer: str = ""
    reasoning: str = ""
    error: Optional[BaseException] = None
    parts: Optional[list[Part]] = None  # decoded media + text, kept for Regenerate
    example: bool = False  # a few-shot example: its answer was written by the person
    pages: str = ""  # the page range of the turn's PDFs ("" = every page)
    answer_format: str = "text"  # "html": a table from an OCR block prompt, shown sanitised (answers.py)
    # A question the app wrote (Locate's grounding prompt) is shown as the person asked it: a locale key and its
    # values, e.g. {"key": "locate_turn", "phrase": "shape"}; the model gets ``text``.
    label: Optional[dict] = None
    sent: bool = False  # the model got this turn (its media decoded); a Stop while decoding leaves it False
    cut_off: bool = False  # the answer stopped at max new tokens, not by itself
    settings: Optional[dict] = None  # what answered it: the generation settings and knobs, for export's run card
    regions: list = field(default_factory=list)  # grounding.Region found in the answer (image index set, or None)
    images: list = field(default_factory=list, repr=False)  # the pictures the regions belong to
    _figures: Optional[list] = field(default=None, repr=False)
    stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def in_history(self) -> bool:
        return self.state == State.ANSWERED or (self.state == State.STOPPED and bool(self.answer))

    @property
    def shown_answer(self) -> str:
        """The answer as people read it: ref names kept, grounding tags and coordinates gone."""
        return grounding.strip_grounding(self.answer)

    @property
    def unsent(self) -> bool:
        """Stopped before its media reached the model (while decoding): on screen, but not in the model's history."""
        return self.state == State.STOPPED and not self.sent and bool(self.files)

    @property
    def thinking(self) -> bool:
        """Reasoning is still being written (no answer text yet)."""
        return self.state == State.ANSWERING and bool(self.reasoning) and not self.answer.strip()

    def figures(self) -> list:
        """Each picture with its regions drawn, as (image index, PIL image); regions with no known image are left
        out (``unplaced`` says how many)."""
        if self._figures is not None or not self.regions:  # regions are set once, when the answer is done
            return self._figures or []
        placed: dict[int, list] = {}
        for region in self.regions:
            if region.image is not None:
                placed.setdefault(region.image, []).append(region)
        self._figures = [(index, grounding.draw(self.images[index], regions)) for index, regions in sorted(placed.items())]
        return self._figures

    @property
    def unplaced(self) -> int:
        return sum(region.image is None for region in self.regions)


class ChatSession:
    """Not a dataclass on purpose: Gradio would try to serialise one."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []
        self._lock = threading.Lock()  # transitions are atomic; Stop and Clear may come from other threads

    def __deepcopy__(self, memo) -> "ChatSession":
        # Gradio deep-copies its gr.State template, an empty session, for each browser session: a copy of an empty
        # session is a new one. A session with turns holds their threads' Stop events and is never copied.
        if self.turns:
            raise TypeError("A ChatSession with turns cannot be copied: create a new ChatSession instead.")
        return ChatSession()

    # -- reading -------------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self.turns[-1].state if self.turns else State.IDLE

    @property
    def busy(self) -> bool:
        return self.state in (State.PENDING, State.ANSWERING)

    @property
    def media_kind(self) -> Optional[str]:
        """The kind of conversation (``kinds.MediaKind.conversation``) once the history holds a file: a conversation
        keeps to one kind."""
        for turn in self.turns:
            if turn.in_history and turn.files:
                return kinds.kind_of(turn.files[0]).conversation
        return None

    def history(self, before: Optional[Turn] = None) -> list[Message]:
        """What the model sees of the turns (before ``before``). Reasoning is never sent back."""
        messages: list[Message] = []
        for turn in self.turns:
            if turn is before:
                break
            if turn.in_history:
                messages += [Message("user", list(turn.parts or [turn.text])), Message("assistant", [turn.answer])]
        return messages

    # -- transitions ---------------------------------------------------------------------------------
    def submit(self, text: str, files: Sequence[str] = (), *, pages: str = "") -> Turn:
        """idle / answered / failed / stopped → pending. ``pages`` chooses the pages of the turn's PDFs."""
        text = (text or "").strip()
        files = [str(f) for f in files or []]
        pages = (pages or "").strip() if any(kinds.kind_of(f).paged for f in files) else ""
        check_documents(files, pages)  # outside the lock: opening a PDF holds no one else up
        with self._lock:
            self._refuse_if_busy()
            self._check_media(text, files)
            turn = Turn(text, files, pages=pages)
            self.turns.append(turn)
            return turn

    def add_example(self, text: str, files: Sequence[str], answer: str) -> Turn:
        """A few-shot turn whose answer the person writes; its media are decoded (and so checked) now."""
        answer = (answer or "").strip()
        if not answer:
            raise InvalidInputError("A few-shot example needs the answer you expect.", key="few_shot_needs_answer")
        text = (text or "").strip()
        files = [str(f) for f in files or []]
        with self._lock:
            self._refuse_if_busy()
            self._check_media(text, files)
            turn = Turn(text, files, State.ANSWERED, answer=answer, example=True)
            turn.parts = decode(turn)
            self.turns.append(turn)
            return turn

    def regenerate(self) -> Turn:
        """answered / failed / stopped → pending: the last question is asked again."""
        with self._lock:
            self._refuse_if_busy()
            turn = self.turns[-1] if self.turns else None
            if turn is None or turn.example:
                raise InvalidInputError("There is no answer to regenerate yet.", key="nothing_to_regenerate")
            turn.state, turn.answer, turn.reasoning, turn.error = State.PENDING, "", "", None
            turn.sent = turn.cut_off = False
            turn.regions, turn.images, turn._figures = [], [], None
            turn.stop = threading.Event()
            return turn

    def stop(self) -> None:
        """Safe at any moment: the running or pending answer stops; otherwise nothing happens."""
        if self.turns:
            self.turns[-1].stop.set()

    def withdraw(self, turn: Turn) -> None:
        """Take back ``turn`` if it is still the pending last one (a comparison whose other side refused)."""
        with self._lock:
            if self.turns and self.turns[-1] is turn and turn.state == State.PENDING:
                self.turns.pop()

    def clear(self) -> None:
        with self._lock:
            for turn in self.turns:
                turn.stop.set()  # an answer still running stops, and writes into a turn no longer shown
            self.turns = []

    def replace(self, turns: Sequence[Turn]) -> None:
        """The conversation becomes ``turns`` (an import, a chat reopened from memory), their boxes found again.
        Refused while an answer is being written."""
        with self._lock:
            self._refuse_if_busy()
            for turn in self.turns:
                turn.stop.set()
            self.turns = list(turns)
            for turn in self.turns:
                if turn.in_history and turn.parts is not None:
                    self._ground(turn, Conversation([*self.history(before=turn), Message("user", list(turn.parts))]))

    def answer(self, chat: ChatModel, settings: dict, generate: Optional[Generate] = None) -> Iterator[Event]:
        """pending → answering → answered / stopped / failed, as events.

        Media are decoded here (progress events; Stop is checked between frames), then the model streams through
        ``generate`` (``chat.stream_conversation`` unless given; ZeroGPU gives one that runs in a GPU slot).
        Stop before the first token means the model is never called.
        """
        with self._lock:
            turn = self.turns[-1] if self.turns else None
            if turn is None or turn.state != State.PENDING:
                raise InvalidInputError("There is no question waiting for an answer.", key="nothing_to_answer")
            turn.state = State.ANSWERING
        try:
            generation = chat.settings(**settings)
            turn.settings = generation.record()
            if turn.parts is None:
                if any(kinds.is_picture(f) for f in turn.files):
                    # Said at once: a photo's decoding and slicing take seconds before the vision pass counts layers.
                    yield Progress(0, 0, "encoding")
                yield from decode_with_progress(turn, chat.frame_plan(generation), chat.page_pixels(generation))
            if turn.stop.is_set():
                raise StoppedByUser()
            conversation = Conversation([*self.history(before=turn), Message("user", list(turn.parts or []))])
            turn.sent = True
            # The raw answer is kept (grounding tags included): the UIs draw its boxes and show it without tags.
            for piece in (generate or chat.stream_conversation)(conversation, generation, stop=turn.stop,
                                                                 reasoning=True, keep_grounding=True):
                if isinstance(piece, BudgetSpent):
                    turn.cut_off = True
                elif isinstance(piece, Encoding):
                    yield Progress(piece.done, piece.total, "encoding", piece.left_s)
                elif isinstance(piece, Reasoning):
                    turn.reasoning += piece
                    yield ReasoningDelta(piece)
                else:
                    turn.answer += piece
                    yield TextDelta(piece)
        except StoppedByUser:
            pass
        except GeneratorExit:
            # The UI stopped reading (Streamlit reruns on any click): what was written is kept.
            turn.stop.set()
            turn.state = State.STOPPED
            raise
        except Exception as exc:  # shown by the UI, never as a traceback page
            if not isinstance(exc, MiniCPMVError):
                log.error("Unexpected error while answering", exc_info=exc)
            turn.state, turn.error = State.FAILED, exc
            yield Failed(exc)
            return
        if turn.stop.is_set():
            turn.state = State.STOPPED
            yield Stopped(turn.answer)
        else:
            turn.state = State.ANSWERED
            self._ground(turn, conversation)
            yield Done(turn.answer)

    def last_picture(self) -> Optional[str]:
        """The file of the latest picture in the conversation (what Locate looks in)."""
        for turn in reversed(self.turns):
            pictures = [f for f in turn.files if kinds.is_picture(f)]
            if pictures and turn.in_history:
                return pictures[-1]
        return None

    def _latest_grounded(self) -> tuple[Optional[Turn], list]:
        """The latest turn whose answer has placed regions, and those regions."""
        for turn in reversed(self.turns):
            placed = [r for r in turn.regions if r.image is not None]
            if placed:
                return turn, placed
        return None, []

    def regions(self) -> list:
        """The placed regions of the latest answer that has any (what Zoom offers)."""
        return self._latest_grounded()[1]

    def zoom(self, number: int) -> Image.Image:
        """The picture cropped to region ``number`` of ``regions()`` (with a margin)."""
        turn, placed = self._latest_grounded()
        if turn is None or not 0 <= number < len(placed):
            raise InvalidInputError("No box to zoom into yet: use Locate, or ask where something is.",
                                    key="nothing_to_zoom")
        return grounding.crop(turn.images[placed[number].image], placed[number])

    def recognize(self, prompt, picture: Optional[str] = None) -> Turn:
        """Send one of the model's block prompts (``cards.Prompt``, MiniCPM-OCR) about ``picture`` (a picture waiting
        in the message box, or a Zoom crop), else the latest picture in the conversation."""
        picture = picture or self.last_picture()
        if picture is None:
            raise InvalidInputError("Upload a picture first: recognition reads the latest picture.",
                                    key="nothing_to_recognize")
        turn = self.submit(prompt.text, [picture])
        turn.answer_format = prompt.answer
        return turn

    def locate(self, phrase: str, picture: Optional[str] = None, *, resend: bool = True) -> Turn:
        """Ask the grounding prompt for ``phrase`` about ``picture`` (default: the latest picture), sent with the
        question so the boxes belong to it. ``resend=False`` (one-image models): a picture already in the
        conversation is not sent again."""
        phrase = (phrase or "").strip()
        if not phrase:
            raise InvalidInputError("Type what to find, e.g. shape.", key="locate_empty")
        in_chat = self.last_picture()
        picture = picture or in_chat
        if picture is None:
            raise InvalidInputError("Upload a picture first: Locate finds things in the latest picture.",
                                    key="nothing_to_locate")
        files = [] if (in_chat and not resend) else [picture]
        turn = self.submit(grounding.GROUNDING_PROMPT.format(phrase), files)
        turn.label = {"key": LOCATE_LABEL, "phrase": phrase}
        return turn

    # -- helpers -------------------------------------------------------------------------------------
    @staticmethod
    def _ground(turn: Turn, conversation: Conversation) -> None:
        regions = grounding.parse(turn.answer)
        if not regions:
            return
        turn.images = [p for p in turn.parts or [] if isinstance(p, Image.Image)]
        if not turn.images:  # a follow-up ("Where is it?") is about the pictures of the latest turn that had any
            earlier = [m for m in conversation.messages[:-1] if m.role == "user" and m.images]
            turn.images = earlier[-1].images if earlier else []
        turn.regions = grounding.assign_images(regions, len(turn.images), turn.text, turn.answer)

    def _refuse_if_busy(self) -> None:
        if self.state == State.ANSWERING:
            raise InvalidInputError("An answer is still being written: wait for it, or press Stop.", key="busy_answering")
        if self.state == State.PENDING:
            raise InvalidInputError("The last question is waiting for its answer.", key="busy_pending")

    def ensure_idle(self) -> None:
        """Refuses (``InvalidInputError``) while an answer is pending or being written."""
        with self._lock:
            self._refuse_if_busy()

    def _check_media(self, text: str, files: list[str]) -> None:
        if not text and not files:
            raise InvalidInputError("The message is empty: type a question or add an image.", key="message_empty")
        found = [kinds.kind_of(f) for f in files]
        alone = [k for k in found if k.alone]
        if len(alone) > 1:
            raise InvalidInputError("Send one video at a time.", key="one_video")
        if alone and len(found) > 1:
            raise InvalidInputError(
                "Images and a video cannot be mixed in one message: send them separately, after Clear.", key="mixed_media"
            )
        conversation = self.media_kind
        if conversation and any(k.conversation != conversation for k in found):
            if conversation == "video":
                raise InvalidInputError("This conversation is about a video: press Clear to start a new one with images.",
                                        key="conversation_is_video")
            raise InvalidInputError("This conversation is about images: press Clear to start a new one with a video.",
                                    key="conversation_is_images")


def check_documents(files: Sequence[str], pages: str = "") -> None:
    """Refuse a message's PDFs if one is unusable, a range is bad, or all of them pass the page limit."""
    total = sum(len(check_pdf(f, pages)) for f in files if kinds.kind_of(f).paged)
    if total > MAX_PAGES:
        raise InvalidInputError(f"{total} pages is more than {MAX_PAGES} per message: choose a page range.",
                                key="pdf_too_many_pages", count=total, limit=MAX_PAGES)


def decode_with_progress(turn: Turn, plan=None, pixels: Optional[int] = None) -> Iterator[Progress]:
    """Decode ``turn``'s media in a helper thread, yielding its progress; Stop is checked between frames and
    pages."""
    events: queue.Queue = queue.Queue()
    outcome: list = []

    def on_progress(done: int, total: int, kind: str = "video") -> None:
        if turn.stop.is_set():
            raise StoppedByUser()
        events.put(Progress(done, total, kind))

    def work() -> None:
        try:
            outcome.append(decode(turn, on_progress, plan, pixels))
        except BaseException as exc:  # re-raised in the answering thread
            outcome.append(exc)
        events.put(None)

    threading.Thread(target=work, name="minicpmv-decode", daemon=True).start()
    while (event := events.get()) is not None:
        yield event
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    turn.parts = outcome[0]


def decode(turn: Turn, on_progress=None, plan=None, pixels: Optional[int] = None) -> list[Part]:
    """A turn's files as model inputs (images prepared, videos sampled by ``plan``, PDFs as their chosen pages
    rendered to ``pixels``), then its text."""
    parts: list[Part] = []
    for f in turn.files:
        parts += kinds.kind_of(f).decode(f, pages=turn.pages, plan=plan, pixels=pixels, progress=on_progress)
    if turn.text:
        parts.append(turn.text)
    return parts
