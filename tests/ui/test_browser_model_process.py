"""The 2.6 demo as users start it (``web_demo_2.6.py --model tiny``: the model in a model process of its own),
in Chromium: the line under the heading says what runs the model; killing the model process mid-answer costs
that answer only (the page says why, the next question is answered, a second browser's chat is intact); a
checkpoint that cannot load is named in the page, which stays up."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from minicpmv_app.tiny_task import draw
from tests.ui.conftest import free_port
from tests.ui.conftest import needs_chromium, wait_for
from tests.ui.test_browser_thinking_grounding import answered, ask, bot_texts

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [needs_chromium, pytest.mark.slow]
BEAM = ["--decode-type", "Beam Search", "--max-new-tokens", "8"]


def start_demo(cache_dir, model="tiny", *args):
    port = free_port()
    env = dict(os.environ, MINICPMV_APP_CACHE=str(cache_dir), HF_HUB_OFFLINE="1")
    process = subprocess.Popen([sys.executable, str(ROOT / "web_demo_2.6.py"), "--model", model, "--device", "cpu",
                                "--port", str(port), *args],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300  # a hang guard: a loaded machine takes longer to import gradio
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return process, f"http://127.0.0.1:{port}/"
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                raise AssertionError(process.stdout.read())
            time.sleep(0.3)


def stop_demo(process):
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def model_process(app: subprocess.Popen) -> psutil.Process:
    children = [c for c in psutil.Process(app.pid).children() if "minicpmv_app.runtimes.child" in " ".join(c.cmdline())]
    assert len(children) == 1
    return children[0]


def test_killing_the_model_process_mid_answer_costs_that_answer_only(cache_dir, browser, tmp_path):
    small = tmp_path / "blue.png"
    draw("blue", "circle", size=(200, 150)).save(small)
    photos = []
    for index in range(4):  # seconds of vision work at the app's 36 slices: time to kill the model mid-answer
        photos.append(tmp_path / f"photo-{index}.jpg")
        draw("red", "square", size=(4032, 3024)).save(photos[-1], quality=90)
    app, url = start_demo(cache_dir, "tiny", *BEAM)
    try:
        other = browser.new_context().new_page()  # another person's chat
        other.goto(url)
        wait_for(lambda: "in a model process" in other.locator("#model-status").inner_text(), timeout=300)
        ask(other, "What colour is the shape?", [small])
        answered(other, 1)
        assert bot_texts(other)[-1] == "blue"

        page = browser.new_context().new_page()
        page.goto(url)
        before = model_process(app)
        busy = sum(before.cpu_times()[:2])
        ask(page, "What colour is the shape?", photos)
        wait_for(lambda: sum(before.cpu_times()[:2]) > busy + 0.5, timeout=300)
        os.kill(before.pid, signal.SIGKILL)
        wait_for(lambda: "model process stopped" in " ".join(bot_texts(page)), timeout=120)
        wait_for(lambda: page.locator("#stop-button").is_disabled(), timeout=60)

        ask(page, "What colour is the shape?", [small])
        wait_for(lambda: bot_texts(page)[-1] == "blue", timeout=300)  # a fresh model process answered
        assert model_process(app).pid != before.pid

        assert bot_texts(other) == ["blue"] and other.locator('[data-testid="user"] img').count() == 1
        ask(other, "What colour is the shape?")  # no picture this time: the first turn's goes back to the model
        answered(other, 2)
        assert bot_texts(other) == ["blue", "blue"]  # its chat, picture included, went on
        page.screenshot(path=str(tmp_path / "killed.png"), full_page=True)
    finally:
        stop_demo(app)


def test_a_checkpoint_that_cannot_load_is_named_in_the_page_which_stays_up(cache_dir, browser, tmp_path):
    from minicpmv_app.tiny import TRAINED_TINY

    folder = tmp_path / "broken-tiny"
    shutil.copytree(TRAINED_TINY, folder)
    (folder / "model.safetensors").write_bytes(b"\0" * 64)  # an interrupted download
    app, url = start_demo(cache_dir, str(folder))
    try:
        for lang, words in (("en-US", "The model could not be loaded"), ("zh-CN", "模型无法加载")):
            page = browser.new_page(locale=lang, extra_http_headers={"Accept-Language": lang})
            page.goto(url)
            wait_for(lambda: words in page.locator("#model-status").inner_text(), timeout=300)
            assert "broken-tiny" in page.locator("#model-status").inner_text()
        small = tmp_path / "red.png"
        draw("red", "square", size=(200, 150)).save(small)
        ask(page, "What colour is the shape?", [small])
        wait_for(lambda: "broken-tiny" in " ".join(bot_texts(page)), timeout=120)  # the reason, in the chat too
        assert app.poll() is None
    finally:
        stop_demo(app)
