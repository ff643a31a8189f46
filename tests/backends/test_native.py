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


def test_the_prompt_pass_computes_one_row_of_logits_and_answers_the_same(trained_chat):
    """4.6's forward takes no logits_to_keep, so generate() would compute a vocabulary row for every prompt
    position; the app's lm_head sees only the last one, and the greedy answer is the one the unhooked model gives."""
    import random

    import torch
    from transformers import AutoModelForImageTextToText

    from minicpmv_app.backends.native import build_inputs
    from minicpmv_app.messages import Conversation, Message
    from minicpmv_app.tiny import TRAINED_TINY
    from minicpmv_app.tiny_task import draw

    model = trained_chat.backend.model
    positions = []
    watch = model.get_output_embeddings().register_forward_hook(lambda _m, args, _out: positions.append(args[0].shape[1]))
    try:
        picture = draw("yellow", "triangle", rng=random.Random(3))
        conversation = Conversation([Message("user", [picture, "What colour is the shape?"])])
        inputs = build_inputs(trained_chat.backend.processor, [conversation], knobs=trained_chat.knobs)
        with torch.inference_mode():
            hooked = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    finally:
        watch.remove()
    assert inputs["input_ids"].shape[1] > 20 and positions and set(positions) == {1}
    plain = AutoModelForImageTextToText.from_pretrained(TRAINED_TINY, device_map="cpu").eval()
    with torch.inference_mode():
        reference = plain.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert torch.equal(hooked, reference)
    assert trained_chat.backend.processor.decode(hooked[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip() == "yellow"
