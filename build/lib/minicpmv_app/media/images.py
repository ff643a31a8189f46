"""Images in and out: base64 transport, paths, PIL objects; guards against bombs and odd modes."""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import MediaError

# Upstream resizes so the longer side is at most 448*16 before calling the model.
MAX_SIDE = 448 * 16
# The formats a picture may be in. Pillow would also open EPS (through Ghostscript, i.e. running PostScript from
# the file) and a long tail of rare formats; an upload or an imported chat gets none of them.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # JPEG includes MPO (phone photos)
from PIL import BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin  # noqa: E402,F401
from PIL import TiffImagePlugin, WebPImagePlugin  # noqa: E402,F401  (registered: Image.open(formats=) needs them)
# Refuse anything larger before decoding it: a 50000x50000 PNG is a few KB on disk and 10 GB in memory.
MAX_IMAGE_PIXELS = 120_000_000

ImageSource = Union[Image.Image, str, bytes, bytearray, os.PathLike]


def img2base64(source: Union[str, os.PathLike, Image.Image]) -> str:
    """Base64 text of an image file (its bytes as they are) or of a PIL image (encoded as PNG).

    Upstream returned bytes; ``str`` works in the same places and also survives ``json.dumps``.
    """
    if isinstance(source, Image.Image):
        buffer = io.BytesIO()
        source.save(buffer, format="PNG")
        data = buffer.getvalue()
    else:
        data = Path(source).read_bytes()
    return base64.b64encode(data).decode("ascii")


def load_image(source: ImageSource, *, max_pixels: int = MAX_IMAGE_PIXELS,
               draft_pixels: Optional[int] = None) -> Image.Image:
    """Open an image from PIL, a path, raw bytes, or base64 (text, bytes, or a ``data:`` URL).

    ``draft_pixels``: the model will shrink the picture to about this many pixels, so a JPEG at least four times
    larger is decoded at 1/2, 1/4 or 1/8 scale (JPEG's DCT scaling, Pillow's draft mode), never below it.
    Returns a fully decoded image; raises ``MediaError`` with a user-facing reason otherwise.
    """
    if isinstance(source, Image.Image):
        _check_pixels(source.size, max_pixels)
        return source
    data = _read_bytes(source)
    if not data:
        raise MediaError("The image is empty (0 bytes). Upload the file again.", key="image_empty")
    with warnings.catch_warnings():
        # PIL warns above its own limit; we decide ourselves, with a clearer message.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)
        except Image.DecompressionBombError as exc:
            raise _too_large(None, max_pixels) from exc
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise MediaError(
                "This file is not an image that can be read (supported: JPEG, PNG, WebP, GIF, BMP, TIFF).",
                key="image_unreadable",
            ) from exc
        _check_pixels(image.size, max_pixels)
        if draft_pixels and image.format == "JPEG" and image.width * image.height >= 4 * draft_pixels:
            scale = (draft_pixels / (image.width * image.height)) ** 0.5
            image.draft(None, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
        try:
            image.load()
        except Image.DecompressionBombError as exc:
            raise _too_large(image.size, max_pixels) from exc
        except (OSError, ValueError, SyntaxError) as exc:
            raise MediaError(f"The image is damaged or truncated and cannot be decoded ({exc}).", key="image_damaged") from exc
    return image


def prepare_image(source: ImageSource, *, max_side: int = MAX_SIDE, max_pixels: int = MAX_IMAGE_PIXELS,
                  draft_pixels: Optional[int] = None) -> Image.Image:
    """Load an image and make it model-ready: RGB, EXIF orientation applied, longer side <= ``max_side``
    (``draft_pixels``: see ``load_image``)."""
    image = load_image(source, max_pixels=max_pixels, draft_pixels=draft_pixels)
    if getattr(image, "is_animated", False):
        image.seek(0)  # an animated GIF is read as its first frame
    image = ImageOps.exif_transpose(image) or image
    image = to_rgb(image)
    if max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB without surprises: transparency goes onto white, 16-bit and CMYK are converted properly."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits instead of clipping everything to white.
        array = np.asarray(image, dtype=np.float64)
        peak = array.max() or 1.0
        return Image.fromarray((array * (255.0 / peak)).astype("uint8")).convert("RGB")
    return image.convert("RGB")


def _read_bytes(source: ImageSource) -> bytes:
    if isinstance(source, os.PathLike):
        return _read_file(Path(source))
    if isinstance(source, (bytes, bytearray)):
        raw = bytes(source)
        # Raw image bytes start with a binary signature; base64 is ASCII.
        return raw if _looks_binary(raw) else _b64decode(raw)
    if isinstance(source, str):
        text = source.strip()
        if text.startswith("data:"):
            _, _, text = text.partition(",")
            return _b64decode(text.encode("ascii", "ignore"))
        if len(text) < 4096 and os.path.isfile(text):
            return _read_file(Path(text))
        return _b64decode(text.encode("ascii", "ignore"))
    raise MediaError(f"Unsupported image type {type(source).__name__}: pass base64 text, a path or a PIL image.")


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MediaError(f"Cannot read image file {path.name!r}: {exc.strerror or exc}.") from exc


def _b64decode(data: bytes) -> bytes:
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise MediaError("The image is not valid base64. Send the file's bytes encoded with base64.", key="image_bad_base64") from exc


def _looks_binary(raw: bytes) -> bool:
    head = raw[:16]
    return any(b < 9 or b > 126 for b in head)


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    if size[0] * size[1] > max_pixels:
        raise _too_large(size, max_pixels)


def _too_large(size, max_pixels: int) -> MediaError:
    shown = f"{size[0]}x{size[1]}" if size else "?"
    limit = f"{max_pixels / 1e6:.0f}"
    return MediaError(
        f"The image is too large ({shown} pixels; the limit is {limit} megapixels). Resize it and upload it again.",
        key="image_too_large", size=shown, limit=limit,
    )
