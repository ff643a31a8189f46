"""A catalogue of bad (and merely unusual) inputs, made on the fly in a temp folder.

Each case says what a user sends (text and files) and what should happen: "refused" with a clear message, or
"answered" (odd but valid files such as CMYK JPEGs). Used by the tests and by ``bench/reliability.py``.
"""

from __future__ import annotations

import fractions
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class BadInput:
    name: str
    expect: str  # "refused" or "answered"
    make: Callable[[Path], tuple[str, list[str]]]  # folder -> (text, file paths)


def _save(folder: Path, name: str, data: bytes) -> str:
    path = folder / name
    path.write_bytes(data)
    return str(path)


def _image_bytes(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _picture(colour=(220, 30, 30)) -> Image.Image:
    return Image.new("RGB", (96, 72), colour)


def _truncated_jpeg(folder):
    data = _image_bytes(Image.effect_noise((256, 256), 64).convert("RGB"), "JPEG", quality=90)
    return "What is this?", [_save(folder, "truncated.jpg", data[: len(data) // 2])]


def _png_bomb(folder):
    return "What is this?", [_save(folder, "huge.png", _image_bytes(Image.new("1", (50000, 50000)), "PNG"))]


def _alpha_png(folder):
    return "What colour?", [_save(folder, "alpha.png", _image_bytes(Image.new("RGBA", (64, 64), (30, 70, 220, 128)), "PNG"))]


def _cmyk_jpeg(folder):
    return "What colour?", [_save(folder, "cmyk.jpg", _image_bytes(_picture().convert("CMYK"), "JPEG"))]


def _png16(folder):
    return "What is this?", [_save(folder, "deep.png", _image_bytes(Image.new("I;16", (64, 64), 40000), "PNG"))]


def _gif(folder):
    frames = [_picture((220, 30, 30)), _picture((30, 70, 220))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return "What colour?", [_save(folder, "animated.gif", buffer.getvalue())]


def _audio_only(folder):
    import av

    path = folder / "sound.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for index in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return "What happens?", [str(path)]


def _ten_hours(folder):
    """Two frames ten hours apart: a tiny file whose container claims a 10-hour video."""
    import av

    path = folder / "ten_hours.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = fractions.Fraction(1, 1)
        for pts in (0, 36000):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 100, np.uint8), format="rgb24")
            frame.pts = pts
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return "What happens?", [str(path)]


def _twenty_images(folder):
    files = [_save(folder, f"many_{i:02d}.png", _image_bytes(_picture((i * 12, 80, 200 - i * 8)), "PNG")) for i in range(20)]
    return "Compare all of these.", files


CASES = [
    BadInput("empty message", "refused", lambda folder: ("", [])),
    BadInput("message of 100k characters", "refused", lambda folder: ("word " * 20_000, [])),
    BadInput("zero-byte file", "refused", lambda folder: ("What is this?", [_save(folder, "empty.png", b"")])),
    BadInput("truncated JPEG", "refused", _truncated_jpeg),
    BadInput("PNG claiming 50000x50000", "refused", _png_bomb),
    BadInput("text file renamed .jpg", "refused", lambda folder: ("What is this?", [_save(folder, "notes.jpg", b"just some text\n" * 20)])),
    BadInput("image with alpha channel", "answered", _alpha_png),
    BadInput("CMYK JPEG", "answered", _cmyk_jpeg),
    BadInput("16-bit PNG", "answered", _png16),
    BadInput("animated GIF", "answered", _gif),
    BadInput("video with no video stream", "refused", _audio_only),
    BadInput("zero-length video", "refused", lambda folder: ("What happens?", [_save(folder, "empty.mp4", b"")])),
    BadInput("video claiming 10 hours", "refused", _ten_hours),
    BadInput("20 images in one turn", "answered", _twenty_images),
    BadInput("path with ../", "refused", lambda folder: ("What is this?", ["../../../../../../etc/passwd"])),
]


def python_request(text: str, files: list[str]) -> dict:
    """The upstream-style request for a case: images as base64 items, videos as path items."""
    from minicpmv_app.media.images import img2base64
    from minicpmv_app.media.kinds import is_video

    content: list = []
    for path in files:
        if is_video(path):
            content.append({"type": "video", "pairs": path})
        else:
            try:
                content.append({"type": "image", "pairs": img2base64(path)})
            except OSError:
                content.append({"type": "image", "pairs": path})  # unreadable path: let the API say so
    content.append({"type": "text", "pairs": text})
    return {"image": None, "question": [{"role": "user", "content": content}]}
