"""``pip install .``: the wheel holds the package and its data, and its console commands start the demos from any
folder, on loopback only, with the tiny checkpoint that ships inside it."""

from __future__ import annotations

import os
import site
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from minicpmv_app.ports import free_port
from minicpmv_app.ui.commands import STREAMLIT_FLAGS, split_streamlit_args
from tests.processes import launch, listening, stopped

ROOT = Path(__file__).resolve().parents[1]


def test_streamlit_options_go_to_streamlit_and_the_rest_to_the_app():
    own, app = split_streamlit_args(["--model", "tiny", "--server.address", "0.0.0.0", "--server.port=9000", "--lang",
                                     "zh"])
    assert app == ["--model", "tiny", "--lang", "zh"]
    assert own == [*STREAMLIT_FLAGS, "--server.address", "0.0.0.0", "--server.port=9000"]  # the person's come last


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A new venv with only the built wheel installed in it; the libraries it needs come from this environment's
    site-packages through a .pth file (they are not what is tested, and installing them again is minutes)."""
    where = tmp_path_factory.mktemp("packaging")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                            "-w", str(where / "dist")], capture_output=True, text=True, cwd=where, timeout=300)
    assert built.returncode == 0, built.stderr
    subprocess.run([sys.executable, "-m", "venv", str(where / "venv")], check=True, timeout=300)
    python = where / "venv" / "bin" / "python"
    own_site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    Path(own_site, "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    wheel = next((where / "dist").glob("*.whl"))
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   timeout=300, cwd=where)
    return where / "venv" / "bin"


def test_the_wheel_has_the_package_and_its_data(venv, tmp_path):
    found = subprocess.run(
        [venv / "python", "-c", "import minicpmv_app, minicpmv_app.tiny as t, minicpmv_app.ui.i18n as i;"
         "print(minicpmv_app.__file__); print(t.TRAINED_TINY); print(i.text('settings', 'zh'))"],
        capture_output=True, text=True, cwd=tmp_path, check=True).stdout.splitlines()
    package, tiny, words = found
    assert str(venv.parent) in package and str(ROOT) not in package  # the installed copy, not this checkout
    assert Path(tiny, "model.safetensors").is_file() and Path(tiny, "config.json").is_file()
    assert words == "生成参数"


@contextmanager
def running(command: list, port: int, cache_dir: Path, cwd: Path, path: str = "/"):
    """An installed command started from ``cwd``, with nothing of this checkout on its path; stopped afterwards."""
    env = dict(os.environ, MINICPMV_APP_CACHE=str(cache_dir), HF_HUB_OFFLINE="1")
    env.pop("GRADIO_SERVER_NAME", None)
    env.pop("PYTHONPATH", None)  # nothing of this checkout may be on the path
    process = launch(command, port, cwd=cwd, env=env, path=path)
    try:
        yield process
    finally:
        stopped(process)


@pytest.mark.slow
def test_minicpmv_demo_answers_from_another_folder(venv, cache_dir, tmp_path):
    from gradio_client import Client

    port = free_port()
    with running([venv / "minicpmv-demo", "--model", "tiny", "--port", str(port)], port, cache_dir, tmp_path) as process:
        assert listening(process.pid, port) == {"127.0.0.1"}
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict({"text": "hello", "files": []}, api_name="/add_turn")
        final = client.submit("Sampling", 0.7, 0.8, 8, 1.05, 3, 8, "", api_name="/respond").result()
        assert final[-1]["role"] == "assistant"


@pytest.mark.slow
def test_minicpmv_demo_2_5_starts_on_loopback(venv, cache_dir, tmp_path):
    port = free_port()
    command = [venv / "minicpmv-demo-2.5", "--model", "tiny", "--port", str(port)]
    with running(command, port, cache_dir, tmp_path) as process:
        assert listening(process.pid, port) == {"127.0.0.1"}


@pytest.mark.slow
def test_minicpmv_streamlit_serves_on_loopback_with_the_apps_settings(venv, cache_dir, tmp_path):
    """Started from a folder with no .streamlit/config.toml: the command's own flags keep it on 127.0.0.1."""
    port = free_port()
    command = [venv / "minicpmv-streamlit", "--model", "tiny", "--server.port", str(port)]
    with running(command, port, cache_dir, tmp_path, path="/_stcore/health") as process:
        assert listening(process.pid, port) == {"127.0.0.1"}
