"""Grounding in answers: ``<ref>`` names, ``<box>``, ``<point>`` and ``<quad>`` coordinates.

MiniCPM-V models (2.0 on) answer the grounding prompt with ``<ref>a cat</ref><box>x1 y1 x2 y2</box>``: corners as
integers on a 0-1000 scale of the image's width and height (docs/MODEL_API.md, "Grounding output"; OpenBMB/MiniCPM-V
#982, #772, #185). ``parse`` finds every region, ``strip_grounding`` gives the text people read (ref names kept,
tags and coordinates gone), ``GroundingFilter`` does that on a stream whose pieces may cut a tag anywhere, and
``draw`` / ``crop`` turn regions into pictures. No UI toolkit here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Optional, Sequence

from PIL import Image, ImageDraw, ImageFont

SCALE = 1000
GROUNDING_PROMPT = "Please provide the bounding box coordinate of the region this sentence describes: <ref>{}</ref>"
# How many numbers each kind holds: corners, a point, four corners.
_ARITY = {"box": 4, "point": 2, "quad": 8}
# A ref never spans another ref's end: "The <ref>cat</ref> and the <ref>dog</ref><box>…" labels the box "dog".
_REGION = re.compile(
    r"(?:<ref>(?P<ref>(?:(?!</ref>).)*?)</ref>\s*)?<(?P<kind>box|point|quad)>(?P<body>(?:(?!</(?P=kind)>).)*?)</(?P=kind)>",
    re.DOTALL,
)
_COORDS = re.compile(r"<(box|point|quad)>.*?</\1>", re.DOTALL)
_TAGS = ("<ref>", "</ref>", "<box>", "</box>", "<point>", "</point>", "<quad>", "</quad>")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "sixth": 5, "seventh": 6, "eighth": 7,
             "第一": 0, "第二": 1, "第三": 2, "第四": 3, "第五": 4}
_IMAGE_MENTION = re.compile(
    r"\b(?P<ord>first|second|third|fourth|fifth|sixth|seventh|eighth)\s+(?:image|picture|photo|page)\b"
    r"|\b(?:image|picture|photo|page)\s*#?\s*(?P<num>\d+)\b"
    r"|(?P<zh>第[一二三四五])\s*张",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Region:
    """One grounded region. ``points`` are (x, y) pairs as fractions (0-1) of the image's width and height."""

    kind: str  # "box", "point" or "quad"
    label: str  # the <ref> text, "" when the answer gave none
    points: tuple[tuple[float, float], ...]
    clamped: bool = False  # a coordinate was outside 0-1000 and was pulled back in
    image: Optional[int] = None  # which image it belongs to (index), None when that is not known
    raw: str = ""

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) in fractions, whatever the kind."""
        xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
        return min(xs), min(ys), max(xs), max(ys)

    def pixels(self, size: tuple[int, int]) -> list[tuple[float, float]]:
        width, height = size
        return [(x * width, y * height) for x, y in self.points]


def parse(text: str) -> list[Region]:
    """Every well-formed region in ``text``, in order. Malformed ones (wrong count of numbers) are skipped."""
    regions = []
    for match in _REGION.finditer(text or ""):
        kind = match["kind"]
        numbers = [float(n) for n in _NUMBER.findall(match["body"])]
        if len(numbers) != _ARITY[kind]:
            continue
        clamped = any(n < 0 or n > SCALE for n in numbers)
        numbers = [min(SCALE, max(0.0, n)) / SCALE for n in numbers]
        points = tuple(zip(numbers[0::2], numbers[1::2]))
        if kind == "box":
            (x1, y1), (x2, y2) = points
            points = ((min(x1, x2), min(y1, y2)), (max(x1, x2), max(y1, y2)))
        label = strip_grounding(match["ref"] or "").strip()
        regions.append(Region(kind, label, points, clamped, raw=match.group(0)))
    return regions


def strip_grounding(text: str) -> str:
    """The answer as people read it: ``<ref>a cat</ref><box>…</box>`` becomes ``a cat``."""
    text = _COORDS.sub("", text)
    for tag in _TAGS:
        text = text.replace(tag, "")
    return text


def image_mentioned(text: str) -> Optional[int]:
    """The one image a text names ("the second image", "image 2", "第二张"), or None if it names none or several."""
    found = set()
    for match in _IMAGE_MENTION.finditer(text or ""):
        if match["ord"]:
            found.add(_ORDINALS[match["ord"].lower()])
        elif match["num"]:
            found.add(int(match["num"]) - 1)
        else:
            found.add(_ORDINALS[match["zh"]])
    return found.pop() if len(found) == 1 else None


def assign_images(regions: Sequence[Region], image_count: int, question: str = "", answer: str = "") -> list[Region]:
    """Tie each region to its image: the only one; else the image the answer names just before the region, or the
    one the question names. Where neither says, ``image`` stays None: the caller must say so, never guess."""
    if image_count <= 0:
        return list(regions)
    if image_count == 1:
        return [replace(r, image=0) for r in regions]
    asked = image_mentioned(question)
    assigned, cursor = [], 0
    for region in regions:
        at = answer.find(region.raw, cursor) if region.raw else -1
        before = answer[cursor:at] if at >= 0 else ""
        named = _last_mention(before)
        index = named if named is not None else asked
        if index is not None and not 0 <= index < image_count:
            index = None
        assigned.append(replace(region, image=index))
        if at >= 0:
            cursor = at + len(region.raw)
    return assigned


def _last_mention(text: str) -> Optional[int]:
    last = None
    for match in _IMAGE_MENTION.finditer(text):
        last = image_mentioned(match.group(0))
    return last


class GroundingFilter:
    """Incremental ``strip_grounding``: feed pieces, get printable pieces; ``flush`` at the end."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, piece: str) -> str:
        self._pending += piece
        text = self._pending
        # Inside an unfinished <box>/<point>/<quad>: wait for its end.
        for kind in ("box", "point", "quad"):
            start = text.rfind(f"<{kind}>")
            if start != -1 and text.find(f"</{kind}>", start) == -1:
                ready, self._pending = text[:start], text[start:]
                return strip_grounding(ready)
        # A trailing "<", "<re", "</bo" ... may be the start of a tag.
        cut = text.rfind("<")
        if cut != -1 and any(tag.startswith(text[cut:]) for tag in _TAGS) and text[cut:] not in _TAGS:
            ready, self._pending = text[:cut], text[cut:]
        else:
            ready, self._pending = text, ""
        return strip_grounding(ready)

    def flush(self) -> str:
        # An unterminated coordinate tag at the end holds only numbers: drop it.
        text, self._pending = self._pending, ""
        if text.startswith(("<box>", "<point>", "<quad>")):
            return ""
        return strip_grounding(text)


