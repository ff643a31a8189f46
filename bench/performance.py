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
5. Streaming at length: 200, 4,000 and 16,000 answer tokens through MiniCPMVChat.stream (and 4,000 through the
   Gradio app) against model.generate + TextIteratorStreamer.
6. The browser's first token: Chromium, Enter to the first answer character, against the model's own TTFT.
7. Cold start: imports, model load and page build in fresh processes, then web_demo_2.6.py to its first answer.
8. JPEG draft mode: a 12 MP JPEG decoded whole and at the model's scale; what the processor makes of each.
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


def process_memory_kb() -> dict:
    """This process's resident memory and the part of it the process allocated itself (kB), for the probes."""
    values = {}
    for line in open("/proc/self/status"):
        if line.startswith(("VmRSS:", "RssAnon:")):
            key, amount = line.split()[:2]
            values[key.rstrip(":")] = int(amount)
    return values


# -- 1. app overhead --------------------------------------------------------------------------------
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


def fixed_length_copy(source: Path, tokens: int) -> Path:
    """``source`` with a generation_config.json that makes every answer exactly ``tokens`` long: the same for
    model.generate here and for the model process of a demo, which this process cannot patch."""
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{tokens}-")) / source.name
    folder.mkdir()
    for item in source.iterdir():
        if item.name != "generation_config.json":
            (folder / item.name).symlink_to(item.resolve())
    config = json.loads((source / "generation_config.json").read_text()) if (source / "generation_config.json").is_file() else {}
    config.update(min_new_tokens=tokens, max_new_tokens=tokens)
    (folder / "generation_config.json").write_text(json.dumps(config))
    return folder


def app_overhead(tokens: int, repeats: int) -> list[dict]:
    from PIL import Image

    from bench.reliability import serve_process
    from minicpmv_app import MiniCPMVChat
    from minicpmv_app.hub import resolve_model_path
    from minicpmv_app.tiny_task import draw

    folder = fixed_length_copy(resolve_model_path("tiny-random"), tokens)
    chat = MiniCPMVChat(str(folder), device="cpu")
    in_child = MiniCPMVChat(str(folder), device="cpu", process="model")
    image = draw("red", "square", size=(448, 448))
    path = folder.parent / "image.png"
    image.save(path)
    image_b64 = base64.b64encode(path.read_bytes()).decode()
    loaded = Image.open(path).convert("RGB")
    paths = {"direct": "model.generate + streamer", "wrapper": "MiniCPMVChat.stream (here)",
             "child": "MiniCPMVChat.stream (model process)", "gradio": "Gradio app (model process)",
             "gradio_here": "Gradio app (--in-process)"}
    times = {name: [] for name in paths}
    with serve_process("--device", "cpu", model=str(folder)) as (_, client, _pid), \
            serve_process("--device", "cpu", "--in-process", model=str(folder)) as (_, client_here, _pid2):
        for factory in (client, client_here):
            gradio_run(factory, str(path), tokens)  # warm-up: first compile/alloc
        wrapper_run(in_child, image_b64, tokens)
        for _ in range(repeats):  # interleaved, so drift hits every path alike
            times["direct"].append(direct_run(chat, loaded, tokens))
            times["wrapper"].append(wrapper_run(chat, image_b64, tokens))
            times["child"].append(wrapper_run(in_child, image_b64, tokens))
            times["gradio"].append(gradio_run(client, str(path), tokens))
            times["gradio_here"].append(gradio_run(client_here, str(path), tokens))
    in_child.backend.close()
    rows = []
    base_ttft = statistics.median(t[0] for t in times["direct"])
    base_rate = statistics.median(tokens / (t[1] - t[0]) for t in times["direct"])
    for name, label in paths.items():
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
from bench.performance import process_memory_kb as status_kb
MiniCPMVChat("tiny-random", device="cpu")  # warm up: imports, processor classes, allocator; not what we measure
gc.collect()

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


# -- 5. streaming at length ------------------------------------------------------------------------
def long_context_tiny() -> Path:
    """A tiny random checkpoint whose context holds 16,000 answer tokens (the shipped one stops at 4,096)."""
    from minicpmv_app.tiny import build_tiny_checkpoint

    folder = build_tiny_checkpoint(Path(tempfile.mkdtemp(prefix="bench-long-")) / "tiny")
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config.setdefault("text_config", config)["max_position_embeddings"] = 20_000
    config_path.write_text(json.dumps(config))
    return folder


