"""GGUF files on llama.cpp, behind the same UIs: the app starts ``llama-server`` on a loopback port, waits until it
is healthy, talks to it as an OpenAI-compatible server (``openai_api.OpenAIBackend``) and stops it at exit.

For CPU and laptop users (issue 27): llama.cpp ships MiniCPM-V 4.6 (its docs/multimodal/minicpmv4.6.md) with
quantized language models (Q4_K_M, Q8_0) and an F16 vision projector. The user points ``--model`` at the language
model's ``.gguf`` file; the projector is ``--mmproj`` or the one ``*mmproj*.gguf`` beside it (the name llama.cpp's
converter and the published GGUF repositories give it). ``llama-server`` is found as ``--llama-server``,
``$MINICPMV_LLAMA_SERVER`` or on ``PATH``.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Optional, Sequence

from ..errors import ModelLoadError
from ..ports import free_port
from .openai_api import OpenAIBackend

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
LOAD_TIMEOUT_S = 600
CONTEXT = 8192  # tokens: a 4.6 picture at 36 slices is about 2,400 of them at 16x


def is_gguf(path) -> bool:
    """A file in llama.cpp's format (its first four bytes), whatever its name."""
    try:
        with open(path, "rb") as file:
            return Path(path).is_file() and file.read(4) == GGUF_MAGIC
    except OSError:
        return False


def find_mmproj(model: Path) -> Optional[Path]:
    """The vision projector beside ``model``: the one other GGUF file with "mmproj" in its name."""
    found = [p for p in sorted(model.parent.glob("*.gguf")) if p != model and "mmproj" in p.name.lower() and is_gguf(p)]
    return found[0] if len(found) == 1 else None


def find_server(binary: Optional[str] = None) -> str:
    chosen = binary or os.environ.get("MINICPMV_LLAMA_SERVER") or shutil.which("llama-server")
    if not chosen or not Path(chosen).is_file():
        raise ModelLoadError(
            "llama-server was not found. Install llama.cpp (its releases, Homebrew's llama.cpp, or a build of its "
            "source), then put llama-server on PATH or pass --llama-server /path/to/llama-server.",
            key="llama_server_missing")
    return chosen


class LlamaServerBackend(OpenAIBackend):
    """A ``llama-server`` of this app's own, one answer at a time (a CPU gives one answer its full speed)."""

    def __init__(self, model, mmproj=None, *, binary: Optional[str] = None, context: int = CONTEXT,
                 threads: Optional[int] = None, extra_args: Sequence[str] = (), load_timeout: float = LOAD_TIMEOUT_S,
                 timeout: float = 600.0) -> None:
        """``extra_args``: more llama-server options as they are typed (e.g. ``-ngl 99`` for a GPU build)."""
        model = Path(model).expanduser().resolve()
        if not is_gguf(model):
            raise ModelLoadError(f"{model} is not a GGUF file.", key="not_gguf", name=model.name)
        projector = Path(mmproj).expanduser().resolve() if mmproj else find_mmproj(model)
        if projector is None or not is_gguf(projector):
            raise ModelLoadError(
                f"No vision projector for {model.name}: pass --mmproj with its mmproj-*.gguf file (it comes with the "
                "model's GGUF files), or put that one file beside the model.", key="mmproj_missing", name=model.name)
        self.gguf, self.mmproj, self.port = model, projector, free_port()
        command = [find_server(binary), "-m", str(model), "--mmproj", str(projector), "--host", "127.0.0.1",
                   "--port", str(self.port), "-c", str(context), "--parallel", "1", "--jinja", "--no-webui"]
        if threads:
            command += ["--threads", str(threads)]
        command += list(extra_args)
        log.info("Starting llama-server for %s", model.name)
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True, errors="replace")
        weakref.finalize(self, _stop, self.process)
        self._log: collections.deque = collections.deque(maxlen=20)  # its last words, for a failed start
        threading.Thread(target=self._read_log, name="llama-server-log", daemon=True).start()
        self._wait_healthy(load_timeout)
        super().__init__(f"http://127.0.0.1:{self.port}/v1", timeout=timeout, concurrency=1)

    def describe(self) -> str:
        return f"{self.gguf.name} (+ {self.mmproj.name}) on llama.cpp's llama-server, pid {self.process.pid}"

    def card(self) -> dict:
        return {**super().card(), "engine": "llama.cpp", "gguf": self.gguf.name, "mmproj": self.mmproj.name}

    def close(self) -> None:
        _stop(self.process)

    def _read_log(self) -> None:
        for line in self.process.stderr or ():
            self._log.append(line.rstrip())
            log.debug("llama-server: %s", line.rstrip())

    def _wait_healthy(self, timeout: float) -> None:
        """Until /health answers 200 (503 while the weights load); a server that exits says why."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                time.sleep(0.2)  # let the last lines arrive
                said = " | ".join(list(self._log)[-3:]) or f"exit code {self.process.returncode}"
                raise ModelLoadError(f"llama-server could not load {self.gguf.name}: {said}", key="llama_server_failed",
                                     name=self.gguf.name)
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass  # not listening yet, or 503 while loading
            time.sleep(0.25)
        _stop(self.process)
        raise ModelLoadError(f"llama-server did not load {self.gguf.name} within {timeout:.0f} s.", key="load_timeout",
                             timeout=round(timeout))


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
