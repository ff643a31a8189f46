"""Shared fixtures: the tiny checkpoint (built once per run in a temp cache), legacy remote-code folders,
and generated media. Nothing here touches the network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


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
def legacy_folders(tiny_folder, tmp_path_factory) -> dict:
    from tests.fixtures.legacy import FLAVOURS, build_legacy_checkpoint

    root = tmp_path_factory.mktemp("legacy")
    return {name: build_legacy_checkpoint(tiny_folder, root / name, name) for name in FLAVOURS}


@pytest.fixture(scope="session")
def legacy_chats(legacy_folders) -> dict:
    from minicpmv_app import MiniCPMVChat

    return {name: MiniCPMVChat(str(folder), device="cpu") for name, folder in legacy_folders.items()}


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