def streaming_at_length(lengths, gradio_length: int) -> list[dict]:
    from PIL import Image

    from bench.reliability import serve_process
    from minicpmv_app import MiniCPMVChat
    from minicpmv_app.tiny_task import draw

    source = long_context_tiny()
    path = source.parent / "image.png"
    draw("red", "square", size=(448, 448)).save(path)
    image_b64 = base64.b64encode(path.read_bytes()).decode()
    loaded = Image.open(path).convert("RGB")
    rows = []
    for tokens in lengths:
        folder = fixed_length_copy(source, tokens)
        chat = MiniCPMVChat(str(folder), device="cpu")
        repeats = 3 if tokens <= 4000 else 1
        direct = [direct_run(chat, loaded, tokens) for _ in range(repeats)]
        wrapped = [wrapper_run(chat, image_b64, tokens) for _ in range(repeats)]
        row = dict(tokens=tokens, direct_s=statistics.median(t[1] for t in direct),
                   wrapper_s=statistics.median(t[1] for t in wrapped), gradio_s=float("nan"))
        if tokens == gradio_length:
            with serve_process("--device", "cpu", model=str(folder)) as (_, client, _pid):
                gradio_run(client, str(path), 16)  # warm-up
                row["gradio_s"] = statistics.median(gradio_run(client, str(path), tokens)[1] for _ in range(repeats))
        rows.append(row)
    return rows


