"""Progress through the vision pass, and Stop during it.

A picture's vision pass is one call of the vision tower over all its slices; on a CPU it takes minutes (a
1344x1344 picture at the released 4.6's size: about 30 s on 2 cores, a 2688 one several minutes). Forward hooks on
the vision encoder's layers report each finished layer, with an estimate of the time left, and check Stop before
each of their linear layers (a layer over 36 slices takes about 10 s on 2 cores; its six matrix products about 1-2 s
each): generate()'s stopping criteria are only asked after a token, which would be after the whole pass.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from ..reasoning import Encoding


class StoppedWhileEncoding(Exception):
    """Raised inside generate() by a layer hook once Stop is pressed; the stream then ends as stopped."""


def vision_layers(model) -> list:
    """The vision encoder's layer list: the first ``…encoder.layers`` under a module whose name says vision
    (``model.vision_tower.encoder.layers`` in transformers' MiniCPM-V 4.6, 4.7 and OCR classes), or none."""
    import torch

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and name.endswith("encoder.layers") and (
                "vision" in name or "vpm" in name):
            return list(module)
    return []


@contextmanager
def watching(layers: list, put: Callable[[Encoding], None], stop: Optional[threading.Event]) -> Iterator[None]:
    """While inside: the pass's start calls ``put(Encoding(0, total))`` and each finished layer
    ``put(Encoding(done, total, left_s))``; a set ``stop`` raises ``StoppedWhileEncoding`` at the next layer, or at
    the next matrix product within one. Enter it in the thread that runs generate(): the hooks act in that thread
    only (another answer on the same model, if a backend ever ran two, keeps its own)."""
    total = len(layers)
    started: list[float] = []
    owner = threading.get_ident()

    def before_first(module, args):
        if threading.get_ident() != owner:
            return
        started[:] = [time.monotonic()]
        if stop is not None and stop.is_set():
            raise StoppedWhileEncoding()
        put(Encoding(0, total))  # the page says so at once, not after the first layer (about 10 s at 36 slices)

    def after(index: int):
        def hook(module, args, output):
            if threading.get_ident() != owner:
                return
            done = index + 1
            elapsed = time.monotonic() - started[0] if started else 0.0
            put(Encoding(done, total, elapsed / done * (total - done)))
            if stop is not None and stop.is_set() and done < total:
                raise StoppedWhileEncoding()
        return hook

    def check_stop(module, args):
        if stop is not None and stop.is_set() and threading.get_ident() == owner:
            raise StoppedWhileEncoding()

    handles = []
    if layers:
        import torch

        handles.append(layers[0].register_forward_pre_hook(before_first))
        handles += [layer.register_forward_hook(after(i)) for i, layer in enumerate(layers)]
        if stop is not None:
            handles += [module.register_forward_pre_hook(check_stop) for layer in layers
                        for module in layer.modules() if isinstance(module, torch.nn.Linear)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
