"""The model process: loads one checkpoint with the backend its ``config.json`` picks (on the runtime ahead of it
on ``PYTHONPATH``, if any) and answers ``minicpmv_app.backends.process`` over stdin/stdout. Not for running by
hand.

Every message is ``(kind, request id or None, payload)``. Before the weights load it sends ``info`` (what the page
lays itself out by), then ``progress`` while loading, then ``ready`` or ``error``.
"""

from __future__ import annotations

import os
import pickle
import queue
import sys
import threading


def main() -> int:
    from minicpmv_app.allocator import limit_arenas

    limit_arenas()  # before torch's threads start
    # The protocol owns stdout: anything the model code prints goes to stderr instead.
    channel_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    channel_in = sys.stdin.buffer
    lock = threading.Lock()

    def send(kind: str, request, payload) -> None:
        with lock:
            pickle.dump((kind, request, payload), channel_out, protocol=pickle.HIGHEST_PROTOCOL)
            channel_out.flush()

    from minicpmv_app.cli import setup_logging

    setup_logging()
    try:
        kind, _, request = pickle.load(channel_in)
        backend = _load(request, send)
    except EOFError:
        return 0
    except BaseException as exc:  # sent to the app as a typed error
        send("error", None, _describe(_load_error(exc, request)))
        return 1
    import transformers

    send("ready", None, {"describe": backend.describe(), "card": backend.card(), "pid": os.getpid(),
                         "transformers": transformers.__version__})
    # Generation runs on this (main) thread, always the same one: torch's OpenMP pool belongs to the thread that
    # calls it, and a new thread per answer spins up a second pool that competes for the cores (15-25% slower
    # on 2 cores). A reader thread takes the app's messages so a Stop arrives while an answer runs, and answers
    # quick questions (a video's frame numbers) without waiting for the answer in progress.
    jobs: queue.Queue = queue.Queue()
    stops: dict[int, threading.Event] = {}  # request id -> its stop event

    def read() -> None:
        while True:
            try:
                kind, request, payload = pickle.load(channel_in)
            except (EOFError, OSError):  # the app is gone: stop what runs, then exit
                for event in list(stops.values()):
                    event.set()
                jobs.put(None)
                return
            if kind == "stop":
                stops.setdefault(request, threading.Event()).set()
            elif kind == "generate":
                stops.setdefault(request, threading.Event())
                jobs.put((request, payload))
            elif kind == "call":
                _call(backend, request, payload, send)

    threading.Thread(target=read, name="minicpmv-model-process-reader", daemon=True).start()
    while True:
        job = jobs.get()
        if job is None:
            return 0
        request, (conversation, settings) = job
        _answer(backend, request, conversation, settings, stops[request], send)
        stops.pop(request, None)


def _load(request: dict, send):
    from pathlib import Path

    from minicpmv_app.backends import load_here, read_config

    def announce(backend) -> None:
        """What the page needs, before the weights are read."""
        send("info", None, {
            "name": backend.name,
            "knobs": dict(backend.knobs),
            "preset_overrides": {k: dict(v) for k, v in backend.preset_overrides.items()},
            "prompts": tuple(backend.prompts),
            "scale_resolution": int(getattr(backend, "scale_resolution", 448)),
        })
        send("progress", None, {"stage": "weights"})
        _report_progress_bars(send)

    send("progress", None, {"stage": "importing"})
    folder = Path(request["folder"])
    # This process already runs on the transformers the checkpoint needs: it loads here, whatever the pin says.
    return load_here(folder, read_config(folder), request["device"], request["dtype"], announce=announce)


def _report_progress_bars(send) -> None:
    """transformers' loading bars ("Loading weights", "Loading checkpoint shards") also go to the app, as the
    fraction done (every 2%)."""
    try:
        from transformers.utils import logging as hf_logging

        bars = hf_logging.tqdm_lib.tqdm
    except (ImportError, AttributeError):
        return

    class Reporting(bars):  # type: ignore[valid-type,misc]  # tqdm, found at run time
        def __iter__(self):
            sent = -1.0
            for done, item in enumerate(super().__iter__(), start=1):
                yield item
                if self.total and (done / self.total - sent >= 0.02 or done == self.total):
                    sent = done / self.total
                    send("progress", None, {"stage": "weights", "fraction": sent})

    class Library:
        tqdm = Reporting

    hf_logging.tqdm_lib = Library


def _load_error(exc: BaseException, request: dict) -> BaseException:
    """What failed while loading, as a load error (a truncated download raises safetensors' own error)."""
    from pathlib import Path

    from minicpmv_app.errors import MiniCPMVError, ModelLoadError

    if isinstance(exc, MiniCPMVError):
        return exc
    name = Path(request["folder"]).name
    reason = f"{type(exc).__name__}: {str(exc)[:300]}"
    return ModelLoadError(f"The model in {name} could not be loaded ({reason}). If the download was interrupted, "
                          "download it again.", key="load_failed", model=name, reason=reason)


def _call(backend, request: int, payload, send) -> None:
    method, args = payload
    try:
        if method == "frame_plan_key":
            (settings,) = args
            send("result", request, backend.frame_plan(settings).key)
        elif method == "frame_indices":
            settings, total_frames, fps, duration = args
            send("result", request, backend.frame_plan(settings).indices(total_frames, fps, duration))
        else:
            raise ValueError(f"unknown call {method!r}")
    except BaseException as exc:
        send("error", request, _describe(exc))


def _answer(backend, request: int, conversation, settings, stop: threading.Event, send) -> None:
    from minicpmv_app.backends.shared_pixels import unwrap

    try:
        for piece in backend.generate(unwrap(conversation), settings, stop=stop):
            send("piece", request, piece)
            if stop.is_set():
                break
        send("done", request, None)
    except BaseException as exc:
        send("error", request, _describe(exc))


def _describe(exc: BaseException) -> dict:
    from minicpmv_app.errors import MiniCPMVError

    if isinstance(exc, MiniCPMVError):
        return {"type": type(exc).__name__, "message": str(exc), "key": exc.key, "params": _plain(exc.params)}
    from minicpmv_app.backends.base import as_generation_error

    error = as_generation_error(exc)
    return {"type": type(error).__name__, "message": str(error), "key": error.key, "params": _plain(error.params)}


def _plain(params: dict) -> dict:
    return {k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v) for k, v in params.items()}


if __name__ == "__main__":
    sys.exit(main())
