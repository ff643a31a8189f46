"""Backends behind one interface. Which one runs a checkpoint is read from its config.json.

Adding a backend is a new module plus one entry in ``load_here`` (or in ``OWN_IMPLEMENTATIONS``, for an
architecture the project implements itself). Where a local model runs (this process, or a model process of its
own) is ``load_backend``'s ``process``; the backends themselves do not know.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Optional

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
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES = {}  # type: ignore[assignment]
    if model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        from .native import unsupported

        unsupported(config)
    import transformers

    raise ModelLoadError(
        f"This checkpoint (model_type {model_type!r}) is neither supported by transformers "
        f"{transformers.__version__} nor ships its own code. If it is a newer MiniCPM-V, upgrade transformers "
        "(pip install -U transformers); otherwise pick a MiniCPM-V checkpoint."
    )


def load_backend(folder: Path, device: str = "auto", dtype: Optional[str] = None, *, process: str = "here",
                 announce: Optional[Callable[[Backend], None]] = None, wait: bool = True) -> Backend:
    """The backend for the checkpoint in ``folder``.

    ``process="model"``: the model runs in a model process of its own (``process.ModelProcess``), on this
    transformers or on the runtime its model card pins; this process imports neither torch nor transformers, and
    with ``wait=False`` it returns before the model is loaded. ``process="here"``: native models and remote code
    whose pin the installed transformers satisfies load in this process (``announce(backend)`` is called once
    the knobs are known, before the weights are read); other remote code still goes to a model process on its
    pin. On ZeroGPU the model must be here (``spaces.GPU`` needs it in the main process).
    """
    from .. import runtimes
    from ..devices import on_zerogpu

    if process not in ("here", "model"):
        raise ValueError(f"process must be 'here' or 'model', not {process!r}")
    config = read_config(folder)
    runtime = runtimes.runtime_for(config) if "AutoModel" in (config.get("auto_map") or {}) else None
    pinned = runtime if (config.get("model_type") not in OWN_IMPLEMENTATIONS and runtime is not None
                         and not runtime.accepted(installed_transformers())) else None
    if pinned and on_zerogpu():
        raise ModelLoadError(
            f"On ZeroGPU the model must run in the app's own process, but {runtimes.generation_name(config)} needs "
            f"transformers {pinned.transformers} and this Space has {installed_transformers()}. Build the Space "
            "with python scripts/make_space.py (its 2.6 variant runs the pinned transformers in-process).",
            key="zerogpu_needs_pin",
        )
    if pinned or (process == "model" and not on_zerogpu()):
        from .process import ModelProcess

        where = f"on {pinned.name}" if pinned else "on this transformers"
        log.info("Loading %s (%s) in a model process %s", folder, runtimes.generation_name(config), where)
        if not pinned:
            return ModelProcess(folder, device, dtype, wait=wait)
        return ModelProcess(folder, device, dtype, runtime_name=pinned.name, runtime_folder=runtimes.install(pinned),
                            wait=wait)
    return load_here(folder, config, device, dtype, announce=announce)


def load_here(folder: Path, config: dict, device: str, dtype: Optional[str], *,
              announce: Optional[Callable[[Backend], None]] = None) -> Backend:
    """The backend ``config.json`` picks, loaded in this process."""
    from .. import runtimes
    from ..devices import placement

    own = OWN_IMPLEMENTATIONS.get(config.get("model_type", ""))
    if own is not None:
        import importlib

        module, class_name = own
        log.info("Loading %s with the app's own %s implementation", folder, config.get("model_type"))
        backend_class = getattr(importlib.import_module(f".{module}", __name__), class_name)
        return backend_class(folder, placement(device, dtype), config, announce=announce)
    pinned = "AutoModel" in (config.get("auto_map") or {}) and runtimes.runtime_for(config) is not None
    # A generation with a pinned runtime is decided without importing transformers: it loads sooner.
    if not pinned and choose_backend(config) == "transformers":  # choose_backend raises for what cannot load
        from .native import NativeBackend

        log.info("Loading %s with transformers' own classes", folder)
        return NativeBackend(folder, placement(device, dtype), config, announce=announce)
    from .remote_code import RemoteCodeBackend

    log.info("Loading %s (%s) with its own code in this process", folder, runtimes.generation_name(config))
    return RemoteCodeBackend(folder, placement(device, dtype), config, announce=announce)


def installed_transformers() -> str:
    from importlib.metadata import version

    return version("transformers")
