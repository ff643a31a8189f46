"""The worker process: loads one remote-code checkpoint on the runtime ahead of it on ``PYTHONPATH`` and answers
requests from ``minicpmv_app.backends.worker`` over stdin/stdout. Not for running by hand."""

from __future__ import annotations

import os
import pickle
import queue
import sys
import threading


def main() -> int:
    # The protocol owns stdout: anything the model code prints goes to stderr instead.
    channel_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    channel_in = sys.stdin.buffer
    lock = threading.Lock()

    def send(message) -> None:
        with lock:
            pickle.dump(message, channel_out, protocol=pickle.HIGHEST_PROTOCOL)
            channel_out.flush()

    from minicpmv_app.cli import setup_logging

    setup_logging()
    try:
        kind, request = pickle.load(channel_in)
        backend = _load(request)
    except EOFError:
        return 0
    except BaseException as exc:  # sent to the app as a typed error
        send(("error", _describe(exc)))
        return 1
    send(("ready", {
        "describe": backend.describe(),
        "preset_overrides": {k: dict(v) for k, v in backend.preset_overrides.items()},
        "supports_multi_image": backend.supports_multi_image,
        "supports_video": backend.supports_video,
        "knobs": dict(backend.knobs),
        "transformers": __import__("transformers").__version__,
        "card": backend.card(),
        "pid": os.getpid(),
    }))
    # Generation runs on this (main) thread, always the same one: torch's OpenMP pool belongs to the thread that
    # calls it, and a new thread per answer spins up a second pool that competes for the cores (15-25% slower
    # on 2 cores). A reader thread takes the app's messages so a Stop arrives while an answer runs.
    jobs: queue.Queue = queue.Queue()
    stops: dict[int, threading.Event] = {}  # generation id -> its stop event

    def read() -> None:
        while True:
            try:
                message = pickle.load(channel_in)
            except (EOFError, OSError):  # the app is gone: stop what runs, then exit
                for event in list(stops.values()):
                    event.set()
                jobs.put(None)
                return
            if message[0] == "stop":
                stops.setdefault(message[1], threading.Event()).set()
            elif message[0] == "generate":
                stops.setdefault(message[1], threading.Event())
                jobs.put(message)

    threading.Thread(target=read, name="minicpmv-worker-reader", daemon=True).start()
    while True:
        job = jobs.get()
        if job is None:
            return 0
        _, generation, conversation, settings = job
        _answer(backend, conversation, settings, stops[generation], send)
        stops.pop(generation, None)


def _load(request: dict):
    from pathlib import Path

    from minicpmv_app.backends import read_config
    from minicpmv_app.backends.remote_code import RemoteCodeBackend
    from minicpmv_app.devices import placement

    folder = Path(request["folder"])
    return RemoteCodeBackend(folder, placement(request["device"], request["dtype"]), read_config(folder))


def _answer(backend, conversation, settings, stop: threading.Event, send) -> None:
    try:
        for piece in backend.generate(conversation, settings, stop=stop):
            send(("piece", piece))
            if stop.is_set():
                break
        send(("done", None))
    except BaseException as exc:
        send(("error", _describe(exc)))


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
