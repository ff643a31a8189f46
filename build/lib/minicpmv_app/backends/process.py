"""Any local model in a model process of its own: the UI's interpreter never imports torch or transformers, never
shares its GIL with ``generate()``, and survives the model crashing.

The model process (``minicpmv_app.runtimes.child``) loads the checkpoint with the backend its ``config.json``
picks, on this interpreter's transformers or, for a generation whose model card pins another, on that runtime
(``minicpmv_app.runtimes``, ahead on ``PYTHONPATH``). Messages are pickles over its stdin/stdout, each tagged with
its request's id, so a frame-plan question can be answered while another user's answer streams.

Loading runs in the background: what the page needs to lay itself out (the model's knobs, presets and prompts)
arrives before the weights are read (``info``), and ``status()`` says how far the load is. Questions asked
meanwhile wait for it. If the process dies (out of memory, killed), the request in flight gets a typed
``GenerationError`` and the next one starts a fresh process.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Iterator, Optional

from .. import errors
from ..errors import GenerationError, MiniCPMVError, ModelLoadError
from ..messages import Conversation
from ..presets import GenerationSettings
from . import shared_pixels
from .base import Backend, LoadStatus

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STOP_POLL_S = 0.02  # how often a pending Stop is looked for while the model answers
LOAD_TIMEOUT_S = float(os.environ.get("MINICPMV_LOAD_TIMEOUT_S", 3600))  # a 35B download + load fits in an hour


# What the page is laid out by is a function of these files, the transformers that reads them and the app's code
# that turns them into knobs: with the same ones, the last start's ``info`` is still right, and the page need not
# wait the 5-12 s the model process takes to import torch and transformers before it can say it again.
INFO_FILES = ("config.json", "processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json",
              "tokenizer_config.json", "generation_config.json", "chat_template.jinja", "chat_template.json")
INFO_CODE = ("backends/cards.py", "backends/native.py", "backends/remote_code.py", "backends/omnilmm.py",
             "settings.py", "runtimes/child.py")
NOTHING_KNOWN = {"name": "", "knobs": {}, "preset_overrides": {}, "prompts": (), "scale_resolution": 448}


class ModelProcess(Backend):
    """A backend whose model lives in a child process (see the module's docstring). ``wait=False`` returns at
    once; attributes the UI lays itself out by (``knobs``, ``preset_overrides``, ``prompts``) block until the
    process has said them, and ``generate`` until the model is loaded."""

    name = "model-process"

    def __init__(self, folder: Path, device: str = "auto", dtype: Optional[str] = None, *,
                 runtime_name: Optional[str] = None, runtime_folder: Optional[Path] = None, wait: bool = True):
        # The process runs in the project's folder: a relative path would name another folder there.
        self.folder, self.device, self.dtype = Path(folder).expanduser().resolve(), device, dtype
        self.runtime_name, self.runtime_folder = runtime_name, runtime_folder
        self.process: Optional[subprocess.Popen] = None
        self._send_lock, self._restart_lock = threading.Lock(), threading.Lock()
        self._ids = itertools.count(1)
        # request id -> (the process it was sent to, where its replies go)
        self._replies: dict[int, tuple[Optional[subprocess.Popen], queue.Queue]] = {}
        self._changed = threading.Condition()
        self._status = LoadStatus("starting")
        self._info: Optional[dict] = remembered_info(self._info_file())
        self.info: dict = {}  # what the loaded backend said of itself (describe, card, transformers, pid)
        self._start()
        if wait:
            self.wait_until_ready()

    # -- the process ------------------------------------------------------------------------------
    def _start(self) -> None:
        runtime = self.runtime_folder or _transformers_ahead()
        path = ([str(runtime)] if runtime else []) + [str(PROJECT_ROOT)]
        if os.environ.get("PYTHONPATH"):
            path.append(os.environ["PYTHONPATH"])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path), PYTHONUNBUFFERED="1")
        log.info("Starting a model process for %s%s", self.folder.name,
                 f" on {self.runtime_name}" if self.runtime_name else "")
        with self._changed:
            self._status, self.info = LoadStatus("starting", "starting"), {}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "minicpmv_app.runtimes.child"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=str(PROJECT_ROOT),
        )
        weakref.finalize(self, _shut_down, self.process)
        threading.Thread(target=self._read, args=(self.process,), name="minicpmv-model-reader", daemon=True).start()
        try:
            self._send(("load", None, {"folder": str(self.folder), "device": self.device, "dtype": self.dtype}))
        except OSError:  # it died at once: the reader reports how
            pass

    def _read(self, process: subprocess.Popen) -> None:
        """The one reader of the process's replies: hands each to the request that waits for it."""
        replies = process.stdout
        assert replies is not None  # started with stdout=PIPE
        while True:
            try:
                kind, request, payload = pickle.load(replies)
            except (EOFError, OSError, pickle.UnpicklingError, ValueError):
                break
            if request is not None:
                entry = self._replies.get(request)  # one lookup: the request may end (and pop it) meanwhile
                if entry is not None and entry[0] is process:
                    entry[1].put((kind, payload))
                continue
            with self._changed:
                if kind == "progress" and not self._status.ready:  # a bar drawn later is not a load
                    self._status = LoadStatus("loading", payload.get("stage", ""), payload.get("fraction"))
                elif kind == "info":
                    if self._info is not None and self._info != payload:
                        log.warning("The model's settings changed since the page was laid out; reload the page.")
                    self._info = payload
                    remember_info(self._info_file(), payload)
                elif kind == "ready":
                    self.info, self._status = payload, LoadStatus("ready")
                elif kind == "error":
                    self._status = LoadStatus("failed", error=_typed(payload, default=ModelLoadError))
                self._changed.notify_all()
        code = _exit_code(process)
        with self._changed:
            if process is self.process and not self._status.ready and self._status.state != "failed":
                self._status = LoadStatus("failed", error=ModelLoadError(
                    f"The model process stopped while loading the model (exit code {code}: {_cause(code)}).",
                    key="worker_died", code=code))
            self._changed.notify_all()
        for sent_to, waiting in list(self._replies.values()):
            if sent_to is process:  # not the requests of a fresh process started meanwhile
                waiting.put(("died", code))

    def _alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _send(self, message) -> None:
        requests = self.process.stdin if self.process is not None else None
        if requests is None:
            raise BrokenPipeError("The model process is not running.")
        with self._send_lock:
            pickle.dump(message, requests, protocol=pickle.HIGHEST_PROTOCOL)
            requests.flush()

    def _info_file(self) -> Path:
        from importlib.metadata import PackageNotFoundError, version

        from ..tiny import default_cache_dir

        digest = hashlib.sha256(f"{self.folder}\0{self.runtime_name}\0".encode())
        try:
            digest.update(version("transformers").encode())
        except PackageNotFoundError:
            pass
        package = Path(__file__).resolve().parents[1]
        for path in [self.folder / name for name in INFO_FILES] + [package / name for name in INFO_CODE]:
            if path.is_file():
                digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return default_cache_dir() / "model-info" / f"{digest.hexdigest()[:32]}.json"

    def _request(self, message) -> None:
        """Send a request; a process that died since it was checked fails it as a crash would."""
        try:
            self._send(message)
        except OSError as exc:
            raise self._died(_exit_code(self.process)) from exc

    def status(self) -> LoadStatus:
        """Where the load is (``starting``, ``loading``, ``ready`` or ``failed``)."""
        return self._status

    def wait_until_ready(self, timeout: float = LOAD_TIMEOUT_S) -> None:
        """Block until the model is loaded; raise its typed load error if it failed."""
        with self._changed:
            self._changed.wait_for(lambda: self._status.state in ("ready", "failed"), timeout=timeout)
            status = self._status
        if status.state == "failed" and status.error is not None:
            raise status.error
        if not status.ready:
            raise ModelLoadError(f"The model did not load within {timeout:.0f} s.", key="load_timeout")

    def _early(self) -> dict:
        """The ``info`` message (knobs, presets, prompts), sent before the weights load. A model that failed
        before saying it gets none: the page still builds, and shows why (``status()``)."""
        with self._changed:
            self._changed.wait_for(lambda: self._info is not None or self._status.state == "failed",
                                   timeout=LOAD_TIMEOUT_S)
            return self._info if self._info is not None else NOTHING_KNOWN

    def close(self) -> None:
        """End the process (also done when this backend is collected, and at exit)."""
        if self.process is not None:
            _shut_down(self.process)

    # -- what the UI lays itself out by ---------------------------------------------------------------
    # Properties over Backend's class attributes: known only once the model process has said them.
    @property
    def knobs(self) -> dict:  # type: ignore[override]
        return self._early()["knobs"]

    @property
    def preset_overrides(self) -> dict:  # type: ignore[override]
        return self._early()["preset_overrides"]

    @property
    def prompts(self) -> tuple:  # type: ignore[override]
        return self._early()["prompts"]

    @property
    def scale_resolution(self) -> int:
        return self._early()["scale_resolution"]

    def describe(self) -> str:
        where = f"a model process on {self.runtime_name}" if self.runtime_name else "a model process"
        return f"{self.info.get('describe', self.folder.name)} in {where}"

    def card(self) -> dict:
        inner = {k: v for k, v in self.info.get("card", {}).items() if k != "backend"}
        return {**inner, **super().card(), "runs": self.info.get("card", {}).get("backend"),
                **({"runtime": self.runtime_name} if self.runtime_name else {}),
                "transformers": self.info.get("transformers")}

    def frame_plan(self, settings: GenerationSettings):
        """The model's own plan, computed in the model process (the 4.6 processor's ``sample_frames``)."""
        return RemotePlan(self, settings, self._call("frame_plan_key", settings))

    # -- requests -----------------------------------------------------------------------------------
    def _ensure_running(self) -> None:
        """Wait for the model; after a crash of a loaded model, start a fresh process. A failed load is not
        retried (it would fail the same way for every question): its error is raised."""
        if self._status.state == "failed" and self._status.error is not None:
            raise self._status.error
        with self._restart_lock:  # two sessions finding it gone start one fresh process
            if self._status.ready and not self._alive():
                log.warning("The model process is gone; starting a fresh one.")
                self.close()
                self._start()
        self.wait_until_ready()

    def _call(self, method: str, *args) -> Any:
        """A quick question answered by the model process's reader (no generation involved)."""
        self._ensure_running()
        request, replies = next(self._ids), queue.Queue[tuple[str, Any]]()
        self._replies[request] = (self.process, replies)
        try:
            self._request(("call", request, (method, args)))
            kind, payload = replies.get(timeout=120)
        finally:
            self._replies.pop(request, None)
        if kind == "result":
            return payload
        if kind == "died":
            raise self._died(payload)
        raise _typed(payload, default=GenerationError)

    def generate(
        self, conversation: Conversation, settings: GenerationSettings, *, stop: Optional[threading.Event] = None
    ) -> Iterator[str]:
        self._ensure_running()
        request, replies = next(self._ids), queue.Queue[tuple[str, Any]]()
        self._replies[request] = (self.process, replies)
        shared = shared_pixels.Sharing()
        ended = False
        finished = threading.Event()
        try:
            message = ("generate", request, (shared.wrap(conversation), replace(settings, params=dict(settings.params))))
            self._request(message)
            threading.Thread(target=self._forward_stop, args=(stop, finished, request), daemon=True).start()
            while True:
                kind, payload = replies.get()
                if kind == "piece":
                    yield payload
                elif kind == "done":
                    ended = True
                    return
                elif kind == "died":
                    ended = True
                    raise self._died(payload)
                elif kind == "error":
                    ended = True
                    raise _typed(payload, default=GenerationError)
        finally:
            finished.set()
            if not ended and self._alive():
                # The consumer left early (Stop, closed stream): stop the model and wait for its end.
                self._send(("stop", request, None))
                _drain(replies)
            self._replies.pop(request, None)
            shared.close()

    def _forward_stop(self, stop: Optional[threading.Event], finished: threading.Event, request: int) -> None:
        if stop is None:
            return
        while not finished.is_set():
            if stop.wait(STOP_POLL_S):
                if not finished.is_set() and self._alive():
                    try:
                        self._send(("stop", request, None))  # the id keeps a late Stop off the next answer
                    except OSError:
                        pass
                return

    def _died(self, code) -> GenerationError:
        return GenerationError(
            f"The model process stopped while answering (exit code {code}: {_cause(code)}). "
            "Ask again: the next question starts a fresh model process.", key="worker_died", code=code)


def _transformers_ahead() -> Optional[str]:
    """Where this interpreter's transformers comes from, when that is not its site-packages (a Space's app.py that
    put a pinned runtime first on ``sys.path``): the model process must import the same one."""
    import site
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        folder = Path(str(distribution("transformers").locate_file(""))).resolve()
    except PackageNotFoundError:
        return None
    standard = {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]}
    return None if folder in standard else str(folder)


