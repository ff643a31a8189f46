"""What a person sees of a turn, as typed blocks in the page's language, with no UI toolkit in it.

The rules live here once: which files show themselves and which get a caption, when the Thinking block is open,
what a failed, stopped, cut-off or empty answer says, how an HTML table is shown (sanitised, ``answers.py``), and
the grounding extras (the raw answer, the drawn pictures, the boxes that belong to no picture). Each UI maps the
block types to its own widgets (``gradio_common.render``, ``streamlit_app.render_*``) and decides nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

from PIL import Image

from .. import answers
from ..media import kinds
from ..session import State, Turn
from .i18n import question, text, user_message


@dataclass(frozen=True)
class File:
    """A file the person attached: pictures and videos show themselves; a PDF is named by its caption."""

    path: str
    kind: kinds.MediaKind
    name: str  # the person's own name for it (a UI may save uploads under names of its own)
    caption: Optional[str] = None


@dataclass(frozen=True)
class Words:
    """A block that is words in the page's language."""

    text: str


class Question(Words):
    """The question as the person asked it (a Locate label's words, not the prompt the app wrote)."""


@dataclass(frozen=True)
class Thinking(Words):
    open: bool  # open while it is being written, closed once the answer starts


@dataclass(frozen=True)
class Answer(Words):
    html: bool = False  # an HTML table (already sanitised); otherwise Markdown with the grounding tags gone


class Failure(Words):
    """Why the answer failed, prefixed as an error."""


class Mark(Words):
    """Why an answer is missing, stopped or cut off: the view's words, never part of what the model gets back."""


class RawAnswer(Words):
    """The answer as the model wrote it, grounding tags and all."""


@dataclass(frozen=True)
class Figure:
    index: int  # which of the turn's pictures
    image: Image.Image  # with the answer's boxes drawn
    caption: str


class Unplaced(Words):
    """How many boxes belong to no picture."""


Block = Union[File, Question, Thinking, Answer, Failure, Mark, RawAnswer, Figure, Unplaced]
# Blocks that come after the answer's text: a UI streaming the text draws them once it ends.
AFTER_ANSWER = (Mark, RawAnswer, Figure, Unplaced)


def question_blocks(turn: Turn, lang: str,
                    name: Callable[[str], str] = lambda path: Path(path).name) -> list[Union[File, Question]]:
    """The person's side: their files in order, then the question as they asked it (a Locate label's words)."""
    blocks: list[Union[File, Question]] = []
    for path in turn.files:
        kind = kinds.kind_of(path)
        caption = None
        if kind.paged:
            caption = (text("pdf_turn", lang, name=name(path), pages=turn.pages) if turn.pages
                       else text("pdf_turn_all", lang, name=name(path)))
        blocks.append(File(path, kind, name(path), caption))
    if turn.text:
        blocks.append(Question(question(turn, lang)))
    return blocks


def answer_blocks(turn: Turn, lang: str) -> list[Block]:
    """The model's side; nothing while the question waits."""
    if turn.state == State.PENDING:
        return []
    blocks: list[Block] = []
    if turn.reasoning.strip():
        blocks.append(Thinking(turn.reasoning.strip(), open=turn.thinking))
    if turn.state == State.FAILED:
        blocks.append(Failure(user_message(turn.error or RuntimeError(), lang)))
    elif turn.state == State.STOPPED and not turn.answer:
        blocks.append(Mark(text("stopped_unsent" if turn.unsent else "stopped", lang)))
    else:
        shown = answers.shown(turn).strip()
        # While answering, an empty answer is the bubble the words will stream into (unless Thinking is open).
        if shown or (turn.state == State.ANSWERING and not turn.reasoning):
            blocks.append(Answer(shown, html=answers.is_html(turn)))
        if turn.state == State.STOPPED:
            blocks.append(Mark(text("stopped", lang)))
        elif turn.state == State.ANSWERED and turn.cut_off:
            blocks.append(Mark(text("cut_off", lang)))
        elif turn.state == State.ANSWERED and not shown:  # under its Thinking too: it ended with no answer
            blocks.append(Mark(text("empty_answer", lang)))
    if turn.regions:
        blocks.append(RawAnswer(turn.answer.strip()))
    blocks += [Figure(index, figure, text("grounding_figure", lang, n=index + 1)) for index, figure in turn.figures()]
    if turn.unplaced:
        blocks.append(Unplaced(text("grounding_unplaced", lang, count=turn.unplaced)))
    return blocks
