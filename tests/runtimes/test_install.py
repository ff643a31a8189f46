"""Installing a runtime: offline it fails in one line naming the command; a partial install is never used."""

import json
import subprocess
import sys

import pytest

from minicpmv_app.errors import ModelLoadError
from minicpmv_app.runtimes import RUNTIMES, install, install_command, installed, runtime_dir
from minicpmv_app.runtimes.install import MANIFEST

OFFLINE_PIP = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "", "PIP_CONFIG_FILE": "/dev/null"}


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICPMV_RUNTIMES", str(tmp_path / "runtimes"))
    for key, value in OFFLINE_PIP.items():
        monkeypatch.setenv(key, value)
    return tmp_path / "runtimes"


def test_offline_without_the_runtime_says_which_command_installs_it(empty_cache):
    runtime = RUNTIMES["transformers-4.40"]
    lines = []
    with pytest.raises(ModelLoadError) as caught:
        install(runtime, progress=lines.append)
    message = str(caught.value)
    assert install_command(runtime) in message and "\n" not in message
    assert lines and "Installing the transformers-4.40 runtime" in lines[0]  # progress was shown
    assert installed(runtime) is None
    assert not any(empty_cache.iterdir())  # the partial folder was removed


def test_loading_a_real_legacy_checkpoint_offline_fails_with_that_line(empty_cache, legacy_corpus):
    from minicpmv_app import MiniCPMVChat

    with pytest.raises(ModelLoadError, match="python -m minicpmv_app.runtimes install transformers-4.40"):
        MiniCPMVChat(str(legacy_corpus / "minicpm-v-2_6"), device="cpu")


def test_a_manifest_for_other_pins_does_not_count_as_installed(empty_cache):
    runtime = RUNTIMES["transformers-4.40"]
    folder = runtime_dir(runtime)
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_text(json.dumps({"packages": ["transformers==4.39.0"]}))
    assert installed(runtime) is None
    (folder / MANIFEST).write_text(json.dumps({"packages": list(runtime.packages)}))
    assert installed(runtime) == folder


def test_the_install_command_lists_runtimes_and_refuses_unknown_names(empty_cache):
    listing = subprocess.run([sys.executable, "-m", "minicpmv_app.runtimes", "list"], capture_output=True, text=True)
    assert listing.returncode == 0 and "MiniCPM-V 2.6" in listing.stdout and "not installed" in listing.stdout
    wrong = subprocess.run([sys.executable, "-m", "minicpmv_app.runtimes", "install", "transformers-9"],
                           capture_output=True, text=True)
    assert wrong.returncode == 2 and "unknown runtime transformers-9" in wrong.stderr
