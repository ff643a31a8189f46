"""OmniLMM-12B on the project's own implementation against the REAL upstream code's answers.

../shared/legacy_corpus/omnilmm-12b holds a tiny checkpoint in the released layout and the token ids upstream's
own code (github OpenBMB/MiniCPM-V at 0dbb566, chat.py + omnilmm/) gives on it. The checkpoint is given by a
relative path from another working directory, in a folder whose name says nothing about the model (upstream picks
its OmniLMM path by "12B" in the name; the app reads config.json).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from minicpmv_app import MiniCPMVChat, ModelLoadError, UnsupportedFeatureError
from minicpmv_app.messages import Conversation, Message

QUESTION = "What is in the image?"
# openbmb/OmniLMM-12B config.json (Hugging Face, main): the sizes the released checkpoint has.
RELEASED_SIZES = {"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
                  "num_key_value_heads": 8, "num_hidden_layers": 32, "num_query": 256, "vocab_size": 32009}


@pytest.fixture(scope="module")
def corpus(legacy_corpus) -> Path:
    folder = legacy_corpus / "omnilmm-12b"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return folder


@pytest.fixture(scope="module")
def reference(corpus) -> dict:
    return json.loads((corpus / "REFERENCE.json").read_text())


@pytest.fixture(scope="module")
def checkpoints(corpus, tmp_path_factory):
    """The tiny checkpoint twice: as shipped (safetensors) and as the real repository ships its weights (one
    ``pytorch_model.bin`` pickle), in folders named ``model`` and ``bin-model``."""
    import torch
    from safetensors.torch import load_file

    root = tmp_path_factory.mktemp("omnilmm")
    shutil.copytree(corpus / "tiny-OmniLMM-12B", root / "model")
    pickled = root / "bin-model"
    shutil.copytree(corpus / "tiny-OmniLMM-12B", pickled, ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save(load_file(corpus / "tiny-OmniLMM-12B" / "model.safetensors"), pickled / "pytorch_model.bin")
    return root


def load_relative(root: Path, name: str, monkeypatch) -> MiniCPMVChat:
    """``MiniCPMVChat("./name")`` with the working directory at ``root``, then back where the run started."""
    monkeypatch.chdir(root)
    chat = MiniCPMVChat(f"./{name}", device="cpu")
    monkeypatch.undo()
    return chat


@pytest.fixture(scope="module")
def omni(checkpoints):
    with pytest.MonkeyPatch.context() as monkeypatch:
        return load_relative(checkpoints, "model", monkeypatch)


def question(colour=(30, 120, 200)) -> Conversation:
    return Conversation([Message("user", [Image.new("RGB", (200, 150), colour), QUESTION])])


def ids(chat, conversation=None, **params) -> list[int]:
    return chat.backend.generate_ids(conversation or question(), chat.settings(**params))


BEAM3 = dict(sampling=False, num_beams=3, repetition_penalty=1.1, max_new_tokens=8)
GREEDY = dict(sampling=False, num_beams=1, max_new_tokens=8)


def test_chosen_by_config_json_and_loaded_from_a_relative_path(omni, checkpoints):
    assert omni.backend.name == "omnilmm"
    assert omni.folder == (checkpoints / "model").resolve()
    assert "own implementation" in omni.backend.describe()


def test_the_prompt_is_upstreams_token_for_token(omni, reference):
    inputs = omni.backend.processor
    text = inputs.prompt_text([("user", QUESTION)], has_image=True)
    assert text == reference["run"]["prompt"]["chat_template_text"]
    assert inputs.input_ids(text)[0].tolist() == reference["summary"]["prompt_input_ids"]


def test_beam_and_greedy_answers_equal_upstreams_ids(omni, reference):
    runs = reference["run"]["deterministic"]
    assert ids(omni, **BEAM3) == runs["beam3_max8_rep1.1"]["generated_ids"]
    assert ids(omni, **GREEDY) == runs["greedy_max8"]["generated_ids"]
    control = reference["run"]["control_image_rgb_200_30_30"]
    assert ids(omni, question((200, 30, 30)), **BEAM3) == control["beam3_max8_rep1.1"]["generated_ids"]
    assert ids(omni, question((200, 30, 30)), **GREEDY) == control["greedy_max8"]["generated_ids"]


def test_the_upstream_call_answers_with_upstreams_text(omni, corpus, reference):
    from chat import img2base64

    request = {"image": img2base64(str(corpus / "test_image.png")),
               "question": json.dumps([{"role": "user", "content": QUESTION}])}
    assert omni.chat(request, **BEAM3) == reference["run"]["deterministic"]["beam3_max8_rep1.1"]["answer"]
    # Sampling (upstream's own mode) streams text; its defaults are upstream's decode() values.
    assert dict(omni.settings().params) == {"temperature": 0.6, "top_p": 0.9, "top_k": 30, "repetition_penalty": 1.1}
    assert "".join(omni.stream(request, max_new_tokens=16)).strip()


def test_pytorch_model_bin_gives_the_same_ids(checkpoints, reference, monkeypatch):
    chat = load_relative(checkpoints, "bin-model", monkeypatch)
    assert not list((checkpoints / "bin-model").glob("*.safetensors"))
    assert ids(chat, **BEAM3) == reference["run"]["deterministic"]["beam3_max8_rep1.1"]["generated_ids"]


def test_one_image_per_conversation_and_no_video(omni):
    two = Conversation([Message("user", [Image.new("RGB", (64, 64)), Image.new("RGB", (64, 64), "red"), QUESTION])])
    with pytest.raises(UnsupportedFeatureError) as refused:
        "".join(omni.stream_conversation(two, omni.settings(**GREEDY)))
    assert refused.value.key == "one_image_model"
    text_only = Conversation([Message("user", [QUESTION])])
    assert isinstance("".join(omni.stream_conversation(text_only, omni.settings(**GREEDY))), str)


def released_folder(corpus, tmp_path) -> Path:
    """A folder with the released 12B config.json (the tiny's, with the release's sizes and no tower overrides)
    and no weights at all: a loader that read any would fail on the missing file instead."""
    folder = tmp_path / "OmniLMM-config-only"
    folder.mkdir()
    config = json.loads((corpus / "tiny-OmniLMM-12B" / "config.json").read_text())
    config.update(RELEASED_SIZES)
    config.pop("mm_vision_tower_kwargs")
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_the_loader_estimates_the_released_12b_weights(corpus, tmp_path):
    import torch

    from minicpmv_app.backends.omnilmm import estimate_memory

    folder = released_folder(corpus, tmp_path)
    bf16 = estimate_memory(folder, torch.bfloat16)
    assert 23.15e9 < bf16 < 23.25e9  # the released pytorch_model.bin (bf16) is 23.2 GB on Hugging Face
    assert estimate_memory(folder, torch.float32) == 2 * bf16


def test_an_8_gb_machine_is_refused_before_any_weight_is_read(corpus, tmp_path, monkeypatch):
    import psutil

    folder = released_folder(corpus, tmp_path)
    real = psutil.virtual_memory()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(available=8_000_000_000))
    with pytest.raises(ModelLoadError) as refused:
        MiniCPMVChat(str(folder), device="cpu")
    assert refused.value.key == "not_enough_memory"
    # fp32 weights of 46.5 GB, x 1.25
    assert "needs about 58 GB" in str(refused.value) and "8.0 GB is free" in str(refused.value)
    assert "--device cuda" in str(refused.value) and len(str(refused.value).splitlines()) == 1


def quantized_copy(source: Path, target: Path, skip) -> Path:
    from transformers import BitsAndBytesConfig

    from minicpmv_app.models.omnilmm import OmniLMMForCausalLM

    settings = BitsAndBytesConfig(load_in_4bit=True, llm_int8_skip_modules=list(skip))
    OmniLMMForCausalLM.from_pretrained(source, quantization_config=settings, device_map="cpu").save_pretrained(target)
    for name in source.iterdir():
        if not (target / name.name).exists():
            shutil.copy(name, target / name.name)
    return target


def test_a_4_bit_language_model_loads_on_cpu_and_answers_and_a_4_bit_tower_is_refused(checkpoints, tmp_path):
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed (requirements-dev.txt has it)")
    import bitsandbytes as bnb

    from minicpmv_app.models.omnilmm import OmniLMMForCausalLM

    folder = quantized_copy(checkpoints / "model", tmp_path / "int4", OmniLMMForCausalLM.NOT_QUANTIZED)
    chat = MiniCPMVChat(str(folder), device="cpu")
    quantized = [n for n, m in chat.backend.model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantized and all(n.startswith("model.layers.") for n in quantized)
    assert "bitsandbytes 4-bit weights" in chat.backend.describe()
    assert len(ids(chat, **GREEDY)) == 8
    whole = quantized_copy(checkpoints / "model", tmp_path / "int4-all", ["lm_head"])
    with pytest.raises(ModelLoadError) as refused:
        MiniCPMVChat(str(whole), device="cpu")
    assert refused.value.key == "quantization_unsupported" and "llm_int8_skip_modules" in str(refused.value)


def test_a_multi_gpu_placement_keeps_each_block_layer_and_the_resampler_whole(checkpoints):
    """transformers' device_map="auto" (what --device cuda does with several GPUs) spreads the model by its
    ``_no_split_modules``; computed on the CPU from described memory (there is no GPU here)."""
    import torch
    from accelerate import infer_auto_device_map

    from minicpmv_app.models.omnilmm import OmniLMMConfig, OmniLMMForCausalLM

    config = OmniLMMConfig.from_pretrained(checkpoints / "model")
    with torch.device("meta"):
        skeleton = OmniLMMForCausalLM(config)
    placement = infer_auto_device_map(skeleton, max_memory={0: 3_000_000, 1: 3_000_000, 2: 10**9, "cpu": 10**9},
                                      no_split_module_classes=skeleton._no_split_modules, dtype=torch.float32)
    assert len({d for d in placement.values() if isinstance(d, int)}) >= 2  # the model really is spread
    for name in placement:  # no entry below a whole decoder layer, vision block or the resampler
        assert not name.startswith(("model.resampler.", "model.layers.0.", "model.layers.1.")), name
        assert not (name.startswith("model.vision_tower.blocks.") and name.count(".") > 3), name
