"""The narrow task the trained ``tiny`` checkpoint answers: the colour and shape of a drawn shape, the colour
of the first or second of two images, and the colour of a video. Pictures are drawn on the fly with PIL.

Used by ``scripts/train_tiny.py`` (training and held-out accuracy) and by the tests, which prove end to end that
the picture really reaches the model: a red square answers "red".
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Optional

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


@dataclass
class Sample:
    kind: str  # "colour", "shape", "two_images", "video"
    question: str
    answer: str
    images: list = field(default_factory=list)  # PIL images, in order
    frames: Optional[list] = None  # for "video"
    shapes: list = field(default_factory=list)  # the shape drawn in each image (training uses it too)


def draw(colour: str, shape: str, *, size: Optional[tuple] = None, rng: Optional[random.Random] = None) -> Image.Image:
    """A shape of ``colour`` on a light, noisy background, at a random size and position."""
    rng = rng or random.Random(0)
    width, height = size or (rng.randint(56, 224), rng.randint(56, 224))
    base = rng.randint(200, 250)
    image = Image.new("RGB", (width, height), (base, base, base))
    pixels = image.load()
    for _ in range(width * height // 12):  # speckle noise
        x, y = rng.randrange(width), rng.randrange(height)
        grey = rng.randint(150, 255)
        pixels[x, y] = (grey, grey, grey)
    side = rng.randint(int(min(width, height) * 0.4), int(min(width, height) * 0.85))
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
    return image


def solid_frames(colour: str, count: int = 4, size=(96, 72)) -> list:
    return [Image.new("RGB", size, COLOURS[colour]) for _ in range(count)]


def sample(kind: str, rng: random.Random) -> Sample:
    colour = rng.choice(list(COLOURS))
    shape = rng.choice(SHAPES)
    if kind == "colour":
        return Sample(kind, rng.choice(COLOUR_QUESTIONS), colour, [draw(colour, shape, rng=rng)], shapes=[shape])
    if kind == "shape":
        return Sample(kind, rng.choice(SHAPE_QUESTIONS), shape, [draw(colour, shape, rng=rng)], shapes=[shape])
    if kind == "two_images":
        other = rng.choice([c for c in COLOURS if c != colour])
        first, second = (colour, other) if rng.random() < 0.5 else (other, colour)
        ordinal = "first" if first == colour else "second"
        shapes = [rng.choice(SHAPES), rng.choice(SHAPES)]
        images = [draw(first, shapes[0], rng=rng), draw(second, shapes[1], rng=rng)]
        return Sample(kind, rng.choice(ORDINAL_QUESTIONS).format(n=ordinal), colour, images, shapes=shapes)
    if kind == "video":
        count = rng.randint(2, 4)
        size = (rng.randint(56, 112), rng.randint(56, 112))
        if rng.random() < 0.5:
            frames = solid_frames(colour, count, size)
        else:
            frames = [draw(colour, shape, size=size, rng=rng) for _ in range(count)]
        return Sample(kind, rng.choice(VIDEO_QUESTIONS), colour, frames=frames)
    raise ValueError(kind)


def answer_word(text: str) -> str:
    """The first known colour or shape word in an answer ('' if none)."""
    words = text.lower().replace(".", " ").split()
    for word in words:
        if word in COLOURS or word in SHAPES:
            return word
    return ""
