"""Media the tests generate: solid images and short H.264 clips whose frames encode their own number."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def solid_image(colour=(255, 0, 0), size=(64, 48), mode="RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def write_clip(path: Path, *, seconds: float, fps: int, size=(64, 48), colour=None) -> Path:
    """An MP4 whose frame n has brightness tied to n (or a fixed ``colour``), so samples can be located."""
    from minicpmv_app.media.video import write_video

    count = int(round(seconds * fps))

    def frames():
        for n in range(count):
            fill = colour if colour is not None else int(255 * n / max(1, count - 1))
            array = np.empty((size[1], size[0], 3), dtype=np.uint8)
            array[:] = fill
            yield array

    write_video(path, frames(), fps=fps, size=size, options={"preset": "ultrafast", "crf": "18"})
    return path


def two_tone_clip(path: Path, *, seconds: float = 3, fps: int = 5, size=(128, 64)) -> Path:
    """An MP4 stored landscape, left half red and right half blue: where the halves land shows the rotation."""
    from minicpmv_app.media.video import write_video

    array = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    array[:, : size[0] // 2] = (255, 0, 0)
    array[:, size[0] // 2 :] = (0, 0, 255)
    write_video(path, (array for _ in range(int(seconds * fps))), fps=fps, size=size,
                options={"preset": "ultrafast", "crf": "10"})
    return path


def set_display_rotation(path: Path, degrees: int) -> Path:
    """Write a display matrix into the MP4's track header, as a phone does for a portrait clip it stores landscape.

    The matrix is ISO/IEC 14496-12 ``tkhd``'s 3x3 (16.16 / 2.30 fixed point); FFmpeg reads it back as the
    stream's rotation. ``degrees`` is the clockwise turn a player applies (a phone held upright: 90).
    """
    import struct

    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    version = data[at + 4]
    matrix = at + 8 + (28 if version == 1 else 16) + 4 + 8 + 8  # times/id/duration, reserved, layer..volume
    one, minus = 0x10000, -0x10000
    a, b, c, d = {90: (0, one, minus, 0), 180: (minus, 0, 0, minus), 270: (0, minus, one, 0)}[degrees % 360]
    struct.pack_into(">9i", data, matrix, a, b, 0, c, d, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
    return path


def write_pdf(path: Path, pages: list, *, password: str | None = None) -> Path:
    """A PDF whose pages are the given pictures (Pillow writes it); with ``password``, encrypted (pypdf)."""
    first, *rest = [page.convert("RGB") for page in pages]
    first.save(path, format="PDF", save_all=True, append_images=rest, resolution=72)
    if password:
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter(clone_from=PdfReader(path))
        writer.encrypt(password, algorithm="RC4-128")
        with open(path, "wb") as file:
            writer.write(file)
    return path
