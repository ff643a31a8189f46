"""A local model in a model process of its own (what the demos do): the same answers as in-process, at photo
size and for video; the app's side never imports torch; a crash costs one answer; a checkpoint that cannot load
says why, once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from minicpmv_app import MiniCPMVChat
from minicpmv_app.backends.shared_pixels import block_prefix
from minicpmv_app.errors import GenerationError, ModelLoadError
from minicpmv_app.tiny_task import draw

ROOT = Path(__file__).resolve().parents[2]
BEAM = {"decode_type": "Beam Search", "max_new_tokens": 8}


@pytest.fixture(scope="module")
def process_chat(cache_dir):
    chat = MiniCPMVChat("tiny", device="cpu", process="model")
    yield chat
    chat.backend.close()


def ask(chat, parts, question="What colour is the shape?", **params):
    return chat.chat({"image": None, "question": [{"role": "user", "content": [*parts, question]}]},
                     **{**BEAM, **params})


def shared_blocks() -> set:
    """This process's shared blocks (another program's, or another run's, come and go as they like)."""
    folder, mine = Path("/dev/shm"), block_prefix(os.getpid())
    return {p.name for p in folder.iterdir() if p.name.startswith(mine)} if folder.is_dir() else set()


def test_answers_equal_the_in_process_model_at_photo_size(process_chat, trained_chat):
    """Small pictures travel in the pickle, photo-size ones through shared memory: the answers are the same as
    the model gives in this process, and no shared block is left behind."""
    before = shared_blocks()
    pictures = [draw("red", "circle", size=(200, 150)), draw("blue", "square", size=(1920, 1440)),
                draw("green", "triangle", size=(4032, 3024))]
    for picture in pictures:
        assert ask(process_chat, [picture]) == ask(trained_chat, [picture])
    two = [draw("yellow", "square", size=(1920, 1440)), draw("purple", "circle", size=(640, 480))]
    assert ask(process_chat, two, "What colour is the second image?") == ask(trained_chat, two, "What colour is the second image?")
    assert ask(process_chat, [pictures[0]]) == "red"  # the trained tiny names it: the picture got there
    assert shared_blocks() <= before


def test_a_video_gets_the_frames_the_model_process_picks(process_chat, trained_chat, tmp_path):
    from minicpmv_app.media.video import load_video, write_video

    path = tmp_path / "clip.mp4"
    write_video(path, [draw("orange", "square", size=(320, 240))] * 30, fps=10, size=(320, 240))
    settings = process_chat.settings(**BEAM)
    plan, here = process_chat.frame_plan(settings), trained_chat.frame_plan(trained_chat.settings(**BEAM))
    assert plan.key == here.key
    assert plan.indices(300, 30.0, 10.0) == here.indices(300, 30.0, 10.0)
    video = load_video(path, plan=plan)
    assert video.indices == load_video(path, plan=here).indices
    assert ask(process_chat, [video], "What colour is the video?") == ask(trained_chat, [video], "What colour is the video?")


def test_the_apps_side_never_imports_torch_or_transformers(tmp_path):
    """A page built and a picture answered, and neither torch nor transformers in the app's interpreter."""
    script = (
        "import json, sys\n"
        "from minicpmv_app import MiniCPMVChat\n"
        "from minicpmv_app.tiny_task import draw\n"
        "from minicpmv_app.ui.gradio_26 import build_demo\n"
        "chat = MiniCPMVChat('tiny', device='cpu', process='model', wait=False)\n"
        "build_demo(chat)\n"
        "answer = chat.chat({'image': None, 'question': [{'role': 'user', 'content': [draw('red', 'square'), "
        "'What colour is the shape?']}]}, decode_type='Beam Search')\n"
        "print(json.dumps({'answer': answer, 'torch': 'torch' in sys.modules, "
        "'transformers': 'transformers' in sys.modules, 'describe': chat.backend.describe()}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["answer"] == "red"
    assert outcome["torch"] is False and outcome["transformers"] is False
    assert "in a model process" in outcome["describe"]


def test_a_killed_model_process_fails_that_answer_and_the_next_question_starts_a_fresh_one():
    chat = MiniCPMVChat("tiny", device="cpu", process="model")
    try:
        process = psutil.Process(chat.backend.process.pid)
        busy = sum(process.cpu_times()[:2])
        photos = [draw("red", "square", size=(4032, 3024))] * 4  # seconds of vision work: time to kill it
        outcome = []
        thread = threading.Thread(target=lambda: outcome.append(_answer_or_error(chat, photos)))
        thread.start()
        while sum(process.cpu_times()[:2]) < busy + 0.5 and thread.is_alive():
            time.sleep(0.05)
        assert thread.is_alive(), f"the answer ended before the kill: {outcome}"
        os.kill(process.pid, signal.SIGKILL)
        thread.join(timeout=60)
        assert isinstance(outcome[0], GenerationError) and outcome[0].key == "worker_died"
        assert "next question starts a fresh model process" in str(outcome[0])
        assert ask(chat, [draw("blue", "circle", size=(200, 150))]) == "blue"
        assert chat.backend.process.pid != process.pid
    finally:
        chat.backend.close()


def _answer_or_error(chat, photos):
    try:
        return ask(chat, photos)
    except Exception as exc:  # noqa: BLE001 - the test looks at it
        return exc


def test_a_checkpoint_that_cannot_load_says_why_once(tmp_path):
    """Broken weights: the load fails in the model process, and the app says so (status and a typed error) with
    transformers' reason; a question gets the same error, without a new attempt to load."""
    from minicpmv_app.tiny import TRAINED_TINY

    folder = tmp_path / "broken"
    shutil.copytree(TRAINED_TINY, folder)
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    chat = MiniCPMVChat(str(folder), device="cpu", process="model", wait=False)
    try:
        with pytest.raises(ModelLoadError):
            chat.backend.wait_until_ready()
        status = chat.status()
        assert status.state == "failed" and "could not be loaded" in str(status.error)
        assert "SafetensorError" in str(status.error)  # the reason, as the library gave it
        pid = chat.backend.process.pid
        with pytest.raises(ModelLoadError):
            ask(chat, [draw("red", "square")])
        assert chat.backend.process.pid == pid  # not started again
    finally:
        chat.backend.close()


def test_what_the_page_is_laid_out_by_is_remembered_for_the_next_start(process_chat, trained_chat, cache_dir):
    """The knobs, presets and prompts the model process said are kept (in the app's cache, as JSON), so the next
    start lays out its page before the model process has imported torch; they equal the in-process model's."""
    from minicpmv_app.backends.process import remembered_info

    assert process_chat.knobs == trained_chat.knobs
    assert process_chat.backend.preset_overrides == trained_chat.backend.preset_overrides
    remembered = remembered_info(process_chat.backend._info_file())
    assert remembered is not None and remembered["knobs"] == trained_chat.knobs
    assert str(process_chat.backend._info_file()).startswith(str(cache_dir))
