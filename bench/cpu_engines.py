"""CPU engines side by side, one run, one machine: which engine a laptop user should run MiniCPM-V 4.6 on.

    pip install -r requirements-bench.txt          # torchao (bitsandbytes comes with requirements-dev.txt)
    scripts/build_llama_cpp.sh                     # llama-server, llama-quantize and the GGUF converter
    PYTHONPATH=. python bench/cpu_engines.py       # real size (bench/real_size.py's checkpoint), then tiny-random

Every engine runs in a fresh process (after a warm-up answer on a small picture), with the same picture (1344x1344, random pixels), the same question, greedy
decoding and a fixed answer length (EOS ignored), so only the engine differs:

- transformers fp32 (what the app runs on a CPU today);
- weight-only int8 and int4 for the language model (torchao), and bitsandbytes int8 / nf4 on CPU;
- int8 dynamic quantization (int8 weights and activations, torchao) for the vision tower, the rest fp32;
- llama.cpp's llama-server with the same weights converted by llama.cpp's own converter: the vision projector F16,
  the language model Q8_0 and Q4_K_M (llama-quantize from an F16 file).

Per engine: load time (for llama.cpp: start to /health), peak RSS of the process that holds the weights, time to
first token for the picture at 9 slices, decode tokens/s ((n - 1) over the time from the first token to the last), and
the share of its greedy tokens equal to fp32 transformers' at the same positions (the answer's ids: llama.cpp's come
from the server's logprobs). An engine that cannot run here says why in its row. Random weights make the answers
meaningless, but not the speed, the memory, or whether two engines compute the same thing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIDE, SLICES = 1344, 9  # a 1344x1344 picture fills 9 slices of 448 px
QUESTION = "Describe this picture in detail."
TORCH_ENGINES = ("fp32", "torchao-int8", "torchao-int4", "bnb-int8", "bnb-nf4", "vision-int8-dynamic")
GGUF_TYPES = ("Q8_0", "Q4_K_M")
VISION_PREFIXES = ("model.vision_tower", "model.merger", "model.resampler", "vpm", "resampler")


def peak_rss_mb(pid: int | str = "self") -> float:
    """The process's peak resident memory (VmHWM), MB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def picture(side: int = SIDE):
    import numpy
    from PIL import Image

    return Image.fromarray(numpy.random.default_rng(1234).integers(0, 256, (side, side, 3), dtype=numpy.uint8))


# -- transformers engines (run in a child process each) ----------------------------------------------------------
def _is_language_linear(module, name: str) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear) and not name.startswith(VISION_PREFIXES)


def _is_vision_linear(module, name: str) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear) and name.startswith(VISION_PREFIXES)


