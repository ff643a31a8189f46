"""A real llama.cpp: the llama-server and GGUF converter that scripts/build_llama_cpp.sh builds into .llama.cpp/
(.ci/run does), and the tiny converted to GGUF with llama.cpp's own converter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LLAMA_CPP = ROOT / ".llama.cpp"
SERVER = LLAMA_CPP / "build" / "bin" / "llama-server"
needs_llama_server = pytest.mark.skipif(
    not SERVER.is_file(), reason="llama.cpp is not built here: run scripts/build_llama_cpp.sh (.ci/run does)")

# The tiny's tokenizer is one we trained (minicpmv_app/tiny.py): byte-level BPE with GPT-2's pre-tokenizer, which
# the converter cannot recognise by its fingerprint of known tokenizers; it is told so. Nothing else is changed.
CONVERT = """
import runpy, sys
source = sys.argv[1]
sys.path[:0] = [source + "/gguf-py", source]
import conversion.base as base
for cls in vars(base).values():
    if isinstance(cls, type) and "get_vocab_base_pre" in vars(cls):
        cls.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
sys.argv = ["convert_hf_to_gguf.py", *sys.argv[2:]]
runpy.run_path(source + "/convert_hf_to_gguf.py", run_name="__main__")
"""


def llama_cpp_layout(checkpoint: Path, folder: Path) -> Path:
    """``checkpoint`` with the released 4.6's 70x70 position-embedding grid (image_size 980), which llama.cpp's
    MiniCPM-V 4.6 vision graph assumes (tools/mtmd/clip.cpp buckets positions on 70 a side); the tiny's own 16x16
    table is spread over it by nearest neighbour. Transformers reads either (it buckets to the table it has)."""
    import json
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    out = folder / f"{checkpoint.name}-980"
    shutil.copytree(checkpoint, out, dirs_exist_ok=True)
    config = json.loads((out / "config.json").read_text())
    side = config["vision_config"]["image_size"] // config["vision_config"]["patch_size"]
    config["vision_config"]["image_size"] = config["image_size"] = 980
    (out / "config.json").write_text(json.dumps(config, indent=2))
    weights = load_file(out / "model.safetensors")
    name = "model.vision_tower.embeddings.position_embedding.weight"
    table = weights[name].reshape(side, side, -1)
    rows = (torch.arange(70) * side) // 70
    weights[name] = table[rows][:, rows].reshape(70 * 70, -1).contiguous()
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})
    return out


def convert(checkpoint: Path, folder: Path) -> tuple[Path, Path]:
    """``checkpoint`` as llama.cpp's converter writes it: the language model and its vision projector (f32)."""
    model, projector = folder / "tiny-f32.gguf", folder / "mmproj-tiny-f32.gguf"
    for extra, out in ((["--no-mtp"], model), (["--mmproj"], projector)):
        done = subprocess.run([sys.executable, "-c", CONVERT, str(LLAMA_CPP), str(checkpoint), *extra,
                               "--outfile", str(out), "--outtype", "f32"], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    return model, projector
