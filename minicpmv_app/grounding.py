"""Strip grounding tags from answers shown to people, as upstream's demos do.

``<ref>a cat</ref><box>(12,40),(200,310)</box>`` reads as ``a cat``. Streaming splits tags across
pieces, so ``GroundingFilter`` holds back only the text that might still turn out to be a tag.
"""

from __future__ import annotations

import re

_BOX = re.compile(r"<box>.*?</box>", re.DOTALL)
_TAGS = ("<ref>", "</ref>", "<box>", "</box>")


def strip_grounding(text: str) -> str:
    text = _BOX.sub("", text)
    for tag in _TAGS:
        text = text.replace(tag, "")
    return text


class GroundingFilter:
    """Incremental ``strip_grounding``: feed pieces, get printable pieces; ``flush`` at the end."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, piece: str) -> str:
        self._pending += piece
        text = self._pending
        # Inside an unfinished <box>...: wait for its end.
        open_box = text.rfind("<box>")
        if open_box != -1 and text.find("</box>", open_box) == -1:
            ready, self._pending = text[:open_box], text[open_box:]
            return strip_grounding(ready)
        # A trailing "<", "<re", "</bo" ... may be the start of a tag.
        cut = text.rfind("<")
        if cut != -1 and any(tag.startswith(text[cut:]) for tag in _TAGS) and text[cut:] not in _TAGS:
            ready, self._pending = text[:cut], text[cut:]
        else:
            ready, self._pending = text, ""
        return strip_grounding(ready)

    def flush(self) -> str:
        # An unterminated <box> at the end holds only coordinates: drop it.
        text, self._pending = self._pending, ""
        if text.startswith("<box>"):
            return ""
        return strip_grounding(text)
