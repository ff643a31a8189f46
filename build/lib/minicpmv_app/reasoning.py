"""Reasoning ("thinking") apart from the answer.

Thinking models (MiniCPM-V 4.5 and MiniCPM-o 4.5 with ``enable_thinking``, the MiniCPM-V 4.6-Thinking checkpoint)
write ``<think>…</think>`` before the answer; servers with a reasoning parser send it as ``reasoning_content``
instead. Backends hand on ``Reasoning`` pieces for the one and plain ``str`` pieces for the other, so the answer
shown, returned and sent back in the history never holds the reasoning.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Optional

OPEN, CLOSE = "<think>", "</think>"


class Reasoning(str):
    """A piece of the model's reasoning, not of its answer."""


class BudgetSpent(str):
    """The last piece (empty) of an answer that stopped at ``max_new_tokens`` instead of ending by itself."""


class Encoding(str):
    """An empty piece before the answer: the vision pass has run ``done`` of its ``total`` layers, ``left_s``
    seconds estimated to go (None until there is a first layer to go by). Minutes on a CPU, so the page shows it."""

    done: int
    total: int
    left_s: Optional[float]

    def __new__(cls, done: int, total: int, left_s: Optional[float] = None):
        piece = super().__new__(cls, "")
        piece.done, piece.total, piece.left_s = done, total, left_s
        return piece

    def __reduce__(self):  # crosses the model process's pipe as itself
        return Encoding, (self.done, self.total, self.left_s)


class ThinkSplitter:
    """Feed raw text pieces; get ``Reasoning`` and answer pieces. Tags may be cut anywhere between pieces.

    ``inside``: the prompt already opened the block (a template that ends with ``<think>\\n``), so the model's
    first words are reasoning. ``maybe_inside``: thinking is on but the prompt is not known (a server, a checkpoint's
    own ``chat()``): the text is held back until it shows which, an opener first (a block follows), a ``</think>``
    (what came before was reasoning), or the end (it was all answer). Whitespace between ``</think>`` and the
    answer is dropped.
    """

    def __init__(self, inside: bool = False, maybe_inside: bool = False) -> None:
        self.inside = inside
        self.undecided = maybe_inside and not inside
        self._pending = ""
        self._answer_started = False
        self._seen_block = inside
        self._reasoning_started = False

    def feed(self, piece: str) -> list[str]:
        self._pending += piece
        out: list[str] = []
        if self.undecided:
            head = self._pending.lstrip()
            if head.startswith(OPEN) or (OPEN.startswith(head) and head):
                if not head.startswith(OPEN):
                    return out  # "<thi": wait for the rest
                self.undecided = False  # an opener: the usual way
            elif CLOSE in self._pending:
                reasoning, _, self._pending = self._pending.partition(CLOSE)
                self.undecided, self.inside, self._seen_block = False, True, True
                self._emit(reasoning, out)
                self.inside = False
            else:
                return out  # undecided: hold the text back
        while self._pending:
            tag = CLOSE if self.inside else OPEN
            at = self._pending.find(tag)
            if at == -1:
                keep = _partial_tag_length(self._pending, tag)
                ready = self._pending[: len(self._pending) - keep]
                self._pending = self._pending[len(ready):]
                self._emit(ready, out)
                break
            self._emit(self._pending[:at], out)
            self._pending = self._pending[at + len(tag):]
            if self.inside:
                self.inside = False
            elif not self._answer_started:  # an opener before any answer text starts the reasoning
                self.inside = self._seen_block = True
            else:  # "<think>" in the middle of an answer is just text
                self._emit(tag, out)
        return out

    def flush(self) -> list[str]:
        out: list[str] = []
        rest, self._pending = self._pending, ""
        self.undecided = False  # no </think> came: it was all answer
        self._emit(rest, out)
        return out

    def answer_follows(self) -> list[str]:
        """The server sent its reasoning apart (``reasoning_content``): what is held back, and what comes, is answer."""
        if not self.undecided:
            return []
        self.undecided = False
        return self.flush()

    def _emit(self, text: str, out: list[str]) -> None:
        if not text:
            return
        if self.inside:
            if not self._reasoning_started:
                text = text.lstrip()
                if not text:
                    return
                self._reasoning_started = True
            out.append(Reasoning(text))
            return
        if not self._answer_started:
            text = text.lstrip() if self._seen_block or not text.strip() else text
            if not text:
                return
            self._answer_started = True
        out.append(text)


def split_reasoning(pieces: Iterable[str], *, inside: bool = False, maybe_inside: bool = False) -> Iterator[str]:
    """``ThinkSplitter`` over a stream; pieces that are already ``Reasoning`` pass through."""
    splitter = ThinkSplitter(inside, maybe_inside)
    try:
        for piece in pieces:
            if isinstance(piece, BudgetSpent):
                yield from splitter.flush()
                yield piece
                return
            if isinstance(piece, Encoding):
                yield piece
                continue
            if isinstance(piece, Reasoning):
                yield piece
                yield from splitter.answer_follows()
                continue
            for part in splitter.feed(piece):
                yield part
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:  # a consumer that stops early (Stop) stops the model's stream at once
            close()
    yield from splitter.flush()


def prompt_opens_thinking(prompt: str) -> bool:
    """Whether a rendered prompt ends inside an open ``<think>`` block (the model continues the reasoning)."""
    tail = prompt.rstrip()
    return tail.endswith(OPEN)


def _partial_tag_length(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a start of ``tag`` (it may complete in the next piece)."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
