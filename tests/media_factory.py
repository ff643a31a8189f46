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
