"""Media the tests generate: solid images and short H.264 clips whose frames encode their own number."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def solid_image(colour=(255, 0, 0), size=(64, 48), mode="RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def write_clip(path: Path, *, seconds: float, fps: int, size=(64, 48), colour=None) -> Path:
    """An MP4 whose frame n has brightness tied to n (or a fixed ``colour``), so samples can be located."""
    import av

    frames = int(round(seconds * fps))
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for n in range(frames):
            if colour is None:
                level = int(255 * n / max(1, frames - 1))
                array = np.full((size[1], size[0], 3), level, dtype=np.uint8)
            else:
                array = np.empty((size[1], size[0], 3), dtype=np.uint8)
                array[:] = colour
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
