import pytest

from minicpmv_app.errors import ModelLoadError
from minicpmv_app.hub import resolve_model_path


def test_tiny_and_local_folders_resolve_to_themselves(tiny_folder):
    from minicpmv_app.tiny import TRAINED_TINY

    assert resolve_model_path("tiny") == TRAINED_TINY  # the committed, trained checkpoint
    assert resolve_model_path("tiny-random") == tiny_folder
    assert resolve_model_path(str(tiny_folder)) == tiny_folder


def test_the_tiny_variants_resolve_to_their_own_builds(cache_dir):
    import json

    for name, model_type in (("tiny-random-4.7", "minicpmv4_7"), ("tiny-random-4.7-moe", "minicpmv4_7"),
                             ("tiny-random-ocr", "minicpm_ocr")):
        config = json.loads((resolve_model_path(name, cache_dir=str(cache_dir)) / "config.json").read_text())
        assert config["model_type"] == model_type
    moe = json.loads((resolve_model_path("tiny-random-4.7-moe", cache_dir=str(cache_dir)) / "config.json").read_text())
    assert moe["text_config"]["model_type"] == "qwen3_5_moe_text" and moe["text_config"]["num_experts"] == 4
    with pytest.raises(ModelLoadError, match="tiny-random-ocr"):
        resolve_model_path("tiny-random-9.9")


def test_folder_without_config_is_explained(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_model_path(str(tmp_path))


@pytest.mark.parametrize("bad", ["./no/such/folder", "not-an-id", "a/b/c"])
def test_neither_folder_nor_id(bad):
    with pytest.raises(ModelLoadError, match="--model tiny"):
        resolve_model_path(bad)


@pytest.mark.parametrize("typed", ["model", "./model", "sub/../model", "~/model"])
def test_a_folder_as_people_type_it_becomes_an_absolute_path(typed, tiny_folder, tmp_path, monkeypatch):
    """Relative, ./, .. and ~ forms all name the same checkpoint, absolute, whatever directory reads it next."""
    import shutil

    shutil.copytree(tiny_folder, tmp_path / "model")
    (tmp_path / "sub").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    resolved = resolve_model_path(typed)
    assert resolved.is_absolute() and resolved == (tmp_path / "model").resolve()


def test_a_missing_folder_names_the_absolute_path_that_was_tried(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError) as refused:
        resolve_model_path("./MiniCPM-V-2_6")
    assert str(tmp_path / "MiniCPM-V-2_6") in str(refused.value)
    assert len(str(refused.value).splitlines()) == 1


def test_uncached_hub_id_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="--model tiny") as info:
        resolve_model_path("openbmb/MiniCPM-V-2_6", cache_dir=str(tmp_path))
    assert "openbmb/MiniCPM-V-2_6" in str(info.value)


def test_unknown_hub():
    with pytest.raises(ModelLoadError, match="hf, modelscope"):
        resolve_model_path("openbmb/MiniCPM-V-2_6", hub="github")


def test_a_version_spelled_the_other_way_finds_the_checkpoint(tiny_folder, tmp_path, monkeypatch):
    """Hugging Face spells openbmb/MiniCPM-V-4_6, ModelScope OpenBMB/MiniCPM-V-4.6: people type either. Offline,
    a cached download under the other spelling is found (online, the hub is asked for it the same way)."""
    import shutil

    snapshot = tmp_path / "models--openbmb--MiniCPM-V-4_6" / "snapshots" / "0123abcd"
    shutil.copytree(tiny_folder, snapshot)
    (tmp_path / "models--openbmb--MiniCPM-V-4_6" / "refs").mkdir()
    (tmp_path / "models--openbmb--MiniCPM-V-4_6" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_path("openbmb/MiniCPM-V-4.6", cache_dir=str(tmp_path)) == snapshot
    assert resolve_model_path("openbmb/MiniCPM-V-4_6", cache_dir=str(tmp_path)) == snapshot
    with pytest.raises(ModelLoadError, match="MiniCPM-V-4.7"):
        resolve_model_path("openbmb/MiniCPM-V-4.7", cache_dir=str(tmp_path))
