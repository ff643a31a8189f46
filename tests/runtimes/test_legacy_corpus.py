"""The REAL remote code of MiniCPM-V 1.0, 2.0 and 2.6 (../shared/legacy_corpus) on its model card's transformers.

The app runs today's transformers, so these checkpoints run in a worker on the transformers-4.40 runtime; with
that runtime ahead on PYTHONPATH (a stack that satisfies the pin, like a Space pinning 4.40) they run in-process.
Either way the beam answer must equal the corpus's REFERENCE_BEAM8.json exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from PIL import Image

from minicpmv_app import GenerationError, MiniCPMVChat
from minicpmv_app.errors import InvalidInputError
from minicpmv_app.messages import Conversation, Message

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = ("minicpm-v-1_0", "minicpm-v-2_0", "minicpm-v-2_6")
QUESTION = "What is in the image?"


def reference_image() -> Image.Image:
    return Image.new("RGB", (200, 150), (30, 120, 200))


def reference(folder: Path) -> str:
    return json.loads((folder / "REFERENCE_BEAM8.json").read_text())


def question(image=None) -> Conversation:
    return Conversation([Message("user", [image or reference_image(), QUESTION])])


@pytest.fixture(scope="module")
def chats(legacy_corpus, runtime_440):
    # Each folder given as people type it after a clone: relative ("./minicpm-v-2_6"), from the folder that holds
    # it, while the worker runs in the project's folder.
    with pytest.MonkeyPatch.context() as here:
        here.chdir(legacy_corpus)
        loaded = {name: MiniCPMVChat(f"./{name}", device="cpu") for name in CHECKPOINTS}
    yield loaded
    for chat in loaded.values():
        chat.backend.close()


def beam8(chat) -> str:
    return "".join(chat.stream_conversation(question(), chat.settings(decode_type="Beam Search", max_new_tokens=8)))


def worker_cpu_seconds(chat) -> float:
    times = psutil.Process(chat.backend.process.pid).cpu_times()
    return times.user + times.system


def wait_until_generating(chat, before: float) -> None:
    """Returns once the worker has spent half a CPU second more than ``before`` (it is busy answering)."""
    while worker_cpu_seconds(chat) < before + 0.5:
        time.sleep(0.02)


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_beam_answer_equals_the_reference_through_the_worker(chats, legacy_corpus, name):
    chat = chats[name]
    assert chat.backend.name == "model-process" and chat.backend.info["transformers"] == "4.40.0"
    assert beam8(chat) == reference(legacy_corpus / name)


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_upstream_call_samples_and_streams(chats, name):
    from chat import img2base64

    chat = chats[name]
    request = {"image": None, "question": json.dumps([{"role": "user", "content": QUESTION}])}
    request["image"] = img2base64(reference_image())
    # Random weights: one sampled answer may be an end-of-text token or whitespace alone, so the call must give
    # text in one of a few tries (CI once drew an empty 2.6 answer); a broken path gives none in any.
    answers = [chat.chat(request, max_new_tokens=16) for _ in range(4)]
    assert all(isinstance(answer, str) for answer in answers) and any(answer.strip() for answer in answers)
    streams = [list(chat.stream(request, max_new_tokens=16)) for _ in range(4)]
    assert any(pieces and "".join(pieces).strip() for pieces in streams)


def test_each_generation_offers_its_own_knobs_with_card_defaults(chats):
    assert chats["minicpm-v-1_0"].knobs == {}
    # 2.0's chat() has no slices or video; 2.6's takes max_slice_nums (its config.json: 9) and video frames (64, as
    # upstream's demo); neither has thinking. A knob the model does not take is refused, not ignored.
    assert chats["minicpm-v-2_0"].knobs == {}
    assert chats["minicpm-v-2_6"].knobs == {"max_slice_nums": 9, "max_num_frames": 64}
    with pytest.raises(InvalidInputError, match="does not take enable_thinking"):
        chats["minicpm-v-2_6"].settings(enable_thinking=True)


def test_the_app_process_holds_no_weights(chats):
    # The remote modules (and so the weights) live in the worker only.
    assert not any(m.startswith("transformers_modules") for m in sys.modules)
    assert not hasattr(chats["minicpm-v-2_6"].backend, "model")


def test_stop_reaches_the_workers_generate(chats, legacy_corpus):
    """Beam search is deterministic and only generate() itself can cut it short: a Stop forwarded to the worker
    ends it after its first step (the free answer of the same budget is 85 characters)."""
    chat = chats["minicpm-v-2_0"]
    budget = chat.settings(decode_type="Beam Search", max_new_tokens=60)
    free = "".join(chat.stream_conversation(question(), budget))
    stop = threading.Event()
    stop.set()
    stopped = "".join(chat.stream_conversation(question(), budget, stop=stop))
    assert len(free) > 40 and 0 < len(stopped) <= 4 and free.startswith(stopped)
    assert beam8(chat) == reference(legacy_corpus / "minicpm-v-2_0")  # and the worker answers the next request


def test_a_killed_worker_fails_that_request_and_the_next_one_starts_a_fresh_worker(chats, legacy_corpus):
    chat = chats["minicpm-v-2_0"]
    outcome: list[BaseException] = []

    def ask():  # deterministic and long: this beam search runs about 20 s here, so the kill lands mid-answer
        try:
            "".join(chat.stream_conversation(question(), chat.settings(decode_type="Beam Search", max_new_tokens=1500)))
        except BaseException as exc:
            outcome.append(exc)

    before = worker_cpu_seconds(chat)
    old_pid = chat.backend.process.pid
    thread = threading.Thread(target=ask)
    thread.start()
    wait_until_generating(chat, before)
    os.kill(old_pid, 9)
    thread.join(timeout=60)
    assert isinstance(outcome[0], GenerationError) and outcome[0].key == "worker_died"
    assert "next question starts a fresh model process" in str(outcome[0])
    assert beam8(chat) == reference(legacy_corpus / "minicpm-v-2_0")
    assert chat.backend.process.pid != old_pid


def test_device_errors_come_back_typed(legacy_corpus, runtime_440):
    from minicpmv_app import DeviceError

    with pytest.raises(DeviceError, match="CUDA"):
        MiniCPMVChat(str(legacy_corpus / "minicpm-v-2_6"), device="cuda")


def test_a_2_6_image_turn_through_the_gradio_app(chats, legacy_corpus, tmp_path):
    from gradio_client import handle_file

    from minicpmv_app.ui.gradio_26 import build_demo
    from tests.ui.conftest import served

    picture = tmp_path / "blue.png"
    reference_image().save(picture)
    with served(build_demo(chats["minicpm-v-2_6"])) as (_, client):
        session = client()
        session.predict({"text": QUESTION, "files": [handle_file(str(picture))]}, api_name="/add_turn")
        final = session.submit("Beam Search", 0.7, 0.8, 100, 1.2, 3, 8, "", api_name="/respond").result()
    answer = "".join(part.get("text", "") for part in final[-1]["content"])
    assert answer == reference(legacy_corpus / "minicpm-v-2_6")


# A fresh process that loads the folder it is given and prints its backend and beam answer as JSON.
BEAM8_SCRIPT = (
    "import json, sys\n"
    "from tests.runtimes.test_legacy_corpus import beam8\n"
    "from minicpmv_app import MiniCPMVChat\n"
    "chat = MiniCPMVChat(sys.argv[1], device='cpu')\n"
    "print(json.dumps({'backend': chat.backend.name, 'answer': beam8(chat)}))\n"
)


def in_process_env(runtime_folder: Path) -> dict:
    """A stack whose transformers satisfies the pin: the runtime ahead of everything, as a pinned Space has it."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(runtime_folder), str(ROOT)]), HF_HUB_OFFLINE="1")


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_in_process_when_the_installed_transformers_satisfies_the_pin(legacy_corpus, runtime_440, name):
    script = BEAM8_SCRIPT
    result = subprocess.run([sys.executable, "-c", script, str(legacy_corpus / name)], cwd=ROOT,
                            env=in_process_env(runtime_440), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"backend": "remote-code", "answer": reference(legacy_corpus / name)}


