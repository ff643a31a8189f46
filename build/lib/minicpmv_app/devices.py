"""Where the model runs and in which precision."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

from .errors import DeviceError

DEVICES = ("auto", "cuda", "mps", "cpu")
DTYPE_CHOICES = ("auto", "bf16", "fp16", "fp32")  # the names the command line offers; DTYPES reads the long ones too
DTYPES = {
    "auto": None,
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
    "fp32": "float32",
    "float32": "float32",
}


@dataclass(frozen=True)
class Placement:
    device: str  # "cuda", "cuda:1", "mps" or "cpu": where inputs go
    dtype: Any  # a torch.dtype
    device_map: Any  # what from_pretrained gets: a device string or "auto" across several GPUs

    @property
    def multi_gpu(self) -> bool:
        return self.device_map == "auto"


def on_zerogpu() -> bool:
    """A Hugging Face ZeroGPU Space (it sets SPACES_ZERO_GPU=true): a GPU is attached per answer, and the model
    must be placed on CUDA at import, in the app's own process."""
    return (os.environ.get("SPACES_ZERO_GPU") or "").lower() in ("1", "t", "true")


def enable_mps_fallback() -> None:
    # Ops MPS lacks fall back to the CPU instead of raising; torch reads this when the op is dispatched.
    os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")


def resolve_device(requested: str = "auto", *, torch_module=None) -> str:
    """``auto`` picks cuda, then mps, then cpu. An explicit device that is missing is an error."""
    torch = torch_module or _torch()
    name = (requested or "auto").strip().lower()
    kind = name.split(":", 1)[0]
    if kind not in DEVICES:
        raise DeviceError(f"Unknown device {requested!r}: use one of {', '.join(DEVICES)} (or cuda:N).")
    if kind == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if _mps_available(torch):
            enable_mps_fallback()
            return "mps"
        return "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                "--device cuda was asked for, but PyTorch sees no CUDA GPU here "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). "
                "Use --device cpu, or install a CUDA build of torch and check nvidia-smi."
            )
        if ":" in name:
            index = int(name.split(":", 1)[1])
            if index >= torch.cuda.device_count():
                raise DeviceError(f"{name} does not exist: this machine has {torch.cuda.device_count()} GPU(s).")
        return name
    if kind == "mps":
        if not _mps_available(torch):
            raise DeviceError("--device mps was asked for, but MPS is not available (it needs Apple silicon and macOS 12.3+). Use --device cpu.")
        enable_mps_fallback()
        return "mps"
    return "cpu"


def resolve_dtype(device: str, requested: Optional[str] = None, *, torch_module=None):
    """bf16 on GPUs that support it, fp16 on older GPUs and on MPS, fp32 on CPU; or what was asked for."""
    torch = torch_module or _torch()
    key = (requested or "auto").strip().lower()
    if key not in DTYPES:
        raise DeviceError(f"Unknown dtype {requested!r}: use auto, bf16, fp16 or fp32.")
    if name := DTYPES[key]:
        dtype = getattr(torch, name)
        if dtype is torch.bfloat16 and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
            raise DeviceError("This GPU does not support bfloat16 (V100, T4, RTX 20xx): use --dtype fp16.")
        return dtype
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    # fp32 on CPU: half precision is slow or unsupported for several ops, and bf16 measured 4x slower to the first
    # token for MiniCPM-V 4.6 on a 2-core AVX2 CPU (README, Performance: bench/real_size.py).
    return torch.float32


def placement(device: str = "auto", dtype: Optional[str] = None, *, torch_module=None) -> Placement:
    torch = torch_module or _torch()
    resolved = resolve_device(device, torch_module=torch)
    chosen_dtype = resolve_dtype(resolved, dtype, torch_module=torch)
    # Plain "cuda" with several GPUs: let accelerate spread the layers; "cuda:N" pins one GPU.
    if resolved == "cuda" and torch.cuda.device_count() > 1:
        return Placement("cuda:0", chosen_dtype, "auto")
    if resolved == "cuda":
        resolved = "cuda:0"
    return Placement(resolved, chosen_dtype, resolved)


def _mps_available(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def _torch():
    import torch

    return torch
