"""The prepared GPU check, for the day a GPU machine is lent (bench/gpu_check.sh runs it within 5 minutes).

    bench/gpu_check.sh                  # CUDA
    bench/gpu_check.sh --device cpu     # the same script on a CPU, small sizes: proves the script itself works

Each case runs in a fresh process and prints one row: time to first token for one picture, and decoding tokens/s
over a fixed-length answer (EOS ignored; (n - 1) over the time from the first token to the last), for the app's path
against the direct one:

1. 4.6 at its released size (random weights, bench/real_size.py), bf16 (fp32 on a CPU), with the fast linear-attention kernels
   (flash-linear-attention, causal-conv1d; requirements-cuda.txt) where installed: the app (a model process, as the
   demos run it) against model.generate + TextIteratorStreamer in one process;
2. the same with those kernels hidden (transformers' reference PyTorch path), the app in-process (the kernels are
   hidden in this process only);
3. the real 2.6 code (../shared/legacy_corpus, tiny random weights) on its pinned transformers-4.40 runtime, in the
   device's default dtype: the app (a worker on that runtime) against in-process on it (its own chat());
4. the trained tiny, quantized to 4-bit by bitsandbytes while loading: app against direct.

A case that cannot run here (no shared corpus, no runtime, no bitsandbytes kernel) says why in its row.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cpu_engines import picture  # noqa: E402  (the same random pixels as the CPU engine table)
from bench.performance import fixed_length_copy as fixed_length  # noqa: E402  (answers of exactly n tokens)

QUESTION = "Describe this picture in detail."
CASE_TIMEOUT_S = {"cuda": 150, "cpu": 900}  # on a GPU four cases fit the 5 minutes a prepared check gets


def timed(pieces) -> float:
    """Seconds until an answer ends, from now. Random weights at real size write many tokens the tiny's tokenizer
    decodes to nothing, so rates come from whole answers of fixed length, and a 1-token answer's end stands for its
    first token."""
    start = time.perf_counter()
    for _ in pieces:
        pass
    return time.perf_counter() - start


def app_row(folder: Path, device: str, dtype: str, side: int, slices: int, tokens: int, process: str) -> dict:
    """TTFT and decode rate through MiniCPMVChat (``process``: "model" as the demos run it, "here" in-process)."""
    from minicpmv_app import MiniCPMVChat
    from minicpmv_app.messages import Conversation, Message

    started = time.perf_counter()
    chat = MiniCPMVChat(str(folder), device=device, dtype=dtype, process=process)
    load_s = time.perf_counter() - started
    greedy = dict(decode_type="Sampling", top_k=1, max_new_tokens=tokens, max_slice_nums=slices)
    ask = Conversation([Message("user", [picture(side), QUESTION])])
    list(chat.stream_conversation(Conversation([Message("user", [picture(224), QUESTION])]),
                                  chat.settings(**{**greedy, "max_new_tokens": 2})))  # warm-up
    first = timed(chat.stream_conversation(ask, chat.settings(**{**greedy, "max_new_tokens": 1})))
    text = Conversation([Message("user", [QUESTION])])
    one = timed(chat.stream_conversation(text, chat.settings(**{**greedy, "max_new_tokens": 1})))
    whole = timed(chat.stream_conversation(text, chat.settings(**greedy)))
    row = dict(load_s=load_s, ttft_s=first, tps=(tokens - 1) / (whole - one), backend=chat.backend.name)
    close = getattr(chat.backend, "close", None)
    if close is not None:  # the direct row loads its own copy next: one copy in memory at a time
        close()
    del chat
    import gc

    gc.collect()
    return row


def direct_row(folder: Path, device: str, dtype: str, side: int, slices: int, tokens: int) -> dict:
    """The same through processor + model.generate + TextIteratorStreamer, in one process."""
    import threading

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor, TextIteratorStreamer

    from minicpmv_app.backends.cards import card_for_processor
    from minicpmv_app.backends.native import build_inputs
    from minicpmv_app.messages import Conversation, Message

    started = time.perf_counter()
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(
        folder, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype, torch.float32), device_map=device).eval()
    load_s = time.perf_counter() - started
    card = card_for_processor(processor)
    knobs = {**card.knob_defaults(processor), "max_slice_nums": slices}

    def run(parts, n):
        inputs = build_inputs(processor, [Conversation([Message("user", parts)])], knobs=knobs, card=card).to(device)
        streamer = TextIteratorStreamer(processor.tokenizer, skip_prompt=True)
        kwargs = dict(**inputs, downsample_mode=knobs["downsample_mode"], do_sample=False, max_new_tokens=n,
                      min_new_tokens=n, streamer=streamer)
        start = time.perf_counter()
        worker = threading.Thread(target=lambda: torch.inference_mode()(model.generate)(**kwargs))
        worker.start()
        times = [time.perf_counter() - start for piece in streamer if piece]
        worker.join()
        return times[0] if times else time.perf_counter() - start, time.perf_counter() - start

    run([picture(224), QUESTION], 2)  # warm-up
    ttft = run([picture(side), QUESTION], 1)[1]  # a 1-token answer's end, as in app_row
    one, whole = run([QUESTION], 1)[1], run([QUESTION], tokens)[1]
    return dict(load_s=load_s, ttft_s=ttft, tps=(tokens - 1) / (whole - one))


def hide_linear_attention_kernels() -> None:
    """Make flash-linear-attention and causal-conv1d unimportable, so transformers takes its reference path."""
    for name in ("fla", "causal_conv1d"):
        sys.modules[name] = None


def case(name: str, device: str, quick: bool) -> dict:
    side, slices, tokens = (448, 1, 16) if quick else (1344, 9, 64)
    dtype = "bf16" if device.startswith("cuda") else None  # a CPU: its default (fp32; bf16 is slower there)
    if name in ("4.6-kernels", "4.6-reference"):
        from bench.real_size import RELEASED, build, cache_folder

        if not (RELEASED / "config.json").is_file():
            raise SystemExit(f"{RELEASED} is missing (the released configuration files)")
        if name == "4.6-reference":
            hide_linear_attention_kernels()
        folder = fixed_length(build(cache_folder()), tokens)
        return dict(app=app_row(folder, device, dtype, side, slices, tokens, "model") if name == "4.6-kernels" else
                    app_row(folder, device, dtype, side, slices, tokens, "here"),
                    direct=direct_row(folder, device, dtype, side, slices, tokens))
    if name == "2.6-runtime":
        corpus = ROOT.parent / "shared" / "legacy_corpus" / "minicpm-v-2_6"
        if not corpus.is_dir():
            raise SystemExit(f"{corpus} is missing (the shared legacy corpus)")
        folder = fixed_length(corpus, tokens)
        return dict(app=app_row(folder, device, None, 448, 1, tokens, "model"),
                    direct=json.loads(subprocess.run(
                        [sys.executable, __file__, "--case", "2.6-in-runtime", "--device", device] +
                        (["--quick"] if quick else []), capture_output=True, text=True, check=True,
                        env=runtime_env()).stdout.strip().splitlines()[-1]))
    if name == "2.6-in-runtime":  # run by the case above, with the runtime ahead on PYTHONPATH
        corpus = ROOT.parent / "shared" / "legacy_corpus" / "minicpm-v-2_6"
        return app_row(fixed_length(corpus, tokens), device, None, 448, 1, tokens, "here")
    if name == "tiny-bnb4":
        from transformers import BitsAndBytesConfig

        from minicpmv_app.tiny import TRAINED_TINY

        folder = bnb4_copy(TRAINED_TINY, device, BitsAndBytesConfig)
        folder = fixed_length(folder, tokens)
        return dict(app=app_row(folder, device, dtype, 448, 1, tokens, "model"),
                    direct=direct_row(folder, device, dtype, 448, 1, tokens))
    raise SystemExit(f"unknown case {name}")


def runtime_env() -> dict:
    from minicpmv_app.runtimes import RUNTIMES, install

    runtime = install(RUNTIMES["transformers-4.40"])
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(runtime), str(ROOT)])}


def bnb4_copy(source: Path, device: str, config_class) -> Path:
    """The trained tiny quantized to nf4 by bitsandbytes while loading, saved as the hub's int4 repositories are.
    Layers whose width is not a multiple of 64 stay full precision (bitsandbytes' CPU kernel packs 32 or 64)."""
    import shutil
    import tempfile

    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    with torch.device("meta"):
        skeleton = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(source))
    narrow = [n for n, m in skeleton.named_modules() if isinstance(m, torch.nn.Linear) and m.out_features % 64]
    model = AutoModelForImageTextToText.from_pretrained(source, device_map=device, quantization_config=config_class(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16,
        llm_int8_skip_modules=narrow))
    folder = Path(tempfile.mkdtemp(prefix="gpu-check-bnb4-")) / "tiny-nf4"
    model.save_pretrained(folder)
    for item in source.iterdir():
        if not item.name.startswith(("model", "config")) and item.is_file():
            shutil.copy(item, folder / item.name)
    return folder


