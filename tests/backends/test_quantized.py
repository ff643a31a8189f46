"""Quantized checkpoints: bitsandbytes int4 and 8-bit copies of the trained tiny load on CPU (with device_map, as
transformers places them) and still answer its task; a GPTQ or AWQ checkpoint whose library is missing stops with a
message that says what to install."""

from __future__ import annotations

import importlib.util
import json
import random
import shutil

import pytest

from minicpmv_app import MiniCPMVChat
from minicpmv_app.errors import ModelLoadError
from minicpmv_app.tiny import TRAINED_TINY, trained_tiny_available
from minicpmv_app.tiny_task import COLOURS, draw

pytestmark = pytest.mark.skipif(not trained_tiny_available(), reason="minicpmv_app/tiny_model is missing")
PROCESSOR_FILES = ("chat_template.jinja", "processor_config.json", "tokenizer.json", "tokenizer_config.json")
GREEDY = {"decode_type": "Beam Search", "num_beams": 1, "max_new_tokens": 8}


def narrow_layers(multiple: int = 32) -> list[str]:
    """The tiny's linear layers whose output width is not a multiple of ``multiple``. bitsandbytes' 4-bit CPU kernel
    on AVX-512 machines packs weights in blocks of 32 outputs and refuses other widths ("N must be divisible by
    block_n"); real checkpoints' layers are multiples of 64, the tiny's output head (its vocabulary) is not."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    with torch.device("meta"):
        skeleton = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(TRAINED_TINY))
    return [name for name, module in skeleton.named_modules()
            if isinstance(module, torch.nn.Linear) and module.out_features % multiple]


def quantized_copy(folder, **bnb):
    """The trained tiny quantized by bitsandbytes while loading, saved as a quantized checkpoint (what the hub's
    int4 repositories are)."""
    from transformers import AutoModelForImageTextToText, BitsAndBytesConfig

    settings = BitsAndBytesConfig(**bnb, llm_int8_skip_modules=narrow_layers())
    model = AutoModelForImageTextToText.from_pretrained(TRAINED_TINY, quantization_config=settings, device_map="cpu")
    model.save_pretrained(folder)
    for name in PROCESSOR_FILES:
        shutil.copy(TRAINED_TINY / name, folder / name)
    return folder


def colour_answers(chat) -> list[tuple[str, str]]:
    rng = random.Random(5)
    pairs = []
    for colour in list(COLOURS)[:4]:
        picture = draw(colour, rng.choice(("circle", "square", "triangle")), rng=rng)
        answer = chat.chat({"question": [{"role": "user", "content": [picture, "What colour is the shape?"]}]}, **GREEDY)
        pairs.append((colour, answer.strip()))
    return pairs


@pytest.mark.parametrize("bits", [4, 8])
def test_a_bitsandbytes_checkpoint_loads_on_cpu_and_answers(tmp_path, bits):
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed (requirements-dev.txt has it)")
    import bitsandbytes as bnb

    folder = quantized_copy(tmp_path / f"int{bits}", **{f"load_in_{bits}bit": True})
    assert "quantization_config" in json.loads((folder / "config.json").read_text())
    chat = MiniCPMVChat(str(folder), device="cpu")
    layer_class = bnb.nn.Linear4bit if bits == 4 else bnb.nn.Linear8bitLt
    assert any(isinstance(m, layer_class) for m in chat.backend.model.modules())  # the weights really are quantized
    assert chat.backend.card()["quantization"] == f"bitsandbytes {bits}-bit"
    assert f"bitsandbytes {bits}-bit weights" in chat.backend.describe()
    # The quantized tiny names the colours the full-precision one names (its task survives quantization).
    for colour, answer in colour_answers(chat):
        assert answer == colour


@pytest.mark.parametrize("method, settings, needs", [
    ("gptq", {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True}, "optimum"),
    ("awq", {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}, "gptqmodel"),
])
def test_a_checkpoint_whose_quantization_library_is_missing_says_what_to_install(tmp_path, method, settings, needs):
    if importlib.util.find_spec(needs) is not None:
        pytest.skip(f"{needs} is installed here, so a {method} checkpoint would load instead of being refused")
    folder = tmp_path / method
    shutil.copytree(TRAINED_TINY, folder)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = settings
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as refused:
        MiniCPMVChat(str(folder), device="cpu")
    message = str(refused.value)
    assert refused.value.key == "quantization_missing"
    assert f"{method.upper()} 4-bit" in message and needs in message and "pip install" in message


def test_an_int4_checkpoint_of_the_real_2_6_code_on_cpu_says_it_needs_a_gpu(legacy_corpus, tmp_path):
    """The 2.6 int4 repository's quantization, on the real 2.6 code and the transformers 4.40 its card pins: that
    transformers runs bitsandbytes with CUDA only, so on this CPU the start says so (not "install accelerate")."""
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed (requirements-dev.txt has it)")
    folder = shutil.copytree(legacy_corpus / "minicpm-v-2_6", tmp_path / "MiniCPM-V-2_6-int4")
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True,
                                     "bnb_4bit_compute_dtype": "float16", "bnb_4bit_quant_type": "nf4"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as refused:
        MiniCPMVChat(str(folder), device="cpu")
    assert refused.value.key == "quantization_needs_gpu"
    assert "transformers 4.40.0" in str(refused.value) and "--device cuda" in str(refused.value)
