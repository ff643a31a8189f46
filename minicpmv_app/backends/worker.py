"""A remote-code model in a worker process that imports its own pinned transformers (``minicpmv_app.runtimes``).

The app keeps its own transformers; the worker puts the runtime folder ahead of it on ``PYTHONPATH`` and reuses
the installed torch. Messages are pickles over the worker's stdin/stdout (the worker moves its own prints to
stderr), so this works wherever pipes do. The app never loads the weights: only the worker holds them.

If the worker dies (out of memory, killed), the request in flight gets a ``GenerationError`` and the next one
starts a fresh worker.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Optional

from .. import errors
from ..errors import GenerationError, MiniCPMVError, ModelLoadError
from ..messages import Conversation
from ..presets import GenerationSettings
from .base import Backend

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STOP_POLL_S = 0.02  # how often a pending Stop is looked for while the worker answers


class WorkerBackend(Backend):
    name = "worker"

    def __init__(self, folder: Path, device: str, dtype: Optional[str], runtime_name: str, runtime_folder: Path):
        # The worker runs in the project's folder: a relative path would name another folder there.
        self.folder, self.device, self.dtype = Path(folder).expanduser().resolve(), device, dtype
        self.runtime_name, self.runtime_folder = runtime_name, runtime_folder
        self._send_lock = threading.Lock()
        self.process: Optional[subprocess.Popen] = None
        self.info: dict = {}
        self._generation = 0
        self._start()

    # -- the worker process ------------------------------------------------------------------------
    def _start(self) -> None:
        path = [str(self.runtime_folder), str(PROJECT_ROOT)]
        if os.environ.get("PYTHONPATH"):
            path.append(os.environ["PYTHONPATH"])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path), PYTHONUNBUFFERED="1")
        log.info("Starting a %s worker for %s", self.runtime_name, self.folder.name)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "minicpmv_app.runtimes.child"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=str(PROJECT_ROOT),
        )
        weakref.finalize(self, _shut_down, self.process)
        self._send(("load", {"folder": str(self.folder), "device": self.device, "dtype": self.dtype}))
        kind, payload = self._receive(loading=True)
        if kind == "error":
            self._close()
            raise _typed(payload, default=ModelLoadError)
        self.info = payload
        self.preset_overrides = payload["preset_overrides"]
        self.supports_multi_image = payload["supports_multi_image"]
        self.supports_video = payload["supports_video"]
        self.knobs = payload.get("knobs", {})

    def _alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _send(self, message) -> None:
        with self._send_lock:
            pickle.dump(message, self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.process.stdin.flush()

    def _receive(self, *, loading: bool = False):
        try:
            return pickle.load(self.process.stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            code = self.process.wait(timeout=30)
            what = "while loading the model" if loading else "while answering"
            cause = "out of memory or killed" if code and code < 0 or code == 137 else "see the log above"
            error_type = ModelLoadError if loading else GenerationError
            raise error_type(
                f"The model's worker process ({self.runtime_name}) stopped {what} (exit code {code}: {cause}). "
                + ("" if loading else "Ask again: the next question starts a fresh worker."),
                key="worker_died", code=code,
            ) from exc

    def _close(self) -> None:
        if self.process is not None:
            _shut_down(self.process)

    def close(self) -> None:
        """End the worker (also done when this backend is collected, and at exit)."""
        self._close()

    # -- the Backend interface ---------------------------------------------------------------------
    def describe(self) -> str:
        return f"{self.info.get('describe', self.folder.name)} in a worker on {self.runtime_name}"

    def card(self) -> dict:
        inner = {k: v for k, v in self.info.get("card", {}).items() if k != "backend"}
        return {**inner, **super().card(), "runtime": self.runtime_name, "transformers": self.info.get("transformers")}

    def generate(
        self, conversation: Conversation, settings: GenerationSettings, *, stop: Optional[threading.Event] = None
    ) -> Iterator[str]:
        if not self._alive():
            log.warning("The %s worker is gone; starting a fresh one.", self.runtime_name)
            self._close()
            self._start()
        self._generation += 1
        generation = self._generation
        self._send(("generate", generation, conversation, replace(settings, params=dict(settings.params))))
        finished = threading.Event()
        watcher = threading.Thread(target=self._forward_stop, args=(stop, finished, generation), daemon=True)
        watcher.start()
        ended = False
        try:
            while True:
                kind, payload = self._receive()
                if kind == "piece":
                    yield payload
                elif kind == "done":
                    ended = True
                    return
                elif kind == "error":
                    ended = True
                    raise _typed(payload, default=GenerationError)
        except GenerationError as exc:
            ended = ended or exc.key == "worker_died"
            raise
        finally:
            if not ended and self._alive():
                # The consumer left early (Stop, closed stream): stop the worker and read up to its end.
                self._send(("stop", generation))
                self._drain()
            finished.set()

    def _forward_stop(self, stop: Optional[threading.Event], finished: threading.Event, generation: int) -> None:
        if stop is None:
            return
        while not finished.is_set():
            if stop.wait(STOP_POLL_S):
                if not finished.is_set() and self._alive():
                    try:
                        self._send(("stop", generation))  # the id keeps a late Stop off the next answer
                    except OSError:
                        pass
                return

    def _drain(self) -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                kind, _ = self._receive()
            except MiniCPMVError:
                return
            if kind in ("done", "error"):
                return


def _shut_down(process: subprocess.Popen) -> None:
    """Closing its stdin tells the worker to stop and exit; kill it if it does not within 10 s."""
    for stream in (process.stdin, process.stdout):
        try:
            stream.close()
        except OSError:
            pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _typed(payload: dict, *, default: type) -> MiniCPMVError:
    """Rebuild the worker's typed error in this process (its class, message, key and params)."""
    cls = getattr(errors, payload.get("type", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, MiniCPMVError)):
        cls = default
    return cls(payload.get("message", "The model worker failed."), key=payload.get("key"), **payload.get("params", {}))
