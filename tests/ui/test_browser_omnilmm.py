"""OmniLMM-12B (the corpus's tiny checkpoint in the released layout) behind both Gradio demos, in Chromium.

Each demo is started as people start it after cloning a model: ``python web_demo_2.x.py --model ./checkpoint``
from the folder that holds the checkpoint, not from the project's folder. The page's answer must be the answer
upstream's own code gives for that picture (greedy, 8 tokens: ``REFERENCE.json``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minicpmv_app.ui.i18n import text
from tests.ui.conftest import free_port
from tests.ui.conftest import needs_chromium, wait_for
from tests.ui.test_browser_thinking_grounding import answered, bot_texts

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [needs_chromium, pytest.mark.slow]
# upstream's greedy run with repetition_penalty 1.1 (REFERENCE.json: greedy_max8_rep1.1)
GREEDY = ["--decode-type", "Beam Search", "--num-beams", "1", "--repetition-penalty", "1.1", "--max-new-tokens", "8"]


@pytest.fixture(scope="module")
def omnilmm(legacy_corpus, tmp_path_factory):
    corpus = legacy_corpus / "omnilmm-12b"
    if not corpus.is_dir():
        pytest.skip(f"{corpus} is absent")
    where = tmp_path_factory.mktemp("clone")
    shutil.copytree(corpus / "tiny-OmniLMM-12B", where / "checkpoint")
    return where, corpus


def start_demo(script: str, where: Path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / script), "--model", "./checkpoint", "--device", "cpu", "--port", str(port),
         "--lang", "en", *GREEDY],
        cwd=where, env=dict(os.environ, HF_HUB_OFFLINE="1"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 180
    import urllib.request

    while True:
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.time() < deadline, "the demo did not start"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return process, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.5)


@pytest.mark.parametrize("script", ["web_demo_2.6.py", "web_demo_2.5.py"])
def test_each_demo_answers_an_image_question_as_upstream_does(omnilmm, browser, script):
    where, corpus = omnilmm
    expected = json.loads((corpus / "REFERENCE.json").read_text())["run"]["deterministic"]["greedy_max8_rep1.1"]
    process, url = start_demo(script, where)
    try:
        page = browser.new_page()
        page.goto(url)
        page.locator("#chat-input input[type=file], input[type=file]").first.set_input_files(
            str(corpus / "test_image.png"))
        wait_for(lambda: page.locator("img").count() > 0, timeout=30)
        page.locator("#chat-input textarea").fill("What is in the image?")
        page.locator("#chat-input textarea").press("Enter")
        answered(page, 1)
        # Upstream's 8 greedy tokens, then the page's note that the budget (8) cut the answer off.
        shown = bot_texts(page)[-1]
        assert shown.split("\n")[0] == expected["answer"].strip() and text("cut_off", "en") in shown
        assert page.locator('[data-testid="user"] img').count() == 1  # the picture is shown in the chat
    finally:
        process.terminate()
        process.communicate(timeout=60)
