"""Quantized checkpoints (bitsandbytes int4/8-bit, AWQ, GPTQ): what each needs, checked before loading.

A quantized checkpoint says so in its config.json (``quantization_config``); transformers quantizes or unpacks the
weights while loading, so such a model is placed with ``device_map`` at load and never moved with ``.to()``
afterwards (bitsandbytes refuses it: OpenBMB/MiniCPM-V#719). Neither backend calls ``.to()`` on a model.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Optional

from .errors import ModelLoadError


@dataclass(frozen=True)
class Method:
    label: str
    packages: tuple[str, ...]  # import names transformers needs for this method, in the order it checks them
    install: str
    devices: str  # where the method's kernels run, for the message


# quant_method in config.json -> what it needs (transformers' quantizers: bitsandbytes, gptq via optimum + gptqmodel,
# awq via gptqmodel).
METHODS = {
    "bitsandbytes": Method("bitsandbytes", ("bitsandbytes",), "pip install bitsandbytes",
                           "NVIDIA GPUs, and CPUs with bitsandbytes 0.49 or later"),
    "gptq": Method("GPTQ", ("optimum", "gptqmodel"), "pip install optimum gptqmodel", "NVIDIA GPUs (gptqmodel builds its kernels)"),
    "awq": Method("AWQ", ("gptqmodel",), "pip install gptqmodel", "NVIDIA GPUs (gptqmodel builds its kernels)"),
}


@dataclass(frozen=True)
class Quantization:
    method: str  # quant_method as written in the checkpoint
    bits: Optional[int]

    @property
    def label(self) -> str:
        known = METHODS.get(self.method)
        name = known.label if known else self.method
        return f"{name} {self.bits}-bit" if self.bits else name


def quantization(config: dict) -> Optional[Quantization]:
    """The checkpoint's quantization, or None for full-precision weights."""
    settings = config.get("quantization_config") or (config.get("text_config") or {}).get("quantization_config")
    if not isinstance(settings, dict):
        return None
    method = str(settings.get("quant_method") or "bitsandbytes").lower()
    bits = settings.get("bits")
    if method == "bitsandbytes":
        bits = 4 if settings.get("load_in_4bit") else 8 if settings.get("load_in_8bit") else bits
    return Quantization(method, int(bits) if isinstance(bits, (int, float)) else None)


def missing_packages(method: str) -> list[str]:
    known = METHODS.get(method)
    return [name for name in (known.packages if known else ()) if importlib.util.find_spec(name) is None]


def transformers_runs_bitsandbytes() -> bool:
    """transformers' own answer: before 4.45 it ran bitsandbytes only with a CUDA GPU present (the 4.40 that
    2.5 and 2.6 cards pin says so on a CPU or a Mac); later versions also run it on CPUs."""
    from transformers.utils import import_utils

    available = getattr(import_utils, "is_bitsandbytes_available", None)
    return available is None or bool(available())


def check(config: dict, folder_name: str) -> Optional[Quantization]:
    """Raise a ModelLoadError that says what to do when this quantized checkpoint cannot load here: its library
    is missing, or the transformers in use runs it on NVIDIA GPUs only."""
    found = quantization(config)
    if found is None:
        return None
    missing = missing_packages(found.method)
    if not missing and found.method == "bitsandbytes" and not transformers_runs_bitsandbytes():
        import transformers

        raise ModelLoadError(
            f"{folder_name} is a {found.label} quantized checkpoint, and transformers {transformers.__version__} "
            "(the version its model card pins) runs bitsandbytes on NVIDIA GPUs only: start it with --device cuda "
            "on a machine with one, or pick the full-precision checkpoint of this model for this machine.",
            key="quantization_needs_gpu", label=found.label, transformers=transformers.__version__,
        )
    if missing:
        method = METHODS[found.method]
        raise ModelLoadError(
            f"{folder_name} is a {found.label} quantized checkpoint, and loading it needs {' and '.join(missing)}, "
            f"which is not installed. Install it ({method.install}; it runs on {method.devices}), "
            "or pick the full-precision checkpoint of this model.",
            key="quantization_missing", label=found.label, packages=" + ".join(missing), install=method.install,
        )
    return found
