"""Performance, measured side by side in one run (this machine is noisy, so ratios matter more than times).

    python bench/performance.py                 # prints the tables, writes bench/performance.png (a few minutes)
    python bench/performance.py --quick         # smaller clip and checkpoint, for a smoke run

1. App overhead: time to first token and tokens/s through the running Gradio app (gradio_client, streaming) and
   through MiniCPMVChat.stream, against model.generate + TextIteratorStreamer called directly. Same prompt and
   image, tiny random model, greedy, a fixed number of tokens (min_new_tokens = max_new_tokens).
2. Video: sampling a generated 60 s 1280x720 30 fps clip the app's way: decord alone, PyAV alone, and the app's
   load_video: seconds and peak RSS above the process baseline (each in a fresh process).
3. Image path: a 4032x3024 JPEG and a 1344x1344 PNG from upload to model input, ms per step.
4. Load: peak RSS while loading a larger random native checkpoint, against its size on disk.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED = 1234
PROMPT = "Describe this picture in detail."


# -- 1. app overhead --------------------------------------------------------------------------------
def fixed_length(model, tokens: int):
    original = model.generate

    def generate(*args, **kwargs):
        kwargs.update(min_new_tokens=tokens, max_new_tokens=tokens, do_sample=False)
        return original(*args, **kwargs)

    model.generate = generate


def direct_run(chat, image, tokens):
    """model.generate with a TextIteratorStreamer, inputs built by the processor: the baseline."""
    import torch
    from transformers import TextIteratorStreamer

    from minicpmv_app.backends.native import build_inputs
    from minicpmv_app.messages import Conversation, Message

    start = time.perf_counter()
    backend = chat.backend
    inputs = build_inputs(backend.processor, [Conversation([Message("user", [image, PROMPT])])])
    streamer = TextIteratorStreamer(backend.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)

    def run():
        with torch.inference_mode():
            backend.model.generate(**inputs, max_new_tokens=tokens, streamer=streamer)

    thread = threading.Thread(target=run)
    thread.start()
    first = None
    for piece in streamer:
        if first is None and piece:
            first = time.perf_counter()
    thread.join()
    return first - start, time.perf_counter() - start


def wrapper_run(chat, image_b64, tokens):
    start = time.perf_counter()
    first = None
    request = {"image": image_b64, "question": json.dumps([{"role": "user", "content": PROMPT}])}
    for piece in chat.stream(request, max_new_tokens=tokens):
        if first is None and piece:
            first = time.perf_counter()
    return first - start, time.perf_counter() - start


def gradio_run(client_factory, image_path, tokens):
    from gradio_client import handle_file

    client = client_factory()
    start = time.perf_counter()
    client.predict({"text": PROMPT, "files": [handle_file(image_path)]}, api_name="/add_turn")
    recorded = time.perf_counter()
    job = client.submit("Sampling", 0.7, 0.8, 100, 1.05, 3, tokens, "", api_name="/respond")
    first = None
    for output in job:
        text = "".join(p.get("text", "") for p in output[-1]["content"]) if output and output[-1]["role"] == "assistant" else ""
        if first is None and text:
            first = time.perf_counter()
    job.result()
    return first - start, time.perf_counter() - start, recorded - start


def app_overhead(tokens: int, repeats: int) -> list[dict]:
    from PIL import Image

    from bench.reliability import serve
    from minicpmv_app import MiniCPMVChat
    from minicpmv_app.tiny_task import draw

    chat = MiniCPMVChat("tiny-random", device="cpu")
    fixed_length(chat.backend.model, tokens)
    image = draw("red", "square", size=(448, 448))
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    path = folder / "image.png"
    image.save(path)
    image_b64 = base64.b64encode(path.read_bytes()).decode()
    loaded = Image.open(path).convert("RGB")
    times = {"direct": [], "wrapper": [], "gradio": []}
    with serve(chat) as (_, client):
        gradio_run(client, str(path), tokens)  # warm-up: first compile/alloc
        for _ in range(repeats):  # interleaved, so drift hits every path alike
            times["direct"].append(direct_run(chat, loaded, tokens))
            times["wrapper"].append(wrapper_run(chat, image_b64, tokens))
            times["gradio"].append(gradio_run(client, str(path), tokens))
    rows = []
    base_ttft = statistics.median(t[0] for t in times["direct"])
    base_rate = statistics.median(tokens / (t[1] - t[0]) for t in times["direct"])
    for name, label in (("direct", "model.generate + streamer"), ("wrapper", "MiniCPMVChat.stream"), ("gradio", "Gradio app (gradio_client)")):
        ttft = statistics.median(t[0] for t in times[name])
        rate = statistics.median(tokens / (t[1] - t[0]) for t in times[name])
        rows.append(dict(path=label, ttft_ms=ttft * 1000, ttft_overhead_ms=(ttft - base_ttft) * 1000,
                         tokens_per_s=rate, ratio=rate / base_rate))
    upload = statistics.median(t[2] for t in times["gradio"])
    rows.append(dict(path="  of which upload + /add_turn", ttft_ms=upload * 1000, ttft_overhead_ms=float("nan"),
                     tokens_per_s=float("nan"), ratio=float("nan")))
    return rows


# -- 2. video ---------------------------------------------------------------------------------------
VIDEO_PROBE = r'''
import json, sys, time
sys.path.insert(0, sys.argv[3])
import numpy as np
from PIL import Image
path, which = sys.argv[1], sys.argv[2]
from minicpmv_app.media.video import load_video, sample_indices

def status_kb(key):  # VmHWM is this process's own peak; ru_maxrss would carry the parent's over exec
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])

base = status_kb("VmRSS") * 1024
start = time.perf_counter()
if which == "decord":
    import decord
    reader = decord.VideoReader(path, ctx=decord.cpu(0))
    indices = sample_indices(len(reader), reader.get_avg_fps())
    frames = [Image.fromarray(f) for f in reader.get_batch(indices).asnumpy()]
elif which == "pyav":
    import av
    with av.open(path) as container:
        stream = container.streams.video[0]
        indices = set(sample_indices(stream.frames, float(stream.average_rate)))
        frames = [f.to_image() for n, f in enumerate(container.decode(stream)) if n in indices]
else:
    frames = load_video(path).frames
seconds = time.perf_counter() - start
peak = status_kb("VmHWM") * 1024
print(json.dumps(dict(seconds=seconds, frames=len(frames), peak_mb=(peak - base) / 2**20)))
'''


def make_clip(path: Path, seconds: int, size=(1280, 720), fps=30) -> None:
    import numpy as np

    from minicpmv_app.media.video import write_video

    gradient = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :, None]

    def frames():
        for n in range(seconds * fps):
            array = np.empty((size[1], size[0], 3), dtype=np.uint8)
            array[:] = gradient
            array[:, :, 1] = (n * 4) % 256
            yield array

    write_video(path, frames(), fps=fps, size=size, options={"preset": "ultrafast", "crf": "28"})


def video(seconds: int) -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="bench-video-"))
    clip = folder / "clip.mp4"
    make_clip(clip, seconds)
    probe = folder / "probe.py"
    probe.write_text(VIDEO_PROBE)
    rows = []
    for which, label in (("decord", "decord"), ("pyav", "PyAV"), ("app", "app (load_video)")):
        out = subprocess.run([sys.executable, str(probe), str(clip), which, str(ROOT)], capture_output=True, text=True)
        if out.returncode:
            rows.append(dict(path=label, seconds=float("nan"), frames=0, peak_mb=float("nan")))
            continue
        rows.append(dict(path=label, **json.loads(out.stdout.strip().splitlines()[-1])))
    fastest = min(r["seconds"] for r in rows if r["seconds"] == r["seconds"])
    for row in rows:
        row["vs_fastest"] = row["seconds"] / fastest
    return rows


# -- 3. image path ----------------------------------------------------------------------------------
def image_path() -> list[dict]:

    import numpy as np
    from PIL import Image, ImageOps
    from transformers import AutoProcessor

    from minicpmv_app.media.images import img2base64, load_image, prepare_image, to_rgb
    from minicpmv_app.tiny import tiny_path

    processor = AutoProcessor.from_pretrained(tiny_path())
    folder = Path(tempfile.mkdtemp(prefix="bench-image-"))
    rng = np.random.default_rng(SEED)
    cases = {
        "4032x3024 JPEG": (folder / "photo.jpg", (4032, 3024), "JPEG"),
        "1344x1344 PNG": (folder / "chart.png", (1344, 1344), "PNG"),
    }
    rows = []
    for label, (path, size, fmt) in cases.items():
        noise = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        Image.fromarray(noise).resize(size, Image.Resampling.BILINEAR).save(path, format=fmt)
        data = path.read_bytes()

        def timed(fn, repeats=3):
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                result = fn()
                best = min(best, time.perf_counter() - start)
            return result, best * 1000

        decoded, t_decode = timed(lambda: load_image(path))
        oriented, t_exif = timed(lambda: ImageOps.exif_transpose(decoded))
        rgb, t_rgb = timed(lambda: to_rgb(oriented))
        ready, t_prepare = timed(lambda: prepare_image(path))
        _, t_processor = timed(lambda: processor.image_processor([ready], return_tensors="pt"))
        encoded, t_b64_encode = timed(lambda: img2base64(path))
        _, t_b64_decode = timed(lambda: load_image(encoded))
        rows.append(dict(image=label, file_kb=len(data) / 1024, decode_ms=t_decode, exif_ms=t_exif, rgb_ms=t_rgb,
                         prepare_total_ms=t_prepare, processor_ms=t_processor, base64_encode_ms=t_b64_encode,
                         base64_decode_and_decode_ms=t_b64_decode))
    return rows


# -- 4. load memory ---------------------------------------------------------------------------------
LOAD_PROBE = r'''
import gc, json, sys, threading, time
sys.path.insert(0, sys.argv[2])
from minicpmv_app import MiniCPMVChat
MiniCPMVChat("tiny-random", device="cpu")  # warm up: imports, processor classes, allocator; not what we measure
gc.collect()

def status_kb():
    values = {}
    for line in open("/proc/self/status"):
        if line.startswith(("VmRSS:", "RssAnon:")):
            key, amount = line.split()[:2]
            values[key.rstrip(":")] = int(amount)
    return values

base = status_kb()
peak = dict(base)
running = True

def poll():  # ru_maxrss is the lifetime peak (the warm-up's too), so sample the current figures instead
    while running:
        for key, value in status_kb().items():
            peak[key] = max(peak[key], value)
        time.sleep(0.002)

thread = threading.Thread(target=poll)
thread.start()
started = time.perf_counter()
chat = MiniCPMVChat(sys.argv[1], device="cpu")
loaded = time.perf_counter() - started
from PIL import Image
picture = Image.new("RGB", (224, 224), (200, 30, 30))
chat.chat({"question": [{"role": "user", "content": [picture, "hi"]}]}, max_new_tokens=1)  # reads every weight once
running = False
thread.join()
after = status_kb()
mb = lambda kb: kb / 1024
print(json.dumps(dict(load_s=loaded, peak_mb=mb(peak["VmRSS"] - base["VmRSS"]), peak_anon_mb=mb(peak["RssAnon"] - base["RssAnon"]),
                      resident_mb=mb(after["VmRSS"] - base["VmRSS"]))))
'''


BUILD_LARGE = r'''
import sys
sys.path.insert(0, sys.argv[2])
from minicpmv_app import tiny
tiny.SIZES["text"].update(hidden_size=int(sys.argv[3]), intermediate_size=int(sys.argv[3]) * 3, num_hidden_layers=6,
                          layer_types=["linear_attention", "full_attention"] * 3, num_attention_heads=8, head_dim=64,
                          linear_key_head_dim=64, linear_value_head_dim=64, linear_num_key_heads=4, linear_num_value_heads=4)
tiny.SIZES["vision"].update(hidden_size=256, intermediate_size=1024, num_hidden_layers=4)
tiny.build_tiny_checkpoint(sys.argv[1])
'''


def load_memory(hidden: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-large-"))
    script = folder / "build.py"
    script.write_text(BUILD_LARGE)
    subprocess.run([sys.executable, str(script), str(folder / "ckpt"), str(ROOT), str(hidden)], check=True,
                   capture_output=True)
    weights = (folder / "ckpt" / "model.safetensors").stat().st_size / 2**20
    probe = folder / "probe.py"
    probe.write_text(LOAD_PROBE)
    out = subprocess.run([sys.executable, str(probe), str(folder / "ckpt"), str(ROOT)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return dict(weights_mb=weights, **result, ratio=result["peak_mb"] / weights, anon_ratio=result["peak_anon_mb"] / weights)


def plot(overhead, videos, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    shown = [r for r in overhead if r["tokens_per_s"] == r["tokens_per_s"]]  # skip the breakdown row
    left.bar([r["path"].split(" (")[0] for r in shown], [r["tokens_per_s"] for r in shown], color="#3b6fd4")
    left.set_title("Streaming throughput (tokens/s, tiny model)")
    left.tick_params(axis="x", labelrotation=12)
    right.bar([r["path"] for r in videos], [r["seconds"] for r in videos], color="#2e9e5b")
    right.set_title("Sampling a 60 s 720p clip (seconds)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--plot", type=Path, default=ROOT / "bench" / "performance.png")
    args = parser.parse_args()
    import gradio
    import torch
    import transformers

    tokens, repeats = (64, 3) if args.quick else (200, 5)
    overhead = app_overhead(tokens, repeats)
    videos = video(10 if args.quick else 60)
    images = image_path()
    load = load_memory(512 if args.quick else 1024)

    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores | python {platform.python_version()}, "
          f"torch {torch.__version__}, transformers {transformers.__version__}, gradio {gradio.__version__} | seed {SEED}")
    print(f"\n1. App overhead ({tokens} tokens, greedy, median of {repeats}, tiny random model)")
    print(f"{'path':<30} {'TTFT ms':>9} {'TTFT +ms':>9} {'tokens/s':>9} {'vs direct':>10}")
    for r in overhead:
        print(f"{r['path']:<30} {r['ttft_ms']:>9.1f} {r['ttft_overhead_ms']:>9.1f} {r['tokens_per_s']:>9.1f} {r['ratio']:>10.2f}")
    print(f"\n2. Video: {'10' if args.quick else '60'} s 1280x720 30 fps clip, frames sampled the app's way")
    print(f"{'path':<20} {'seconds':>8} {'frames':>7} {'peak MB':>8} {'vs fastest':>11}")
    for r in videos:
        print(f"{r['path']:<20} {r['seconds']:>8.2f} {r['frames']:>7} {r['peak_mb']:>8.0f} {r['vs_fastest']:>11.2f}")
    print("\n3. Image path, upload to model input (ms, best of 3)")
    print(f"{'image':<16} {'file KB':>8} {'decode':>7} {'exif':>6} {'to RGB':>7} {'prepare':>8} {'processor':>10} {'b64 enc':>8} {'b64 dec+decode':>15}")
    for r in images:
        print(f"{r['image']:<16} {r['file_kb']:>8.0f} {r['decode_ms']:>7.1f} {r['exif_ms']:>6.1f} {r['rgb_ms']:>7.1f} "
              f"{r['prepare_total_ms']:>8.1f} {r['processor_ms']:>10.1f} {r['base64_encode_ms']:>8.1f} {r['base64_decode_and_decode_ms']:>15.1f}")
    print("   The UIs hand the uploaded file's path to prepare_image: no base64 in process (the b64 columns are the")
    print("   Python API's upstream-compatible transport, shown for comparison).")
    print("\n4. Load and first answer: memory above the process baseline, random native checkpoint (fp32, CPU)")
    print(f"{'weights MB':>11} {'load s':>7} {'peak RSS MB':>12} {'peak/weights':>13} {'peak anon MB':>13} {'anon/weights':>13}")
    print(f"{load['weights_mb']:>11.0f} {load['load_s']:>7.1f} {load['peak_mb']:>12.0f} {load['ratio']:>13.2f} "
          f"{load['peak_anon_mb']:>13.0f} {load['anon_ratio']:>13.2f}")
    print("   RSS counts the memory-mapped safetensors pages, which the weights are read from in place; anon is")
    print("   memory the process allocated itself (activations, buffers).")
    plot(overhead, videos, args.plot)
    print(f"\nplot: {args.plot.relative_to(ROOT) if args.plot.is_relative_to(ROOT) else args.plot}")


if __name__ == "__main__":
    main()
