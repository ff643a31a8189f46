"""Side by side: the same message to two configurations (two models, or one model with two settings).

The second model named at start (``--compare-model`` / ``--compare-api-base``) loads only when a comparison asks
for it, and an in-process one only if its weights fit in the memory free then. ``answer_both`` streams the two
answers together; one Stop (each session's ``stop``) ends both. No UI toolkit here.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional

from .errors import ModelLoadError
from .session import ChatSession, Event

if TYPE_CHECKING:
    from .wrapper import MiniCPMVChat

FIRST, SECOND = "first", "second"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
HEADROOM = 1.25  # weights plus activations, the processor and the Python heap


@dataclass
class Contenders:
    """The models a comparison may use: the app's own (``first``) and, if given, a second one loaded on demand."""

    first: "MiniCPMVChat"
    second_options: Optional[dict] = None  # MiniCPMVChat keyword arguments (model_path or api_base, ...)
    free_memory: Optional[Callable[[str], int]] = None  # bytes free on a device; psutil / torch by default

    def __post_init__(self):
        self._second = None
        self._lock = threading.Lock()
        self.free_memory = self.free_memory or free_bytes

    @property
    def names(self) -> list[str]:
        return [FIRST, SECOND] if self.second_options else [FIRST]

    def label(self, name: str) -> str:
        if name == FIRST:
            return self.first.backend.describe()
        options = self.second_options or {}
        if self._second is not None:
            return self._second.backend.describe()
        return str(options.get("api_base") or options.get("model_path")) + " (loads when first used)"

    def get(self, name: str):
        if name == FIRST or not self.second_options:
            return self.first
        with self._lock:  # two comparisons asking at once load it once
            if self._second is None:
                self._second = self._load_second()
            return self._second

    def _load_second(self):
        from .hub import resolve_model_path
        from .wrapper import MiniCPMVChat

        options = dict(self.second_options)
        if options.get("api_base"):
            return MiniCPMVChat(**options)
        folder = resolve_model_path(options.pop("model_path"), hub=options.pop("hub", "hf"),
                                    revision=options.pop("revision", None))
        device = options.get("device", "auto")
        need = int(weights_bytes(folder) * HEADROOM)
        free = self.free_memory(device)
        if need > free:
            raise ModelLoadError(
                f"The second model needs about {need / 1e9:.1f} GB and only {free / 1e9:.1f} GB is free, so it was "
                "not loaded. Compare two settings of the first model instead, or serve the second one "
                "(--compare-api-base).", key="second_model_too_big", need=round(need / 1e9, 1), free=round(free / 1e9, 1))
        return MiniCPMVChat(str(folder), **options)


def weights_bytes(folder) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def free_bytes(device: str = "auto") -> int:
    """Memory free for weights on ``device``: the GPU's when one will be used, else the machine's."""
    if device in ("auto", "cuda"):
        gpu = _gpu_free_bytes()
        if gpu is not None:
            return gpu
    import psutil

    return int(psutil.virtual_memory().available)


def _gpu_free_bytes() -> Optional[int]:
    """The first GPU's free memory: from torch where this process has it, else nvidia-smi (a UI whose models run
    in model processes does not import torch for this)."""
    import sys

    try:
        if "torch" in sys.modules:
            torch = sys.modules["torch"]
            return int(torch.cuda.mem_get_info()[0]) if torch.cuda.is_available() else None
        import shutil
        import subprocess

        if shutil.which("nvidia-smi") is None:
            return None
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout.split()
        return int(float(out[0]) * 2**20) if out else None
    except Exception:  # no usable GPU: count the machine's memory
        return None


def answer_both(sides: list[tuple]) -> Iterator[tuple[int, Event]]:
    """Answer each (session, chat, settings[, generate]) pending turn at once; yields (side index, event) as they
    come. ``generate`` is what the session calls (ZeroGPU's GPU slot); each side runs in its own thread; a UI
    that stops reading stops both."""
    events: queue.Queue = queue.Queue()
    done = object()

    def run(index: int, session: ChatSession, chat, settings: dict, generate=None) -> None:
        try:
            for event in session.answer(chat, settings, generate):
                events.put((index, event))
        except BaseException as exc:  # answer() reports failures as events; anything else is a bug, shown too
            from .session import Failed

            events.put((index, Failed(exc)))
        finally:
            events.put((index, done))

    threads = [threading.Thread(target=run, args=(i, *side), name=f"minicpmv-compare-{i}", daemon=True)
               for i, side in enumerate(sides)]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            index, event = events.get()
            if event is done:
                running -= 1
            else:
                yield index, event
    finally:
        for session, *_ in sides:
            session.stop()  # a no-op once answered; ends an answer still running when the reader went away
