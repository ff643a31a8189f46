import json
import shutil

import pytest

from minicpmv_app.backends import choose_backend, read_config
from minicpmv_app.errors import ModelLoadError


def test_backend_comes_from_config_not_folder_name(tiny_folder, legacy_corpus, tmp_path):
    misleading_native = shutil.copytree(tiny_folder, tmp_path / "MiniCPM-V-2_6")
    misleading_remote = shutil.copytree(legacy_corpus / "minicpm-v-2_6", tmp_path / "MiniCPM-V-4.6")
    assert choose_backend(read_config(misleading_native)) == "transformers"
    assert choose_backend(read_config(misleading_remote)) == "remote-code"


def test_unknown_architecture_is_explained(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "my_own_vlm"}))
    with pytest.raises(ModelLoadError, match="upgrade transformers"):
        choose_backend(read_config(tmp_path))


def test_native_backend_describes_itself(tiny_chat):
    assert "MiniCPMV4_6ForConditionalGeneration" in tiny_chat.backend.describe()


def test_one_line_about_linear_attention_kernels_instead_of_four_warnings(tiny_folder):
    """On CPU, transformers would print four 'falling back to reference PyTorch implementation' lines at the
    first answer; the app says it once, at load, in words that fit the device."""
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from minicpmv_app.cli import setup_logging\n"
        "setup_logging()\n"
        "from minicpmv_app import MiniCPMVChat\n"
        "chat = MiniCPMVChat(sys.argv[1], device='cpu')\n"
        "for _ in range(2):\n"
        "    chat.chat({'image': None, 'question': json.dumps([{'role': 'user', 'content': 'hi'}])}, max_new_tokens=3)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tiny_folder)], capture_output=True, text=True,
                            timeout=300, cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "falling back to its reference PyTorch implementation" not in result.stderr
    assert result.stderr.count("Linear-attention layers run on transformers' reference PyTorch kernels on cpu") == 1
