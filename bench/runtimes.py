"""The worker process against in-process, on the same real remote-code checkpoint and the same transformers.

    python bench/runtimes.py            # prints one table (about two minutes)

Both sides run the checkpoint's own code on the transformers-4.40 runtime: "in-process" is a Python whose stack
already satisfies the pin (the runtime ahead on PYTHONPATH, as a Space pinning 4.40 has it), "worker" is the app on
its own transformers with the model in a worker process. Each measurement is a fresh process, interleaved, median
of --repeats. The checkpoints are ../shared/legacy_corpus (real code, tiny random weights): load time there is
mostly Python imports, so the ratio is an upper bound for real checkpoints, whose weights dominate loading.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "legacy_corpus"

# Run in a fresh interpreter: load; time to first token (a one-token answer: prefill, one step, transport); then
# a beam-search answer, deterministic, so both paths must produce the same text in comparable time.
PROBE = r"""
import json, os, sys, time
t0 = time.perf_counter()
from PIL import Image
from minicpmv_app import MiniCPMVChat
from minicpmv_app.messages import Conversation, Message
chat = MiniCPMVChat(sys.argv[1], device="cpu")
loaded = time.perf_counter() - t0
conversation = Conversation([Message("user", [Image.new("RGB", (200, 150), (30, 120, 200)), "What is in the image?"])])
tokens = int(sys.argv[2])
"".join(chat.stream_conversation(conversation, chat.settings(max_new_tokens=1)))  # warm-up
start = time.perf_counter()
"".join(chat.stream_conversation(conversation, chat.settings(max_new_tokens=1)))
first = time.perf_counter() - start
start = time.perf_counter()
text = "".join(chat.stream_conversation(conversation, chat.settings(decode_type="Beam Search", max_new_tokens=tokens)))
total = time.perf_counter() - start
import psutil
me = psutil.Process()
worker = getattr(chat.backend, "process", None)
print(json.dumps({"backend": chat.backend.name, "load_s": loaded, "ttft_s": first, "total_s": total, "text": text,
                  "chars": len(text), "app_rss_mb": me.memory_info().rss / 2**20,
                  "worker_rss_mb": psutil.Process(worker.pid).memory_info().rss / 2**20 if worker else None}))
"""


def run(folder: Path, tokens: int, in_process: bool, runtime: Path) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    if in_process:
        env["PYTHONPATH"] = os.pathsep.join([str(runtime), str(ROOT)])
    result = subprocess.run([sys.executable, "-c", PROBE, str(folder), str(tokens)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from minicpmv_app.runtimes import RUNTIMES, install

    runtime = install(RUNTIMES["transformers-4.40"])
    import torch
    import transformers

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch "
          f"{torch.__version__}; app transformers {transformers.__version__}; runtime transformers-4.40 (4.40.0); "
          f"CPU, fp32, beam search with {args.tokens} new tokens, median of {args.repeats} fresh processes")
    rows = []
    for name in ("minicpm-v-2_0", "minicpm-v-2_6"):
        runs = {True: [], False: []}
        for _ in range(args.repeats):
            for in_process in (True, False):
                runs[in_process].append(run(CORPUS / name, args.tokens, in_process, runtime))
        med = {k: {m: statistics.median(r[m] for r in v) for m in ("load_s", "ttft_s", "total_s", "chars", "app_rss_mb")}
               for k, v in runs.items()}
        worker_rss = statistics.median(r["worker_rss_mb"] for r in runs[False])
        assert {r["backend"] for r in runs[True]} == {"remote-code"} and {r["backend"] for r in runs[False]} == {"worker"}
        assert len({r["text"] for r in runs[True] + runs[False]}) == 1, "both paths must give the same beam answer"
        rows.append((name, med[True], med[False], worker_rss))
    print()
    print("| checkpoint | path | load s | time to first token s | beam answer s | chars/s | app RSS MB | worker RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, inproc, worker, worker_rss in rows:
        for label, m, wr in (("in-process", inproc, "-"), ("worker", worker, f"{worker_rss:.0f}")):
            print(f"| {name} | {label} | {m['load_s']:.2f} | {m['ttft_s']:.3f} | {m['total_s']:.2f} | "
                  f"{m['chars'] / m['total_s']:.0f} | {m['app_rss_mb']:.0f} | {wr} |")
        print(f"| {name} | **worker / in-process** | **{worker['load_s'] / inproc['load_s']:.2f}x** | "
              f"{worker['ttft_s'] / inproc['ttft_s']:.2f}x | {worker['total_s'] / inproc['total_s']:.2f}x | "
              f"**{(worker['chars'] / worker['total_s']) / (inproc['chars'] / inproc['total_s']):.2f}** | | |")


if __name__ == "__main__":
    main()
