"""Video to frames, the way MiniCPM-V expects them: about one frame per second, at most 64, uniform when more.

decord is used where it is installed (x86_64 Linux wheels); PyAV is the fallback (macOS arm64, others).
Only the sampled frames are ever held in memory, so a long clip costs what its samples cost.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

from PIL import Image

from ..errors import MediaError, MiniCPMVError

log = logging.getLogger(__name__)

MAX_NUM_FRAMES = 64
SAMPLE_FPS = 1.0
# A container that claims more than this is refused before decoding (a 10-hour header on a 1 MB file).
MAX_DURATION_S = 3 * 60 * 60
# Up to this many frames, decoding everything in order (PyAV) beats seeking to each sample (decord): each seek
# decodes from the previous keyframe, about half a GOP (x264's default GOP is 250 frames) per sample.
SEQUENTIAL_FRAME_LIMIT = MAX_NUM_FRAMES * 120
# Frames decord decodes per call: progress and Stop are checked between batches.
DECODE_BATCH = 4

Progress = Callable[[int, int], None]  # (frames decoded, frames wanted)


@dataclass
class Video:
    """Sampled frames of one clip with what the model and the UI need to know about them."""

    frames: list[Image.Image]
    fps: float  # of the source
    duration: float  # seconds
    indices: list[int] = field(default_factory=list)  # source frame numbers of ``frames``
    total_frames: int = 0  # in the source
    plan_key: tuple = ()  # the frame plan that picked them (another plan means decoding again)
    source: str = ""  # the file they came from
    backend: str = ""
    name: str = ""

    @property
    def sample_fps(self) -> float:
        return len(self.frames) / self.duration if self.duration else float(len(self.frames))

    def __len__(self) -> int:
        return len(self.frames)

    @classmethod
    def pending(cls, path: str | os.PathLike) -> "Video":
        """A clip not decoded yet: ``MiniCPMVChat`` decodes it with the frames its model wants."""
        path = Path(path)
        if not path.is_file():
            raise MediaError(f"Video file {path.name!r} was not found.")
        return cls(frames=[], fps=0.0, duration=0.0, source=str(path), name=path.name)


def sample_indices(num_frames: int, fps: float, *, max_frames: int = MAX_NUM_FRAMES, sample_fps: float = SAMPLE_FPS) -> list[int]:
    """Frame numbers to keep: every ``fps / sample_fps``-th frame, then uniform down to ``max_frames``.

    Matches upstream's ``encode_video`` (step ``round(fps)``, centre-of-bin uniform sampling).
    """
    if num_frames <= 0:
        return []
    step = max(1, round(fps / sample_fps)) if fps and fps > 0 else 1
    indices = list(range(0, num_frames, step))
    if len(indices) > max_frames:
        gap = len(indices) / max_frames
        indices = [indices[int(i * gap + gap / 2)] for i in range(max_frames)]
    return indices


class UniformPlan:
    """Upstream's ``encode_video``: about ``sample_fps`` frames a second, at most ``max_frames``, uniform when more.
    A frame plan turns (frames in the source, its fps, its duration) into the frame numbers to decode, in the order
    the model wants them; backends whose model card samples otherwise give their own (``NativeFramePlan``)."""

    def __init__(self, max_frames: int = MAX_NUM_FRAMES, sample_fps: float = SAMPLE_FPS):
        self.max_frames, self.sample_fps = int(max_frames), sample_fps
        self.key = ("uniform", self.max_frames, sample_fps)

    def indices(self, total_frames: int, fps: float, duration: float) -> list[int]:
        return sample_indices(total_frames, fps, max_frames=self.max_frames, sample_fps=self.sample_fps)


def available_backends() -> list[str]:
    # find_spec, not import: importing decord costs a few hundred ms that a PyAV-decoded clip should not pay.
    return [name for name, module in (("decord", "decord"), ("pyav", "av")) if importlib.util.find_spec(module)]


def load_video(
    path: str | os.PathLike,
    *,
    max_frames: int = MAX_NUM_FRAMES,
    sample_fps: float = SAMPLE_FPS,
    backend: Optional[str] = None,
    progress: Optional[Progress] = None,
    max_duration: float = MAX_DURATION_S,
    plan=None,
) -> Video:
    """Decode the frames ``plan`` picks (default: ``UniformPlan(max_frames, sample_fps)``) of a video file, in the
    plan's order. Raises ``MediaError`` with a reason users can act on."""
    plan = plan or UniformPlan(max_frames, sample_fps)
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"Video file {path.name!r} was not found.")
    if path.stat().st_size == 0:
        raise MediaError("The video file is empty (0 bytes). Upload it again.", key="video_empty")
    order = [backend] if backend else _preferred_order(path, available_backends())
    if not order:
        raise MediaError("No video decoder is installed: pip install decord (Linux x86_64) or pip install av.")
    errors = []
    for name in order:
        reader = _READERS.get(name)
        if reader is None:
            raise MediaError(f"Unknown video backend {name!r}; use one of {sorted(_READERS)}.")
        try:
            video = reader(path, plan, progress, max_duration)
        except MiniCPMVError:  # a refusal, or the caller's Stop raised from ``progress``
            raise
        except ImportError as exc:
            errors.append(f"{name}: not installed ({exc})")
            continue
        except Exception as exc:  # decoders raise many types; try the next one
            errors.append(f"{name}: {exc}")
            log.debug("video backend %s failed on %s: %s", name, path.name, exc)
            continue
        video.name, video.plan_key, video.source = path.name, plan.key, str(path)
        return video
    raise MediaError(
        "This video cannot be decoded (" + "; ".join(errors) + "). Try an MP4 (H.264) file.", key="video_undecodable"
    )


