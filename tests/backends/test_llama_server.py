"""GGUF files on llama.cpp: what a user gets wrong is said before anything starts, and a real llama-server (built
by .ci/run from llama.cpp's source) answers the converted tiny as the tiny answers in transformers."""

from __future__ import annotations

import pytest

from minicpmv_app import MiniCPMVChat
from minicpmv_app.backends.llama_server import find_mmproj, is_gguf
from minicpmv_app.errors import ModelLoadError


def gguf(path, body=b"\0" * 64):
    path.write_bytes(b"GGUF" + body)
    return path


def test_a_gguf_is_known_by_its_format_not_its_name(tmp_path):
    assert is_gguf(gguf(tmp_path / "model-without-suffix"))
    (tmp_path / "fake.gguf").write_bytes(b"PK\x03\x04 not a gguf")
    assert not is_gguf(tmp_path / "fake.gguf") and not is_gguf(tmp_path / "missing.gguf") and not is_gguf(tmp_path)


def test_the_projector_beside_the_model_is_found_when_there_is_one(tmp_path):
    model = gguf(tmp_path / "ggml-model-Q4_K_M.gguf")
    assert find_mmproj(model) is None
    projector = gguf(tmp_path / "mmproj-model-f16.gguf")
    assert find_mmproj(model) == projector
    gguf(tmp_path / "mmproj-model-q8_0.gguf")
    assert find_mmproj(model) is None  # two: the user says which (--mmproj)


def test_without_a_projector_or_a_server_the_error_says_what_to_do(tmp_path, monkeypatch):
    model = gguf(tmp_path / "model.gguf")
    with pytest.raises(ModelLoadError) as caught:
        MiniCPMVChat(str(model))
    assert caught.value.key == "mmproj_missing" and "--mmproj" in str(caught.value)
    gguf(tmp_path / "mmproj.gguf")
    monkeypatch.setenv("PATH", str(tmp_path))  # no llama-server anywhere
    monkeypatch.delenv("MINICPMV_LLAMA_SERVER", raising=False)
    with pytest.raises(ModelLoadError) as caught:
        MiniCPMVChat(str(model))
    assert caught.value.key == "llama_server_missing" and "--llama-server" in str(caught.value)
