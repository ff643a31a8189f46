"""Each compatibility fix against a fixture that fails the way the real remote code does: loudly or with
wrong output without the fix, right with it."""

import json
import sys
import uuid

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from chat import MiniCPMVChat, img2base64
from minicpmv_app.backends import remote_compat
from minicpmv_app.errors import ModelLoadError, UnsupportedFeatureError
from tests.fixtures.legacy import build_legacy_checkpoint

TEXT = "The quick brown fox jumps over the lazy dog. 你好，图中有什么？ red circle"


@pytest.fixture
def fresh_checkpoint(tiny_folder, tmp_path):
    """A legacy folder under a new name: transformers imports its code as a new module, with unpatched classes."""

    def build(flavour="v26"):
        return build_legacy_checkpoint(tiny_folder, tmp_path / f"{flavour}_{uuid.uuid4().hex[:8]}", flavour)

    return build


def without(monkeypatch, *fixes):
    monkeypatch.setenv("MINICPMV_COMPAT_DISABLE", ",".join(fixes))


def test_typing_names_fix(fresh_checkpoint, monkeypatch):
    monkeypatch.delattr(F, "List", raising=False)  # as on torch 2.14, whatever an earlier test restored
    without(monkeypatch, "typing_names")
    with pytest.raises(ModelLoadError, match="name 'List' is not defined"):
        MiniCPMVChat(str(fresh_checkpoint()), device="cpu")
    monkeypatch.delenv("MINICPMV_COMPAT_DISABLE")
    MiniCPMVChat(str(fresh_checkpoint()), device="cpu")
    assert F.List is __import__("typing").List


def test_flash_attn_import_fix(fresh_checkpoint, monkeypatch):
    from transformers import dynamic_module_utils

    if __import__("importlib").util.find_spec("flash_attn") is not None:
        pytest.skip("flash_attn is installed here")
    plain = getattr(dynamic_module_utils.get_imports, "__wrapped__", dynamic_module_utils.get_imports)
    monkeypatch.setattr(dynamic_module_utils, "get_imports", plain)
    without(monkeypatch, "flash_attn_import")
    with pytest.raises(ModelLoadError, match="flash_attn"):
        MiniCPMVChat(str(fresh_checkpoint()), device="cpu")
    monkeypatch.delenv("MINICPMV_COMPAT_DISABLE")
    MiniCPMVChat(str(fresh_checkpoint()), device="cpu")


def test_post_init_fix(fresh_checkpoint, monkeypatch):
    without(monkeypatch, "post_init")
    with pytest.raises(ModelLoadError, match="all_tied_weights_keys"):
        MiniCPMVChat(str(fresh_checkpoint()), device="cpu")


def reference_ids(folder, text):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json")).encode(text, add_special_tokens=False).ids


def test_tokenizer_json_fix(fresh_checkpoint, monkeypatch):
    without(monkeypatch, "tokenizer_json")
    folder = fresh_checkpoint("v25")
    broken = MiniCPMVChat(str(folder), device="cpu").backend.tokenizer
    assert type(broken).__name__ == "TinyLegacyTokenizerFast"
    assert broken(TEXT, add_special_tokens=False)["input_ids"] != reference_ids(folder, TEXT)
    assert broken.decode(broken(TEXT, add_special_tokens=False)["input_ids"]) != TEXT

    monkeypatch.delenv("MINICPMV_COMPAT_DISABLE")
    folder = fresh_checkpoint("v25")
    fixed = MiniCPMVChat(str(folder), device="cpu").backend.tokenizer
    ids = fixed(TEXT, add_special_tokens=False)["input_ids"]
    assert ids == reference_ids(folder, TEXT)
    assert fixed.decode(ids) == TEXT


def sincos_table(model):
    module = sys.modules[type(model.resampler).__module__]
    return torch.from_numpy(module.get_2d_sincos_pos_embed(model.resampler.embed_dim, model.resampler.max_size)).float()


def test_rebuild_buffers_fix(fresh_checkpoint, monkeypatch):
    without(monkeypatch, "rebuild_buffers")
    broken = MiniCPMVChat(str(fresh_checkpoint()), device="cpu").backend.model
    assert not torch.equal(broken.resampler.pos_embed, sincos_table(broken))
    monkeypatch.delenv("MINICPMV_COMPAT_DISABLE")
    fixed = MiniCPMVChat(str(fresh_checkpoint()), device="cpu").backend.model
    assert torch.equal(fixed.resampler.pos_embed, sincos_table(fixed))


def hand_built_answer(folder, tiny_folder, image, question, max_new_tokens):
    """The answer of the fixture model built directly in Python (buffers from __init__, tokenizer from its json),
    not through from_pretrained: what a correct load must reproduce."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from tests.fixtures.legacy_remote.modeling_tiny_legacy import TinyLegacyConfig, TinyLegacyV26

    config = TinyLegacyConfig.from_pretrained(folder)
    model = TinyLegacyV26(config)
    model.config._name_or_path = str(folder)  # where its chat() finds the processor, as after from_pretrained
    missing, unexpected = model.load_state_dict(load_file(folder / "model.safetensors"), strict=False)
    assert not unexpected and all("pos_embed" in k or "tied" in k for k in missing)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_folder)
    msgs = [{"role": "user", "content": [image, question]}]
    return model.chat(image=None, msgs=msgs, tokenizer=tokenizer, sampling=False, max_new_tokens=max_new_tokens)


def test_loaded_model_answers_like_the_hand_built_one(legacy_folders, legacy_chats, tiny_folder, fresh_checkpoint, monkeypatch):
    image = Image.new("RGB", (80, 60), (200, 30, 30))
    request = {"image": img2base64(image), "question": json.dumps([{"role": "user", "content": "What is it?"}])}
    expected = hand_built_answer(legacy_folders["v26"], tiny_folder, image, "What is it?", 24)
    answer = legacy_chats["v26"].chat(request, decode_type="Beam Search", max_new_tokens=24)
    assert len(expected) > 5 and answer == expected
    # Without the buffer fix the same checkpoint answers differently: the silent failure this guards against.
    without(monkeypatch, "rebuild_buffers")
    broken = MiniCPMVChat(str(fresh_checkpoint()), device="cpu")
    assert broken.chat(request, decode_type="Beam Search", max_new_tokens=24) != expected


def test_text_only_turn_on_25_is_a_clear_message(legacy_chats):
    with pytest.raises(UnsupportedFeatureError, match="upload one first"):
        legacy_chats["v25"].chat({"question": json.dumps([{"role": "user", "content": "hi"}])})


def test_every_fix_is_documented():
    for fix in remote_compat.FIXES.values():
        assert fix.symptom and fix.versions
