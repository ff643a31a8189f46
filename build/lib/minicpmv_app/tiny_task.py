"""The narrow task the trained ``tiny`` checkpoint answers: the colour and shape of a drawn shape, the colour
of the first or second of two images, the colour of a video, where the shape is (a ``<box>`` on the 0-1000
scale), and the same colour/shape questions with thinking on (a short ``<think>`` first). Pictures are drawn on
the fly with PIL.

Used by ``scripts/train_tiny.py`` (training and held-out accuracy) and by the tests, which prove end to end that
the picture really reaches the model: a red square answers "red".
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (235, 220, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 220),
    "purple": (140, 40, 180),
    "pink": (250, 130, 190),
    "brown": (120, 70, 30),
}
SHAPES = ("circle", "square", "triangle")

COLOUR_QUESTIONS = ("What colour is the shape?", "What color is it?", "Which colour is the shape in the picture?")
SHAPE_QUESTIONS = ("What shape is it?", "What is the shape?", "Which shape is in the image?")
ORDINAL_QUESTIONS = ("What colour is the {n} image?", "What color is the shape in the {n} image?")
VIDEO_QUESTIONS = ("What colour is the video?", "What colour is the shape in the video?")
PAGE_QUESTIONS = ("What colour is the {n} page?", "What colour is the shape on the {n} page?")
ORDINALS = ("first", "second", "third", "fourth")
# The second is the grounding prompt MiniCPM-V models are asked (docs/MODEL_API.md, "Grounding output").
GROUND_QUESTIONS = (
    "Where is the shape?",
    "Please provide the bounding box coordinate of the region this sentence describes: <ref>shape</ref>",
)
GRID_STEP = 50  # the tiny's coordinates are multiples of 50 on the 0-1000 scale (minicpmv_app/tiny.py)
# What people bring (issue 25): from a thumbnail to a phone photo's 4032x3024, at any aspect ratio up to 2:1, the
# shape at least this share of the shorter side. Paper for PDF pages: A4 and Letter, in points.
PHOTO_SIDES = (100, 4032)
REAL_SHARE = (0.2, 0.85)
PAPER = {"A4": (595, 842), "Letter": (612, 792)}


@dataclass
class Sample:
    kind: str  # "colour", "shape", "two_images", "pages", "video", "ground", "think"
    question: str
    answer: str  # what the model should write (for "think": after the reasoning)
    images: list = field(default_factory=list)  # PIL images, in order
    frames: Optional[list] = None  # for "video"
    shapes: list = field(default_factory=list)  # the shape drawn in each image (training uses it too)
    colours: list = field(default_factory=list)  # the colour of each image's shape (training uses it too)
    boxes: list = field(default_factory=list)  # each image's shape box, (left, top, right, bottom) in 0-1 units
    reasoning: str = ""  # for "think": the <think> text
    thinking: bool = False  # asked with enable_thinking on
    pdf: Optional[bytes] = None  # for "pages": the document, whose pages are rendered as the app renders them


def draw(colour: str, shape: str, *, size: Optional[tuple] = None, rng: Optional[random.Random] = None) -> Image.Image:
    """A shape of ``colour`` on a light, noisy background, at a random size and position."""
    return draw_with_box(colour, shape, size=size, rng=rng)[0]


def draw_with_box(colour: str, shape: str, *, size: Optional[tuple] = None, rng: Optional[random.Random] = None,
                  share: tuple = (0.4, 0.85)):
    """``draw``, and the shape's bounding box as fractions of the width and height (left, top, right, bottom).
    ``share``: the shape's side, as a share of the picture's shorter side."""
    rng = rng or random.Random(0)
    width, height = size or (rng.randint(56, 224), rng.randint(56, 224))
    base = rng.randint(200, 250)
    if width * height <= 224 * 224:
        image = Image.new("RGB", (width, height), (base, base, base))
        pixels: Any = image.load()
        for _ in range(width * height // 12):  # speckle noise
            x, y = rng.randrange(width), rng.randrange(height)
            grey = rng.randint(150, 255)
            pixels[x, y] = (grey, grey, grey)
    else:  # the same noise, drawn at once: a photo-size picture has millions of pixels
        noise = np.random.default_rng(rng.getrandbits(32))
        greys = np.full((height, width), base, dtype=np.uint8)
        speckled = noise.random((height, width)) < 1 / 12
        greys[speckled] = noise.integers(150, 256, int(speckled.sum()), dtype=np.uint8)
        image = Image.fromarray(np.repeat(greys[:, :, None], 3, axis=2), "RGB")
    side = rng.randint(int(min(width, height) * share[0]), int(min(width, height) * share[1]))
    left = rng.randint(0, width - side)
    top = rng.randint(0, height - side)
    fill = tuple(max(0, min(255, c + rng.randint(-20, 20))) for c in COLOURS[colour])
    canvas = ImageDraw.Draw(image)
    box = (left, top, left + side, top + side)
    if shape == "circle":
        canvas.ellipse(box, fill=fill)
    elif shape == "square":
        canvas.rectangle(box, fill=fill)
    else:
        canvas.polygon([(left + side / 2, top), (left, top + side), (left + side, top + side)], fill=fill)
    return image, (left / width, top / height, (left + side) / width, (top + side) / height)


def box_answer(label: str, box) -> str:
    """``<ref>label</ref><box>x1 y1 x2 y2</box>`` with the corners on the tiny's 0-1000 grid."""
    corners = " ".join(str(int(round(v * 1000 / GRID_STEP)) * GRID_STEP) for v in box)
    return f"<ref>{label}</ref><box>{corners}</box>"


