"""Which transformers each remote-code generation runs on: the model cards' pins, as data.

Each ``Runtime`` is a set of exact packages installed side by side into the user cache and imported ahead of the
app's own (the app's torch, numpy, Pillow and timm are reused: no second torch). ``accepts`` lists the
transformers releases an installed stack may already have for the model to run in-process instead.
Sources are quoted in the README's compatibility table; the short form is kept next to each entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Runtime:
    name: str  # folder name in the runtimes cache, and what `python -m minicpmv_app.runtimes install` takes
    transformers: str  # the version installed
    packages: tuple[str, ...]  # exact pins installed with --no-deps (transformers first)
    accepts: tuple[str, ...]  # transformers version prefixes that already satisfy the pin in-process
    source: str

    def accepted(self, version: str) -> bool:
        return any(version == a or version.startswith(a + ".") for a in self.accepts)


RUNTIMES = {
    r.name: r
    for r in (
        # MiniCPM-V 2.5 / 2.6 cards pin transformers==4.40.0 (their int4 cards add accelerate==0.30.1);
        # 1.0 / 2.0 pin 4.36.0, and 4.40.0 gives them exactly the same answer (../shared/legacy_corpus), so one
        # runtime serves all four. tokenizers / huggingface_hub are the releases transformers 4.40.0 was built on.
        Runtime(
            "transformers-4.40",
            "4.40.0",
            ("transformers==4.40.0", "tokenizers==0.19.1", "huggingface_hub==0.23.4", "accelerate==0.30.1",
             "sentencepiece==0.2.0"),
            ("4.36", "4.40"),
            "MiniCPM-V-2_6 / MiniCPM-Llama3-V-2_5 model cards (transformers==4.40.0); MiniCPM-V / MiniCPM-V-2 (4.36.0)",
        ),
        # MiniCPM-o 2.6 card: "Please ensure that transformers==4.44.2 is installed"; MiniCPM-V 4.0's card pins
        # nothing and upstream's README installs requirements_o2.6.txt (transformers==4.44.2) for it.
        Runtime(
            "transformers-4.44",
            "4.44.2",
            ("transformers==4.44.2", "tokenizers==0.19.1", "huggingface_hub==0.24.6", "accelerate==1.2.1",
             "sentencepiece==0.2.0"),
            ("4.44",),
            "MiniCPM-o-2_6 model card; upstream requirements_o2.6.txt (accelerate==1.2.1) for MiniCPM-V 4.0",
        ),
        # MiniCPM-o 4.5 card: pip install "transformers==4.51.0"; MiniCPM-V 4.5 (same Qwen3 language model, which
        # transformers supports from 4.51) has no pin on its card; upstream's finetune requirements use 4.51.
        Runtime(
            "transformers-4.51",
            "4.51.0",
            ("transformers==4.51.0", "tokenizers==0.21.1", "huggingface_hub==0.30.2", "accelerate==1.6.0",
             "sentencepiece==0.2.0"),
            ("4.51",),
            "MiniCPM-o-4_5 model card (transformers==4.51.0); MiniCPM-V-4_5 (no card pin; Qwen3 needs >= 4.51)",
        ),
    )
}

# config.json (model_type, version) -> runtime. 1.0 and 2.0 carry no version.
GENERATIONS = {
    ("minicpmv", None): ("MiniCPM-V 1.0 / 2.0", "transformers-4.40"),
    ("minicpmv", "2.5"): ("MiniCPM-Llama3-V 2.5", "transformers-4.40"),
    ("minicpmv", "2.6"): ("MiniCPM-V 2.6", "transformers-4.40"),
    ("minicpmv", "4.0"): ("MiniCPM-V 4.0", "transformers-4.44"),
    ("minicpmo", "2.6"): ("MiniCPM-o 2.6", "transformers-4.44"),
    ("minicpmv", "4.5"): ("MiniCPM-V 4.5", "transformers-4.51"),
    ("minicpmo", "4.5"): ("MiniCPM-o 4.5", "transformers-4.51"),
}


def generation_key(config: dict) -> tuple[str, Optional[str]]:
    version = config.get("version")
    if isinstance(version, (int, float)):
        version = f"{float(version):.1f}"
    return str(config.get("model_type")), (str(version) if version is not None else None)


def runtime_for(config: dict) -> Optional[Runtime]:
    """The runtime a remote-code checkpoint's model card asks for, or None for an unknown generation."""
    entry = GENERATIONS.get(generation_key(config))
    return RUNTIMES[entry[1]] if entry else None


def generation_name(config: dict) -> str:
    entry = GENERATIONS.get(generation_key(config))
    return entry[0] if entry else f"{config.get('model_type')} {config.get('version') or ''}".strip()
