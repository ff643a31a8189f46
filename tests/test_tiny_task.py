"""The training task's real-size questions (issue 25) are what they say: photo sizes, and PDF pages that the app's
own renderer turns into pictures of the named colours, in order."""

import random

import numpy as np

from minicpmv_app.media.documents import render_pdf, target_pixels
from minicpmv_app.tiny_task import COLOURS, ORDINALS, PHOTO_SIDES, draw_with_box, photo_size, sample


def dominant(picture) -> str:
    """The named colour nearest to the picture's most saturated pixels."""
    pixels = np.asarray(picture.convert("RGB"), dtype=float).reshape(-1, 3)
    saturated = pixels[(pixels.max(1) - pixels.min(1)) > 60]
    mean = saturated.mean(0)
    return min(COLOURS, key=lambda name: float(((np.array(COLOURS[name]) - mean) ** 2).sum()))


def test_photo_sizes_span_thumbnails_to_phone_photos_both_ways():
    rng = random.Random(5)
    sizes = [photo_size(rng) for _ in range(400)]
    longer = [max(s) for s in sizes]
    assert min(longer) >= PHOTO_SIDES[0] and max(longer) <= PHOTO_SIDES[1]
    assert sum(x > 2000 for x in longer) > 40 and sum(x < 300 for x in longer) > 40  # both ends drawn often
    assert any(w > h for w, h in sizes) and any(h > w for w, h in sizes)
    assert all(max(s) / min(s) <= 2.0 + 1e-6 or min(s) == 56 for s in sizes)


def test_a_photo_size_drawing_has_its_shape_where_its_box_says(tmp_path):
    picture, box = draw_with_box("blue", "square", size=(4032, 3024), rng=random.Random(2), share=(0.2, 0.85))
    assert picture.size == (4032, 3024)
    left, top, right, bottom = (int(box[0] * 4032), int(box[1] * 3024), int(box[2] * 4032), int(box[3] * 3024))
    assert dominant(picture.crop((left + 5, top + 5, right - 5, bottom - 5))) == "blue"


def test_pages_questions_name_the_asked_pages_colour_as_the_app_renders_it(tmp_path):
    rng = random.Random(11)
    for _ in range(4):
        s = sample("pages", rng, real=True)
        path = tmp_path / "doc.pdf"
        path.write_bytes(s.pdf)
        pages = render_pdf(path, list(range(1, len(s.colours) + 1)), pixels=target_pixels({"max_slice_nums": 36}, side=224))
        assert [dominant(p) for p in pages] == s.colours  # each page shows its colour, in order
        asked = next(n for n, word in enumerate(ORDINALS) if f" {word} " in s.question)
        assert s.answer == s.colours[asked]
        assert pages[0].width < pages[0].height  # a portrait A4 or Letter page
