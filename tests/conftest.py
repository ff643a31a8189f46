"""Shared fixtures: the tiny checkpoint (built once per run in a temp cache), the real legacy checkpoints of
../shared/legacy_corpus with their pinned runtime, and generated media. Nothing here touches the network."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
LEGACY_CORPUS = SHARED / "legacy_corpus"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Remote code is imported from a private modules cache, and Gradio keeps uploads in a private temp folder, new for
# each run: two runs side by side never see (or delete) each other's files.
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="hf-modules-"))
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="gradio-"))
# The chats vault and the browser-state key too: a run never reads or writes the user's own past chats.
os.environ.setdefault("MINICPMV_HOME", tempfile.mkdtemp(prefix="minicpmv-home-"))
# A failed test reports what its pages sent and what the Gradio queue did meanwhile.
pytest_plugins = ["tests.page_log"]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cache")
    os.environ["MINICPMV_APP_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_folder(cache_dir) -> Path:
    from minicpmv_app.tiny import tiny_path

    return tiny_path(cache_dir)


@pytest.fixture(scope="session")
def tiny_chat(tiny_folder):
    from minicpmv_app import MiniCPMVChat

    return MiniCPMVChat(str(tiny_folder), device="cpu")


@pytest.fixture(scope="session")
def trained_chat():
    """The committed tiny checkpoint trained to name colours and shapes: answers that prove the picture got in."""
    from minicpmv_app import MiniCPMVChat
    from minicpmv_app.tiny import trained_tiny_available

    if not trained_tiny_available():
        pytest.fail("minicpmv_app/tiny_model is missing: run python scripts/train_tiny.py")
    return MiniCPMVChat("tiny", device="cpu")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared: reference data beside the project (released 4.6 configuration files, the legacy corpus)."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (it sits beside the project in the team's checkout, not in a clone)")
    return SHARED


@pytest.fixture(scope="session")
def legacy_corpus() -> Path:
    """The REAL remote code of MiniCPM-V 2.0 and 2.6 with tiny random weights (../shared/legacy_corpus)."""
    if not LEGACY_CORPUS.is_dir():
        pytest.skip(f"{LEGACY_CORPUS} is absent (it sits beside the project in the team's checkout, not in a clone)")
    return LEGACY_CORPUS


@pytest.fixture(scope="session")
def runtime_440():
    """The transformers 4.40 runtime, installed on first use as the app does (.ci/run installs it ahead).

    Offline without it the tests skip with the command to run; in CI they fail instead.
    """
    from minicpmv_app.errors import ModelLoadError
    from minicpmv_app.runtimes import RUNTIMES, install

    try:
        return install(RUNTIMES["transformers-4.40"])
    except ModelLoadError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture
def image_file(tmp_path):
    from tests.media_factory import solid_image

    def make(colour=(255, 0, 0), size=(64, 48), name="image.png"):
        path = tmp_path / name
        solid_image(colour, size).save(path)
        return path

    return make


@pytest.fixture
def clip(tmp_path):
    from tests.media_factory import write_clip

    def make(seconds=3.0, fps=10, size=(64, 48), name="clip.mp4", **kwargs):
        return write_clip(tmp_path / name, seconds=seconds, fps=fps, size=size, **kwargs)

    return make


@contextlib.contextmanager
def transformers_serve(folder):
    """`transformers serve FOLDER` on a loopback port: a real OpenAI-compatible server."""
    import shutil
    import socket
    import subprocess
    import time
    import urllib.request

    executable = shutil.which("transformers", path=os.path.dirname(sys.executable)) or shutil.which("transformers")
    if not executable:
        pytest.skip("transformers CLI not found (pip install 'transformers[serving]')")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    process = subprocess.Popen(
        [executable, "serve", str(folder), "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.time() + 180
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                pytest.fail("transformers serve did not start: " + (process.stdout.read() or "")[-2000:])
            time.sleep(0.5)
    try:
        yield {"api_base": f"http://127.0.0.1:{port}/v1", "model": str(folder)}
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def tiny_server(tiny_folder):
    with transformers_serve(tiny_folder) as server:
        yield server


@pytest.fixture(scope="module")
def trained_server():
    """The trained tiny behind `transformers serve`: answers that prove what reached the server."""
    from minicpmv_app.tiny import TRAINED_TINY

    with transformers_serve(TRAINED_TINY) as server:
        yield server
