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


# -- a real llama-server ---------------------------------------------------------------------------
from tests.llama_cpp import SERVER, convert, llama_cpp_layout, needs_llama_server  # noqa: E402

GREEDY = {"decode_type": "Beam Search", "num_beams": 1, "max_new_tokens": 8}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The trained tiny in the layout llama.cpp's 4.6 graph takes (its 70x70 position grid)."""
    from minicpmv_app.tiny import TRAINED_TINY

    return llama_cpp_layout(TRAINED_TINY, tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture(scope="module")
def llama_chat(checkpoint, tmp_path_factory):
    """That checkpoint converted by llama.cpp's converter, served by the app's own llama-server."""
    model, _ = convert(checkpoint, tmp_path_factory.mktemp("gguf"))
    chat = MiniCPMVChat(str(model), llama_server=str(SERVER))  # the projector is found beside the model
    yield chat
    chat.backend.close()


def ask_about(chat, pictures, question="What colour is the shape?"):
    from minicpmv_app.messages import Conversation, Message

    conversation = Conversation([Message("user", [*pictures, question])])
    return "".join(chat.stream_conversation(conversation, chat.settings(**GREEDY))).strip()


@needs_llama_server
def test_the_converted_tiny_answers_on_llama_server_as_in_transformers(llama_chat, checkpoint):
    import random

    from minicpmv_app.tiny_task import draw

    here_chat = MiniCPMVChat(str(checkpoint), device="cpu")
    rng = random.Random(4)
    pictures = [draw(colour, shape, rng=rng) for colour, shape in
                (("red", "square"), ("blue", "circle"), ("green", "triangle"), ("yellow", "square"))]
    here = [ask_about(here_chat, [p]) for p in pictures]
    served = [ask_about(llama_chat, [p]) for p in pictures]
    assert here == ["red", "blue", "green", "yellow"]  # the tiny names them (the pictures got in)
    assert served == here
    assert "llama-server" in llama_chat.backend.describe()


@needs_llama_server
def test_a_broken_gguf_is_refused_with_the_servers_reason(checkpoint, tmp_path):
    model, projector = convert(checkpoint, tmp_path)
    model.write_bytes(model.read_bytes()[:4096])  # an interrupted download, still starting with GGUF
    with pytest.raises(ModelLoadError) as caught:
        MiniCPMVChat(str(model), llama_server=str(SERVER))
    assert caught.value.key == "llama_server_failed" and model.name in str(caught.value)