# -- pictures -------------------------------------------------------------------------------------------
# Colours that stay apart from each other and from most photos; each label sits on a filled tab of its colour
# with black or white text, whichever contrasts more, so it reads on any picture.
PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60))


def draw(image: Image.Image, regions: Sequence[Region]) -> Image.Image:
    """A copy of ``image`` with each region outlined (boxes, quads) or marked (points) and labelled."""
    out = image.convert("RGB").copy()
    canvas = ImageDraw.Draw(out)
    width = max(2, round(min(out.size) / 150))
    font = _font(max(12, round(min(out.size) / 25)))
    for number, region in enumerate(regions):
        colour = PALETTE[number % len(PALETTE)]
        pixels = region.pixels(out.size)
        if region.kind == "point":
            (x, y), r = pixels[0], width * 3
            canvas.ellipse((x - r, y - r, x + r, y + r), fill=colour, outline=(255, 255, 255), width=max(1, width // 2))
            anchor = (x + r, y - r)
        else:
            corners = pixels if region.kind == "quad" else _box_corners(pixels)
            # A dark halo under the line keeps it visible on a background of its own colour.
            canvas.line([*corners, corners[0]], fill=(0, 0, 0), width=width + 2, joint="curve")
            canvas.line([*corners, corners[0]], fill=colour, width=width, joint="curve")
            anchor = min(corners, key=lambda p: (p[1], p[0]))
        _label(canvas, out.size, anchor, region.label or f"#{number + 1}", colour, font)
    return out


def crop(image: Image.Image, region: Region, margin: float = 0.1) -> Image.Image:
    """The region's bounds plus ``margin`` (a fraction of its size on each side), inside the image."""
    left, top, right, bottom = region.bounds
    width, height = image.size
    dx, dy = (right - left) * margin, (bottom - top) * margin
    box = (max(0, round((left - dx) * width)), max(0, round((top - dy) * height)),
           min(width, round((right + dx) * width)), min(height, round((bottom + dy) * height)))
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:  # a point, or a sliver: take a small square around it
        cx, cy, half = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, max(16, min(width, height) // 8)
        box = (max(0, round(cx - half)), max(0, round(cy - half)), min(width, round(cx + half)), min(height, round(cy + half)))
    return image.crop(box)


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _box_corners(pixels):
    (x1, y1), (x2, y2) = pixels
    return [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _label(canvas, size, anchor, text, colour, font) -> None:
    left, top, right, bottom = canvas.textbbox((0, 0), text, font=font)
    w, h, pad = right - left, bottom - top, 3
    x = min(max(0, anchor[0]), max(0, size[0] - w - 2 * pad))
    y = anchor[1] - h - 2 * pad
    if y < 0:  # no room above: put it inside, under the top edge
        y = anchor[1]
    canvas.rectangle((x, y, x + w + 2 * pad, y + h + 2 * pad), fill=colour)
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    canvas.text((x + pad - left, y + pad - top), text, fill=(0, 0, 0) if luminance > 140 else (255, 255, 255), font=font)
