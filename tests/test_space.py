"""Hugging Face Spaces: the template a fresh clone writes, the app under a Space's environment with the real
`spaces` package (its pass-through path off ZeroGPU), and the GPU slot sized from the request.

A real ZeroGPU allocation cannot be made here; ZeroGPU's own code path is not run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import yaml

from minicpmv_app.errors import UnsupportedFeatureError
from minicpmv_app.messages import Conversation, Message
from minicpmv_app.ui import zerogpu

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import make_space  # noqa: E402


def front_matter(readme: Path) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", readme.read_text(encoding="utf-8"), re.S)
    assert match, "README.md must start with YAML front matter"
    return yaml.safe_load(match.group(1))


@pytest.mark.parametrize("variant", [k for k in make_space.VARIANTS if not k.startswith("_")])
def test_each_variant_writes_a_space_whose_front_matter_parses(variant, tmp_path):
    out = make_space.write_space(variant, tmp_path / variant)
    meta = front_matter(out / "README.md")
    expected = make_space.VARIANTS[variant]
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == make_space.lock_version("gradio") == "6.31.0"
    assert meta["python_version"] == "3.11" and meta["suggested_hardware"] == expected["hardware"]
    assert meta["models"] == [expected["model"]]
    assert (out / meta["app_file"]).is_file()
    assert f"os.environ.setdefault(\"MINICPMV_MODEL\", '{expected['model']}')" in (out / "app.py").read_text()
    requirements = (out / "requirements.txt").read_text()
    assert "gradio==6.31.0" in requirements and re.search(r"^spaces==", requirements, re.M)
    assert (out / "minicpmv_app" / "tiny_model" / "config.json").is_file()  # the app's files came along
    assert "Duplicate this Space" in (out / "README.md").read_text()


def test_the_spaces_package_passes_through_off_zerogpu():
    import spaces

    def answer():
        return "ok"

    assert not zerogpu.on_zerogpu()
    assert spaces.GPU(answer, duration=lambda: 5) is answer
    assert zerogpu.gpu(answer, lambda: 5) is answer


def test_the_gpu_slot_grows_with_the_request_and_stays_under_the_cap(monkeypatch):
    base = zerogpu.estimate_seconds(256)
    assert zerogpu.estimate_seconds(2048) > base  # more tokens
    assert zerogpu.estimate_seconds(256, images=4) > zerogpu.estimate_seconds(256, images=1) > base
    assert zerogpu.estimate_seconds(256, frames=64) > zerogpu.estimate_seconds(256, frames=8) > base
    assert zerogpu.estimate_seconds(256, thinking=True) > base
    assert base > 60 / 4 and zerogpu.estimate_seconds(4096, frames=64) > 60  # past spaces' 60 s default
    monkeypatch.setenv("MINICPMV_ZEROGPU_MAX_S", "120")
    from minicpmv_app.presets import resolve

    huge = resolve(max_new_tokens=32_768)  # the largest budget a setting takes
    conversation = Conversation([Message("user", ["hi"])])
    assert zerogpu.slot_seconds(conversation, huge) == 120


class CountingChat:
    def __init__(self):
        self.calls = 0

    def stream_conversation(self, conversation, generation, *, stop=None, reasoning=False, keep_grounding=False):
        self.calls += 1
        yield "fine"


def test_a_request_over_the_cap_is_refused_before_it_starts(monkeypatch):
    from minicpmv_app.presets import resolve

    chat = CountingChat()
    generate = zerogpu.generator_for(chat)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")  # spaces was imported without it: its GPU() stays pass-through
    monkeypatch.setenv("MINICPMV_ZEROGPU_MAX_S", "60")
    conversation = Conversation([Message("user", ["hi"])])
    with pytest.raises(UnsupportedFeatureError) as caught:
        list(generate(conversation, resolve(max_new_tokens=4000)))
    assert caught.value.key == "gpu_time_over_cap" and "allows 60 s" in str(caught.value) and chat.calls == 0
    assert list(generate(conversation, resolve(max_new_tokens=64))) == ["fine"] and chat.calls == 1
    # spaces.GPU calls the duration function with the task's own arguments: the stream options included.
    assert zerogpu.slot_seconds(conversation, resolve(max_new_tokens=64), True, True) <= 60


def test_zerogpu_puts_the_model_on_cuda_at_import(monkeypatch):
    import argparse

    from minicpmv_app import cli

    monkeypatch.delenv("MINICPMV_DEVICE", raising=False)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert cli.model_arguments(argparse.ArgumentParser(), "tiny").parse_args([]).device == "cuda"
    monkeypatch.delenv("SPACES_ZERO_GPU")
    assert cli.model_arguments(argparse.ArgumentParser(), "tiny").parse_args([]).device == "auto"


@contextmanager
def running_space(variant: str, folder: Path, **env):
    """The written Space's app.py started as a Space starts it; yields (process, port, gradio_client)."""
    from gradio_client import Client

    from tests.ui.conftest import free_port

    out = make_space.write_space(variant, folder)
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), MINICPMV_DEVICE="cpu", HF_HUB_OFFLINE="1", PYTHONPATH="",
               **env)
    log = folder.parent / f"{variant}.log"  # a file, not a pipe: a chatty app never blocks on a full pipe
    process = subprocess.Popen([sys.executable, "app.py"], cwd=out, env=env, stdout=log.open("w"),
                               stderr=subprocess.STDOUT, text=True)
    process.log = log
    try:
        deadline = time.time() + 240
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.time() < deadline, "the Space did not start"
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:
                time.sleep(1)
        yield process, port, client
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_a_space_starts_binds_where_spaces_expect_and_answers(tmp_path, cache_dir):
    spaces_env = dict(GRADIO_SERVER_NAME="0.0.0.0", SYSTEM="spaces", SPACE_ID="someone/minicpm-v", MINICPMV_MODEL="tiny")
    with running_space("4.6-cpu", tmp_path / "space", **spaces_env) as (process, port, client):
        listening = {c.laddr.ip for c in psutil.Process(process.pid).net_connections(kind="inet")
                     if c.status == "LISTEN" and c.laddr.port == port}
        assert listening == {"0.0.0.0"}
        client.predict({"text": "What colour is the shape?", "files": []}, api_name="/add_turn")
        final = client.submit("Sampling", 0.7, 0.8, 100, 1.05, 3, 8, "", api_name="/respond").result()
        assert final[-1]["role"] == "assistant" and not str(final[-1]["content"]).startswith("⚠️")


