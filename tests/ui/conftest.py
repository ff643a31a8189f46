"""Gradio apps launched in-process on a free loopback port, driven with gradio_client like a remote user, or in
Chromium (the ``browser`` fixture)."""

from __future__ import annotations

import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from minicpmv_app.ports import free_port  # the UI tests import it from here too


# A real browser for the UI tests: Debian's chromium, driven by Playwright (its own browser download cannot work here).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (apt-get install chromium)")


@pytest.fixture
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield instance
        instance.close()


def wait_for(predicate, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


class GenerateRecorder:
    """Wraps ``model.generate`` of a native backend: records inputs, can force long answers, and can hold an answer
    until the test releases it (``hold``), so "while it is answering" does not depend on the machine's speed."""

    def __init__(self, model):
        self.model = model
        self.original = model.generate
        self.calls = []
        self.force_length = False
        self.started = threading.Event()
        self.hold = None  # a threading.Event: generate waits for it to be set
        model.generate = self

    def __call__(self, *args, **kwargs):
        if self.force_length:  # random weights may emit EOS at once; Stop tests need a long answer
            kwargs["min_new_tokens"] = kwargs["max_new_tokens"]
        call = {"kwargs": kwargs}
        self.calls.append(call)
        self.started.set()
        if self.hold is not None:
            self.hold.wait(timeout=120)
        call["output"] = self.original(*args, **kwargs)
        return call["output"]

    def images_in_last_prompt(self, processor) -> int:
        ids = self.calls[-1]["kwargs"]["input_ids"][0].tolist()
        return ids.count(processor.tokenizer.convert_tokens_to_ids(processor.tokenizer.image_start_token))

    def last_prompt(self, processor) -> str:
        return processor.decode(self.calls[-1]["kwargs"]["input_ids"][0])

    def restore(self):
        self.model.generate = self.original


@contextmanager
def served(demo, concurrency=1):
    from gradio_client import Client

    from minicpmv_app.ui.gradio_common import NO_LOCALHOST_PROBE

    port = free_port()
    demo.queue(default_concurrency_limit=concurrency)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, max_file_size="5mb",
                **NO_LOCALHOST_PROBE, **getattr(demo, "launch_kwargs", {}))
    try:
        yield f"http://127.0.0.1:{port}/", lambda: Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        demo.close()


@pytest.fixture(scope="module")
def ui_chat(tiny_folder):
    """A model of its own for each UI module, so recorders never leak between modules."""
    from minicpmv_app import MiniCPMVChat

    return MiniCPMVChat(str(tiny_folder), device="cpu")


@pytest.fixture
def recorder(ui_chat):
    rec = GenerateRecorder(ui_chat.backend.model)
    yield rec
    rec.restore()


@pytest.fixture(scope="module")
def chat():
    """The trained tiny, loaded once per browser-test module: its answers prove what reached the model."""
    from minicpmv_app import MiniCPMVChat

    return MiniCPMVChat("tiny", device="cpu")


@pytest.fixture
def trained_recorder(chat):
    rec = GenerateRecorder(chat.backend.model)
    yield rec
    rec.restore()


def roles(messages) -> list[str]:
    """The chat's roles, each answer once: random weights may write grounding tags, whose drawn picture, raw answer
    and unplaced-boxes notice are further assistant messages of the same answer (gradio_common.render)."""
    shown = [m["role"] for m in messages]
    return [role for i, role in enumerate(shown) if role != "assistant" or i == 0 or shown[i - 1] != "assistant"]
