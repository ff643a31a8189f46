"""MiniCPM-V 4.6 at its released size on this CPU: random weights, never committed.

    python bench/real_size.py                       # builds the checkpoint once (~2.6 GB, bf16), prints the tables
    python bench/real_size.py --dtypes fp32 --slices 9

The model is built from the released config.json and preprocessor_config.json in ../shared/model_configs/minicpm-v-4.6
(SigLIP2-400M vision tower, Qwen3.5-0.8B text: 1152 x 27 and 1024 x 24, vocabulary 248,094; about 1.3 B parameters, as
the model card says). Only the token ids are re-pointed at the tiny checkpoint's tokenizer (the real one cannot be
downloaded here); the cost of every layer is the real model's. Saved in bf16, as the release is.

Each dtype runs in a fresh process: load time and peak RSS (loading plus one small warm-up answer) against the
weights' size in that dtype; then time to first token at each slice budget and downsample mode (9 slices: a 1344x1344
picture; 36: 2688x2688) through MiniCPMVChat, the first pair also directly (processor + model.generate); the second
dtype runs only the first pair unless --bf16-plan all. Last, decoding speed through the app against direct:
(n - 1) / (time for n tokens - time for 1), so the prompt's cost cancels out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
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
from bench.performance import fixed_length, process_memory_kb as status_kb_pair

folder, dtype, plan, tokens = sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5])
base = status_kb_pair()
peak = dict(base)
polling = True

def poll():
    while polling:
        for key, value in status_kb_pair().items():
            peak[key] = max(peak[key], value)
        time.sleep(0.005)

# The tokenizer is the tiny's (the real one cannot be downloaded here): ids past its end would decode to nothing,
# so generation is kept inside it. Same for every path; one masked slice per step costs nothing measurable.
vocabulary = None
class InVocabulary:
    def __call__(self, input_ids, scores):
        scores[:, vocabulary:] = float("-inf")
        return scores

def keep_in_vocabulary(model):
    original = model.generate
    def generate(*args, **kwargs):
        from transformers import LogitsProcessorList
        kwargs["logits_processor"] = LogitsProcessorList([*(kwargs.get("logits_processor") or []), InVocabulary()])
        return original(*args, **kwargs)
    model.generate = generate

watcher = threading.Thread(target=poll)
watcher.start()
started = time.perf_counter()
chat = MiniCPMVChat(folder, device="cpu", dtype=dtype)
load_s = time.perf_counter() - started
model, processor = chat.backend.model, chat.backend.processor
vocabulary = len(processor.tokenizer)
keep_in_vocabulary(model)
weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
params = sum(p.numel() for p in model.parameters())
import numpy
def picture(side):
    return Image.fromarray(numpy.random.default_rng(1234).integers(0, 256, (side, side, 3), dtype=numpy.uint8))
def ask(image, **knobs):
    return Conversation([Message("user", [image, sys.argv[6]])]), chat.settings(
        decode_type="Beam Search", num_beams=1, max_new_tokens=1, **knobs)
# Warm-up (one-time allocations and kernel choices) on a small picture; not measured. The load's peak includes it.
warm, settings = ask(picture(448), max_slice_nums=1)
next(iter(chat.stream_conversation(warm, settings)), None)
load_peak = dict(peak)
rows = []
for slices, mode, side in plan:
    conversation, settings = ask(picture(side), max_slice_nums=slices, downsample_mode=mode)
    inputs = build_inputs(processor, [conversation], knobs=settings.knobs)
    start = time.perf_counter()
    next(iter(chat.stream_conversation(conversation, settings)), None)
    app = time.perf_counter() - start
    direct = float("nan")
    if not rows:  # the app's overhead shows on the first; the rest are the model's own cost, measured once
        start = time.perf_counter()
        with torch.inference_mode():
            direct_inputs = build_inputs(processor, [conversation], knobs=settings.knobs)
            model.generate(**direct_inputs, max_new_tokens=1, do_sample=False, downsample_mode=mode)
        direct = time.perf_counter() - start
    rows.append(dict(slices=slices, mode=mode, side=side, prompt_tokens=int(inputs["input_ids"].shape[1]),
                     app_ttft_s=app, direct_ttft_s=direct))
polling = False
watcher.join()

# Decoding speed: a short text prompt answered with n and with 1 token (fixed lengths), app against direct;
# tokens/s = (n - 1) / (time for n - time for 1).
text_only = Conversation([Message("user", [sys.argv[6]])])
def timed(run, n):
    fixed_length(model, n)
    start = time.perf_counter()
    run(n)
    elapsed = time.perf_counter() - start
    model.generate = generate_in_vocabulary
    return elapsed
generate_in_vocabulary = model.generate
def app(n):
    for _ in chat.stream_conversation(text_only, chat.settings(decode_type="Sampling", max_new_tokens=n)):
        pass
def direct(n):
    inputs = build_inputs(processor, [text_only], knobs=chat.knobs)
    with torch.inference_mode():
        model.generate(**inputs, max_new_tokens=n, do_sample=True)
rates = {}
for name, run in (("direct", direct), ("app", app)):
    timed(run, 2)  # warm-up
    rates[name] = (tokens - 1) / (timed(run, tokens) - timed(run, 1))
kb = lambda values, key: (values[key] - base[key]) / 1024
print(json.dumps(dict(dtype=dtype, params=params, weights_mb=weights_mb, load_s=load_s,
                      load_peak_mb=kb(load_peak, "VmRSS"), load_peak_anon_mb=kb(load_peak, "RssAnon"),
                      peak_mb=kb(peak, "VmRSS"), peak_anon_mb=kb(peak, "RssAnon"), ttft=rows,
                      direct_tokens_per_s=rates["direct"], app_tokens_per_s=rates["app"])))
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
    parser.add_argument("--bf16-plan", choices=("first", "all"), default="first",
                        help="bf16 time to first token for the first slice/mode pair only (each costs minutes here)")
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
    # A 1344x1344 picture fills 9 slices of 448 px; 36 slices need a 2688x2688 one (the budget is a cap).
    plan = [(s, m, 448 * max(1, round(s ** 0.5))) for s in args.slices for m in args.modes]
    results = [probe(folder, dtype, plan if dtype == args.dtypes[0] or args.bf16_plan == "all" else plan[:1], args.tokens)
               for dtype in args.dtypes]
    print(f"machine: {platform.machine()} {platform.processor() or platform.system()}, {os.cpu_count()} cores | "
          f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__} | seed {SEED}")
    print(f"checkpoint: {results[0]['params'] / 1e9:.2f} B parameters, {on_disk:.0f} MB on disk (bf16)\n")
    print(f"{'dtype':<6} {'weights MB':>11} {'load s':>7} {'load peak RSS MB':>17} {'/weights':>9} {'of it anon':>11} "
          f"{'/weights':>9} {'peak RSS MB (all runs)':>23} {'decode tok/s direct':>20} {'app':>6} {'app/direct':>11}")
    for r in results:
        print(f"{r['dtype']:<6} {r['weights_mb']:>11.0f} {r['load_s']:>7.1f} {r['load_peak_mb']:>17.0f} "
              f"{r['load_peak_mb'] / r['weights_mb']:>9.2f} {r['load_peak_anon_mb']:>11.0f} "
              f"{r['load_peak_anon_mb'] / r['weights_mb']:>9.2f} {r['peak_mb']:>23.0f} {r['direct_tokens_per_s']:>20.2f} "
              f"{r['app_tokens_per_s']:>6.2f} {r['app_tokens_per_s'] / r['direct_tokens_per_s']:>11.2f}")
    print("   load peak: loading plus one small answer. RSS also counts the memory-mapped bf16 file's pages, which")
    print("   loading reads in place (bf16) or converts from (fp32); anon is what the process allocated itself.")
    print("\nTime to first token (seconds; random pixels, greedy, after a warm-up answer)")
    print(f"{'dtype':<6} {'image':>10} {'slices':>7} {'mode':>5} {'prompt tokens':>14} {'direct s':>9} {'app s':>7} {'app/direct':>11}")
    for r in results:
        for t in r["ttft"]:
            print(f"{r['dtype']:<6} {str(t['side']) + 'x' + str(t['side']):>10} {t['slices']:>7} {t['mode']:>5} "
                  f"{t['prompt_tokens']:>14} {t['direct_ttft_s']:>9.1f} {t['app_ttft_s']:>7.1f} "
                  f"{t['app_ttft_s'] / t['direct_ttft_s']:>11.2f}")


if __name__ == "__main__":
    main()