def _preferred_order(path: Path, backends: list[str]) -> list[str]:
    """PyAV first for short clips (sequential decoding is cheaper), decord first for long ones (it seeks)."""
    if len(backends) < 2:
        return backends
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = stream.frames or int(float((stream.duration or 0) * (stream.time_base or 0)) * float(stream.average_rate or 0))
    except Exception:  # unreadable here: let the decoders say why, in the usual order
        return backends
    return ["pyav", "decord"] if frames and frames <= SEQUENTIAL_FRAME_LIMIT else ["decord", "pyav"]


def _check(num_frames: int, fps: float, max_duration: float) -> float:
    if num_frames <= 0:
        raise MediaError("The video has no frames.", key="video_no_frames")
    duration = num_frames / fps if fps and fps > 0 else float(num_frames)
    if duration > max_duration:
        minutes, limit = f"{duration / 60:.0f}", f"{max_duration / 60:.0f}"
        raise MediaError(
            f"The video is too long ({minutes} minutes; the limit is {limit}). Trim it and upload it again.",
            key="video_too_long", minutes=minutes, limit=limit,
        )
    return duration


def write_video(target, frames: Iterable, *, fps: int, size: tuple[int, int], options: Optional[dict] = None) -> None:
    """Encode frames (PIL images or HxWx3 uint8 arrays) as H.264 MP4 into a path or a binary file object.

    Odd sizes are rounded down to even (yuv420p needs it); frames of another size are resized.
    """
    import av
    import numpy as np

    width, height = size[0] - size[0] % 2, size[1] - size[1] % 2
    with av.open(target if not isinstance(target, os.PathLike) else str(target), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if options:
            stream.options = options
        for frame in frames:
            if isinstance(frame, Image.Image):
                frame = np.asarray(frame.convert("RGB").resize((width, height)) if frame.size != (width, height) else frame.convert("RGB"))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def upright(image: Image.Image, rotation: float) -> Image.Image:
    """Apply a display-matrix rotation (degrees counter-clockwise, as FFmpeg reports it): a phone's portrait clip
    is stored landscape with -90, and must reach the model standing up."""
    turns = round(rotation / 90) % 4
    return image if not turns else image.transpose(
        (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)[turns - 1]
    )


def _read_decord(path: Path, plan, progress, max_duration) -> Video:
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    fps = float(reader.get_avg_fps() or 0.0)
    duration = _check(len(reader), fps, max_duration)
    indices = plan.indices(len(reader), fps, duration)
    wanted = sorted(set(indices))
    decoded: dict[int, Image.Image] = {}
    if progress:
        progress(0, len(wanted))
    # Small batches bound peak memory, show progress, and let a Stop raised from ``progress`` act between them.
    for start in range(0, len(wanted), DECODE_BATCH):
        chunk = wanted[start : start + DECODE_BATCH]
        batch = reader.get_batch(chunk).asnumpy()
        decoded.update(zip(chunk, (Image.fromarray(f) for f in batch)))  # decord applies the display matrix itself
        if progress:
            progress(len(decoded), len(wanted))
    return _in_plan_order(decoded, indices, fps, duration, len(reader), "decord")


def _read_pyav(path: Path, plan, progress, max_duration) -> Video:
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise MediaError("The file has no video stream.", key="video_no_stream")
        stream = container.streams.video[0]
        # PyAV's default (slice threads): frame threading ("AUTO") was 30% slower on 2 cores (bench section 2).
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        count = stream.frames
        if not count:
            seconds = float(stream.duration * (stream.time_base or 0)) if stream.duration else (container.duration or 0) / 1e6
            count = int(math.floor(seconds * fps)) if fps else 0
        duration = _check(count, fps, max_duration)
        indices = plan.indices(count, fps, duration)
        wanted = set(indices)
        decoded: dict[int, Image.Image] = {}
        last = max(indices) if indices else -1
        if progress:
            progress(0, len(wanted))
        for number, frame in enumerate(container.decode(stream)):
            if number in wanted:
                decoded[number] = upright(frame.to_image(), frame.rotation or 0)  # PyAV leaves it to us
                if progress:
                    progress(len(decoded), len(wanted))
            if number >= last:
                break
    return _in_plan_order(decoded, indices, fps, duration, count, "pyav")


def _in_plan_order(decoded: dict, indices: list[int], fps, duration, total, backend) -> Video:
    """The plan may repeat a frame (a sub-frame rounding onto a main one) or name one past a short stream's end."""
    kept = [i for i in indices if i in decoded]
    if not kept:
        raise MediaError("The video has no frames that can be decoded.", key="video_no_frames")
    return Video(frames=[decoded[i] for i in kept], fps=fps, duration=duration, indices=kept, total_frames=total,
                 backend=backend)


_READERS = {"decord": _read_decord, "pyav": _read_pyav}