def load_torch_engine(folder: Path, engine: str):
    """The model as ``engine`` runs it; each quantization through its own library's documented entry point."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    kwargs: dict = {"dtype": torch.float32}
    if engine.startswith("bnb-"):
        from transformers import BitsAndBytesConfig

        # The vision part stays fp32, like torchao's rows; so do layers too narrow for bitsandbytes' CPU 4-bit
        # kernel, which packs 64 outputs at a time (4.6's 16-wide gated-delta projections). Named one by one:
        # transformers 5 does not match a parent's name ("vision_tower") against its children.
        with torch.device("meta"):
            skeleton = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(folder))
        skip = ["lm_head"] + [n for n, m in skeleton.named_modules() if isinstance(m, torch.nn.Linear) and (
            _is_vision_linear(m, n) or m.out_features % 64)]
        kwargs["quantization_config"] = (
            BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip) if engine == "bnb-int8" else
            BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32,
                               llm_int8_skip_modules=skip))
        kwargs["device_map"] = "cpu"
    model = AutoModelForImageTextToText.from_pretrained(folder, **kwargs).eval()
    if engine.startswith("torchao-") or engine == "vision-int8-dynamic":
        from torchao.quantization import (
            Int4WeightOnlyConfig,
            Int8DynamicActivationInt8WeightConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )

        if engine == "torchao-int4":
            # torchao's CPU int4 layouts need bf16 weights; whatever it refuses on this machine is the row's reason.
            model = model.to(torch.bfloat16)
        config, which = {
            "torchao-int8": (Int8WeightOnlyConfig(), _is_language_linear),
            "torchao-int4": (Int4WeightOnlyConfig(group_size=128), _is_language_linear),
            "vision-int8-dynamic": (Int8DynamicActivationInt8WeightConfig(), _is_vision_linear),
        }[engine]
        quantize_(model, config, filter_fn=which)
    return model, processor


class TimedIds:
    """A generate() streamer that keeps each new token id with the time it arrived."""

    def __init__(self):
        self.ids, self.times, self.prompt_seen = [], [], False

    def put(self, value):
        if not self.prompt_seen:  # generate() sends the prompt first
            self.prompt_seen = True
            return
        now = time.perf_counter()
        for token in value.reshape(-1).tolist():
            self.ids.append(int(token))
            self.times.append(now)

    def end(self):
        pass


def probe_torch(folder: Path, engine: str, tokens: int, side: int, slices: int) -> dict:
    import torch

    from minicpmv_app.allocator import limit_arenas
    from minicpmv_app.backends.native import build_inputs
    from minicpmv_app.backends.cards import card_for_processor
    from minicpmv_app.messages import Conversation, Message

    limit_arenas()
    started = time.perf_counter()
    model, processor = load_torch_engine(folder, engine)
    load_s = time.perf_counter() - started
    card = card_for_processor(processor)
    knobs = {**card.knob_defaults(processor), "max_slice_nums": slices}
    with torch.inference_mode():  # warm-up (one-time kernel and allocator setup), a small picture, 2 tokens
        warm = build_inputs(processor, [Conversation([Message("user", [picture(448), QUESTION])])], knobs=knobs,
                            card=card)
        model.generate(**warm, downsample_mode=knobs["downsample_mode"], do_sample=False, max_new_tokens=2)
    conversation = Conversation([Message("user", [picture(side), QUESTION])])
    inputs = build_inputs(processor, [conversation], knobs=knobs, card=card)
    streamer = TimedIds()
    with torch.inference_mode():
        start = time.perf_counter()
        # As the app calls it: the card's downsample_mode goes to generate too (the vision encoder).
        model.generate(**inputs, downsample_mode=knobs["downsample_mode"], streamer=streamer, do_sample=False, num_beams=1, max_new_tokens=tokens,
                       min_new_tokens=tokens)
    times = streamer.times
    return dict(engine=engine, load_s=load_s, peak_rss_mb=peak_rss_mb(), prompt_tokens=int(inputs["input_ids"].shape[1]),
                ttft_s=times[0] - start, decode_tps=(len(times) - 1) / (times[-1] - times[0]), ids=streamer.ids)


ANSWER_QUESTION = "What colour is the shape?"


def answer_pictures():
    """The trained tiny's task: eight drawn shapes whose colour it names (minicpmv_app/tiny_task.py)."""
    import random

    from minicpmv_app.tiny_task import draw

    rng = random.Random(4)
    cases = [("red", "square"), ("blue", "circle"), ("green", "triangle"), ("yellow", "square"),
             ("blue", "triangle"), ("red", "circle"), ("yellow", "triangle"), ("green", "square")]
    return [colour for colour, _ in cases], [draw(colour, shape, rng=rng) for colour, shape in cases]


def answers_torch(folder: Path, engine: str) -> dict:
    import torch

    from minicpmv_app.backends.cards import card_for_processor
    from minicpmv_app.backends.native import build_inputs
    from minicpmv_app.messages import Conversation, Message

    model, processor = load_torch_engine(folder, engine)
    card = card_for_processor(processor)
    knobs = card.knob_defaults(processor)
    answers = []
    for image in answer_pictures()[1]:
        inputs = build_inputs(processor, [Conversation([Message("user", [image, ANSWER_QUESTION])])], knobs=knobs,
                              card=card)
        with torch.inference_mode():
            out = model.generate(**inputs, downsample_mode=knobs["downsample_mode"], do_sample=False, max_new_tokens=8)
        answers.append(processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return dict(engine=engine, answers=answers)


# -- llama.cpp --------------------------------------------------------------------------------------------------
def gguf_files(folder: Path, out: Path, quant: str) -> tuple[Path, Path]:
    """``folder`` converted by llama.cpp's own converter (once, kept in ``out``): the projector F16, the language
    model F16 and then ``quant`` by llama-quantize."""
    from tests.llama_cpp import CONVERT, LLAMA_CPP

    out.mkdir(parents=True, exist_ok=True)
    projector, f16, model = out / "mmproj-F16.gguf", out / "model-F16.gguf", out / f"model-{quant}.gguf"
    for extra, target in ((["--mmproj"], projector), (["--no-mtp"], f16)):
        if not target.is_file():
            print(f"converting {folder.name} -> {target.name} ...", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, "-c", CONVERT, str(LLAMA_CPP), str(folder), *extra, "--outfile",
                            str(target), "--outtype", "f16"], check=True, stdout=subprocess.DEVNULL)
    if not model.is_file() and quant != "F16":
        print(f"quantizing -> {model.name} ...", file=sys.stderr, flush=True)
        subprocess.run([str(LLAMA_CPP / "build" / "bin" / "llama-quantize"), str(f16), str(model), quant],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (f16 if quant == "F16" else model), projector


def llama_messages(image, question: str) -> list[dict]:
    """One picture (as PNG, lossless: every engine sees the same pixels) and a question, as llama-server takes them."""
    import base64
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                         {"type": "text", "text": question}]}]


