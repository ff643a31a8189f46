"""Grounding tags: parsing boxes, points and quads (cut streams, bad tags, out-of-range numbers, several images),
the text people read, and the pictures drawn from them."""


import pytest
from PIL import Image

from minicpmv_app.grounding import (
    GroundingFilter, assign_images, crop, draw, image_mentioned, iou, parse, strip_grounding,
)

ANSWER = "There is <ref>a cat</ref><box>120 400 500 900</box> on <ref>the sofa</ref><box>0 500 1000 1000</box>."


def test_several_boxes_are_parsed_in_order_as_fractions():
    cat, sofa = parse(ANSWER)
    assert (cat.kind, cat.label, cat.points) == ("box", "a cat", ((0.12, 0.4), (0.5, 0.9)))
    assert (sofa.label, sofa.bounds) == ("the sofa", (0.0, 0.5, 1.0, 1.0))
    assert not cat.clamped and cat.image is None


def test_points_quads_and_boxes_without_a_ref():
    point, quad, bare = parse("<ref>eye</ref><point>250 300</point> <quad>10 10 90 10 90 60 10 60</quad> <box>1 2 3 4</box>")
    assert (point.kind, point.points) == ("point", ((0.25, 0.3),))
    assert quad.kind == "quad" and len(quad.points) == 4 and quad.bounds == (0.01, 0.01, 0.09, 0.06)
    assert (bare.kind, bare.label) == ("box", "")


def test_a_ref_without_a_box_does_not_swallow_the_next_one():
    text = "The <ref>cat</ref> sits next to the <ref>dog</ref><box>100 100 200 200</box>."
    (dog,) = parse(text)
    assert dog.label == "dog" and dog.raw == "<ref>dog</ref><box>100 100 200 200</box>"
    assert strip_grounding(text) == "The cat sits next to the dog."


def test_malformed_tags_are_skipped_not_guessed():
    text = "<box>1 2 3</box> <point>5</point> <ref>x</ref><box>a b c d</box> <box>10 20 30 40"
    assert parse(text) == []
    assert strip_grounding("<ref>x</ref><box>1 2 3</box> ok") == "x ok"


def test_out_of_range_coordinates_are_clamped_and_flagged():
    (region,) = parse("<box>-20 100 1200 900</box>")
    assert region.clamped and region.bounds == (0.0, 0.1, 1.0, 0.9)


def test_swapped_corners_still_make_a_box():
    (region,) = parse("<box>800 700 100 200</box>")
    assert region.bounds == (0.1, 0.2, 0.8, 0.7)


def test_the_text_people_read_keeps_the_names():
    assert strip_grounding(ANSWER) == "There is a cat on the sofa."
    assert strip_grounding("<ref>dot</ref><point>1 2</point> and <quad>1 2 3 4 5 6 7 8</quad>.") == "dot and ."


@pytest.mark.parametrize("size", range(1, 9))
def test_a_stream_cut_anywhere_shows_the_same_text(size):
    pieces = [ANSWER[i : i + size] for i in range(0, len(ANSWER), size)]
    grounding = GroundingFilter()
    shown = "".join(grounding.feed(p) for p in pieces) + grounding.flush()
    assert shown == "There is a cat on the sofa."
    assert [r.label for r in parse("".join(pieces))] == ["a cat", "the sofa"]


def test_a_stream_that_ends_inside_a_tag_shows_no_numbers():
    grounding = GroundingFilter()
    shown = grounding.feed("It is <ref>here</ref><box>10 20 3") + grounding.flush()
    assert shown == "It is here"


def test_plain_less_than_signs_survive():
    grounding = GroundingFilter()
    assert grounding.feed("if a < b and c <d") + grounding.flush() == "if a < b and c <d"


def test_one_image_owns_every_region():
    assert [r.image for r in assign_images(parse(ANSWER), 1)] == [0, 0]


def test_with_several_images_the_answer_or_question_must_say_which():
    answer = "In the first image <ref>a</ref><box>1 1 5 5</box>; in the second image <ref>b</ref><box>2 2 6 6</box>."
    assert [r.image for r in assign_images(parse(answer), 2, "Find them", answer)] == [0, 1]
    assert [r.image for r in assign_images(parse("<box>1 1 5 5</box>"), 2, "Where is it in image 2?")] == [1]
    # Nothing says which: left unplaced, never guessed.
    assert [r.image for r in assign_images(parse("<box>1 1 5 5</box>"), 2, "Where is it?")] == [None]
    # A named image that does not exist is not placed either.
    assert [r.image for r in assign_images(parse("<box>1 1 5 5</box>"), 2, "the fifth image")] == [None]


def test_image_mentions_in_both_languages():
    assert image_mentioned("What is in the second picture?") == 1
    assert image_mentioned("第二张图里有什么") == 1
    assert image_mentioned("compare the first image and the second image") is None


def test_the_drawing_outlines_the_box_in_a_colour_that_is_not_the_picture():
    picture = Image.new("RGB", (400, 300), (255, 255, 255))
    (region,) = assign_images(parse("<ref>thing</ref><box>250 250 750 750</box>"), 1)
    drawn = draw(picture, [region])
    assert drawn.size == picture.size and picture.getpixel((100, 75)) == (255, 255, 255)  # the original is untouched
    # The left edge of the box (x = 100) is coloured; the middle of the box is not.
    edge = drawn.getpixel((100, 150))
    assert edge != (255, 255, 255) and drawn.getpixel((200, 150)) == (255, 255, 255)


def test_crop_takes_the_box_with_a_margin_inside_the_picture():
    picture = Image.new("RGB", (1000, 500))
    (region,) = parse("<box>100 100 500 900</box>")
    assert crop(picture, region, margin=0.1).size == (480, 480)  # 400 x 400 px plus 40 px a side
    (edge,) = parse("<box>0 0 1000 1000</box>")
    assert crop(picture, edge).size == (1000, 500)
    (point,) = parse("<point>500 500</point>")
    assert min(crop(picture, point).size) > 10


def test_iou():
    assert iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert iou((0, 0, 0.5, 1), (0.5, 0, 1, 1)) == 0.0
    assert iou((0, 0, 1, 1), (0, 0, 0.5, 1)) == pytest.approx(0.5)
