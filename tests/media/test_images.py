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