@pytest.mark.slow
def test_the_2_6_space_runs_the_real_code_in_process_on_its_pinned_transformers(tmp_path, legacy_corpus, runtime_440):
    """The 2.6 variant's app.py puts transformers 4.40 ahead of the Space's own, as ZeroGPU needs; off ZeroGPU
    the model process it starts imports that same transformers."""
    import json

    from gradio_client import handle_file
    from PIL import Image

    model = str(legacy_corpus / "minicpm-v-2_6")
    with running_space("2.6-zerogpu", tmp_path / "space", MINICPMV_MODEL=model) as (process, _, client):
        picture = tmp_path / "blue.png"
        Image.new("RGB", (200, 150), (30, 120, 200)).save(picture)
        client.predict({"text": "What is in the image?", "files": [handle_file(str(picture))]}, api_name="/add_turn")
        final = client.submit("Beam Search", 0.7, 0.8, 100, 1.2, 3, 8, "", api_name="/respond").result()
        reference = json.loads((legacy_corpus / "minicpm-v-2_6" / "REFERENCE_BEAM8.json").read_text())
        assert "".join(p.get("text", "") for p in final[-1]["content"]) == reference
    output = process.log.read_text()
    assert "with its own code in this process" in output and "on transformers-4.40" not in output  # no second install
