"""OmniLMM-12B (openbmb/OmniLMM-12B): Mistral-7B plus an EVA02 vision tower (timm), joined by a perceiver resampler.

The checkpoint ships no code (config.json, a sentencepiece tokenizer and one ``pytorch_model.bin``); upstream runs it
with the ``omnilmm/`` package of github OpenBMB/MiniCPM-V. This is the project's own implementation of the same
architecture, checked token for token against that code's answers (``tests/models/test_omnilmm.py``).
"""

from transformers import AutoConfig

from .configuration_omnilmm import OmniLMMConfig
from .modeling_omnilmm import OmniLMMForCausalLM, OmniLMMResampler, estimate_weight_bytes
from .processing_omnilmm import OmniLMMProcessor

# AutoTokenizer and AutoConfig read config.json's model_type; registered, they know "omnilmm" (else a warning that
# the checkpoint is of an unknown type).
AutoConfig.register(OmniLMMConfig.model_type, OmniLMMConfig, exist_ok=True)

__all__ = ["OmniLMMConfig", "OmniLMMForCausalLM", "OmniLMMProcessor", "OmniLMMResampler", "estimate_weight_bytes"]
