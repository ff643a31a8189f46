"""A free port on 127.0.0.1: for the app's own local servers (``llama-server``), and the tests' and benchmarks'."""

from __future__ import annotations

import socket


def free_port() -> int:
    # The port is free when asked; a server started right after takes it (the OS does not hand it out again at once).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
