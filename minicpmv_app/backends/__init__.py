"""Backends behind one interface. Which one runs a checkpoint is read from its config.json.

Adding a backend is a new module plus one entry in ``load_backend`` (or in ``OWN_IMPLEMENTATIONS``, for an
architecture the project implements itself); nothing else branches on it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

from ..errors import ModelLoadError
from .base import Backend

log = logging.getLogger(__name__)

__all__ = ["Backend", "choose_backend", "load_backend", "read_config"]


# config.json model_type -> the backend module (in this package) for architectures the project implements itself:
# checkpoints that ship no code and that transformers does not know.
OWN_IMPLEMENTATIONS = {"omnilmm": ("omnilmm", "OmniLMMBackend")}


def read_config(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{folder} has no readable config.json ({exc}); is it a checkpoint folder?") from exc


def choose_backend(config: dict) -> str:
    """``transformers`` for a model type with a card (``cards.py``: 4.6, 4.7, MiniCPM-OCR), ``remote-code`` when the
    checkpoint ships its own code, else an error: one line for another image-text model (a Qwen2-VL folder), or
    the upgrade advice for a model type this transformers does not know."""
    from .cards import card_for

    model_type = config.get("model_type")
    if card_for(model_type) is not None:
        return "transformers"
    if "AutoModel" in (config.get("auto_map") or {}):
        return "remote-code"
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
    except ImportError:  # transformers < 4.45, e.g. a runtime pinned by an old model card
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES = {}
    if model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        from .native import unsupported

        unsupported(config)
    import transformers

    raise ModelLoadError(
        f"This checkpoint (model_type {model_type!r}) is neither supported by transformers "
        f"{transformers.__version__} nor ships its own code. If it is a newer MiniCPM-V, upgrade transformers "
        "(pip install -U transformers); otherwise pick a MiniCPM-V checkpoint."
    )


def load_backend(folder: Path, device: str = "auto", dtype: Optional[str] = None) -> Backend:
    """The backend for the checkpoint in ``folder``.

    Native models load here. Remote code runs here only where the installed transformers satisfies its model
    card's pin (``minicpmv_app.runtimes``); otherwise in a worker process on that pin, installed on first use.
    """
    from .. import runtimes
    from ..devices import on_zerogpu, placement

    config = read_config(folder)
    own = OWN_IMPLEMENTATIONS.get(config.get("model_type"))
    if own is not None:
        import importlib

        module, class_name = own
        log.info("Loading %s with the app's own %s implementation", folder, config.get("model_type"))
        backend_class = getattr(importlib.import_module(f".{module}", __name__), class_name)
        return backend_class(folder, placement(device, dtype), config)
    runtime = runtimes.runtime_for(config)
    # A generation with a pinned runtime is decided without importing transformers: the worker starts sooner.
    if runtime is None or "AutoModel" not in (config.get("auto_map") or {}):
        if choose_backend(config) == "transformers":
            from .native import NativeBackend

            log.info("Loading %s with transformers' own classes", folder)
            return NativeBackend(folder, placement(device, dtype))
    if runtime is None or runtime.accepted(installed_transformers()):
        from .remote_code import RemoteCodeBackend

        log.info("Loading %s (%s) with its own code in this process", folder, runtimes.generation_name(config))
        return RemoteCodeBackend(folder, placement(device, dtype), config)
    if on_zerogpu():
        raise ModelLoadError(
            f"On ZeroGPU the model must run in the app's own process, but {runtimes.generation_name(config)} needs "
            f"transformers {runtime.transformers} and this Space has {installed_transformers()}. Build the Space "
            "with python scripts/make_space.py (its 2.6 variant runs the pinned transformers in-process).",
            key="zerogpu_needs_pin",
        )
    from .worker import WorkerBackend

    log.info("Loading %s (%s) in a worker on %s", folder, runtimes.generation_name(config), runtime.name)
    return WorkerBackend(folder, device, dtype, runtime.name, runtimes.install(runtime))


def installed_transformers() -> str:
    from importlib.metadata import version

    return version("transformers")