def probe_llama(folder: Path, quant: str, tokens: int, side: int, gguf_dir: Path) -> dict:
    from minicpmv_app.backends.llama_server import LlamaServerBackend
    from tests.llama_cpp import SERVER

    model, projector = gguf_files(folder, gguf_dir, quant)
    started = time.perf_counter()
    backend = LlamaServerBackend(model, projector, binary=str(SERVER))
    load_s = time.perf_counter() - started

    # Timed from the client, like the transformers rows: a 1-token answer (time to first token) and an n-token one,
    # each with the prompt computed afresh (no prompt cache); decoding = (n - 1) / (t(n) - t(1)). Not from the
    # stream: with the tiny's tokenizer on real-size weights most tokens decode to no text, which the server holds
    # back and sends in bursts.
    def answer(side, n):
        start = time.perf_counter()
        reply = backend.client.chat.completions.create(
            model=backend.model, messages=llama_messages(picture(side), QUESTION), max_tokens=n, temperature=0.0,
            logprobs=True, extra_body={"ignore_eos": True, "top_k": 1, "cache_prompt": False})
        return time.perf_counter() - start, reply

    try:
        answer(448, 2)  # the same warm-up as the transformers engines
        first, _ = answer(side, 1)
        whole, reply = answer(side, tokens)
        ids = [int(item.top_logprobs[0].id) for item in reply.choices[0].logprobs.content]
        return dict(engine=f"llama.cpp {quant}", load_s=load_s, peak_rss_mb=peak_rss_mb(backend.process.pid),
                    prompt_tokens=reply.usage.prompt_tokens, ttft_s=first, decode_tps=(tokens - 1) / (whole - first),
                    ids=ids)
    finally:
        backend.close()


def answers_llama(folder: Path, quant: str, gguf_dir: Path) -> dict:
    from minicpmv_app.backends.llama_server import LlamaServerBackend
    from tests.llama_cpp import SERVER

    model, projector = gguf_files(folder, gguf_dir, quant)
    backend = LlamaServerBackend(model, projector, binary=str(SERVER))
    answers = []
    try:
        for image in answer_pictures()[1]:
            reply = backend.client.chat.completions.create(
                model=backend.model, max_tokens=8, temperature=0.0, extra_body={"top_k": 1},
                messages=llama_messages(image, ANSWER_QUESTION))
            answers.append((reply.choices[0].message.content or "").strip())
    finally:
        backend.close()
    return dict(engine=f"llama.cpp {quant}", answers=answers)


# -- the run ----------------------------------------------------------------------------------------------------
CHILD_TIMEOUT_S = 1200  # an engine slower than this on one answer is not one to recommend; its row says so


def child(args: list[str]) -> dict:
    engine = f"llama.cpp {args[1]}" if args[0].startswith("llama") else args[1]
    try:
        done = subprocess.run([sys.executable, __file__, "--probe", *args], capture_output=True, text=True,
                              timeout=CHILD_TIMEOUT_S, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                  [str(ROOT), os.environ.get("PYTHONPATH", "")])})
    except subprocess.TimeoutExpired:
        return dict(engine=engine, error=f"no answer within {CHILD_TIMEOUT_S} s")
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return dict(engine=engine, error=reason[:150])
    return json.loads(lines[-1])


def run(folder: Path, gguf_dir: Path, engines, quants, tokens: int, side: int, slices: int) -> list[dict]:
    rows = []
    for engine in engines:
        print(f"[{time.strftime('%H:%M:%S')}] {engine} ...", file=sys.stderr, flush=True)
        rows.append(child(["torch", engine, str(folder), str(tokens), str(side), str(slices)]))
    for quant in quants:
        print(f"[{time.strftime('%H:%M:%S')}] llama.cpp {quant} ...", file=sys.stderr, flush=True)
        rows.append(child(["llama", quant, str(folder), str(tokens), str(side), str(gguf_dir)]))
    reference = next((r["ids"] for r in rows if r.get("engine") == "fp32" and "ids" in r), None)
    for row in rows:
        if reference and "ids" in row:
            n = min(len(reference), len(row["ids"]))
            row["same_tokens"] = sum(a == b for a, b in zip(reference[:n], row["ids"][:n])) / max(n, 1)
            row["same_first"] = next((i for i, (a, b) in enumerate(zip(reference, row["ids"])) if a != b), n)
    return rows