# -- 6. the browser's first token ---------------------------------------------------------------------
def browser_first_token(repeats: int) -> dict:
    """Chromium: from pressing Enter in the message box to the first answer character on the page, against
    the model's own time to first token for the same picture and question (direct_run)."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from bench.reliability import serve_process
    from minicpmv_app import MiniCPMVChat
    from minicpmv_app.hub import resolve_model_path
    from minicpmv_app.tiny_task import draw

    folder = fixed_length_copy(resolve_model_path("tiny-random"), 32)
    chat = MiniCPMVChat(str(folder), device="cpu")
    path = Path(tempfile.mkdtemp(prefix="bench-")) / "image.png"
    draw("red", "square", size=(448, 448)).save(path)
    loaded = Image.open(path).convert("RGB")
    clicks, models = [], []
    # The clock starts in the page, at the Enter keydown itself (a real key press, not a synthetic event, which
    # Gradio ignores), and stops at the first mutation that puts answer text on the page.
    arm = """() => { window.firstAnswer = new Promise(resolve => {
        let start = null;
        document.addEventListener('keydown', e => { if (e.key === 'Enter' && start === null) start = performance.now(); }, true);
        const seen = () => [...document.querySelectorAll('[data-testid="bot"]')].some(b => b.innerText.trim());
        const observer = new MutationObserver(() => {
            if (start !== null && seen()) { observer.disconnect(); resolve(performance.now() - start); } });
        observer.observe(document.body, {subtree: true, childList: true, characterData: true});
    }); }"""
    with serve_process("--device", "cpu", model=str(folder)) as (url, _, _pid), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
        for attempt in range(repeats + 1):  # the first is a warm-up
            page = browser.new_page()
            page.goto(url)
            page.locator("#chat-input input[type=file]").set_input_files(str(path))
            page.locator("#chat-input img").first.wait_for()
            page.locator("#chat-input textarea").fill(PROMPT)
            page.evaluate(arm)
            page.locator("#chat-input textarea").press("Enter")
            elapsed = page.evaluate("() => window.firstAnswer")
            page.locator("#stop-button").wait_for(state="visible")
            page.wait_for_function("() => document.querySelector('#stop-button').disabled")
            model = direct_run(chat, loaded, 32)[0]
            page.close()
            if attempt:
                clicks.append(elapsed / 1000)
                models.append(model)
        browser.close()
    click, model = statistics.median(clicks), statistics.median(models)
    return dict(click_ms=click * 1000, model_ms=model * 1000, overhead_ms=(click - model) * 1000)


# -- 7. cold start --------------------------------------------------------------------------------------
STEP = r'''
import sys, time
start = time.perf_counter()
sys.path.insert(0, sys.argv[1])
exec(sys.argv[2])
print(time.perf_counter() - start)
'''


def timed(code: str) -> float:
    output = subprocess.run([sys.executable, "-c", STEP, str(ROOT), code], capture_output=True, text=True, check=True)
    return float(output.stdout.strip().splitlines()[-1])


def cold_start() -> list[dict]:
    """Fresh processes: what each part of ``python web_demo_2.6.py --model tiny`` costs, then the whole of it, from
    the command to the first answer (the page answering a question through gradio_client)."""
    rows = [
        dict(step="python itself", seconds=timed("pass")),
        dict(step="import gradio", seconds=timed("import gradio")),
        dict(step="import torch + transformers", seconds=timed("import torch, transformers")),
        dict(step="import the 2.6 demo module", seconds=timed("import minicpmv_app.ui.gradio_26")),
        dict(step="import + load tiny", seconds=timed("from minicpmv_app import MiniCPMVChat; MiniCPMVChat('tiny', device='cpu')")),
        dict(step="import + load + build the page", seconds=timed(
            "from minicpmv_app import MiniCPMVChat; from minicpmv_app.ui.gradio_26 import build_demo; "
            "build_demo(MiniCPMVChat('tiny', device='cpu'))")),
    ]
    fresh = tempfile.mkdtemp(prefix="bench-cache-")
    for label, args, cache in (("first start (empty cache)", [], fresh), ("next start", [], fresh),
                               ("--in-process", ["--in-process"], fresh)):
        served, answered = demo_start(args, cache)
        rows += [dict(step=f"web_demo_2.6.py {label}: page served", seconds=served),
                 dict(step=f"web_demo_2.6.py {label}: first answer", seconds=answered)]
    return rows


def demo_start(args, cache: str) -> tuple[float, float]:
    """``web_demo_2.6.py --model tiny`` from the command to the page served, and to its first answer."""
    from gradio_client import Client

    from bench.reliability import free_port

    port = free_port()
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "web_demo_2.6.py"), "--model", "tiny", "--port", str(port),
                                *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ, MINICPMV_APP_CACHE=cache))
    try:
        while True:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:
                time.sleep(0.05)
        served = time.perf_counter() - start
        client.predict({"text": "What colour is the shape?", "files": []}, api_name="/add_turn")
        client.submit("Beam Search", 0.7, 0.8, 100, 1.05, 1, 8, "", api_name="/respond").result()
        answered = time.perf_counter() - start
    finally:
        process.terminate()
        process.wait(timeout=30)
    return served, answered


# -- 8. JPEG draft mode ------------------------------------------------------------------------------------
def jpeg_draft() -> dict:
    """A 12 MP JPEG decoded whole, and at the scale the tiny will use (its slice budget): ms, and what the
    processor makes of each (mean absolute difference of pixel values, -1..1 scale) and the answers."""
    import random

    import numpy as np

    from minicpmv_app import MiniCPMVChat
    from minicpmv_app.backends.native import build_inputs
    from minicpmv_app.media.images import prepare_image
    from minicpmv_app.messages import Conversation, Message
    from minicpmv_app.tiny_task import draw

    chat = MiniCPMVChat("tiny", device="cpu")
    path = Path(tempfile.mkdtemp(prefix="bench-")) / "photo.jpg"
    draw("green", "circle", size=(4032, 3024), rng=random.Random(SEED)).save(path, quality=92)
    budget = chat.page_pixels(chat.settings())

    def best(fn, n=5):
        times = []
        for _ in range(n):
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        return min(times) * 1000, result

    full_ms, full = best(lambda: prepare_image(str(path)))
    draft_ms, drafted = best(lambda: prepare_image(str(path), draft_pixels=budget))
    question = "What colour is the shape?"
    inputs = [build_inputs(chat.backend.processor, [Conversation([Message("user", [i, question])])], knobs=chat.knobs)
              for i in (full, drafted)]
    difference = max(np.abs(a.float().numpy() - b.float().numpy()).mean()
                     for a, b in zip(inputs[0]["pixel_values"], inputs[1]["pixel_values"]))
    answers = ["".join(chat.stream_conversation(Conversation([Message("user", [i, question])]),
                                                chat.settings(decode_type="Beam Search", max_new_tokens=8)))
               for i in (full, drafted)]
    return dict(full_ms=full_ms, draft_ms=draft_ms, full_size=full.size, draft_size=drafted.size,
                budget=budget, difference=float(difference), answers=answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--plot", type=Path, default=ROOT / "bench" / "performance.png")
    parser.add_argument("--sections", type=int, nargs="*", default=[], help="run only these sections (1-9)")
    args = parser.parse_args()
    import gradio
    import torch
    import transformers

    only = set(args.sections)
    want = lambda n: not only or n in only  # noqa: E731
    tokens, repeats = (64, 3) if args.quick else (200, 5)
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores | python {platform.python_version()}, "
          f"torch {torch.__version__}, transformers {transformers.__version__}, gradio {gradio.__version__} | seed {SEED}",
          flush=True)
    overhead = videos = None
    if want(1):
        overhead = app_overhead(tokens, repeats)
        print(f"\n1. App overhead ({tokens} tokens, greedy, median of {repeats}, tiny random model)")
        print(f"{'path':<38} {'TTFT ms':>9} {'TTFT +ms':>9} {'tokens/s':>9} {'vs direct':>10}")
        for r in overhead:
            print(f"{r['path']:<38} {r['ttft_ms']:>9.1f} {r['ttft_overhead_ms']:>9.1f} {r['tokens_per_s']:>9.1f} {r['ratio']:>10.2f}")
    if want(2):
        videos = video(10 if args.quick else 60)
        print(f"\n2. Video: {'10' if args.quick else '60'} s 1280x720 30 fps clip, frames sampled the app's way")
        print(f"{'path':<20} {'seconds':>8} {'frames':>7} {'peak MB':>8} {'vs fastest':>11}")
        for r in videos:
            print(f"{r['path']:<20} {r['seconds']:>8.2f} {r['frames']:>7} {r['peak_mb']:>8.0f} {r['vs_fastest']:>11.2f}")
    if want(3):
        images = image_path()
        print("\n3. Image path, upload to model input (ms, best of 3)")
        print(f"{'image':<16} {'file KB':>8} {'decode':>7} {'exif':>6} {'to RGB':>7} {'prepare':>8} {'processor':>10} {'b64 enc':>8} {'b64 dec+decode':>15}")
        for r in images:
            print(f"{r['image']:<16} {r['file_kb']:>8.0f} {r['decode_ms']:>7.1f} {r['exif_ms']:>6.1f} {r['rgb_ms']:>7.1f} "
                  f"{r['prepare_total_ms']:>8.1f} {r['processor_ms']:>10.1f} {r['base64_encode_ms']:>8.1f} {r['base64_decode_and_decode_ms']:>15.1f}")
        print("   The UIs hand the uploaded file's path to prepare_image: no base64 in process (the b64 columns are the")
        print("   Python API's upstream-compatible transport, shown for comparison).")
    if want(4):
        load = load_memory(512 if args.quick else 1024)
        print("\n4. Load and first answer: memory above the process baseline, random native checkpoint (fp32, CPU)")
        print(f"{'weights MB':>11} {'load s':>7} {'peak RSS MB':>12} {'peak/weights':>13} {'peak anon MB':>13} {'anon/weights':>13}")
        print(f"{load['weights_mb']:>11.0f} {load['load_s']:>7.1f} {load['peak_mb']:>12.0f} {load['ratio']:>13.2f} "
              f"{load['peak_anon_mb']:>13.0f} {load['anon_ratio']:>13.2f}")
        print("   RSS counts the memory-mapped safetensors pages, which the weights are read from in place; anon is")
        print("   memory the process allocated itself (activations, buffers).")
    if want(5):
        lengths = (200, 1000) if args.quick else (200, 4000, 16000)
        long_rows = streaming_at_length(lengths, lengths[1])
        print("\n5. Streaming at length (seconds for the whole answer, greedy, tiny random model with a 20k context)")
        print(f"{'tokens':>7} {'direct s':>9} {'stream s':>9} {'stream/direct':>14} {'Gradio s':>9} {'Gradio/direct':>14}")
        for r in long_rows:
            print(f"{r['tokens']:>7} {r['direct_s']:>9.2f} {r['wrapper_s']:>9.2f} {r['direct_s'] / r['wrapper_s']:>14.2f} "
                  f"{r['gradio_s']:>9.2f} {r['direct_s'] / r['gradio_s']:>14.2f}")
        print("   Ratios are rates against direct (direct time / path time): 1.00 is as fast as model.generate.")
    if want(6):
        browser = browser_first_token(2 if args.quick else 5)
        print(f"\n6. Browser first token (Chromium, Enter to the first answer character, median of {2 if args.quick else 5})")
        print(f"{'click to first char ms':>23} {'model TTFT ms':>14} {'overhead ms':>12}")
        print(f"{browser['click_ms']:>23.0f} {browser['model_ms']:>14.0f} {browser['overhead_ms']:>12.0f}")
    if want(7):
        starts = cold_start()
        print("\n7. Cold start (fresh processes, seconds)")
        for r in starts:
            print(f"{r['step']:<58} {r['seconds']:>7.2f}")
    if want(8):
        draft = jpeg_draft()
        print("\n8. JPEG draft mode: a 4032x3024 JPEG for the tiny's slice budget "
              f"({draft['budget'] / 1e6:.1f} MP)")
        print(f"{'decode':<10} {'ms':>7} {'size':>11}")
        print(f"{'whole':<10} {draft['full_ms']:>7.1f} {'x'.join(map(str, draft['full_size'])):>11}")
        print(f"{'draft':<10} {draft['draft_ms']:>7.1f} {'x'.join(map(str, draft['draft_size'])):>11}")
        print(f"   processor pixel values: mean |difference| {draft['difference']:.4f} (of -1..1); answers "
              f"{draft['answers'][0]!r} / {draft['answers'][1]!r}")
    if overhead is None or videos is None:
        return
    plot(overhead, videos, args.plot)
    print(f"\nplot: {args.plot.relative_to(ROOT) if args.plot.is_relative_to(ROOT) else args.plot}")


if __name__ == "__main__":
    main()
