"""Compatibility fixes that let MiniCPM-V's remote code (1.0 to 4.5) load, and answer correctly, on today's
torch and transformers, without editing the files in the user's model cache.

Each fix names the symptom and the versions it is for, applies only where the installed versions need it,
and is logged once. ``MINICPMV_COMPAT_DISABLE=name,name`` switches fixes off (for diagnosis and tests).
The remote classes are resolved first through transformers' dynamic-module machinery, fixed, then loaded.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

log = logging.getLogger(__name__)

_logged: set[str] = set()


@dataclass(frozen=True)
class Fix:
    name: str
    symptom: str
    versions: str


FIXES = {
    fix.name: fix
    for fix in (
        Fix("typing_names", "NameError: name 'List' is not defined in resampler.py (it star-imports "
            "torch.nn.functional and relied on the typing names older torch re-exported there)", "torch >= 2.5"),
        Fix("flash_attn_import", "ImportError: this modeling file requires flash_attn (an optional kernel, absent on "
            "Mac and CPU machines; the model runs with sdpa)", "any, when flash_attn is not installed"),
        Fix("post_init", "AttributeError: 'MiniCPMV' object has no attribute 'all_tied_weights_keys' (the remote "
            "model's __init__ never calls post_init())", "transformers >= 5"),
        Fix("tokenizer_json", "remote fast tokenizer rebuilt from its vocabulary alone: one token per character, "
            "spaces dropped ('Ġa nt Į i')", "transformers >= 5"),
        Fix("rebuild_buffers", "non-persistent buffers (the resampler's 2D sin/cos pos_embed) left as zeros or "
            "uninitialised memory after loading: wrong answers or 'probability tensor contains inf/nan'",
            "transformers >= 5"),
    )
}

TYPING_NAMES = ("List", "Tuple", "Optional", "Callable", "Union", "Dict", "Any", "Sequence")
OPTIONAL_KERNELS = ("flash_attn",)
# Non-persistent buffers the remote code knows how to rebuild: method name -> attribute holding its argument.
BUFFER_REBUILDERS = {"_set_2d_pos_cache": "max_size"}


def disabled() -> set[str]:
    return {n.strip() for n in os.environ.get("MINICPMV_COMPAT_DISABLE", "").split(",") if n.strip()}


def _enabled(name: str) -> bool:
    return name not in disabled()


def _applied(name: str, detail: str = "") -> None:
    if name not in _logged:
        _logged.add(name)
        fix = FIXES[name]
        log.info("Compatibility fix %r applied (%s; for %s)%s", name, fix.symptom.split(" (")[0], fix.versions,
                 f": {detail}" if detail else "")


def _transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


# -- before the remote modules are imported ---------------------------------------------------------
def restore_typing_names() -> None:
    import torch.nn.functional as F

    missing = [n for n in TYPING_NAMES if not hasattr(F, n)]
    if not missing or not _enabled("typing_names"):
        return
    for name in missing:  # F has no __all__, so `from torch.nn.functional import *` picks these up again
        setattr(F, name, getattr(typing, name))
    _applied("typing_names", ", ".join(missing))


def allow_missing_optional_kernels() -> None:
    """Imports of absent optional kernels stop failing transformers' import check, for every remote module.

    Installed once for the process: the remote code imports more of its modules later (its processor, on the
    first chat() call), and each goes through the same check.
    """
    from transformers import dynamic_module_utils

    absent = [k for k in OPTIONAL_KERNELS if importlib.util.find_spec(k) is None]
    current = dynamic_module_utils.get_imports
    if not absent or not _enabled("flash_attn_import") or getattr(current, "_minicpmv", False):
        return

    def get_imports(filename):
        found = current(filename)
        dropped = [m for m in found if m in absent]
        if dropped:
            _applied("flash_attn_import", f"{', '.join(dropped)} in {Path(filename).name}; using sdpa")
        return [m for m in found if m not in absent]

    get_imports._minicpmv = True
    get_imports.__wrapped__ = current
    dynamic_module_utils.get_imports = get_imports


def resolve_class(reference, folder: Path) -> type:
    """The remote class ``auto_map`` names, imported through transformers with the import-time fixes."""
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    if isinstance(reference, (list, tuple)):  # AutoTokenizer: [slow, fast]
        reference = reference[-1] or reference[0]
    restore_typing_names()
    allow_missing_optional_kernels()
    return get_class_from_dynamic_module(reference, str(folder))


# -- on the resolved classes ---------------------------------------------------------------------------
def fix_model_class(cls: type) -> type:
    if _transformers_major() < 5 or not _enabled("post_init") or cls.__dict__.get("_minicpmv_post_init"):
        return cls
    original_init = cls.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        if not hasattr(self, "all_tied_weights_keys"):
            _applied("post_init", cls.__name__)
            self.post_init()

    cls.__init__ = __init__
    cls._minicpmv_post_init = True
    return cls


def fix_tokenizer_class(cls: type) -> type:
    if _transformers_major() < 5 or not _enabled("tokenizer_json") or cls.__dict__.get("_minicpmv_tokenizer_json"):
        return cls
    from transformers.tokenization_utils_tokenizers import TokenizersBackend

    convert = getattr(cls, "convert_to_native_format", None)
    if not (issubclass(cls, TokenizersBackend) and "__init__" in cls.__dict__ and convert is not None
            and "trust_remote_code" in inspect.signature(convert).parameters):
        return cls
    base = convert.__func__

    def convert_to_native_format(klass, trust_remote_code=False, **kwargs):
        # The loader drops the trust_remote_code it was given; a remote class loaded at all was trusted.
        return base(klass, trust_remote_code=True, **kwargs)

    cls.convert_to_native_format = classmethod(convert_to_native_format)
    cls._minicpmv_tokenizer_json = True
    _applied("tokenizer_json", cls.__name__)
    return cls


# -- after loading -----------------------------------------------------------------------------------
def rebuild_buffers(model) -> list[str]:
    """Recompute non-persistent buffers the model's own code knows how to build. Returns the module names."""
    if _transformers_major() < 5 or not _enabled("rebuild_buffers"):
        return []
    rebuilt = []
    for name, module in model.named_modules():
        for method, attribute in BUFFER_REBUILDERS.items():
            rebuild: Optional[Callable] = getattr(module, method, None)
            if rebuild is None or not hasattr(module, attribute):
                continue
            device = next((p.device for p in module.parameters()), None) or next(
                (b.device for b in module.buffers()), "cpu"
            )
            rebuild(getattr(module, attribute), device)
            rebuilt.append(name or type(module).__name__)
    if rebuilt:
        _applied("rebuild_buffers", ", ".join(rebuilt))
    return rebuilt
