"""Backends behind one interface. Which one runs a checkpoint is read from its config.json.

Adding a backend is a new module plus one entry in ``load_backend``; nothing else branches on it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..devices import Placement
from ..errors import ModelLoadError
from .base import Backend

log = logging.getLogger(__name__)

__all__ = ["Backend", "choose_backend", "load_backend", "read_config"]


def read_config(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{folder} has no readable config.json ({exc}); is it a checkpoint folder?") from exc


def choose_backend(config: dict) -> str:
    """``transformers`` when transformers has a native image-text-to-text class for this model_type,
    ``remote-code`` when the checkpoint ships its own code, else an error."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    model_type = config.get("model_type")
    if model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return "transformers"
    if "AutoModel" in (config.get("auto_map") or {}):
        return "remote-code"
    import transformers

    raise ModelLoadError(
        f"This checkpoint (model_type {model_type!r}) is neither supported by transformers "
        f"{transformers.__version__} nor ships its own code. If it is a newer MiniCPM-V, upgrade transformers "
        "(pip install -U transformers); otherwise pick a MiniCPM-V checkpoint."
    )


def load_backend(folder: Path, placement: Placement) -> Backend:
    config = read_config(folder)
    kind = choose_backend(config)
    log.info("Loading %s with the %s backend on %s", folder, kind, placement.device)
    if kind == "transformers":
        from .native import NativeBackend

        return NativeBackend(folder, placement)
    from .remote_code import RemoteCodeBackend

    return RemoteCodeBackend(folder, placement, config)
