import os

from minicpmv_app.tiny import build_tiny_checkpoint, fingerprint, tiny_path


def test_build_is_deterministic(tmp_path):
    first = build_tiny_checkpoint(tmp_path / "a")
    second = build_tiny_checkpoint(tmp_path / "b")
    assert fingerprint(first) == fingerprint(second)


def test_second_start_reuses_the_cached_build(tmp_path):
    folder = tiny_path(tmp_path)
    stamp = os.stat(folder / "model.safetensors").st_mtime_ns
    assert tiny_path(tmp_path) == folder
    assert os.stat(folder / "model.safetensors").st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tiny-")]  # no staging leftovers


def test_tiny_is_small_and_loads_through_from_pretrained(tiny_folder):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    size = sum(p.stat().st_size for p in tiny_folder.iterdir())
    assert size < 10_000_000
    model = AutoModelForImageTextToText.from_pretrained(tiny_folder)
    processor = AutoProcessor.from_pretrained(tiny_folder)
    assert type(model).__name__ == "MiniCPMV4_6ForConditionalGeneration"
    assert processor.tokenizer.image_token == "<|image_pad|>"