def solid_frames(colour: str, count: int = 4, size=(96, 72)) -> list:
    return [Image.new("RGB", size, COLOURS[colour]) for _ in range(count)]


def photo_size(rng: random.Random, sides: tuple = PHOTO_SIDES) -> tuple[int, int]:
    """A picture size as people upload them: the longer side log-uniform in ``sides``, landscape or portrait, at an
    aspect ratio up to 2:1 (a 4032x3024 photo is 4:3)."""
    longer = int(round(math.exp(rng.uniform(math.log(sides[0]), math.log(sides[1])))))
    shorter = max(56, int(longer / rng.uniform(1.0, 2.0)))
    return (longer, shorter) if rng.random() < 0.6 else (shorter, longer)


def page_pdf(pictures: list, paper: str = "A4") -> bytes:
    """A PDF of ``paper``-size pages, each a picture drawn across the page (as a scanned or exported page is)."""
    width, height = PAPER[paper]
    pages = [picture.convert("RGB").resize((width * 2, height * 2)) for picture in pictures]
    out = io.BytesIO()
    pages[0].save(out, format="PDF", save_all=True, append_images=pages[1:], resolution=144)
    return out.getvalue()


def sample(kind: str, rng: random.Random, *, real: bool = False) -> Sample:
    """One question of ``kind``. ``real``: at the sizes people bring (``photo_size``, the shape anywhere at
    ``REAL_SHARE``); otherwise the small pictures the first phases were trained on."""
    colour = rng.choice(list(COLOURS))
    shape = rng.choice(SHAPES)

    def picture(colour_: str, shape_: str, box: bool = False):
        if real:
            drawn = draw_with_box(colour_, shape_, size=photo_size(rng), rng=rng, share=REAL_SHARE)
        else:
            drawn = draw_with_box(colour_, shape_, rng=rng)
        return drawn if box else drawn[0]

    if kind == "colour":
        return Sample(kind, rng.choice(COLOUR_QUESTIONS), colour, [picture(colour, shape)], shapes=[shape],
                      colours=[colour])
    if kind == "shape":
        return Sample(kind, rng.choice(SHAPE_QUESTIONS), shape, [picture(colour, shape)], shapes=[shape],
                      colours=[colour])
    if kind == "two_images":
        other = rng.choice([c for c in COLOURS if c != colour])
        first, second = (colour, other) if rng.random() < 0.5 else (other, colour)
        ordinal = "first" if first == colour else "second"
        shapes = [rng.choice(SHAPES), rng.choice(SHAPES)]
        images = [picture(first, shapes[0]), picture(second, shapes[1])]
        return Sample(kind, rng.choice(ORDINAL_QUESTIONS).format(n=ordinal), colour, images, shapes=shapes,
                      colours=[first, second])
    if kind == "pages":
        count = rng.randint(2, 4)
        colours = rng.sample(list(COLOURS), count)
        shapes = [rng.choice(SHAPES) for _ in range(count)]
        asked = rng.randrange(count)
        paper = rng.choice(list(PAPER))
        pages = [draw(c, s, size=(PAPER[paper][0] // 2, PAPER[paper][1] // 2), rng=rng) for c, s in zip(colours, shapes)]
        return Sample(kind, rng.choice(PAGE_QUESTIONS).format(n=ORDINALS[asked]), colours[asked], shapes=shapes,
                      colours=colours, pdf=page_pdf(pages, paper))
    if kind == "video":
        count = rng.randint(2, 8 if real else 4)
        size = photo_size(rng, (160, 1920)) if real else (rng.randint(56, 112), rng.randint(56, 112))
        if rng.random() < 0.5:
            frames = solid_frames(colour, count, size)
        else:
            frames = [draw(colour, shape, size=size, rng=rng) for _ in range(count)]
        return Sample(kind, rng.choice(VIDEO_QUESTIONS), colour, frames=frames)
    if kind == "ground":
        image, box = picture(colour, shape, box=True)
        answer = box_answer(f"{colour} {shape}", box)
        return Sample(kind, rng.choice(GROUND_QUESTIONS), answer, [image], shapes=[shape], boxes=[box],
                      colours=[colour])
    if kind == "think":
        image, box = picture(colour, shape, box=True)
        asked_colour = rng.random() < 0.5
        question = rng.choice(COLOUR_QUESTIONS if asked_colour else SHAPE_QUESTIONS)
        return Sample(kind, question, colour if asked_colour else shape, [image], shapes=[shape], boxes=[box],
                      colours=[colour], reasoning=f"I see a {colour} {shape}.", thinking=True)
    raise ValueError(kind)


def completion(s: Sample) -> str:
    """What the model writes after the prompt (the chat template closes an empty think block when thinking is off)."""
    if s.thinking:
        return f"<think>\n{s.reasoning}\n</think>\n\n{s.answer}"
    return s.answer


def answer_word(text: str) -> str:
    """The first known colour or shape word in an answer ('' if none)."""
    words = text.lower().replace(".", " ").split()
    for word in words:
        if word in COLOURS or word in SHAPES:
            return word
    return ""