def test_the_gradio_app_serves_in_process_on_transformers_4_40(legacy_corpus, runtime_440, tmp_path):
    from gradio_client import Client, handle_file

    from tests.ui.conftest import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "web_demo_2.6.py", "--model", str(legacy_corpus / "minicpm-v-2_6"), "--device", "cpu",
         "--port", str(port)],
        cwd=ROOT, env=in_process_env(runtime_440), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        client = None
        deadline = time.time() + 240
        while client is None:
            assert process.poll() is None, process.stdout.read()[-3000:]
            assert time.time() < deadline, "the app did not start"
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            except Exception:
                time.sleep(1)
        picture = tmp_path / "blue.png"
        reference_image().save(picture)
        client.predict({"text": QUESTION, "files": [handle_file(str(picture))]}, api_name="/add_turn")
        final = client.submit("Beam Search", 0.7, 0.8, 100, 1.2, 3, 8, "", api_name="/respond").result()
        assert "".join(p.get("text", "") for p in final[-1]["content"]) == reference(legacy_corpus / "minicpm-v-2_6")
    finally:
        process.terminate()
        output = process.communicate(timeout=60)[0]
    assert "in this process" in output and "transformers-4.40" not in output.split("in this process")[0][-200:]


def test_multi_gpu_map_of_the_real_2_6_code(legacy_corpus, runtime_440):
    """accelerate spreads the real 2.6 model over two described GPUs; the pinned parts share GPU 0 (computed on the
    CPU from described memory: there is no GPU here)."""
    script = (
        "import json, sys, torch\n"
        "from pathlib import Path\n"
        "from minicpmv_app.backends import read_config\n"
        "from minicpmv_app.backends.remote_code import multi_gpu_device_map\n"
        "from minicpmv_app.backends.remote_compat import resolve_class\n"
        "folder = Path(sys.argv[1])\n"
        "cls = resolve_class(read_config(folder)['auto_map']['AutoModel'], folder)\n"
        "print(json.dumps(multi_gpu_device_map(cls, folder, torch.float32,"
        " max_memory={0: 3_000_000, 1: 40_000_000, 'cpu': 10**9})))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(legacy_corpus / "minicpm-v-2_6")], cwd=ROOT,
                            env=in_process_env(runtime_440), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    device_map = json.loads(result.stdout.strip().splitlines()[-1])
    assert device_map["llm.model.layers"] == 1  # the language model's layers spill onto GPU 1 ...
    assert all(device_map[m] == 0 for m in ("vpm", "resampler", "llm.model.embed_tokens", "llm.lm_head"))


def test_a_bare_relative_folder_from_a_process_started_elsewhere(legacy_corpus, runtime_440):
    """``python -c ... MiniCPMVChat("legacy_corpus/minicpm-v-1_0")`` started in the folder above it, with the app
    imported from its own folder: the worker (which runs in the project's folder) still finds the checkpoint."""
    script = BEAM8_SCRIPT
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    name = f"{legacy_corpus.name}/minicpm-v-1_0"
    result = subprocess.run([sys.executable, "-c", script, name], cwd=legacy_corpus.parent, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"backend": "model-process", "answer": reference(legacy_corpus / "minicpm-v-1_0")}
