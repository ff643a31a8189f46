"""The one in-process fix remote MiniCPM-V code still needs on its own pinned transformers.

Everything else the old code needs is its model card's transformers, which ``minicpmv_app.runtimes`` provides;
patching the code for newer transformers was chasing every release, and a missed patch answered wrongly.
What is left is on the torch side, so no transformers pin can cover it:

- ``typing_names``: ``resampler.py`` star-imports ``torch.nn.functional`` and uses ``List``, ``Optional``, ...
  from it; torch >= 2.5 no longer re-exports them there (``NameError: name 'List' is not defined``).
"""

from __future__ import annotations

import logging
import typing
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TYPING_NAMES = ("List", "Tuple", "Optional", "Callable", "Union", "Dict", "Any", "Sequence")


def restore_typing_names() -> list[str]:
    """Put the typing names back on ``torch.nn.functional``; returns the names it added."""
    import torch.nn.functional as F

    missing = [n for n in TYPING_NAMES if not hasattr(F, n)]
    for name in missing:  # F has no __all__, so `from torch.nn.functional import *` picks these up again
        setattr(F, name, getattr(typing, name))
    if missing:
        log.info("Restored typing names on torch.nn.functional for the checkpoint's code: %s", ", ".join(missing))
    return missing


def resolve_class(reference, folder: Path) -> "Any":
    """The remote class ``auto_map`` names, imported through transformers' dynamic-module machinery."""
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    if isinstance(reference, (list, tuple)):  # AutoTokenizer: [slow, fast]
        reference = reference[-1] or reference[0]
    restore_typing_names()
    return get_class_from_dynamic_module(reference, str(folder))
