"""The token streamer: every token's text handed on at once, the pieces add up to the whole decode, and the work
per token does not grow with the answer (it decodes a short window, not everything so far)."""

from __future__ import annotations

import threading

import pytest
import torch

from minicpmv_app.backends.base import token_streamer

TEXT = ("Plain words, 中文的句子没有空格，emoji 🎉🚀 and symbols ∑∫≈ — then a long run: " + "abc" * 40 + "\n"
        "Second line with <think>tags</think> and numbers 12345.")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from minicpmv_app.tiny import TRAINED_TINY

    return AutoTokenizer.from_pretrained(TRAINED_TINY)


def stream(tokenizer, ids, prompt=(1, 2, 3)):
    streamer = token_streamer(tokenizer)
    pieces: list[str] = []
    reader = threading.Thread(target=lambda: pieces.extend(streamer))
    reader.start()
    streamer.put(torch.tensor([list(prompt)]))  # the prompt, skipped
    for token in ids:
        streamer.put(torch.tensor([token]))
    streamer.end()
    reader.join(timeout=10)
    return [p for p in pieces if p]


def test_pieces_add_up_to_the_whole_decode(tokenizer):
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    pieces = stream(tokenizer, ids)
    assert "".join(pieces) == tokenizer.decode(ids, skip_special_tokens=True)
    assert not any("\ufffd" in p for p in pieces)  # a character split over tokens waits for its last byte
    assert len(pieces) > len(TEXT.split()) * 2 // 3  # handed on token by token, not word by word


def test_each_token_decodes_a_short_window_whatever_the_length(tokenizer):
    ids = tokenizer("word " * 3000, add_special_tokens=False)["input_ids"]
    lengths: list[int] = []
    original = tokenizer.decode

    def counting(tokens, **kwargs):
        lengths.append(len(tokens))
        return original(tokens, **kwargs)

    tokenizer.decode = counting
    try:
        pieces = stream(tokenizer, ids)
    finally:
        del tokenizer.decode
    assert "".join(pieces) == original(ids, skip_special_tokens=True)
    assert max(lengths) <= 8  # a few tokens of context, never the answer so far
