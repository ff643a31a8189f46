"""MiniCPM-V 4.7 in Chromium (the tiny 4.7 checkpoint, transformers' own classes): its chat template thinks by
default, so the default settings show a closed Thinking block; turning thinking off gives none, and the next prompt
holds no reasoning.

The tiny's weights are random, so its generate() is scripted with the tokens a thinking model writes: reasoning
closed by </think>, then the answer, when the prompt opens a think block; the answer alone when it does not."""

from __future__ import annotations

import pytest

from minicpmv_app import MiniCPMVChat
from minicpmv_app.tiny import tiny_path
from minicpmv_app.ui.gradio_26 import build_demo
from tests.ui.conftest import served
from tests.ui.conftest import needs_chromium
from tests.ui.test_browser_thinking_grounding import answered, ask, bot_texts

pytestmark = [needs_chromium, pytest.mark.slow]
GREEDY = {"decode_type": "Beam Search", "num_beams": 1, "max_new_tokens": 32}
REASONING = "I see a red square."


class ThinkingTokens:
    """Stands in for the random model's generate(): the prompts it was given, and a thinking model's tokens."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer, self.original = model, tokenizer, model.generate
        self.prompts: list[str] = []
        model.generate = self

    def __call__(self, input_ids, **kwargs):
        import torch

        prompt = self.tokenizer.decode(input_ids[0])
        self.prompts.append(prompt)
        opened = prompt.endswith("<think>\n")
        text = (f"{REASONING}\n</think>\n\nred" if opened else "red") + self.tokenizer.eos_token
        answer = torch.tensor([self.tokenizer.encode(text, add_special_tokens=False)])
        return torch.cat([input_ids, answer], dim=1)

    def restore(self):
        self.model.generate = self.original


@pytest.fixture(scope="module")
def chat_47(cache_dir):
    return MiniCPMVChat(str(tiny_path(cache_dir, "4.7")), device="cpu")


def test_4_7_thinks_by_default_and_off_means_no_block_and_no_reasoning_sent(chat_47, browser, image_file):
    tokens = ThinkingTokens(chat_47.backend.model, chat_47.backend.processor.tokenizer)
    try:
        with served(build_demo(chat_47, lang="en", defaults=GREEDY)) as (url, _):
            page = browser.new_page()
            page.goto(url)
            assert page.locator("#setting-enable-thinking input").is_checked()  # on, as the template is
            ask(page, "What colour is the shape?", [image_file(name="red.png")])
            answered(page, 1)
            thought = page.locator(".thought-group")
            assert thought.count() == 1 and "Thinking" in thought.inner_text()
            assert page.get_by_text(REASONING).count() == 0  # closed: the reasoning is not on the page
            assert bot_texts(page)[-1] == "red"
            assert tokens.prompts[-1].endswith("<think>\n")

            page.locator("#setting-enable-thinking input").uncheck()
            ask(page, "And now?", [image_file(name="red-again.png")])
            answered(page, 2)
            assert page.locator(".thought-group").count() == 1  # no block for the answer given without thinking
            assert bot_texts(page)[-1] == "red"
            assert REASONING not in tokens.prompts[-1]  # earlier reasoning is never sent back
            assert tokens.prompts[-1].endswith("<think>\n\n</think>\n\n")
    finally:
        tokens.restore()
