"""The demo scripts as users start them: offline with --model tiny, on loopback by default, with --auth."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import launch, listening
from tests.ui.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def start(script, cache_dir, *args):
    port = free_port()
    env = dict(os.environ, MINICPMV_APP_CACHE=str(cache_dir), HF_HUB_OFFLINE="1")
    env.pop("GRADIO_SERVER_NAME", None)
    command = [sys.executable, str(ROOT / script), "--model", "tiny", "--port", str(port), *args]
    return launch(command, port, cwd=ROOT, env=env, timeout=120), port


@pytest.mark.parametrize("script", ["web_demo_2.6.py", "web_demo_2.5.py"])
def test_starts_offline_on_loopback_only(script, tiny_folder, cache_dir):
    process, port = start(script, cache_dir)
    try:
        assert listening(process.pid, port) == {"127.0.0.1"}
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_auth_is_required_when_asked_for(tiny_folder, cache_dir):
    from gradio_client import Client

    process, port = start("web_demo_2.6.py", cache_dir, "--auth", "ann:s3cret")
    try:
        with pytest.raises(Exception):
            Client(f"http://127.0.0.1:{port}/", verbose=False)
        client = Client(f"http://127.0.0.1:{port}/", auth=("ann", "s3cret"), verbose=False)
        client.predict({"text": "hello", "files": []}, api_name="/add_turn")
        final = client.submit("Sampling", 0.7, 0.8, 100, 1.05, 3, 8, "", api_name="/respond").result()
        assert final[-1]["role"] == "assistant"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_missing_model_is_one_clear_line_not_a_traceback(cache_dir, tmp_path):
    env = dict(os.environ, MINICPMV_APP_CACHE=str(cache_dir), HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, str(ROOT / "web_demo_2.6.py"), "--model", "openbmb/MiniCPM-V-2_6", "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "--model tiny" in result.stderr


def test_demo_script_in_front_of_a_model_server(tiny_server, cache_dir):
    from gradio_client import Client

    process, port = start("web_demo_2.6.py", cache_dir, "--api-base", tiny_server["api_base"], "--api-model", tiny_server["model"])
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict({"text": "hello server", "files": []}, api_name="/add_turn")
        final = client.submit("Sampling", 0.7, 0.8, 100, 1.05, 3, 8, "", api_name="/respond").result()
        assert final[-1]["role"] == "assistant"
        assert not "".join(p.get("text", "") for p in final[-1]["content"]).startswith("⚠️")
    finally:
        process.terminate()
        process.wait(timeout=30)
