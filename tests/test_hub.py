import pytest

from minicpmv_app.errors import ModelLoadError
from minicpmv_app.hub import resolve_model_path


def test_tiny_and_local_folders_resolve_to_themselves(tiny_folder):
    from minicpmv_app.tiny import TRAINED_TINY

    assert resolve_model_path("tiny") == TRAINED_TINY  # the committed, trained checkpoint
    assert resolve_model_path("tiny-random") == tiny_folder
    assert resolve_model_path(str(tiny_folder)) == tiny_folder


def test_folder_without_config_is_explained(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_model_path(str(tmp_path))


@pytest.mark.parametrize("bad", ["./no/such/folder", "not-an-id", "a/b/c"])
def test_neither_folder_nor_id(bad):
    with pytest.raises(ModelLoadError, match="--model tiny"):
        resolve_model_path(bad)


def test_uncached_hub_id_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="--model tiny") as info:
        resolve_model_path("openbmb/MiniCPM-V-2_6", cache_dir=str(tmp_path))
    assert "openbmb/MiniCPM-V-2_6" in str(info.value)


def test_unknown_hub():
    with pytest.raises(ModelLoadError, match="hf, modelscope"):
        resolve_model_path("openbmb/MiniCPM-V-2_6", hub="github")