def remembered_info(path: Path) -> Optional[dict]:
    """The ``info`` of the last start with the same files (``INFO_FILES``), or None."""
    from .cards import Prompt

    try:
        data = json.loads(path.read_text())
        return {**data, "prompts": tuple(Prompt(**p) for p in data["prompts"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember_info(path: Path, info: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**info, "prompts": [asdict(p) for p in info["prompts"]]}
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data))
        temporary.replace(path)
    except (OSError, TypeError, ValueError) as exc:  # a read-only cache only costs the next start its head start
        log.info("Could not remember the model's settings in %s (%s)", path, exc)


class RemotePlan:
    """A frame plan whose frame numbers the model process picks (``Backend.frame_plan`` there)."""

    def __init__(self, process: ModelProcess, settings: GenerationSettings, key: tuple):
        self.process, self.settings, self.key = process, settings, tuple(key)

    def indices(self, total_frames: int, fps: float, duration: float) -> list[int]:
        return self.process._call("frame_indices", self.settings, total_frames, fps, duration)


def _drain(replies: queue.Queue, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kind, _ = replies.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return
        if kind in ("done", "error", "died"):
            return


def _exit_code(process: Optional[subprocess.Popen]) -> Optional[int]:
    if process is None:
        return None
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        return None


def _cause(code) -> str:
    return "out of memory or killed" if code is not None and (code < 0 or code == 137) else "see the log above"


def _shut_down(process: subprocess.Popen) -> None:
    """Closing its stdin tells the process to stop and exit; kill it if it does not within 10 s."""
    try:
        if process.stdin is not None:
            process.stdin.close()
    except OSError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _typed(payload: dict, *, default: type) -> MiniCPMVError:
    """Rebuild the model process's typed error here (its class, message, key and params)."""
    cls = getattr(errors, payload.get("type", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, MiniCPMVError)):
        cls = default
    return cls(payload.get("message", "The model process failed."), key=payload.get("key"), **payload.get("params", {}))