def answers_table(folder: Path, gguf_dir: Path, engines, quants) -> None:
    truth = answer_pictures()[0]
    rows = [child(["torch-answers", e, str(folder), "0", "0", "0"]) for e in engines]
    rows += [child(["llama-answers", q, str(folder), "0", "0", str(gguf_dir)]) for q in quants]
    reference = next((r["answers"] for r in rows if r.get("engine") == "fp32" and "answers" in r), None)
    print(f"\nthe trained tiny, \"{ANSWER_QUESTION}\" on {len(truth)} drawn shapes ({', '.join(truth)})")
    print(f"{'engine':<22} {'right':>6} {'= fp32':>7}  answers")
    for r in rows:
        if "error" in r:
            print(f"{r['engine']:<22} not available here: {r['error']}")
            continue
        right = sum(a == t for a, t in zip(r["answers"], truth))
        same = sum(a == b for a, b in zip(r["answers"], reference)) if reference else 0
        print(f"{r['engine']:<22} {right:>4}/{len(truth)} {same:>5}/{len(truth)}  {', '.join(r['answers'])}")


def table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'engine':<22} {'load s':>7} {'peak RSS MB':>12} {'prompt tok':>11} {'TTFT s':>8} {'decode tok/s':>13} "
          f"{'= fp32 tokens':>14} {'first differs':>14}")
    for r in rows:
        if "error" in r:
            print(f"{r['engine']:<22} not available here: {r['error']}")
            continue
        same = f"{r['same_tokens']:.0%}" if "same_tokens" in r else "-"
        print(f"{r['engine']:<22} {r['load_s']:>7.1f} {r['peak_rss_mb']:>12.0f} {str(r['prompt_tokens']):>11} "
              f"{r['ttft_s']:>8.1f} {r['decode_tps']:>13.2f} {same:>14} {str(r.get('same_first', '-')):>14}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probe", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--engines", nargs="*", default=list(TORCH_ENGINES))
    parser.add_argument("--quants", nargs="*", default=list(GGUF_TYPES))
    parser.add_argument("--tokens", type=int, default=64, help="answer length for every engine (EOS ignored)")
    parser.add_argument("--sizes", nargs="+", default=["real", "tiny"], choices=("real", "tiny"))
    args = parser.parse_args()
    if args.probe:
        kind, name, folder, tokens, side, extra = args.probe
        result = {
            "torch": lambda: probe_torch(Path(folder), name, int(tokens), int(side), int(extra)),
            "llama": lambda: probe_llama(Path(folder), name, int(tokens), int(side), Path(extra)),
            "torch-answers": lambda: answers_torch(Path(folder), name),
            "llama-answers": lambda: answers_llama(Path(folder), name, Path(extra)),
        }[kind]()
        print(json.dumps(result))
        return
    import torch
    import transformers

    from tests.llama_cpp import SERVER

    version = "not built (scripts/build_llama_cpp.sh)"
    if SERVER.is_file():
        version = subprocess.run([str(SERVER), "--version"], capture_output=True, text=True).stderr.split("\n")[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores | python {platform.python_version()}, torch "
          f"{torch.__version__}, transformers {transformers.__version__}, llama.cpp {version} | picture {SIDE}x{SIDE}, "
          f"{SLICES} slices, {args.tokens} greedy tokens")
    if "real" in args.sizes:
        from bench.real_size import RELEASED, build, cache_folder

        if not (RELEASED / "config.json").is_file():
            print(f"real size skipped: {RELEASED} is missing (the released configuration files)")
        else:
            folder = build(cache_folder())
            table("MiniCPM-V 4.6 at its released size (1.3 B parameters, random weights)",
                  run(folder, folder.parent / (folder.name + "-gguf"), args.engines, args.quants, args.tokens, SIDE, SLICES))
    if "tiny" in args.sizes:
        from minicpmv_app.tiny import default_cache_dir, tiny_path
        from tests.llama_cpp import llama_cpp_layout

        work = default_cache_dir() / "bench-cpu-engines-tiny"
        work.mkdir(parents=True, exist_ok=True)
        folder = llama_cpp_layout(tiny_path(), work)
        for side in (SIDE, 448):  # 448 px: one slice, where llama.cpp's prompt is transformers' token for token
            rows = run(folder, work / "gguf", args.engines, ["F16", *args.quants], args.tokens, side, SLICES)
            table(f"tiny-random, {side}x{side} picture (the same question: the same answer from each engine?)", rows)
        from minicpmv_app.tiny import TRAINED_TINY, trained_tiny_available

        if trained_tiny_available():
            trained = llama_cpp_layout(TRAINED_TINY, work)
            answers_table(trained, work / "gguf-trained", args.engines, ["F16", *args.quants])


if __name__ == "__main__":
    main()
