"""MiniCPM-V 4.6 at its released size on this CPU: random weights, never committed.

    python bench/real_size.py                       # builds the checkpoint once (~2.6 GB, bf16), prints the tables
    python bench/real_size.py --dtypes fp32 --slices 9

The model is built from the released config.json and preprocessor_config.json in ../shared/model_configs/minicpm-v-4.6
(SigLIP2-400M vision tower, Qwen3.5-0.8B text: 1152 x 27 and 1024 x 24, vocabulary 248,094; about 1.3 B parameters, as
the model card says). Only the token ids are re-pointed at the tiny checkpoint's tokenizer (the real one cannot be
downloaded here); the cost of every layer is the real model's. Saved in bf16, as the release is.

Each dtype runs in a fresh process: load time and peak RSS against the weights' size in that dtype, then time to
first token for a 1344x1344 image at each slice budget and downsample mode (through MiniCPMVChat.stream, and directly:
processor + model.generate), then decoding speed through the app against direct for the same prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RELEASED = ROOT.parent / "shared" / "model_configs" / "minicpm-v-4.6"
SEED = 1234
QUESTION = "Describe this picture in detail."


def cache_folder() -> Path:
    from minicpmv_app.tiny import default_cache_dir

    return default_cache_dir() / "bench-4.6-real-size"


def build(folder: Path) -> Path:
    """The released configuration with random weights; the tiny's tokenizer, its ids put into the config."""
    import torch
    from transformers import GenerationConfig, MiniCPMV4_6Config, MiniCPMV4_6ForConditionalGeneration
    from transformers.models.minicpmv4_6 import (
        MiniCPMV4_6ImageProcessor,
        MiniCPMV4_6Processor,
        MiniCPMV4_6VideoProcessor,
    )

    from minicpmv_app import tiny

    if (folder / "model.safetensors.index.json").is_file() or (folder / "model.safetensors").is_file():
        return folder
    tokenizer = tiny.build_tokenizer()
    released = json.loads((RELEASED / "config.json").read_text())
    ids = dict(image_token_id=tokenizer.convert_tokens_to_ids(tiny.MULTIMODAL_TOKENS["image_token"]),
               video_token_id=tokenizer.convert_tokens_to_ids(tiny.MULTIMODAL_TOKENS["video_token"]),
               eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    released.update(ids)
    released["text_config"].update(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    config = MiniCPMV4_6Config(**{k: v for k, v in released.items() if k not in ("architectures", "transformers_version")})
    processing = json.loads((RELEASED / "preprocessor_config.json").read_text())
    shared = dict(scale_resolution=processing["scale_resolution"], max_slice_nums=processing["max_slice_nums"],
                  patch_size=processing["patch_size"])
    processor = MiniCPMV4_6Processor(
        image_processor=MiniCPMV4_6ImageProcessor(**shared),
        video_processor=MiniCPMV4_6VideoProcessor(**shared, max_num_frames=128),
        tokenizer=tokenizer, chat_template=tiny.CHAT_TEMPLATE,
    )
    torch.manual_seed(SEED)
    print("building the real-size checkpoint (random weights) ...", file=sys.stderr, flush=True)
    model = MiniCPMV4_6ForConditionalGeneration(config).to(torch.bfloat16).eval()
    model.generation_config = GenerationConfig(**json.loads((RELEASED / "generation_config.json").read_text()))
    model.generation_config.update(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "README.md").write_text("Random weights at MiniCPM-V 4.6's released size, for bench/real_size.py only.\n")
    return folder


PROBE = r'''
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
import torch
from PIL import Image
from minicpmv_app import MiniCPMVChat
from minicpmv_app.backends.native import build_inputs
from minicpmv_app.messages import Conversation, Message
from bench.performance import fixed_length

def status_kb_pair():
    values = {}
    for line in open("/proc/self/status"):
        if line.startswith(("VmRSS:", "RssAnon:")):
            key, amount = line.split()[:2]
            values[key.rstrip(":")] = int(amount)
    return values

folder, dtype, plan, tokens = sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5])
base = status_kb_pair()
peak = dict(base)
polling = True

def poll():
    while polling:
        for key, value in status_kb_pair().items():
            peak[key] = max(peak[key], value)
        time.sleep(0.005)

watcher = threading.Thread(target=poll)
watcher.start()
started = time.perf_counter()
chat = MiniCPMVChat(folder, device="cpu", dtype=dtype)
load_s = time.perf_counter() - started
model, processor = chat.backend.model, chat.backend.processor
weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
params = sum(p.numel() for p in model.parameters())
import numpy
picture = Image.fromarray(numpy.random.default_rng(1234).integers(0, 256, (1344, 1344, 3), dtype=numpy.uint8))
conversation = Conversation([Message("user", [picture, sys.argv[6]])])
rows = []
for slices, mode in plan:
    settings = chat.settings(decode_type="Beam Search", num_beams=1, max_new_tokens=1, max_slice_nums=slices, downsample_mode=mode)
    inputs = build_inputs(processor, [conversation], knobs=settings.knobs)
    start = time.perf_counter()
    next(iter(chat.stream_conversation(conversation, settings)), None)
    app = time.perf_counter() - start
    start = time.perf_counter()
    with torch.inference_mode():
        direct_inputs = build_inputs(processor, [conversation], knobs=settings.knobs)
        model.generate(**direct_inputs, max_new_tokens=1, do_sample=False, downsample_mode=mode)
    direct = time.perf_counter() - start
    rows.append(dict(slices=slices, mode=mode, prompt_tokens=int(inputs["input_ids"].shape[1]), app_ttft_s=app, direct_ttft_s=direct))
polling = False
watcher.join()

# Decoding speed: a short text prompt, a fixed number of tokens, app against direct.
fixed_length(model, tokens)
text_only = Conversation([Message("user", [sys.argv[6]])])
settings = chat.settings(decode_type="Beam Search", num_beams=1, max_new_tokens=tokens)
def rate(run):
    start = time.perf_counter(); first = None
    for piece in run():
        if first is None and piece:
            first = time.perf_counter()
    return tokens / (time.perf_counter() - first)
from transformers import TextIteratorStreamer
def direct():
    streamer = TextIteratorStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
    inputs = build_inputs(processor, [text_only], knobs=settings.knobs)
    worker = threading.Thread(target=lambda: model.generate(**inputs, max_new_tokens=tokens, streamer=streamer))
    worker.start()
    yield from streamer
    worker.join()
direct_rate = rate(direct)
app_rate = rate(lambda: chat.stream_conversation(text_only, settings))
kb = lambda key: (peak[key] - base[key]) / 1024
print(json.dumps(dict(dtype=dtype, params=params, weights_mb=weights_mb, load_s=load_s, peak_mb=kb("VmRSS"),
                      peak_anon_mb=kb("RssAnon"), ttft=rows, direct_tokens_per_s=direct_rate, app_tokens_per_s=app_rate)))
'''


def probe(folder: Path, dtype: str, plan, tokens: int) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, str(ROOT), str(folder), dtype, json.dumps(plan), str(tokens), QUESTION],
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"probe {dtype} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--slices", type=int, nargs="+", default=[9, 36])
    parser.add_argument("--modes", nargs="+", default=["16x", "4x"])
    parser.add_argument("--tokens", type=int, default=32, help="answer tokens for the decoding-speed row")
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    if not (RELEASED / "config.json").is_file():
        raise SystemExit(f"{RELEASED} is missing: this benchmark needs the released configuration files.")
    import torch
    import transformers

    folder = build(args.folder or cache_folder())
    on_disk = sum(f.stat().st_size for f in folder.glob("*.safetensors")) / 2**20
    plan = [(s, m) for s in args.slices for m in args.modes]
    results = [probe(folder, dtype, plan, args.tokens) for dtype in args.dtypes]
    print(f"machine: {platform.machine()} {platform.processor() or platform.system()}, {os.cpu_count()} cores | "
          f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__} | seed {SEED}")
    print(f"checkpoint: {results[0]['params'] / 1e9:.2f} B parameters, {on_disk:.0f} MB on disk (bf16)\n")
    print(f"{'dtype':<6} {'weights MB':>11} {'load s':>7} {'peak RSS MB':>12} {'peak/weights':>13} {'anon MB':>8} "
          f"{'decode tok/s direct':>20} {'app':>6} {'app/direct':>11}")
    for r in results:
        print(f"{r['dtype']:<6} {r['weights_mb']:>11.0f} {r['load_s']:>7.1f} {r['peak_mb']:>12.0f} "
              f"{r['peak_mb'] / r['weights_mb']:>13.2f} {r['peak_anon_mb']:>8.0f} {r['direct_tokens_per_s']:>20.2f} "
              f"{r['app_tokens_per_s']:>6.2f} {r['app_tokens_per_s'] / r['direct_tokens_per_s']:>11.2f}")
    print("\nTime to first token, a 1344x1344 image (seconds)")
    print(f"{'dtype':<6} {'slices':>7} {'mode':>5} {'prompt tokens':>14} {'direct s':>9} {'app s':>7} {'app/direct':>11}")
    for r in results:
        for t in r["ttft"]:
            print(f"{r['dtype']:<6} {t['slices']:>7} {t['mode']:>5} {t['prompt_tokens']:>14} {t['direct_ttft_s']:>9.1f} "
                  f"{t['app_ttft_s']:>7.1f} {t['app_ttft_s'] / t['direct_ttft_s']:>11.2f}")


if __name__ == "__main__":
    main()
