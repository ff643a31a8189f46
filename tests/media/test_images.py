import base64
import io

import pytest
from PIL import Image

from minicpmv_app.errors import MediaError
from minicpmv_app.media.images import MAX_SIDE, img2base64, load_image, prepare_image
from tests.media_factory import solid_image


def png_bytes(image: Image.Image, fmt="PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_base64_path_pil_and_data_url_give_the_same_pixels(image_file):
    path = image_file((10, 200, 30))
    encoded = img2base64(path)
    from_b64 = prepare_image(encoded)
    from_bytes_b64 = prepare_image(encoded.encode())  # upstream's img2base64 returned bytes
    from_path = prepare_image(str(path))
    from_pil = prepare_image(Image.open(path))
    from_url = prepare_image("data:image/png;base64," + encoded)
    for image in (from_bytes_b64, from_path, from_pil, from_url):
        assert image.tobytes() == from_b64.tobytes()
    assert from_b64.getpixel((0, 0)) == (10, 200, 30)


def test_img2base64_of_a_file_is_its_bytes(image_file):
    path = image_file()
    assert base64.b64decode(img2base64(path)) == path.read_bytes()


def test_bad_base64_is_a_media_error():
    with pytest.raises(MediaError, match="base64|not an image"):
        load_image("this is !!! not base64 at all")


def test_non_image_bytes_are_refused_with_a_reason():
    text = base64.b64encode(b"hello, I am a text file renamed .jpg").decode()
    with pytest.raises(MediaError, match="not an image"):
        load_image(text)


def test_empty_image_is_refused():
    with pytest.raises(MediaError, match="empty"):
        load_image(b"")


def test_truncated_jpeg_is_refused():
    data = png_bytes(solid_image(size=(256, 256)), fmt="JPEG", quality=90)
    with pytest.raises(MediaError, match="truncated|damaged"):
        load_image(data[: len(data) // 2])


def test_decompression_bomb_is_refused_before_decoding():
    # A 1-bit PNG header claiming 50000x50000 pixels is tiny on disk.
    bomb = png_bytes(Image.new("1", (50000, 50000)))
    assert len(bomb) < 1_000_000
    with pytest.raises(MediaError, match="too large"):
        load_image(bomb)


def test_long_side_is_capped_like_upstream():
    image = prepare_image(solid_image(size=(MAX_SIDE + 1000, 100)))
    assert max(image.size) == MAX_SIDE
    assert image.size[1] == round(100 * MAX_SIDE / (MAX_SIDE + 1000))


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGBA", (8, 8), (255, 0, 0, 0)),
        Image.new("CMYK", (8, 8), (0, 255, 255, 0)),
        Image.new("I;16", (8, 8), 65535),
        Image.new("L", (8, 8), 128),
        Image.new("P", (8, 8)),
    ],
    ids=["rgba", "cmyk", "16-bit", "grey", "palette"],
)
def test_every_mode_becomes_rgb(image):
    assert prepare_image(png_bytes(image, fmt="TIFF")).mode == "RGB"


def test_transparent_pixels_become_white_and_16_bit_white_stays_white():
    assert prepare_image(Image.new("RGBA", (4, 4), (255, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert prepare_image(Image.new("I;16", (4, 4), 65535)).getpixel((0, 0)) == (255, 255, 255)


def test_animated_gif_reads_its_first_frame():
    frames = [solid_image((255, 0, 0), (16, 16)), solid_image((0, 0, 255), (16, 16))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    image = prepare_image(buffer.getvalue())
    red, green, blue = image.getpixel((5, 5))
    assert red > 200 and blue < 50


def test_a_large_jpeg_is_decoded_at_the_scale_the_model_uses_and_the_model_sees_the_same(tmp_path, trained_chat):
    """Draft mode (JPEG DCT scaling): a 12 MP photo for a 1.8 MP budget is decoded at half size; what the tiny's
    processor makes of it stays within 0.05 (on a -1..1 scale) of the full decode, on average, and the answer is
    the same."""
    import random

    import numpy as np

    from minicpmv_app.media.images import prepare_image
    from minicpmv_app.messages import Conversation, Message
    from minicpmv_app.tiny_task import draw

    photo = draw("green", "circle", size=(4000, 3000), rng=random.Random(4))
    path = tmp_path / "photo.jpg"
    photo.save(path, quality=92)
    budget = trained_chat.page_pixels(trained_chat.settings())
    full, drafted = prepare_image(str(path)), prepare_image(str(path), draft_pixels=budget)
    assert full.size == (4000, 3000) and drafted.size == (2000, 1500)
    assert prepare_image(str(path), draft_pixels=4000 * 3000).size == (4000, 3000)  # no room: decoded whole

    processor = trained_chat.backend.processor
    from minicpmv_app.backends.native import build_inputs

    inputs = [build_inputs(processor, [Conversation([Message("user", [image, "What colour is the shape?"])])],
                           knobs=trained_chat.knobs) for image in (full, drafted)]
    assert inputs[0]["input_ids"].tolist() == inputs[1]["input_ids"].tolist()  # the same slices and tokens
    difference = [np.abs(a.float().numpy() - b.float().numpy()).mean()
                  for a, b in zip(inputs[0]["pixel_values"], inputs[1]["pixel_values"])]
    assert max(difference) < 0.05
    answers = ["".join(trained_chat.stream_conversation(Conversation([Message("user", [image, "What colour is the shape?"])]),
                                                        trained_chat.settings(decode_type="Beam Search", max_new_tokens=8)))
               for image in (full, drafted)]
    assert answers[0] == answers[1]


@pytest.mark.parametrize("data", [
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",  # PostScript: Pillow would run Ghostscript
    b"\xc5\xd0\xd3\xc6" + b"\x00" * 28 + b"%!PS-Adobe-3.0 EPSF-3.0\n",  # the binary (DOS) EPS header
])
def test_only_picture_formats_are_opened(data):
    from minicpmv_app.errors import MediaError
    from minicpmv_app.media.images import load_image

    with pytest.raises(MediaError) as caught:
        load_image(data)
    assert caught.value.key == "image_unreadable"
