"""Turn ``--model`` into a local checkpoint folder: a local path, ``tiny``, or a Hugging Face / ModelScope id.

Downloading happens here, once, with the hub's own progress bars, so loading afterwards reads local files
and every failure gets a message that says what to do instead.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

from .errors import ModelLoadError

log = logging.getLogger(__name__)

HUBS = ("hf", "modelscope")
# Files a checkpoint needs; skips GGUF/ONNX exports and sample media that some repos carry.
CHECKPOINT_FILES = ["*.json", "*.safetensors", "*.py", "*.model", "*.txt", "*.jinja", "*.tiktoken", "*.bin", "*.md"]


def resolve_model_path(model: str, *, hub: str = "hf", revision: Optional[str] = None, cache_dir: Optional[str] = None) -> Path:
    """Return a local folder that holds the checkpoint ``model`` names."""
    if not model:
        raise ModelLoadError("No model was given: pass --model with a Hugging Face id, a folder, or 'tiny'.")
    if model.startswith("tiny-random-"):  # tiny-random-4.7, tiny-random-4.7-moe, tiny-random-ocr
        from .tiny import VARIANTS, tiny_path

        variant = model.removeprefix("tiny-random-")
        if variant not in VARIANTS:
            raise ModelLoadError(f"No tiny checkpoint {model!r}: use tiny, tiny-random or "
                                 f"{', '.join('tiny-random-' + v for v in VARIANTS if v != '4.6')}.")
        return tiny_path(cache_dir, variant)
    if model in ("tiny", "tiny-random"):
        from .tiny import TRAINED_TINY, tiny_path, trained_tiny_available

        # "tiny": the committed checkpoint trained on the colour/shape task; "tiny-random": random weights,
        # built on first use (also the fallback when the trained one is missing from an install).
        if model == "tiny" and trained_tiny_available():
            return TRAINED_TINY
        return tiny_path(cache_dir)
    local = Path(os.path.expanduser(model))
    if local.is_dir():
        # Absolute from here on: a worker process runs in another directory and gets the path as a string.
        local = local.resolve()
        if not (local / "config.json").is_file():
            raise ModelLoadError(f"{local} is a folder but has no config.json: point --model at a checkpoint folder.")
        return local
    if local.exists() or model.startswith((".", "/", "~")) or model.count("/") != 1:
        raise ModelLoadError(
            f"{model!r} is neither a checkpoint folder nor a hub id like 'openbmb/MiniCPM-V-2_6' (no folder at "
            f"{local.absolute()}). Check the path, or use --model tiny to try the app offline.",
            key="model_not_found", model=model, path=str(local.absolute()),
        )
    if hub == "modelscope":
        return _download_modelscope(model, revision, cache_dir)
    if hub == "hf":
        return _download_hf(model, revision, cache_dir)
    raise ModelLoadError(f"Unknown hub {hub!r}: use one of {', '.join(HUBS)}.")


def other_spelling(repo_id: str) -> Optional[str]:
    """The same id with the version spelled the other way (``MiniCPM-V-4.6`` <-> ``MiniCPM-V-4_6``): the hubs spell
    it both ways (Hugging Face openbmb/MiniCPM-V-4_6, ModelScope OpenBMB/MiniCPM-V-4.6: OpenBMB/MiniCPM-V#1106)."""
    import re

    swapped = re.sub(r"(\d)([._])(\d)", lambda m: m[1] + ("_" if m[2] == "." else ".") + m[3], repo_id)
    return swapped if swapped != repo_id else None


def _download_hf(repo_id: str, revision: Optional[str], cache_dir: Optional[str], *, retry: bool = True) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, allow_patterns=CHECKPOINT_FILES))
    except GatedRepoError as exc:
        raise ModelLoadError(
            f"{repo_id} is gated on Hugging Face: accept its licence on the model page, then run `hf auth login`."
        ) from exc
    except (RepositoryNotFoundError, LocalEntryNotFoundError) as exc:
        alternative = other_spelling(repo_id) if retry else None
        if alternative:
            try:
                folder = _download_hf(alternative, revision, cache_dir, retry=False)
            except ModelLoadError:
                pass
            else:
                log.info("%s is spelled %s on Hugging Face: loading that.", repo_id, alternative)
                return folder
        if isinstance(exc, LocalEntryNotFoundError):
            raise ModelLoadError(_offline_message(repo_id, "Hugging Face", exc)) from exc
        raise ModelLoadError(
            f"{repo_id} was not found on Hugging Face. Check the spelling (e.g. openbmb/MiniCPM-V-2_6), "
            "or use --hub modelscope for a ModelScope id."
        ) from exc
    except RevisionNotFoundError as exc:
        raise ModelLoadError(f"{repo_id} has no revision {revision!r}.") from exc
    except (HfHubHTTPError, OSError) as exc:
        raise ModelLoadError(_offline_message(repo_id, "Hugging Face", exc)) from exc


def _download_modelscope(model_id: str, revision: Optional[str], cache_dir: Optional[str]) -> Path:
    try:
        from modelscope import snapshot_download
    except ImportError as exc:
        raise ModelLoadError("--hub modelscope needs the modelscope package: pip install modelscope.") from exc
    try:
        return Path(snapshot_download(model_id, revision=revision, cache_dir=cache_dir, allow_patterns=CHECKPOINT_FILES))
    except Exception as exc:  # modelscope raises plain Exceptions and requests errors
        raise ModelLoadError(_offline_message(model_id, "ModelScope", exc)) from exc


def _offline_message(model_id: str, hub_name: str, exc: BaseException) -> str:
    return (
        f"Could not download {model_id} from {hub_name} and it is not in the local cache ({type(exc).__name__}: "
        f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}). Check the network, download it once while "
        "online, point --model at a local folder, or run --model tiny to try the app offline."
    )