CASES = ("4.6-kernels", "4.6-reference", "2.6-runtime", "tiny-bnb4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a 448 px picture, 1 slice, 16 tokens (a CPU's sizes)")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(args.case, args.device, args.quick)))
        return
    import torch

    quick = args.quick or args.device == "cpu"
    where = torch.cuda.get_device_name(0) if args.device.startswith("cuda") and torch.cuda.is_available() else args.device
    print(f"gpu check on {where} | torch {torch.__version__} | "
          f"{'448 px, 1 slice, 16 tokens' if quick else '1344 px, 9 slices, 64 tokens'} (the 2.6 and tiny rows: 448 px)")
    print(f"{'case':<16} {'path':<26} {'load s':>7} {'TTFT s':>8} {'tok/s':>8} {'app/direct tok/s':>17}")
    limit = CASE_TIMEOUT_S["cuda" if args.device.startswith("cuda") else "cpu"]
    for name in args.cases:
        command = [sys.executable, __file__, "--case", name, "--device", args.device] + (["--quick"] if quick else [])
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=limit,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
        except subprocess.TimeoutExpired:
            print(f"{name:<16} no result within {limit} s")
            continue
        if done.returncode:
            print(f"{name:<16} not run: {(done.stderr.strip().splitlines() or ['?'])[-1][:120]}")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        for path in ("direct", "app"):
            r = result[path]
            label = {"direct": "direct", "app": "app " + r.get("backend", "")}[path][:26]
            ratio = f"{result['app']['tps'] / result['direct']['tps']:.2f}" if path == "app" else ""
            print(f"{name:<16} {label:<26} {r['load_s']:>7.1f} {r['ttft_s']:>8.2f} {r['tps']:>8.2f} {ratio:>17}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
