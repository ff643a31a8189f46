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
