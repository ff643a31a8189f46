"""Reasoning apart from the answer, however the stream is cut, whoever opened the block."""

import pytest

from minicpmv_app.reasoning import Reasoning, ThinkSplitter, prompt_opens_thinking, split_reasoning

RAW = "<think>\nI see a red square.\n</think>\n\nred"


def parts(pieces, **kwargs):
    out = list(split_reasoning(pieces, **kwargs))
    return "".join(p for p in out if isinstance(p, Reasoning)).strip(), "".join(p for p in out if not isinstance(p, Reasoning))


@pytest.mark.parametrize("size", range(1, 10))
def test_a_stream_cut_anywhere_splits_the_same(size):
    assert parts([RAW[i : i + size] for i in range(0, len(RAW), size)]) == ("I see a red square.", "red")


def test_an_empty_block_from_a_template_with_thinking_off_leaves_only_the_answer():
    assert parts(["<think>\n\n</think>\n\n", "red"]) == ("", "red")


def test_a_prompt_that_opened_the_block_makes_the_first_words_reasoning():
    assert parts(["Looks red.\n</think>\n\nred"], inside=True) == ("Looks red.", "red")
    assert prompt_opens_thinking("<|im_start|>assistant\n<think>\n")
    assert not prompt_opens_thinking("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_a_think_tag_in_the_middle_of_an_answer_is_text():
    assert parts(["The tag <think> opens a block."]) == ("", "The tag <think> opens a block.")


def test_server_reasoning_pieces_pass_through_and_content_may_be_missing():
    assert parts([Reasoning("Thinking..."), Reasoning(" done"), "Answer"]) == ("Thinking... done", "Answer")
    assert parts([Reasoning("only reasoning")]) == ("only reasoning", "")


def test_a_stream_ending_inside_the_block_keeps_what_was_thought():
    splitter = ThinkSplitter()
    out = splitter.feed("<think>half a tho") + splitter.flush()
    assert "".join(out) == "half a tho" and all(isinstance(p, Reasoning) for p in out)


@pytest.mark.parametrize("size", [1, 3, 7])
def test_thinking_on_with_an_unknown_prompt_finds_out_from_the_text(size):
    def cut(text):
        return [text[i : i + size] for i in range(0, len(text), size)]

    # The prompt opened the block (a server without a reasoning parser, 4.6-Thinking's template).
    assert parts(cut("Looks red.\n</think>\n\nred"), maybe_inside=True) == ("Looks red.", "red")
    # The model opened it itself.
    assert parts(cut("<think>Looks red.</think>red"), maybe_inside=True) == ("Looks red.", "red")
    # It did not think at all: everything is the answer, given at the end.
    assert parts(cut("Just red."), maybe_inside=True) == ("", "Just red.")
    # The server parsed the reasoning itself: its content is the answer.
    assert parts([Reasoning("Hmm."), "red"], maybe_inside=True) == ("Hmm.", "red")
