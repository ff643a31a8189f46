"""Large pictures and frames cross to the model process through shared memory, not through the pipe.

A 4032x3024 photo is 36 MB of pixels: pickled down a pipe it is copied four times (to bytes, into the pipe, out
of it, back into a picture). Here the app writes its pixels once into a shared block and the model process reads
them from there. Small pictures (most video frames) stay in the pickle, where the copy costs less than a block.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from multiprocessing import shared_memory

from PIL import Image

from ..media.video import Video
from ..messages import Conversation, Message

SHARE_FROM_BYTES = 1 << 20  # pictures with at least this many bytes of pixels go through shared memory


def block_prefix(pid: int) -> str:
    """The start of the names of the blocks an app process makes (in /dev/shm on Linux): whose they are shows."""
    return f"minicpmv-{pid}-"


@dataclass(frozen=True)
class SharedPicture:
    """Where a picture's pixels are: the block's name, and how to read them back."""

    block: str
    mode: str
    size: tuple
    info: dict


class Sharing:
    """The blocks of one request, written by the app; ``close()`` frees them once the answer has ended."""

    def __init__(self) -> None:
        self.blocks: list[shared_memory.SharedMemory] = []

    def wrap(self, conversation: Conversation) -> Conversation:
        messages = [Message(m.role, [self._part(p) for p in m.parts]) for m in conversation.messages]
        return Conversation(messages, conversation.system_prompt)

    def _part(self, part):
        if isinstance(part, Image.Image):
            return self._picture(part)
        if isinstance(part, Video):
            return replace(part, frames=[self._picture(f) for f in part.frames])
        return part

    def _picture(self, picture: Image.Image):
        if picture.mode not in ("RGB", "RGBA", "L") or len(picture.getbands()) * picture.width * picture.height < SHARE_FROM_BYTES:
            return picture
        pixels = picture.tobytes()
        name = block_prefix(os.getpid()) + secrets.token_hex(6)
        block = shared_memory.SharedMemory(name=name, create=True, size=len(pixels))
        assert block.buf is not None  # open until close()
        block.buf[:len(pixels)] = pixels
        self.blocks.append(block)
        return SharedPicture(block.name, picture.mode, picture.size, dict(picture.info))

    def close(self) -> None:
        for block in self.blocks:
            block.close()
            block.unlink()
        self.blocks.clear()


def unwrap(conversation: Conversation) -> Conversation:
    """The model process's side: the pictures back, read out of their blocks."""
    def part(p):
        if isinstance(p, SharedPicture):
            return _read(p)
        if isinstance(p, Video):
            return replace(p, frames=[_read(f) if isinstance(f, SharedPicture) else f for f in p.frames])
        return p

    messages = [Message(m.role, [part(p) for p in m.parts]) for m in conversation.messages]
    return Conversation(messages, conversation.system_prompt)


def _read(shared: SharedPicture) -> Image.Image:
    block = shared_memory.SharedMemory(name=shared.block)
    try:
        # Python < 3.13 registers an attached block with this process's resource tracker, which would unlink it
        # at exit (and warn): the app owns it.
        from multiprocessing import resource_tracker

        resource_tracker.unregister(block._name, "shared_memory")  # type: ignore[attr-defined]
        size = len(shared.mode) * shared.size[0] * shared.size[1]  # bytes per pixel: RGB 3, RGBA 4, L 1
        assert block.buf is not None  # open until close()
        picture = Image.frombytes(shared.mode, shared.size, bytes(block.buf[:size]))
    finally:
        block.close()
    picture.info.update(shared.info)
    return picture
